"""Leader election's decisions on a Lease, with client-go's rules.

Cases: the defaults are client-go's (15 s, 10 s, 2 s); settings that cannot work are refused,
naming the setting and the fix; each replica's identity is its host and a suffix of its own; no
Lease is created, a released or expired one taken (one more transition, a new acquireTime), our
own renewed (acquireTime and transitions kept), a live one waited for until it would expire; the
expiry counts from when this replica first saw the record as it is, by its own clock, with the
record's own duration (the holder's timestamps are never trusted); a release is taken at once; a
standby wakes no later than the expiry; and a leader cut off stops before any standby may take over.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from kubeio import lease
from kubeio.lease import Decision, LeaderElection, Move, Record, Sighting

ME, OTHER = "me_1", "other_2"


def settings(**changes: Any) -> LeaderElection:
    base = LeaderElection(name="fleetplane-controllers", namespace="fleetplane", identity=ME)
    return dataclasses.replace(base, **changes)


def test_the_defaults_are_client_gos() -> None:
    chosen = settings()
    assert (chosen.lease_duration, chosen.renew_deadline, chosen.retry_period) == (15, 10.0, 2.0)
    assert chosen.path == "/apis/coordination.k8s.io/v1/namespaces/fleetplane/leases/fleetplane-controllers"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"renew_deadline": 15.0}, "renew_deadline", "shorter than the lease duration (15s)"),
        ({"lease_duration": 8}, "renew_deadline", "lower it or raise the duration"),
        ({"renew_deadline": 2.4}, "renew_deadline", "1.2 x the retry period (2s)"),
        ({"retry_period": 0.0}, "retry_period", "more than 0 seconds"),
        ({"renew_deadline": -1.0}, "renew_deadline", "more than 0 seconds"),
        ({"lease_duration": 0}, "lease_duration", "at least 1 second"),
        ({"name": "Controllers_1"}, "name", "not a Kubernetes name"),
        ({"namespace": ""}, "namespace", "not a Kubernetes name"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_setting(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(lease.SettingsError) as refused:
        settings(**changes)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_each_replica_is_its_pod_and_a_suffix_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "fleetplane-controllers-7d9f-abcde")
    first, second = lease.default_identity(), lease.default_identity()
    assert first.startswith("fleetplane-controllers-7d9f-abcde_") and second != first
    monkeypatch.delenv("POD_NAME")
    assert lease.default_identity().partition("_")[0]  # the hostname


def held(holder: str, *, duration: int = 15, renewed: str = "t1", transitions: int = 3) -> Record:
    return Record(holder, duration, "t0", renewed, transitions)


def test_no_lease_is_created() -> None:
    assert lease.decide(None, ME, now=100.0) == Decision(Move.CREATE)
    record = lease.next_record(Move.CREATE, None, settings(), wall="w")
    assert record == Record(ME, 15, "w", "w", 0)


def test_a_live_lease_of_another_is_waited_for_until_it_would_expire() -> None:
    seen = Sighting(held(OTHER), at=100.0)
    assert lease.decide(seen, ME, now=114.9) == Decision(Move.WAIT, until=115.0)


def test_an_expired_lease_is_taken_over_with_one_more_transition() -> None:
    seen = Sighting(held(OTHER), at=100.0)
    assert lease.decide(seen, ME, now=115.0) == Decision(Move.ACQUIRE)
    taken = lease.next_record(Move.ACQUIRE, seen.record, settings(), wall="w")
    assert taken == Record(ME, 15, acquire_time="w", renew_time="w", transitions=4)


def test_the_expiry_is_the_records_own_duration() -> None:
    """A holder that asked for 60 s keeps it 60 s, whatever this replica's setting."""
    seen = Sighting(held(OTHER, duration=60), at=100.0)
    assert lease.decide(seen, ME, now=130.0).move is Move.WAIT
    assert lease.decide(seen, ME, now=160.0).move is Move.ACQUIRE


