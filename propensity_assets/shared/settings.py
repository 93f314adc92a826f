"""Deployment knobs: the only module that reads the environment.

Every knob has a default that runs on the embedded Complete Journey data with
nothing set. Each is a function, called when a command or run needs the value, so
a changed or wrong variable shows in the run that uses it. Model choices that a
run may make (the training row budget and threads, auto-promotion, the scores'
population-drop tolerance) are launchpad Config fields whose default, None, is
the deployment's variable: those functions take the run's choice as `chosen`.
(`propensity_assets_tests/shared/test_settings.py` fails on a read elsewhere.)
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Directory for config and generated state (lake, MLflow, Dagster)."""
    return Path(os.environ.get("PROPENSITY_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def dagster_home() -> Path:
    """The Dagster instance's directory: DAGSTER_HOME, else data/dagster_home."""
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home")


def configured_lake_uri() -> str | None:
    """PROPENSITY_LAKE_URI as set, unchecked; None when unset. A registered model reads
    its features from it, else from the lake it was trained on."""
    return os.environ.get("PROPENSITY_LAKE_URI") or None


def lake_uri() -> str:
    """Root of the lake: an absolute local path (see `lake_root` for what is accepted)."""
    return lake_root(configured_lake_uri() or str(data_dir() / "lake"), "PROPENSITY_LAKE_URI")


def lake_staging_grace_s() -> float:
    """Un-journaled lake staging older than this many seconds belongs to a killed writer
    and is deleted (PROPENSITY_LAKE_STAGING_GRACE_S, default a day): longer than any
    write takes to stage."""
    return _seconds("PROPENSITY_LAKE_STAGING_GRACE_S", 24 * 3600)


def lake_lock_timeout_s() -> float:
    """How long a lake commit waits for another writer's lock on the same table
    (PROPENSITY_LAKE_LOCK_TIMEOUT_S, default 600)."""
    return _seconds("PROPENSITY_LAKE_LOCK_TIMEOUT_S", 600)


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds ≥ 0, e.g. {default:g}")
    return value


def product_groups_file() -> Path:
    return Path(os.environ.get("PROPENSITY_PRODUCT_GROUPS", data_dir() / "product_groups.yaml"))


def incentive_studies_file() -> Path:
    return Path(os.environ.get("PROPENSITY_INCENTIVE_STUDIES", data_dir() / "incentive_studies.yaml"))


def source_dir() -> str | None:
    """A directory of Parquet/CSV files in the canonical schema; None means the embedded data."""
    return os.environ.get("PROPENSITY_SOURCE_DIR") or None


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use; the message names it
    and says what was expected."""


class LakeLocationError(SettingsError):
    """The lake root is not on a POSIX filesystem; refused before anything is written."""


# Two or more letters: a URI scheme, not a Windows drive letter.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
LAKE_SUPPORTED = (
    "The lake must be a local or mounted POSIX filesystem path (e.g. /srv/lake or file:///srv/lake) that the "
    "driver and every Spark executor see at the same path: its crash-safe commit locks a table with flock and "
    "swaps partition directories by rename, which object stores (s3://, s3a://, gs://, abfss://) cannot do "
    "atomically and which the lake implements for POSIX filesystems only (not hdfs://)."
)


def lake_root(uri: str, name: str) -> str:
    """The lake root as an absolute local path: a plain path (relative ones resolved against
    the working directory, so executors get the same absolute path) or a file: URI on this
    machine. Any other scheme raises LakeLocationError naming `name`, the URI and what is
    supported: object stores rename directories by copying, so a commit there could leave
    a partition half old, half new."""
    raw = uri.strip()
    scheme = _SCHEME.match(raw)
    if scheme and scheme.group(1).lower() == "file":
        parts = urllib.parse.urlsplit(raw)
        if parts.netloc not in ("", "localhost"):
            raise LakeLocationError(
                f"{name}={uri!r}: a file: URI must name a path on this machine, not on host {parts.netloc!r}. "
                + LAKE_SUPPORTED
            )
        raw = urllib.parse.unquote(parts.path)
    elif scheme:
        raise LakeLocationError(f"{name}={uri!r}: scheme {scheme.group(1)}:// is not supported. " + LAKE_SUPPORTED)
    if not raw:
        raise LakeLocationError(f"{name}={uri!r}: empty. " + LAKE_SUPPORTED)
    return os.path.abspath(os.path.expanduser(raw))


def _date(name: str, default: str, meaning: str) -> str:
    raw = os.environ.get(name) or default
    try:
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a date YYYY-MM-DD ({meaning}), e.g. {default}") from None


def as_of_start() -> str:
    return _date("PROPENSITY_AS_OF_START", "2017-01-01", "the first as_of partition")


LIVE = "live"


def as_of_end() -> str | None:
    """Exclusive end of the as_of partitions (the embedded data ends on 2018-01-01), or
    None for `live`: the partitions run up to today, today included, so that a live
    deployment scores today's as_of on the morning of that day (days are UTC)."""
    raw = os.environ.get("PROPENSITY_AS_OF_END") or "2018-01-02"
    if raw.strip().lower() == LIVE:
        return None
    meaning = f"the exclusive end of the as_of partitions, or {LIVE!r} for partitions up to today"
    end = _date("PROPENSITY_AS_OF_END", "2018-01-02", meaning)
    start = as_of_start()
    if end <= start:
        raise SettingsError(
            f"PROPENSITY_AS_OF_END={end}: expected a date after PROPENSITY_AS_OF_START={start} "
            "(the end is exclusive: the last as_of partition is the day before it)"
        )
    return end


def training_start() -> str:
    """First weekly training cutoff (a Friday): enough history for a year-long window is not
    required, but the first snapshots need some population."""
    return _date("PROPENSITY_TRAINING_START", "2017-04-07", "the first weekly training cutoff")


def configured_today() -> str | None:
    """PROPENSITY_TODAY (YYYY-MM-DD), the "today" of schedules and sensors when set; None
    means the real date (`partitions.today` decides). The embedded data ends on
    2018-01-01, so the demo sets it."""
    return os.environ.get("PROPENSITY_TODAY") or None


def ltv_horizon_days() -> int:
    """H, the LTV horizon in days (CONTRACTS §8): 90 by default; 365 with longer history.
    It must be one of the feature windows (7, 14, 30, 90, 365), for the previous-H-days baseline.

    A deployment setting, not a run's choice: H defines what the `ltv_labels` table holds,
    the as_of its daily schedule computes (today − H), the snapshots a model trains and
    is vetted on, and the horizon_days of every scores row. A run choosing another H
    would train on labels of one horizon and vet or score as if they were of another."""
    raw = os.environ.get("PROPENSITY_LTV_HORIZON_DAYS", "90")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"PROPENSITY_LTV_HORIZON_DAYS: expected a whole number of days, got {raw!r}") from None
    if value not in (7, 14, 30, 90, 365):
        raise ValueError(f"PROPENSITY_LTV_HORIZON_DAYS: expected one of 7, 14, 30, 90, 365 (a feature window), got {value}")
    return value


def population_drop_tolerance(chosen: float | None = None) -> float:
    """The largest fall of a features partition's population from the previous as_of that
    the `population` check accepts, as a fraction: `chosen` (a run's Config field
    `population_drop_tolerance`), else PROPENSITY_POPULATION_DROP_TOLERANCE, default 0.02."""
    if chosen is not None:
        name, raw, value = "population_drop_tolerance", chosen, float(chosen)
    else:
        name, raw = "PROPENSITY_POPULATION_DROP_TOLERANCE", os.environ.get("PROPENSITY_POPULATION_DROP_TOLERANCE", "0.02")
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name}={raw!r}: expected a fraction between 0 and 1, e.g. 0.02")
    return value


