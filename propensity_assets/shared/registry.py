"""MLflow names and registry operations shared by every modelling stage (CONTRACTS §6)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # MLflow loads only when a run talks to the registry
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

from propensity_assets.shared import settings

CHAMPION = "champion"
CHALLENGER = "challenger"
# The registered-model prefixes: a model is registered as `<family>__<key>`.
MODEL_FAMILIES = ("propensity", "ltv", "incentive")


_KEY = re.compile(r"[a-z0-9_]+")


def model_name(family: str, key: str) -> str:
    """`propensity__<group>`, `ltv__<group>`, `incentive__<study>` (a retail study: `incentive__retail_<group>`)."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {MODEL_FAMILIES}")
    if not _KEY.fullmatch(key):
        raise ValueError(f"invalid product group or study key {key!r}: expected lowercase [a-z0-9_]+")
    return f"{family}__{key}"


def name_filter(name: str) -> str:
    """An MLflow search filter for one registered model; the name is checked first, so a
    key can never inject into the filter."""
    family, _, key = name.partition("__")
    return f"name='{model_name(family, key)}'"


class RegistryUnreachable(ConnectionError):
    """The MLflow tracking server does not answer; the message names its URI."""


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail within `timeout` seconds when an HTTP tracking server does not answer, instead of
    MLflow's minutes of silent retries. Any HTTP answer (even 401 or 404) counts as up."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RegistryUnreachable(
            f"MLflow tracking server {tracking_uri} is unreachable ({reason}); start it, or point "
            "MLFLOW_TRACKING_URI at a running server (unset: the local SQLite store under data/mlflow)"
        ) from None


# Columns of the MLflow SQLite store that hold absolute artifact paths or URIs.
_PATH_COLUMNS = {
    "experiments": ["artifact_location"],
    "runs": ["artifact_uri"],
    "logged_models": ["artifact_location"],
    "model_versions": ["source", "storage_location"],
}
STORE_MARKER = "store_location"


def relocate_store(db_path: str | Path) -> str | None:
    """Make a copied or moved local MLflow store point at its own artifacts.

    The SQLite database records every artifact location as an absolute path: a copy of
    data/ would read, and write, the original's artifacts. A marker beside the database
    records the directory it was last opened in; when the store has moved, every path
    under the old directory is rewritten to the new one (the old one is never touched).
    Returns the old directory when it rewrote, else None.
    """
    import sqlite3

    db_path = Path(db_path).resolve()
    here = str(db_path.parent)
    marker = db_path.parent / STORE_MARKER
    previous = marker.read_text().strip() if marker.exists() else None
    if previous == here or not db_path.exists():
        if previous != here:
            marker.write_text(here + "\n")
        return None
    moved = None
    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        if previous is None:
            # A store made before the marker existed: its experiments name the directory.
            found = db.execute("select artifact_location from experiments").fetchall() if "experiments" in tables else []
            for (location,) in found:
                path = str(location or "").removeprefix("file://")
                head, sep, _ = path.partition("/artifacts/")
                if sep and head != here and Path(head).name == db_path.parent.name:
                    previous = head
                    break
        if previous and previous != here:
            for old, new in ((Path(previous).as_uri(), Path(here).as_uri()), (previous, here)):
                for table, columns in _PATH_COLUMNS.items():
                    if table not in tables:
                        continue
                    for column in columns:
                        db.execute(
                            f"update {table} set {column} = ? || substr({column}, ?) "
                            f"where substr({column}, 1, ?) = ? and substr({column}, ?, 1) in ('/', '')",
                            (new, len(old) + 1, len(old), old, len(old) + 1),
                        )
            moved = previous
    marker.write_text(here + "\n")
    return moved


def default_tracking_uri() -> str:
    return settings.mlflow_tracking_uri() or f"sqlite:///{settings.data_dir() / 'mlflow' / 'mlflow.db'}"


