"""Headless Chromium for tests that look at a web UI the way a person does (Debian's ``chromium``
and ``chromium-driver``, driven by Selenium), trusting exactly one server's key.

The hub's servers present certificates of the platform's CA, which Chromium does not know. Rather
than turning certificate checks off, the test verifies the served chain against the CA itself and
pins that one server key in Chromium (``--ignore-certificate-errors-spki-list``).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

#: Debian's packages, and what installs them when missing
CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"


def missing() -> str | None:
    """Why no browser can run here, or None."""
    absent = [tool for tool in (CHROMIUM, CHROMEDRIVER) if shutil.which(tool) is None]
    return f"{' and '.join(absent)} not installed: {INSTALL}" if absent else None


def verified_key_pin(address: str, ca: Path) -> str:
    """The base64 SHA-256 of the public key ``address`` serves, once its chain verifies against
    ``ca`` for that host: what Chromium's SPKI allow-list takes."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@contextmanager
def chromium(profile: Path, *, pinned_keys: tuple[str, ...] = ()) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a profile of its own under ``profile``, stopped on exit."""
    options = Options()
    options.binary_location = str(shutil.which(CHROMIUM))
    for arg in (
        "--headless=new",
        # tests run as root in a container: Chromium's sandbox needs user namespaces it has not
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    if pinned_keys:
        options.add_argument(f"--ignore-certificate-errors-spki-list={','.join(pinned_keys)}")
    log = profile.parent / "chromedriver.log"
    service = Service(executable_path=str(shutil.which(CHROMEDRIVER)), log_output=str(log))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
