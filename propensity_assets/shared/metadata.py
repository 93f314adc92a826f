"""Small helpers for the metadata the Dagster UI shows."""

from __future__ import annotations

import base64
import io

import dagster as dg


def md_table(rows: list[dict], digits: int = 4) -> dg.MetadataValue:
    """A Markdown table from a list of dicts (floats rounded)."""
    if not rows:
        return dg.MetadataValue.md("(none)")
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in (row.get(c) for c in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def md_figure(fig, title: str = "") -> dg.MetadataValue:
    """A matplotlib figure inlined as a PNG in Markdown metadata (the UI renders it). Closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def mlflow_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    base = tracking_uri if tracking_uri.startswith("http") else "http://localhost:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
