"""Helpers for tests that drive the CLI against a temp DAGSTER_HOME."""

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's console scripts: dagster, propensity-assets
MODULE = ["-m", "propensity_assets.definitions"]


@contextmanager
def instance_at(home: Path, **env: str):
    """The persistent instance the CLI used (its dagster.yaml reads DAGSTER_HOME, and any
    other variable in `env`, e.g. DAGSTER_PG_PASSWORD for a Postgres instance)."""
    settings = {"DAGSTER_HOME": str(home), **env}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
