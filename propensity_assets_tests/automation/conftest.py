"""Keep this folder's MLflow stores from leaking into later tests.

`MlflowResource.client()` calls `mlflow.set_tracking_uri`/`set_registry_uri`, which set
process globals and, since MLflow 3, MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI in the
environment "so that subprocesses inherit them": a later test's CLI subprocess would
otherwise talk to a deleted temp store, or to the dead port of the unreachable test.
"""

import os

import mlflow
import pytest

NAMES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(scope="module", autouse=True)
def restore_mlflow_globals():
    saved = {name: os.environ.get(name) for name in NAMES}
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
