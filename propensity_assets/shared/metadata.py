"""Small helpers for the metadata the Dagster UI shows.

Each partition of a partitioned asset carries its own figures (`each_partition`), as
numbers the Plots tab can draw (`numbers`), tables as Dagster tables (`table`) and, for a
lake table, its row count, column schema and location (`lake_partition`), even when one
run materializes many partitions (a single-run backfill).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.dataset as ds


def md_table(rows, digits: int = 4, *, floatfmt: str | None = None, align: dict[str, str] | None = None) -> dg.MetadataValue:
    """A Markdown table from a list of dicts or a DataFrame.

    Floats are shown with `digits` decimals, or with the format spec `floatfmt` (`",.1f"`);
    a missing float is an empty cell. `align` maps a column to `right` (or `left`,
    `center`) for columns a reader compares down, such as counts.
    """
    if isinstance(rows, pd.DataFrame):
        cols = [str(c) for c in rows.columns]
        records = [dict(zip(cols, values)) for values in rows.itertuples(index=False, name=None)]
    else:
        records = list(rows)
        cols = list(records[0]) if records else []
    if not records:
        return dg.MetadataValue.md("(none)")
    spec = floatfmt or f".{digits}f"
    marks = {"left": ":---|", "right": "---:|", "center": ":---:|"}

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else format(value, spec)
        return str(value)

    lines = ["| " + " | ".join(cols) + " |", "|" + "".join(marks.get((align or {}).get(c, ""), "---|") for c in cols)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in cols) + " |" for row in records]
    return dg.MetadataValue.md("\n".join(lines))


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes. Closes it (pyplot keeps open figures alive)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def md_png(png: bytes, title: str = "") -> dg.MetadataValue:
    """PNG bytes inlined in Markdown metadata (the UI renders it)."""
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def md_figure(fig, title: str = "") -> dg.MetadataValue:
    """A matplotlib figure inlined as a PNG in Markdown metadata (the UI renders it). Closes it."""
    return md_png(png_bytes(fig), title)


def md_image_file(path: str, title: str = "") -> dg.MetadataValue:
    """A PNG file inlined in Markdown metadata."""
    with open(path, "rb") as handle:
        encoded = base64.b64encode(handle.read()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def mlflow_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI (a local store's UI: `mlflow ui` on port 5000)."""
    base = tracking_uri if tracking_uri.startswith("http") else "http://localhost:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


# -- each partition's own metadata ------------------------------------------------------------


def _plain(value):
    """A metadata-friendly Python scalar (numpy scalars are not)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def numbers(values: Mapping[str, object], prefix: str = "") -> dict[str, dg.MetadataValue]:
    """`values` as numeric entries (`prefix` + name), the kind the Plots tab draws across
    partitions: ints as ints, the rest as floats (NaN stays NaN); non-numbers are left out."""
    out = {}
    for name, value in values.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            continue
        if isinstance(value, (int, np.integer)):
            out[f"{prefix}{name}"] = dg.MetadataValue.int(int(value))
        else:
            out[f"{prefix}{name}"] = dg.MetadataValue.float(float(value))
    return out


def table(frame: pd.DataFrame) -> dg.MetadataValue:
    """A DataFrame as a Dagster table with its schema (the UI sorts and shows it as a table)."""
    kinds = {"i": "int", "u": "int", "f": "float", "b": "bool"}
    schema = dg.TableSchema(columns=[
        dg.TableColumn(str(c), kinds.get(frame[c].dtype.kind, "string")) for c in frame.columns
    ])
    records = [dg.TableRecord({str(k): _plain(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    return dg.MetadataValue.table(records, schema=schema)


def lake_partition(lake, table_name: str, spec: Mapping[str, str]) -> dict[str, dg.MetadataValue]:
    """`dagster/row_count`, `dagster/column_schema` and `lake_location` of one partition of a
    lake table, read from its Parquet footers only (no data pages). The schema lists the
    file columns, then the Hive partition columns."""
    from propensity_assets.shared.lake import partition_dir

    path = f"{lake.uri(table_name)}/{partition_dir(spec)}"
    data = ds.dataset(path, format="parquet", ignore_prefixes=["_", "."])
    columns = [dg.TableColumn(f.name, str(f.type)) for f in data.schema if f.name not in spec]
    columns += [dg.TableColumn(key, "string", description="partition") for key in spec]
    return {
        "dagster/row_count": dg.MetadataValue.int(data.count_rows()),
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
        "lake_location": dg.MetadataValue.path(path),
    }


def each_partition(context, by_key: Mapping[str, Mapping], asset_key: str | None = None) -> None:
    """Give each partition key of the run its own metadata. Dagster copies a run's output
    metadata to every partition it materializes; these entries override it, key by key,
    on that partition's materialization (`add_asset_metadata(..., partition_key=)`).

    Dagster's `add_asset_metadata` recomputes the run's whole partition range, querying the
    instance for every dynamic partition, on each call: quadratic in a backfill's partitions
    (over ten minutes for the demo's 4,392 group-feature partitions). So the first key goes
    through it, with its checks, and the rest, checked here against the run's keys once, go
    to the same accumulator it writes."""
    keys = list(by_key)
    if not keys:
        return
    context.add_asset_metadata(dict(by_key[keys[0]]), asset_key=asset_key, partition_key=keys[0])
    targeted = set(context.partition_keys)
    stray = [k for k in keys if k not in targeted]
    if stray:
        raise ValueError(f"metadata for partition(s) {', '.join(stray[:5])} that this run does not target")
    step = context._step_execution_context  # noqa: SLF001, the accumulator add_asset_metadata writes
    key = dg.AssetKey.from_coercible(asset_key) if asset_key else step.assets_def.key
    for partition in keys[1:]:
        step._metadata_accumulator = step._metadata_accumulator.with_additional_asset_metadata(  # noqa: SLF001
            asset_key=key, metadata=dict(by_key[partition]), partition_key=partition)
