"""Leader election between two electors on a real kube-apiserver's Lease, with the default timings
(15 s lease, 10 s renew deadline, 2 s retry period), as a user would read it with
``kubectl get lease -o yaml``.

Cases: of two candidates started together, one leads and the Lease names it while it renews; a
leader that vanishes without releasing is replaced once its lease has run out (within the lease
duration of its last renewal); a leader that stops cleanly releases and the standby takes over at
once; a leader cut off from the API server (a relay that stops carrying bytes: its requests hang)
stops leading at its renew deadline, before the standby may take over; a leader whose event loop
a handler holds past the renew deadline keeps renewing and leading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from kubeio import credentials
from kubeio.leader import LeaderElector, LeadershipLost, retry_settings
from kubeio.lease import LeaderElection
from kubeio.rest import KubeRest
from localinfra import kube
from localinfra.tcpproxy import FreezableRelay

pytestmark = pytest.mark.integration


class Candidate:
    """One elector whose work records when it started and stopped, and ends when told to."""

    def __init__(
        self, rest: KubeRest, settings: LeaderElection, *, release_on_stop: bool = True, hold: float = 0.0
    ) -> None:
        self.rest = rest
        #: seconds its work holds the event loop (a blocking call) once it leads
        self.hold = hold
        self.elector = LeaderElector(rest, settings, release_on_stop=release_on_stop)
        self.led_at: float | None = None
        self.stopped_at: float | None = None
        self.lost: tuple[float, str] | None = None
        self.finish = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def identity(self) -> str:
        return self.elector.settings.identity

    def start(self) -> Candidate:
        self.task = asyncio.create_task(self.elector.run(self._lead, on_lost=self._lost))
        return self

    async def _lead(self) -> None:
        self.led_at = asyncio.get_running_loop().time()
        time.sleep(self.hold)  # noqa: ASYNC251 - a handler holding the loop is the case under test
        try:
            await self.finish.wait()
        finally:
            self.stopped_at = asyncio.get_running_loop().time()

    def _lost(self, reason: str) -> None:
        self.lost = (asyncio.get_running_loop().time(), reason)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def candidates(hub: kube.Cluster) -> AsyncIterator[Callable[..., Candidate]]:
    """Candidates for one Lease of their own; ``via`` is another address of the hub's server."""
    name = f"election-{uuid.uuid4().hex[:6]}"
    made: list[Candidate] = []
    hub_credentials = await asyncio.to_thread(credentials.load, hub.kubeconfig)

    def candidate(*, via: str | None = None, release_on_stop: bool = True, hold: float = 0.0) -> Candidate:
        settings = LeaderElection(name=name, namespace="default")
        creds = dataclasses.replace(hub_credentials, server=via) if via else hub_credentials
        rest = KubeRest(creds, retry_settings(settings))
        made.append(Candidate(rest, settings, release_on_stop=release_on_stop, hold=hold))
        return made[-1]

    yield candidate
    for one in made:
        await one.stop()
        await one.rest.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.02)
    return loop.time()


async def spec(candidate: Candidate) -> dict[str, Any]:
    lease = await candidate.rest.request("GET", candidate.elector.settings.path)
    return dict(lease["spec"])


async def leader_and_standby(first: Candidate, second: Candidate) -> tuple[Candidate, Candidate]:
    """Once one leads and the other has seen it renew: (leader, standby)."""
    await until(lambda: (first.led_at is None) != (second.led_at is None), 10, "one of two leads")
    leader, standby = (first, second) if first.led_at is not None else (second, first)
    renewed = (await spec(leader))["renewTime"]
    await until(lambda: standby.elector.holder == leader.identity, 10, "the standby sees the leader")
    await until(
        lambda: (
            standby.elector._sighting is not None and standby.elector._sighting.record.renew_time != renewed
        ),
        5,
        "the standby sees a renewal",
    )
    return leader, standby


async def test_one_of_two_leads_and_the_lease_names_it_while_it_renews(
    candidates: Callable[..., Candidate],
) -> None:
    first, second = candidates().start(), candidates().start()
    leader, standby = await leader_and_standby(first, second)
    before = await spec(leader)
    await asyncio.sleep(2.5)  # more than a retry period
    after = await spec(leader)

    assert standby.led_at is None and standby.elector.holder == leader.identity
    assert after["holderIdentity"] == leader.identity
    assert (after["leaseDurationSeconds"], after["leaseTransitions"]) == (15, 0)
    assert after["acquireTime"] == before["acquireTime"]
    assert after["renewTime"] > before["renewTime"]