DEFAULT_TRAINING_THREADS = 2


def _whole_number(field: str, chosen: int | None, variable: str, default: int, unit: str) -> int:
    """`chosen` (a run's Config field `field`) if not None, else the environment variable
    `variable` (default `default`): a whole number ≥ 1, or a SettingsError naming
    whichever of the two was read."""
    name, raw = (field, chosen) if chosen is not None else (variable, os.environ.get(variable, str(default)))
    try:
        value = int(str(raw).replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name}={raw!r}: expected a whole number of {unit} ≥ 1, e.g. {default}")
    return value


def training_max_rows(chosen: int | None = None) -> int:
    """The most training rows (household × weekly snapshot) a model's training frame may
    bring to the driver: `chosen` (the training Config's `max_training_rows`), else
    PROPENSITY_TRAINING_MAX_ROWS, default 1,000,000 (56 float64 features, about 0.45 GB).
    Above it, training samples households, stratified by label, and says so. The embedded
    data's largest training set is far below the default, so its results do not change:
    71,815 rows (propensity at the 2017-12-01 cutoff, 30 snapshots; 2,469 households × 30
    = 74,070 at most)."""
    return _whole_number("max_training_rows", chosen, "PROPENSITY_TRAINING_MAX_ROWS", 1000000, "rows")


def training_threads(chosen: int | None = None) -> int:
    """Threads of each model fit (LightGBM, random forests, scikit-learn boosting): `chosen`
    (the training Config's `training_threads`), else PROPENSITY_TRAINING_THREADS, default
    2, the cores of the laptop this project targets. Two trainings side by side on 2 cores
    fit on 1 thread each (`make demo`): LightGBM's threads wait for each other actively, so
    two 2-thread fits on 2 cores slow each other down many times, while 1-thread fits only
    halve."""
    return _whole_number("training_threads", chosen, "PROPENSITY_TRAINING_THREADS", DEFAULT_TRAINING_THREADS, "threads")


