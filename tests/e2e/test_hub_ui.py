"""Argo CD's web UI on the hub, as a person sees it in a browser (headless Chromium).

With ``configmap1`` deployed by an ApplicationSet to both workers (``deployed``, as the demo's
second case does), the admin logs in with the password from the hub's Secret, sees both clusters'
Applications Synced and Healthy in the applications list, opens one and finds ``configmap1`` in its
resource tree. Screenshots of each page are saved under the test's basetemp (``hub-ui/``). Skipped,
with the command that builds it, while no ``argocd`` with the UI embedded is built (``make hub-ui``),
and while Chromium is not installed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from localinfra import argocd_ui, argocd_ui_binary, hub_argocd
from tests import browser
from tests.e2e.conftest import PullFleet
from tests.e2e.test_hub_argocd import deployed  # noqa: F401 (the fleet's state this test looks at)

#: read by ``pull_fleet``: run argocd-server on the hub
HUB_ARGOCD = True

WAIT_SECONDS = 180

pytestmark = [
    pytest.mark.e2e,
    # argocd-server serves index.html only from the UI embedded in its binary: the hub runs the
    # argocd that `make hub-ui` builds with it, when there is one for the UI in the cache.
    pytest.mark.skipif(
        argocd_ui_binary.built_binary() is None,
        reason=f"no argocd with Argo CD's web UI embedded ({argocd_ui_binary.binary_path()}): "
        f"`{argocd_ui.BUILD_COMMAND}` builds it (docs/demo.md)",
    ),
    pytest.mark.skipif(browser.missing() is not None, reason=browser.missing() or ""),
]


@pytest.fixture
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "hub-ui"
    folder.mkdir(exist_ok=True)
    return folder


def _tile_status(driver: WebDriver, name: str) -> str:
    """The status line of an Application's tile in the list ("Healthy ... Synced"), or ""."""
    try:
        tiles = driver.find_elements(By.CSS_SELECTOR, f'a.applications-tiles__wrapper[aria-label="{name}"]')
        fields = [t.find_element(By.CSS_SELECTOR, "[qe-id=applications-tiles-health-status]") for t in tiles]
        return " ".join(f.text for f in fields)
    except StaleElementReferenceException:
        return ""


def _log_in(driver: WebDriver, url: str, password: str) -> None:
    driver.get(f"{url}/login")
    wait = WebDriverWait(driver, WAIT_SECONDS)
    wait.until(lambda d: d.find_elements(By.NAME, "username"))
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(lambda d: "/applications" in d.current_url, "the login did not lead to the applications list")


async def test_the_admin_sees_the_fleet_synced_and_opens_a_resource_tree(
    deployed: list[str],  # noqa: F811
    pull_fleet: PullFleet,
    screenshots: Path,
) -> None:
    server = pull_fleet.hub_argocd
    assert server is not None
    # The browser blocks while it waits: in a thread, so the agents in this loop keep reporting.
    await asyncio.to_thread(_browse, server, deployed, screenshots)


def _browse(server: hub_argocd.HubArgoCD, apps: list[str], screenshots: Path) -> None:
    pin = browser.verified_key_pin(server.address, server.ca)
    with browser.chromium(screenshots / "profile", pinned_keys=(pin,)) as driver:
        wait = WebDriverWait(driver, WAIT_SECONDS)
        try:
            _log_in(driver, server.url, server.admin_password())
            wait.until(
                lambda d: all("Synced" in (s := _tile_status(d, app)) and "Healthy" in s for app in apps),
                f"both Applications Synced and Healthy in the list: {apps}",
            )
            driver.save_screenshot(screenshots / "applications.png")

            app = apps[0]
            driver.find_element(By.CSS_SELECTOR, f'a.applications-tiles__wrapper[aria-label="{app}"]').click()
            wait.until(lambda d: "/applications/" in d.current_url and app in d.current_url, f"{app} opened")
            wait.until(
                lambda d: any("configmap1" in n.text for n in _tree_titles(d)),
                f"configmap1 in the resource tree of {app}",
            )
            driver.save_screenshot(screenshots / "application.png")
        finally:
            driver.save_screenshot(screenshots / "last.png")


def _tree_titles(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, ".application-resource-tree__node-title")
