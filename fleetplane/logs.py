"""Logging for every fleetplane process: structured (key=value), quiet by default."""

from __future__ import annotations

import logging

import structlog


def configure(level: str = "warning") -> None:
    renderer = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "logger", "event"])
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
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
