"""``-o/--output``: how every command that shows objects prints them, as kubectl prints them.

``table`` (the default) is kubectl's plain table: upper-case headers, columns separated by spaces,
nothing cut, so ``awk`` and ``grep`` work on it; ``wide`` adds columns. ``yaml`` and ``json``
print the data itself: Kubernetes objects as a ``v1`` ``List`` (``{"apiVersion": "v1", "kind":
"List", "items": [...]}``, as ``kubectl get -o json`` does), fleetplane's own records (consumers,
works, certificates, processes) as a plain list, and a single record (``get``) as the record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer
import yaml

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# kubectl's tabwriter padding between columns
_GAP = "   "


class Format(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    YAML = "yaml"
    JSON = "json"

    @property
    def is_data(self) -> bool:
        return self in (Format.YAML, Format.JSON)


def output_option(default: Format = Format.TABLE) -> Any:
    """``-o/--output``, defaulting to ``default``."""
    return typer.Option(
        default,
        "-o",
        "--output",
        case_sensitive=False,
        help="Output format: table, wide (a table with more columns), yaml or json.",
    )


OUTPUT = output_option()
Record = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """A table column: its header and how a record shows in it; ``wide`` columns only with -o wide."""

    header: str
    value: Callable[[Record], object]
    wide: bool = False

    @classmethod
    def key(cls, header: str, key: str, *, wide: bool = False) -> Column:
        """A column showing one field of the record as it is."""
        return cls(header, lambda record: record.get(key), wide)


def kube_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Kubernetes objects as the ``List`` kubectl prints for several objects."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def dumps(data: object, fmt: Format) -> str:
    """``data`` as YAML or JSON text (ends with a newline)."""
    if fmt is Format.JSON:
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt is Format.YAML:
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    raise ValueError(f"{fmt.value} is a table format, not a data format")


def _cell(value: object) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "<none>"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "<none>"
    return str(value)


def table(records: Sequence[Record], columns: Sequence[Column], *, wide: bool = False) -> str:
    """The records as kubectl's plain table (no trailing newline)."""
    shown = [c for c in columns if wide or not c.wide]
    rows = [[c.header.upper() for c in shown]] + [[_cell(c.value(r)) for c in shown] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(shown))]
    return "\n".join(
        _GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def show(
    records: Sequence[Record],
    columns: Sequence[Column],
    fmt: Format,
    *,
    kubernetes: bool = False,
    empty: str = "No resources found.",
) -> None:
    """Print a list: a table (``empty`` on stderr when there is nothing, as kubectl does), or the
    records as data (a ``List`` when they are Kubernetes objects)."""
    if fmt.is_data:
        typer.echo(dumps(kube_list(records) if kubernetes else list(records), fmt), nl=False)
    elif not records:
        typer.echo(empty, err=True)
    else:
        typer.echo(table(records, columns, wide=fmt is Format.WIDE))


def show_one(record: Record, columns: Sequence[Column], fmt: Format) -> None:
    """Print one record: a one-row table, or the record itself as data."""
    if fmt.is_data:
        typer.echo(dumps(dict(record), fmt), nl=False)
    else:
        typer.echo(table([record], columns, wide=fmt is Format.WIDE))


def show_data(data: object, fmt: Format, text: Callable[[bool], str]) -> None:
    """Print what has its own text form (a tree, several tables): ``text(wide)`` for table and
    wide, else ``data`` as YAML or JSON."""
    if fmt.is_data:
        typer.echo(dumps(data, fmt), nl=False)
    else:
        typer.echo(text(fmt is Format.WIDE))
