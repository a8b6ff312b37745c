"""Logging for every fleetplane process: structured, quiet by default; key=value lines for people
(``--log-format text``) or one JSON object a line for log collectors (``--log-format json``)."""

from __future__ import annotations

import enum
import logging

import structlog
import typer


class Format(enum.StrEnum):
    text = "text"
    json = "json"


LEVEL = typer.Option("warning", "--log-level", help="debug, info, warning or error.")
FORMAT = typer.Option(Format.text, "--log-format", help="text (key=value) or json (one object a line).")


def _renderer(fmt: Format) -> list[structlog.typing.Processor]:
    if fmt is Format.json:
        # A traceback as one string field: a collector keeps it with its record.
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "logger", "event"])]


def configure(level: str = "warning", fmt: Format = Format.text) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(fmt)],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso"),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
