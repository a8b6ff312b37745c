"""A database failure is `Unavailable` to a caller (send the call again) and names no address."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from maestro.api import errors
from maestro.storage import pool


def test_a_database_away_or_a_pool_timeout_is_unavailable_without_the_drivers_text() -> None:
    for failure in (
        psycopg.OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
    ):
        away = pool.unavailable(failure)
        assert isinstance(away, errors.Unavailable)
        assert "127.0.0.1" not in str(away) and "30.00" not in str(away)
        assert str(away) == (
            f"the database could not serve the call now ({type(failure).__name__}) (send the call again)"
        )


def test_other_errors_are_not_the_database_being_away() -> None:
    assert pool.unavailable(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert pool.unavailable(ValueError("bad")) is None
