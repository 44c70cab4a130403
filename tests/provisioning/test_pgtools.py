"""tenantry.pgtools: which pg_dump/pg_restore/psql runs, and the libpq environment it gets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import ClientProgramNotFound, ConfigurationError
from tenantry.pgtools import embedded_bin_dir, find_program, libpq_env


def fake(directory: Path, name: str, major: int) -> Path:
    """A program that answers ``--version`` like PostgreSQL's of version ``major``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {major}.1'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("TENANTRY_PG_DUMP", raising=False)
    monkeypatch.delenv("TENANTRY_PG_BIN", raising=False)
    return tmp_path


def test_explicit_then_pg_dump_variable_then_bin_directory(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = fake(clean / "explicit", "pg_dump", 30)
    variable = fake(clean / "variable", "pg_dump", 30)
    bin_dir = clean / "bin"
    in_bin = fake(bin_dir, "pg_dump", 30)
    restore = fake(bin_dir, "pg_restore", 30)
    monkeypatch.setenv("TENANTRY_PG_BIN", str(bin_dir))
    assert find_program("pg_dump", 30) == str(in_bin)
    assert find_program("pg_restore", 30) == str(restore)
    monkeypatch.setenv("TENANTRY_PG_DUMP", str(variable))
    assert find_program("pg_dump", 30) == str(variable)
    assert find_program("pg_restore", 30) == str(restore)  # TENANTRY_PG_DUMP: pg_dump only
    assert find_program("pg_dump", 30, explicit=explicit) == str(explicit)


def test_a_chosen_program_that_fails_is_an_error_not_a_fallback(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTRY_PG_DUMP", str(clean / "no-such-pg_dump"))
    with pytest.raises(ClientProgramNotFound, match=r"cannot run pg_dump .*TENANTRY_PG_DUMP"):
        find_program("pg_dump", 17)
    old = fake(clean / "old", "pg_dump", 12)
    with pytest.raises(ConfigurationError, match="is version 12; the server needs pg_dump >= 17"):
        find_program("pg_dump", 17, explicit=old)
    monkeypatch.setenv("TENANTRY_PG_BIN", str(clean / "old"))
    with pytest.raises(ClientProgramNotFound, match="TENANTRY_PG_BIN"):
        find_program("pg_restore", 17)  # not in that directory
    assert find_program("psql", 99, explicit=fake(clean / "p", "psql", 12))  # no version rule


def test_newest_usable_of_wheel_and_path(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = fake(clean / "path", "pg_dump", 99)
    monkeypatch.setenv("PATH", f"{clean / 'path'}{os.pathsep}{os.environ['PATH']}")
    assert find_program("pg_dump", 17) == str(newer)
    wheel = embedded_bin_dir()
    if wheel is not None:  # an older one on PATH: the wheel's wins
        fake(clean / "older", "pg_dump", 3)
        monkeypatch.setenv("PATH", str(clean / "older"))
        assert find_program("pg_dump", 17) == str(wheel / "pg_dump")
    with pytest.raises(ClientProgramNotFound, match=r"no pg_dump >= 999 found \(seen: "):
        find_program("pg_dump", 999)


def test_libpq_environment_is_the_urls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "ambient")
    monkeypatch.setenv("PGHOST", "elsewhere")
    url = sa.make_url(
        "postgresql+psycopg://bob:s3cret@db.example:5433/app"
        "?sslmode=verify-full&application_name=tenantry&connect_timeout=5"
    )
    env = libpq_env(url)
    assert env["PGHOST"] == "db.example" and env["PGPORT"] == "5433"
    assert env["PGUSER"] == "bob" and env["PGPASSWORD"] == "s3cret"
    assert env["PGDATABASE"] == "app" and env["PGSSLMODE"] == "verify-full"
    assert env["PGAPPNAME"] == "tenantry" and env["PGCONNECT_TIMEOUT"] == "5"
    assert env["PATH"] == os.environ["PATH"]  # the rest of the environment stays
    socket = libpq_env(sa.make_url("postgresql+psycopg://postgres@/postgres?host=/tmp/x"))
    assert socket["PGHOST"] == "/tmp/x" and "PGPASSWORD" not in socket
    several = libpq_env(
        sa.make_url("postgresql+psycopg://u@/db?host=a:5432&host=b:5433")
    )
    assert several["PGHOST"] == "a,b" and several["PGPORT"] == "5432,5433"


def test_a_bare_program_name_is_looked_up_on_path(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = fake(clean / "named", "pg_dump", 40)
    monkeypatch.setenv("PATH", f"{clean / 'named'}{os.pathsep}{os.environ['PATH']}")
    assert find_program("pg_dump", 17, explicit="pg_dump") == str(program)