async def test_a_leader_gone_without_releasing_is_replaced_when_its_lease_runs_out(
    candidates: Callable[..., Candidate],
) -> None:
    first = candidates(release_on_stop=False).start()
    second = candidates(release_on_stop=False).start()
    leader, standby = await leader_and_standby(first, second)
    acquired = (await spec(leader))["acquireTime"]

    gone = asyncio.get_running_loop().time()
    await leader.stop()  # no release: as a process killed with -9 leaves the Lease
    took_over = await until(lambda: standby.led_at is not None, 20, "the standby leads") - gone
    print(f"\ntakeover after the leader vanished: {took_over:.2f}s (lease duration 15s)")

    # Its last renewal was at most a retry period before it went; the standby waited it out.
    assert 15 - 2.5 <= took_over <= 15 + 1.0
    now = await spec(standby)
    assert now["holderIdentity"] == standby.identity and now["leaseTransitions"] == 1
    assert now["acquireTime"] > acquired


async def test_a_leader_that_stops_cleanly_releases_and_the_standby_takes_over_at_once(
    candidates: Callable[..., Candidate],
) -> None:
    leader, standby = await leader_and_standby(candidates().start(), candidates().start())

    stopping = asyncio.get_running_loop().time()
    leader.finish.set()
    # Had the leader not released, the standby could lead only once the 15 s lease ran out, at
    # least 13 s after the stop (the last renewal is at most a 2 s retry period old): leading
    # within 10 s shows the release, whatever the machine's load adds to the retry period.
    took_over = await until(lambda: standby.led_at is not None, 10, "the standby leads") - stopping
    print(f"\ntakeover after a clean stop: {took_over:.2f}s (retry period 2s)")

    assert leader.task is not None and leader.task.done() and leader.task.exception() is None
    now = await spec(standby)
    assert now["holderIdentity"] == standby.identity and now["leaseTransitions"] == 1


async def test_a_leader_cut_off_from_the_api_server_stops_before_the_lease_can_be_taken(
    hub: kube.Cluster, candidates: Callable[..., Candidate]
) -> None:
    address = urlsplit(hub.server)
    relay = await FreezableRelay(str(address.hostname), int(address.port or 443)).start()
    try:
        cut_off = candidates(via=f"https://127.0.0.1:{relay.port}").start()
        await until(lambda: cut_off.led_at is not None, 10, "the relayed candidate leads")
        direct = candidates().start()
        leader, standby = await leader_and_standby(cut_off, direct)
        assert leader is cut_off

        cut = asyncio.get_running_loop().time()
        relay.freeze()
        await until(lambda: standby.led_at is not None, 25, "the standby leads")
    finally:
        await relay.close()

    assert leader.lost is not None and leader.stopped_at is not None and standby.led_at is not None
    lost_at, reason = leader.lost
    assert "renew deadline" in reason
    assert leader.task is not None and isinstance(leader.task.exception(), LeadershipLost)
    # it stopped within the renew deadline of its last renewal, which was before the cut
    assert lost_at - cut <= 10 + 0.5
    margin = standby.led_at - leader.stopped_at
    print(
        f"\ncut off: the leader stopped {lost_at - cut:.2f}s after the cut, the standby led "
        f"{standby.led_at - cut:.2f}s after it ({margin:.2f}s after the leader had stopped)"
    )
    assert margin >= 15 - 10 - 0.5
    assert (await spec(standby))["leaseTransitions"] == 1


async def test_a_leader_whose_event_loop_is_held_past_the_renew_deadline_keeps_leading(
    hub: kube.Cluster, candidates: Callable[..., Candidate]
) -> None:
    busy = candidates(hold=13.0).start()
    # the hold runs as soon as it leads: nothing on this loop runs until it ends
    await until(lambda: busy.led_at is not None, 30, "the busy candidate leads and its hold ends")
    assert busy.lost is None and busy.elector.leading
    lease = await spec(busy)
    assert lease["holderIdentity"] == busy.identity
    renewed = datetime.datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00"))
    age = (datetime.datetime.now(datetime.UTC) - renewed).total_seconds()
    print(f"\nafter holding the loop 13 s the leader leads; its last renewal {age:.1f}s old")
    assert age < 4, "the Lease was renewed while the loop was held"