def default_artifact_root() -> str:
    return (settings.data_dir() / "mlflow" / "artifacts").as_uri()


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None = None) -> str:
    """The experiment's id, creating it with artifacts under data/mlflow for a local store."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if artifact_root:
        location = f"{artifact_root.rstrip('/')}/{name}"
        if location.startswith("file:"):
            Path(location.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=location)


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


COMPLETE = "complete"  # the version tag registration writes last (`lifecycle.registration`)


def is_complete(mv: ModelVersion) -> bool:
    """Whether every tag and artifact of the version was written: a registration killed
    after the version was created leaves it without `complete`, and it must not be used."""
    return mv.tags.get(COMPLETE) == "true"


class PromotionRefused(ValueError):
    """A promotion that would make an incomplete or unvetted version champion, or that
    another promotion of the same model overtook; the message says which and why."""


def promote_point(step: str, name: str, version: str) -> None:
    """A named step of `promote` (`read`: the champion it replaces is read; `locked`: the
    model's promotion lock is held). A no-op: the concurrency tests replace it to line two
    promotions up at these steps."""


def _lock_path(client: MlflowClient, name: str) -> Path:
    """The lock file of `name`'s promotions: beside a local SQLite store, else under data/mlflow
    (a remote server is then serialized per machine only)."""
    uri = str(getattr(client, "_registry_uri", "") or "")
    root = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else settings.data_dir() / "mlflow"
    return root / "locks" / f"{name}.promote.lock"


class _PromotionLock:
    def __init__(self, path: Path, timeout_s: float = 120.0):
        self.path, self.timeout_s, self.fd = path, timeout_s, None

    def __enter__(self):
        import fcntl
        import os
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise TimeoutError(f"another promotion holds {self.path} for over {self.timeout_s:.0f} s") from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        import os

        os.close(self.fd)  # closing releases the flock


def refusal(mv: ModelVersion, name: str, *, require_vetted: bool) -> str | None:
    """Why `mv` may not become champion, or None."""
    if not is_complete(mv):
        return (f"{name} version {mv.version} is incomplete: its registration stopped before all its tags and "
                f"artifacts were written (no `{COMPLETE}` tag, e.g. a killed training run); train it again")
    if require_vetted and "vetting.decision" not in mv.tags:
        return (f"{name} version {mv.version} has not been vetted (no vetting.decision tag): materialize its champion "
                f"partition (cutoff {mv.tags.get('cutoff', '?')}) first")
    return None


def promote(client: MlflowClient, name: str, version: str | int, reason: str, by: str = "manual", *,
            force: bool = False, require_vetted: bool = False) -> ModelVersion:
    """Move `champion` to `version`, recording who and why on the version's tags; `challenger`
    leaves the version when it was there.

    Refused (`PromotionRefused`) for an incomplete version, or an unvetted one when
    `require_vetted`, unless `force`. Promotions of one model hold a lock in turn; one
    that finds the champion moved while it waited refuses instead of silently replacing
    the version the other one just promoted."""
    mv = client.get_model_version(name, str(version))  # raises for an unknown version
    problem = None if force else refusal(mv, name, require_vetted=require_vetted)
    if problem:
        raise PromotionRefused(f"not promoted: {problem}; --force promotes it anyway")
    seen = version_by_alias(client, name, CHAMPION)
    promote_point("read", name, str(version))
    with _PromotionLock(_lock_path(client, name)):
        promote_point("locked", name, str(version))
        previous = version_by_alias(client, name, CHAMPION)
        if previous is not None and (seen is None or str(seen.version) != str(previous.version)):
            raise PromotionRefused(
                f"{name}: not promoted to version {version}: version {previous.version} became champion while this "
                f"promotion waited (by {previous.tags.get('promotion.by', '?')}: "
                f"{previous.tags.get('promotion.reason', '?')}); run it again to replace version {previous.version}"
            )
        client.set_registered_model_alias(name, CHAMPION, str(version))
        # A champion is no longer a challenger: the alias leaves the version it promoted.
        challenger = version_by_alias(client, name, CHALLENGER)
        if challenger is not None and str(challenger.version) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER)
        client.set_model_version_tag(name, str(version), "promotion.by", by)
        client.set_model_version_tag(name, str(version), "promotion.reason", reason)
        if previous is not None and previous.version != mv.version:
            client.set_model_version_tag(name, str(version), "promotion.replaced_version", previous.version)
    return client.get_model_version(name, str(version))
