"""``fleetplane maestro quarantine``: events that kept failing, set aside; list, retry or drop them."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from fleetplane import output
from fleetplane.maestro_connection import Connection, connected
from fleetplane.output import Column, Record
from maestro.api import errors as maestro_errors
from maestro.api import quarantine

app = typer.Typer(
    help="Events set aside after failing for their own reasons (admin only): Kafka refused a spec "
    "event for good, or a status event did not decode or store.",
    no_args_is_help=True,
)

IDS = typer.Argument(None, help="Ids of quarantined events, as `quarantine list` shows them.")
ALL = typer.Option(False, "--all", help="Every quarantined event (of --consumer, when given).")
CONSUMER = typer.Option("", "--consumer", help="Only this consumer's events.")
err = Console(stderr=True)
console = Console()


def record(q: quarantine.Quarantined) -> dict[str, Any]:
    return {
        "id": q.id,
        "kind": q.kind.value,
        "consumer": q.consumer,
        "resource_id": str(q.resource_id) if q.resource_id else None,
        "event_type": q.event_type,
        "topic": q.topic,
        "partition": q.partition,
        "offset": q.offset,
        "bytes": q.size,
        "attempts": q.attempts,
        "created_at": q.created_at.isoformat(),
        "quarantined_at": q.quarantined_at.isoformat(),
        "reason": q.reason,
    }


def _when(record: Record) -> str:
    return str(record.get("quarantined_at") or "?").replace("T", " ")[:19]


COLUMNS = (
    Column.key("id", "id"),
    Column.key("kind", "kind"),
    Column.key("consumer", "consumer"),
    Column.key("work", "resource_id"),
    Column.key("type", "event_type", wide=True),
    Column.key("topic", "topic", wide=True),
    Column.key("bytes", "bytes", wide=True),
    Column.key("attempts", "attempts"),
    Column("quarantined", _when),
    Column.key("reason", "reason"),
)


def _selection(ids: list[int] | None, every: bool, consumer: str) -> quarantine.Selection:
    try:
        return quarantine.Selection(ids=tuple(ids or ()), every=every, consumer=consumer)
    except maestro_errors.InvalidArgument as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("list")
@connected
def quarantine_list(
    connection: Connection,
    consumer: str = CONSUMER,
    out: output.Format = output.OUTPUT,
) -> None:
    """Every quarantined event, oldest first, with why it was set aside."""
    found = connection.call(lambda m: m.quarantined(consumer))
    output.show([record(q) for q in found], COLUMNS, out, empty="No quarantined events.")


@app.command("retry")
@connected
def quarantine_retry(
    connection: Connection,
    ids: list[int] | None = IDS,
    every: bool = ALL,
    consumer: str = CONSUMER,
) -> None:
    """Try events again once their cause is fixed: a spec event goes back to its consumer's
    outbox, a status event to its status topic."""
    selection = _selection(ids, every, consumer)
    done = connection.call(lambda m: m.retry_quarantined(selection))
    console.print(
        f"{done.spec} spec event(s) back in the outbox, {done.status} status event(s) sent again"
        + (f"; {done.left} left (their consumer is gone: drop them)" if done.left else "")
    )


@app.command("drop")
@connected
def quarantine_drop(
    connection: Connection,
    ids: list[int] | None = IDS,
    every: bool = ALL,
    consumer: str = CONSUMER,
) -> None:
    """Forget events for good."""
    selection = _selection(ids, every, consumer)
    dropped = connection.call(lambda m: m.drop_quarantined(selection))
    console.print(f"{dropped} quarantined event(s) dropped")


def register(parent: typer.Typer) -> None:
    """Add the commands under ``parent`` (``fleetplane maestro``)."""
    parent.add_typer(app, name="quarantine")
