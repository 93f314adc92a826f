"""Retries only for what can succeed on retry.

Preemptible machines lose executors, connections and object-store requests, and a step
that failed that way usually passes when run again a little later: those errors are
*transient*, and the Spark and training assets retry them (`SPARK_AND_TRAINING`). A
corrupt or truncated Parquet file, a stray file in a partition directory, a full disk
or bad input fail the same way every time: those are *permanent*, and
`permanent_errors_fail_at_once` turns them into `dg.Failure(..., allow_retries=False)`
with their message, naming the asset and the run's partitions, instead of costing
minutes of backoff before the same error. An error neither list knows is retried, as
before: it may be infrastructure we did not foresee.

Every failure the project raises for bad input or state (`dg.Failure(...,
allow_retries=False)`: stale data, an empty range, an unreachable registry, a group
without labels) already fails at once. A run whose process was killed is not a step
failure: run monitoring marks it failed and the instance's run retries (`run_retries`
in dagster.yaml) launch it again.
"""

from __future__ import annotations

import errno
import functools
import inspect

import dagster as dg

TRANSIENT, PERMANENT, UNKNOWN = "transient", "permanent", "unknown"

# 30 s, then 60 s: long enough for a restarted executor or a throttled store, short
# enough that a nightly run still finishes in its window.
SPARK_AND_TRAINING = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Checked first: a failed read *caused by* a reset connection to the object store is transient.
TRANSIENT_TYPES = (ConnectionError, TimeoutError)  # reset, refused, aborted, broken pipe; socket timeouts
TRANSIENT_TYPE_NAMES = {"Py4JNetworkError", "RetriesExceeded"}
TRANSIENT_MARKERS = (
    "ExecutorLostFailure", "Lost executor", "executor lost", "decommission", "preempt",
    "Connection reset", "Connection refused", "Connection aborted", "Broken pipe",
    "SocketTimeoutException", "TimeoutException", "timed out", "StatusCode.UNAVAILABLE", "UNAVAILABLE:",
    "SPARK_CONNECT_UNAVAILABLE", "Service Unavailable", "SlowDown",
)
PERMANENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
PERMANENT_TYPE_NAMES = {"ArrowInvalid", "ArrowTypeError", "ArrowNotImplementedError", "ArrowCapacityError"}
PERMANENT_MARKERS = (
    "FAILED_READ_FILE", "CANNOT_READ_FILE_FOOTER", "is not a Parquet file", "Parquet magic bytes not found",
    "PARQUET_COLUMN_DATA_TYPE_MISMATCH", "No space left on device", "Disk quota exceeded", "Read-only file system",
)
# Python's own errors of a value, a key or a type are deterministic: the same input gives them again.
PERMANENT_TYPES = (ValueError, LookupError, TypeError, ArithmeticError, AssertionError, NotImplementedError)


def _chain(exc: BaseException):
    """`exc`, then what caused it (`raise ... from`) or was being handled, outermost first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _one(exc: BaseException) -> str:
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in PERMANENT_ERRNOS:
        return PERMANENT
    if isinstance(exc, TRANSIENT_TYPES) or names & TRANSIENT_TYPE_NAMES or any(m in text for m in TRANSIENT_MARKERS):
        return TRANSIENT
    if names & PERMANENT_TYPE_NAMES or any(m in text for m in PERMANENT_MARKERS) or isinstance(exc, PERMANENT_TYPES):
        return PERMANENT
    return UNKNOWN


def classify(exc: BaseException) -> str:
    """TRANSIENT, PERMANENT or UNKNOWN: the first decisive verdict along the exception's chain,
    outermost first (a wrapper's message, e.g. Spark's, carries its causes' text too)."""
    for link in _chain(exc):
        verdict = _one(link)
        if verdict != UNKNOWN:
            return verdict
    return UNKNOWN


def short_message(exc: BaseException) -> str:
    """`Type: message` without a JVM stack trace (py4j's message holds the whole of it)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith(("at ", "...", "JVM stacktrace"))][:4]
    return f"{type(exc).__name__}: " + " ".join(kept)


def _where(args, kwargs) -> str:
    """The asset and the run's partitions, from the body's context argument."""
    context = next((a for a in [*args, *kwargs.values()] if hasattr(a, "has_partition_key") and hasattr(a, "asset_key")), None)
    if context is None:
        return "step"
    try:
        name = context.asset_key.to_user_string()
    except Exception:  # a multi-asset has no single key
        name = context.op_def.name
    if context.has_partition_key:
        return f"{name} (partition {context.partition_key})"
    if getattr(context, "has_partition_key_range", False):
        r = context.partition_key_range
        return f"{name} (partitions {r.start} .. {r.end})"
    return name


def _refuse_permanent(exc: Exception, args, kwargs) -> None:
    if isinstance(exc, dg.Failure) or classify(exc) != PERMANENT:
        return
    raise dg.Failure(
        f"{_where(args, kwargs)}: {short_message(exc)} (a permanent error: not retried, a retry would fail the same way)",
        allow_retries=False,
    ) from exc


def permanent_errors_fail_at_once(fn):
    """Wrap an asset body so that a permanent error fails the step at once
    (`dg.Failure(allow_retries=False)`) and every other error is raised as it was."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_body(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                _refuse_permanent(exc, args, kwargs)
                raise
        return generator_body

    @functools.wraps(fn)
    def body(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            _refuse_permanent(exc, args, kwargs)
            raise
    return body


def retried_asset(**asset_kwargs):
    """`dg.asset` for a Spark or training step: transient errors retried by SPARK_AND_TRAINING,
    permanent ones failing at once."""
    def decorate(fn):
        return dg.asset(retry_policy=SPARK_AND_TRAINING, **asset_kwargs)(permanent_errors_fail_at_once(fn))
    return decorate
