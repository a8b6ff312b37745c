"""The leader's watchdog thread ends a leadership whose renew deadline has passed even while the
event loop is held (here: the test's own thread sleeps, as a blocking handler would), and leaves
alone a leader that keeps renewing, or a replica that does not lead."""

from __future__ import annotations

import threading
import time

from kubeio.leader import Watchdog


def watch(deadline: list[float | None]) -> tuple[Watchdog, threading.Event, list[str]]:
    fired, reasons = threading.Event(), []

    def expired(reason: str) -> None:
        reasons.append(reason)
        fired.set()

    dog = Watchdog(lambda: deadline[0], expired, grace=0.1, every=0.01)
    dog.start()
    return dog, fired, reasons


def test_a_leader_past_its_deadline_is_ended_while_the_loop_is_held() -> None:
    deadline: list[float | None] = [time.monotonic() + 0.2]
    dog, fired, reasons = watch(deadline)
    time.sleep(0.6)  # nothing else runs: a held event loop
    dog.stop()
    assert fired.is_set()
    assert reasons[0].startswith("not renewed within the renew deadline")
    assert len(reasons) == 1


def test_a_renewing_leader_and_a_standby_are_left_alone() -> None:
    deadline: list[float | None] = [time.monotonic() + 0.2]
    dog, fired, _ = watch(deadline)
    for _ in range(10):  # renewed every 0.05 s
        time.sleep(0.05)
        deadline[0] = time.monotonic() + 0.2
    deadline[0] = None  # stopped leading
    time.sleep(0.4)
    dog.stop()
    assert not fired.is_set()