def test_our_own_lease_is_renewed_keeping_its_acquire_time_and_transitions() -> None:
    seen = Sighting(held(ME), at=100.0)
    assert lease.decide(seen, ME, now=500.0) == Decision(Move.RENEW)
    renewed = lease.next_record(Move.RENEW, seen.record, settings(), wall="w")
    assert renewed == Record(ME, 15, acquire_time="t0", renew_time="w", transitions=3)


def test_the_expiry_counts_from_when_the_record_was_first_seen_as_it_is() -> None:
    """The holder's renewTime is another machine's clock: only a change of the record counts."""
    first = lease.observe(None, held(OTHER, renewed="2000-01-01T00:00:00.000000Z"), now=100.0)
    # a renewTime long past says nothing: this replica has seen the record for 0 s
    assert lease.decide(first, ME, now=100.0).move is Move.WAIT
    again = lease.observe(first, held(OTHER, renewed="2000-01-01T00:00:00.000000Z"), now=110.0)
    assert again is first
    renewed = lease.observe(again, held(OTHER, renewed="2000-01-01T00:00:02.000000Z"), now=112.0)
    assert renewed.at == 112.0
    assert lease.decide(renewed, ME, now=120.0) == Decision(Move.WAIT, until=127.0)


def test_a_released_lease_is_taken_at_once() -> None:
    gone = lease.released(held(OTHER), wall="w")
    assert gone == Record("", 1, "w", "w", 3)
    seen = lease.observe(None, gone, now=100.0)
    assert lease.decide(seen, ME, now=100.0) == Decision(Move.ACQUIRE)
    assert lease.next_record(Move.ACQUIRE, gone, settings(), wall="x").transitions == 4


def test_a_standby_tries_every_retry_period_or_at_the_expiry_if_sooner() -> None:
    waiting = Decision(Move.WAIT, until=100.5)
    assert lease.standby_wait(waiting, now=100.0, retry_period=2.0, jitter=0.0) == pytest.approx(0.51)
    far = Decision(Move.WAIT, until=130.0)
    assert lease.standby_wait(far, now=100.0, retry_period=2.0, jitter=0.0) == 2.0
    assert lease.standby_wait(far, now=100.0, retry_period=2.0, jitter=0.99) == pytest.approx(2.396)


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(15, 10.0, 2.0), (3, 2.0, 0.5), (60, 30.0, 5.0)])
def test_a_leader_cut_off_stops_before_a_standby_may_take_over(
    duration: int, deadline: float, retry: float
) -> None:
    """The leader counts its deadline from the start of its last renewal; a standby counts the
    lease from when it saw that renewal, which is later."""
    chosen = settings(lease_duration=duration, renew_deadline=deadline, retry_period=retry)
    renewal_started, seen_at = 1000.0, 1000.0  # at best the standby sees it at the same instant
    leader_stops = renewal_started + chosen.renew_deadline
    sighting = Sighting(lease.next_record(Move.RENEW, held(ME), chosen), at=seen_at)
    takeover = lease.decide(sighting, OTHER, now=seen_at).until
    assert leader_stops < takeover
    assert lease.decide(sighting, OTHER, now=leader_stops).move is Move.WAIT


def test_the_lease_object_replaces_exactly_the_version_it_was_decided_on() -> None:
    record = Record(ME, 15, "a", "r", 2)
    created = lease.lease_object(settings(), record)
    assert "resourceVersion" not in created["metadata"]
    replaced = lease.lease_object(settings(), record, "42")
    assert replaced["metadata"] == {
        "name": "fleetplane-controllers",
        "namespace": "fleetplane",
        "resourceVersion": "42",
    }
    assert replaced["spec"] == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "leaseTransitions": 2,
        "acquireTime": "a",
        "renewTime": "r",
    }
    assert Record.from_lease(replaced) == record
    assert Record.from_lease({}) == Record("", 0)


def test_times_are_written_as_the_api_servers_micro_time() -> None:
    at = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert lease.micro_time(at) == "2030-05-06T07:08:09.123456Z"
