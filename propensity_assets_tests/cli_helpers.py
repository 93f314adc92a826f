"""Helpers for tests that drive the CLI against a temp DAGSTER_HOME."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


@contextmanager
def instance_at(home: Path):
    """The persistent instance the CLI used (its dagster.yaml reads DAGSTER_HOME)."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