def auto_promote(chosen: bool | None = None) -> bool:
    """Promote a vetted challenger to champion automatically: `chosen` (the vetting Config's
    `auto_promote`), else PROPENSITY_AUTO_PROMOTE (on in the demo, off by default)."""
    if chosen is not None:
        return chosen
    return os.environ.get("PROPENSITY_AUTO_PROMOTE", "false").lower() in ("1", "true", "yes")


def rescore_lookback_days() -> int:
    """On promotion, rescore the latest as_of and this many earlier dates. A sensor's
    setting: sensors have no launchpad."""
    return int(os.environ.get("PROPENSITY_RESCORE_LOOKBACK_DAYS", "0"))


def mlflow_tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI as set; None means the SQLite store under data/mlflow."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def java_home() -> str | None:
    """JAVA_HOME as set: the JDK the launched Spark servers run on (else `java` on PATH)."""
    return os.environ.get("JAVA_HOME") or None


def debug() -> bool:
    """PROPENSITY_DEBUG: the CLI shows tracebacks of errors it would report in one line."""
    return bool(os.environ.get("PROPENSITY_DEBUG"))


def spark_remote() -> str:
    """A Spark Connect server (`sc://host:port[/;param=value]`, SPARK_REMOTE): every Spark
    asset then runs on a session of that server (a warm JVM, Databricks Connect, a managed
    Spark service) instead of starting its own. Empty: a classic session (SPARK_MASTER).
    Checked when a run starts (`check_spark_remote`), not when the definitions load."""
    return os.environ.get("SPARK_REMOTE", "").strip()


def check_spark_remote(url: str, name: str) -> str:
    """`url` if it is a Spark Connect URL (sc://host[:port][/;key=value...]); else a
    SettingsError naming `name` and the URL. `local` URLs are refused: they start a private
    server per process, the JVM start SPARK_REMOTE is meant to avoid."""
    parts = urllib.parse.urlsplit(url.strip())
    problem = None
    if parts.scheme != "sc":
        problem = f"scheme {parts.scheme + '://' if parts.scheme else '(none)'} is not sc://"
    elif not parts.hostname:
        problem = "no host"
    else:
        try:
            parts.port
        except ValueError:
            problem = f"port {parts.netloc.rpartition(':')[2]!r} is not a number"
        else:
            if parts.path not in ("", "/") and not parts.path.startswith("/;"):
                problem = f"{parts.path!r} after the host is not a list of ;key=value parameters"
    if problem:
        raise SettingsError(
            f"{name}={url!r}: {problem}. Expected a Spark Connect URL sc://host[:port][/;key=value...], "
            "e.g. sc://127.0.0.1:15002 (what `make spark-connect` prints)"
        )
    return url.strip()


# A remote session shares its server's JVM: only runtime SQL conf is per session. The rest
# (spark.master, driver and executor memory, the UI, the app name) is the server's own.
REMOTE_CONF_PREFIX = "spark.sql."


def remote_spark_conf(conf: dict[str, str]) -> dict[str, str]:
    """The part of `conf` a Spark Connect session can set: runtime SQL conf (spark.sql.*)."""
    return {k: v for k, v in conf.items() if k.startswith(REMOTE_CONF_PREFIX)}


def spark_conf() -> dict[str, str]:
    """Spark conf: local defaults, then SPARK_MASTER, then PROPENSITY_SPARK_CONF (k=v,k=v)."""
    conf = {
        "spark.master": os.environ.get("SPARK_MASTER", "local[*]"),
        "spark.app.name": "propensity_assets",
        # The contract's day is the stored date part of naive timestamps: never shift them.
        "spark.sql.session.timeZone": "UTC",
        # In local mode the driver's heap is every executor's too. The JVM grows its heap to
        # whatever it is allowed: a year of group features on the embedded data ran in the same
        # time with 2g as with 4g and peaked 0.7 GiB lower (the memory benchmark, benchmarks/RESULTS.md).
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY", "2g"),
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # Scoring runs the champion in Python workers on the executors (mapInPandas). PySpark
        # starts them at the path PYSPARK_PYTHON had when the driver made its context, else
        # `python3` from the worker's PATH, which on a cluster node (or outside an activated
        # virtualenv) is an interpreter without this project: the default is the driver's
        # own interpreter, which a cluster whose nodes share the driver's layout has at the
        # same path. Elsewhere set PYSPARK_PYTHON (or this key in PROPENSITY_SPARK_CONF) to
        # the executors' interpreter. `resources.SparkResource` applies it to the driver.
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON") or sys.executable,
    }
    extra = os.environ.get("PROPENSITY_SPARK_CONF", "")
    for item in filter(None, (part.strip() for part in extra.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(
                f"PROPENSITY_SPARK_CONF: expected key=value pairs separated by commas, got {item!r}"
            )
        conf[key.strip()] = value.strip()
    return conf
