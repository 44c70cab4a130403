"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from tests.support.cli import cli_env


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    """The CLI's environment: a fresh database and the test streams."""
    return cli_env(database_url)
