"""A parsed search (`maestro.api.search`) as a parameterised SQL condition: every value a client
wrote is a query parameter, every column and operator comes from here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from maestro.api import bundles, consumers, search
from maestro.storage import budget as budget_mod
from maestro.storage import rows

_BUNDLE_COLUMNS: dict[str, sql.Composable] = {
    "id": sql.SQL("id::text"),
    "name": sql.SQL("metadata ->> 'name'"),
    "consumer_name": sql.SQL("consumer"),
    "source": sql.SQL("source"),
}
_CONSUMER_COLUMNS: dict[str, sql.Composable] = {"id": sql.SQL("name"), "name": sql.SQL("name")}
_LABELS = sql.SQL("metadata -> 'labels'")


class _Params:
    def __init__(self, params: dict[str, object]) -> None:
        self._params = params

    def add(self, value: object) -> sql.Composable:
        name = f"s{len(self._params)}"
        self._params[name] = value
        return sql.Placeholder(name)


def _compare(column: sql.Composable, op: search.Op, values: tuple[str, ...], params: _Params) -> sql.Composed:
    if op is search.Op.EQ:
        return sql.SQL("{} = {}").format(column, params.add(values[0]))
    if op is search.Op.NE:
        # As SQL's <> would: a row without the value does not match.
        return sql.SQL("{} <> {}").format(column, params.add(values[0]))
    if op is search.Op.IN:
        return sql.SQL("{} = ANY({})").format(column, params.add(list(values)))
    return sql.SQL("NOT ({} = ANY({}))").format(column, params.add(list(values)))


def _condition(node: search.Node, columns: Mapping[str, sql.Composable], params: _Params) -> sql.Composable:
    if isinstance(node, search.AllOf | search.AnyOf):
        joiner = sql.SQL(" AND " if isinstance(node, search.AllOf) else " OR ")
        return sql.SQL("({})").format(joiner.join(_condition(term, columns, params) for term in node.terms))
    if isinstance(node, search.Compare):
        if node.field == "id" and columns is _BUNDLE_COLUMNS:
            _check_ids(node.values)
        return _compare(columns[node.field], node.op, node.values, params)
    if isinstance(node, search.LabelsContain):
        return sql.SQL("{} @> {}").format(_LABELS, params.add(Jsonb(dict(node.labels))))
    if not node.values:
        return sql.SQL("({} ->> {}) IS NOT NULL").format(_LABELS, params.add(node.key))
    label = sql.SQL("({} ->> {})").format(_LABELS, params.add(node.key))
    return _compare(label, node.op, node.values, params)


def _check_ids(values: tuple[str, ...]) -> None:
    for value in values:
        try:
            uuid.UUID(value)
        except ValueError:
            raise search.InvalidSearch(f"{value[:60]!r} is not a resource bundle id (a UUID)") from None


def bundle_condition(node: search.Node | None, params: dict[str, object]) -> sql.Composable:
    """The condition on ``resources`` rows; its values are added to ``params``."""
    return sql.SQL("TRUE") if node is None else _condition(node, _BUNDLE_COLUMNS, _Params(params))


def consumer_condition(node: search.Node | None, params: dict[str, object]) -> sql.Composable:
    """The condition on ``consumers`` rows; its values are added to ``params``."""
    return sql.SQL("TRUE") if node is None else _condition(node, _CONSUMER_COLUMNS, _Params(params))


async def bundle_ids(
    conn: psycopg.AsyncConnection, node: search.Node | None, source: str, offset: int, size: int
) -> tuple[list[uuid.UUID], int]:
    """The ids of one offset page of the bundles matching ``node`` (of ``source`` alone unless it is
    empty), in id order, and how many match in all."""
    params: dict[str, object] = {"offset": offset, "size": size}
    conditions = [bundle_condition(node, params)]
    if source:
        conditions.append(sql.SQL("source = %(source)s"))
        params["source"] = source
    where = sql.SQL(" AND ").join(conditions)
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM resources WHERE {}").format(where), params)
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    if size == 0 or offset >= total:
        return [], total
    query = sql.SQL("SELECT id FROM resources WHERE {} ORDER BY id OFFSET %(offset)s LIMIT %(size)s")
    cur = await conn.execute(query.format(where), params)
    return [r[0] for r in await cur.fetchall()], total


async def bundles_by_ids(
    conn: psycopg.AsyncConnection, ids: Sequence[uuid.UUID], after: uuid.UUID | None, budget: int
) -> tuple[list[bundles.BundleRecord], bool]:
    """The bundles of ``ids`` after ``after`` in id order, as many as ``budget`` bytes hold (one at
    least), and whether more follow."""
    params: dict[str, object] = {"ids": list(ids), "limit": len(ids) + 1, "budget": budget}
    conditions: list[sql.Composable] = [sql.SQL("id = ANY(%(ids)s)")]
    if after is not None:
        conditions.append(sql.SQL("id > %(after)s"))
        params["after"] = after
    weight = (
        "octet_length(spec::text) + octet_length(metadata::text) + coalesce(octet_length(status::text), 0)"
    )
    query = budget_mod.bounded("resources", rows.RESOURCE_COLUMNS, conditions, "id", weight)
    cur = await conn.execute(query, params)
    page, more = budget_mod.cut(await cur.fetchall(), len(ids), budget)
    return [rows.record(r) for r in page], more


async def consumer_page(
    conn: psycopg.AsyncConnection, node: search.Node | None, offset: int, size: int
) -> tuple[list[consumers.Consumer], int]:
    """One offset page of the consumers matching ``node``, in name order, and how many match."""
    params: dict[str, object] = {"offset": offset, "size": size}
    where = consumer_condition(node, params)
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM consumers WHERE {}").format(where), params)
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    if size == 0 or offset >= total:
        return [], total
    query = sql.SQL("SELECT {} FROM consumers WHERE {} ORDER BY name OFFSET %(offset)s LIMIT %(size)s")
    cur = await conn.execute(query.format(sql.SQL(rows.CONSUMER_COLUMNS), where), params)
    return [rows.consumer(r) for r in await cur.fetchall()], total
