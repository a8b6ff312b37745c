"""Pages bounded by bytes as well as by count.

A page query selects its rows in key order, limited to one more than the page size, each with the
bytes it weighs; a window sums them, and only the rows that start within the budget leave the
database. The first row always does (a bundle larger than the budget comes alone), and so does the
second, which tells whether a page of that one bundle is the last; a row past the size or the
budget tells that a next page exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

#: the column every bounded row ends with: the bytes of its page up to and including it
UPTO = "_page_upto"


def bounded(
    table: str, columns: str, conditions: Sequence[sql.Composable], order: str, weight: str
) -> sql.Composed:
    """``SELECT columns, UPTO`` of ``table``'s rows matching ``conditions`` in ``order``, at most
    ``%(limit)s`` of them, stopping after the first that ends past ``%(budget)s`` bytes, each
    weighing ``weight`` (an SQL expression over the row)."""
    return sql.SQL(
        "SELECT {cols}, {upto} FROM ("
        " SELECT *, sum(_page_bytes) OVER (ORDER BY {order} ROWS UNBOUNDED PRECEDING) AS {upto},"
        "  row_number() OVER (ORDER BY {order}) AS _page_row FROM ("
        "  SELECT {table}.*, ({weight})::bigint AS _page_bytes FROM {table} WHERE {where}"
        "  ORDER BY {order} LIMIT %(limit)s) AS limited"
        ") AS {table} WHERE {upto} - _page_bytes < %(budget)s OR _page_row <= 2 ORDER BY {order}"
    ).format(
        cols=sql.SQL(columns),
        upto=sql.Identifier(UPTO),
        order=sql.SQL(order),
        table=sql.Identifier(table),
        weight=sql.SQL(weight),
        where=sql.SQL(" AND ").join(conditions),
    )


def cut(found: Sequence[tuple[Any, ...]], size: int, budget: int) -> tuple[list[tuple[Any, ...]], bool]:
    """The rows of the page (at most ``size``, within ``budget`` but at least one; without their
    ``UPTO``), and whether more rows follow them."""
    taken = 0
    for row in found[:size]:
        if taken and row[-1] > budget:
            break
        taken += 1
    return [row[:-1] for row in found[:taken]], len(found) > taken
