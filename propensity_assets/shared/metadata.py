"""Small helpers for the metadata the Dagster UI shows."""

from __future__ import annotations

import base64
import io
import math

import dagster as dg
import pandas as pd


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


def md_figure(fig, title: str = "") -> dg.MetadataValue:
    """A matplotlib figure inlined as a PNG in Markdown metadata (the UI renders it). Closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def md_image_file(path: str, title: str = "") -> dg.MetadataValue:
    """A PNG file inlined in Markdown metadata."""
    with open(path, "rb") as handle:
        encoded = base64.b64encode(handle.read()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def mlflow_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI (a local store's UI: `mlflow ui` on port 5000)."""
    base = tracking_uri if tracking_uri.startswith("http") else "http://localhost:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
