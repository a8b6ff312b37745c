"""Resync answers: agent_answer (spec resync) and source_answer (status resync).

Cases (table): a fresh agent gets every live bundle; an up-to-date agent gets nothing; an older
copy gets the spec; deleting bundles are always sent as deletes; ids only the agent knows get a
delete. A property test checks the rules on arbitrary inputs. Source: empty list means every
status; otherwise only differing or missing hashes; bundles without status are never sent.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maestro.api import bundles, resync
from tests.unit.maestro import fixtures as fx

K = resync.AgentResyncKind
IDS = [uuid.UUID(int=i) for i in range(1, 6)]


def rows(*specs: tuple[int, int, bool]) -> list[bundles.ResourceBundle]:
    return [fx.bundle(version, deleted=deleting, rid=IDS[i]) for i, version, deleting in specs]


AGENT_CASES = [
    ("fresh agent", rows((0, 1, False), (1, 3, False)), {}, [(0, K.SPEC), (1, K.SPEC)]),
    ("up to date", rows((0, 1, False), (1, 3, False)), {IDS[0]: 1, IDS[1]: 3}, []),
    ("older copy", rows((0, 2, False)), {IDS[0]: 1}, [(0, K.SPEC)]),
    ("agent ahead", rows((0, 2, False)), {IDS[0]: 5}, []),
    ("deleting, agent holds it", rows((0, 2, True)), {IDS[0]: 2}, [(0, K.DELETE)]),
    ("deleting, agent lacks it", rows((0, 2, True)), {}, [(0, K.DELETE)]),
    ("leftover on agent", rows((0, 1, False)), {IDS[0]: 1, IDS[4]: 7}, [(4, K.DELETE_UNKNOWN)]),
]


@pytest.mark.parametrize(
    ("server", "agent", "want"), [c[1:] for c in AGENT_CASES], ids=[c[0] for c in AGENT_CASES]
)
def test_agent_answer(
    server: list[bundles.ResourceBundle],
    agent: dict[uuid.UUID, int],
    want: list[tuple[int, resync.AgentResyncKind]],
) -> None:
    got = resync.agent_answer(server, agent)
    assert [(IDS.index(item.resource_id), item.kind) for item in got] == want
    for item in got:
        assert (item.bundle is None) == (item.kind is K.DELETE_UNKNOWN)
        assert item.agent_version == agent.get(item.resource_id)


server_rows = st.dictionaries(
    st.sampled_from(IDS), st.tuples(st.integers(1, 5), st.booleans()), max_size=len(IDS)
)
agent_rows = st.dictionaries(st.sampled_from(IDS), st.integers(0, 6), max_size=len(IDS))


@given(server=server_rows, agent=agent_rows)
def test_agent_answer_property(
    server: dict[uuid.UUID, tuple[int, bool]], agent: dict[uuid.UUID, int]
) -> None:
    bundles_ = [fx.bundle(v, deleted=d, rid=rid) for rid, (v, d) in server.items()]
    answer = {item.resource_id: item.kind for item in resync.agent_answer(bundles_, agent)}
    for rid, (version, deleting) in server.items():
        if deleting:
            assert answer[rid] is K.DELETE
        elif rid not in agent or agent[rid] < version:
            assert answer[rid] is K.SPEC
        else:
            assert rid not in answer
    for rid in agent.keys() - server.keys():
        assert answer[rid] is K.DELETE_UNKNOWN
    assert answer.keys() <= server.keys() | agent.keys()


def record(i: int, hash_: str | None) -> bundles.BundleRecord:
    status = fx.status() if hash_ is not None else None
    return bundles.BundleRecord(bundle=fx.bundle(rid=IDS[i]), status=status, status_hash=hash_ or "")


SOURCE_CASES = [
    ("empty list means all", [record(0, "a"), record(1, "b"), record(2, None)], {}, [0, 1]),
    ("same hashes", [record(0, "a"), record(1, "b")], {IDS[0]: "a", IDS[1]: "b"}, []),
    ("one differs", [record(0, "a"), record(1, "b")], {IDS[0]: "a", IDS[1]: "x"}, [1]),
    ("one missing", [record(0, "a"), record(1, "b")], {IDS[0]: "a"}, [1]),
    ("no status yet", [record(0, None)], {IDS[0]: "a"}, []),
]


@pytest.mark.parametrize(
    ("server", "source", "want"), [c[1:] for c in SOURCE_CASES], ids=[c[0] for c in SOURCE_CASES]
)
def test_source_answer(
    server: list[bundles.BundleRecord], source: dict[uuid.UUID, str], want: list[int]
) -> None:
    assert [IDS.index(r.bundle.id) for r in resync.source_answer(server, source)] == want
