"""An audience from the lake: the group's profile columns at one as_of, the rule, and the
CSV export for campaign tools. The asset and the `audience` command both call `build`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from propensity_assets.audiences.rules import AudienceError, AudienceRule, select_audience
from propensity_assets.shared import tables
from propensity_assets.shared.files import replace_atomically
from propensity_assets.shared.lake import Lake


def read_profile(lake: Lake, as_of: str) -> pd.DataFrame:
    """The customer profile at `as_of`; AudienceError when the date is not one or has no profile."""
    try:
        date.fromisoformat(as_of)
    except ValueError:
        raise AudienceError(f"as_of {as_of!r} is not a date: expected YYYY-MM-DD") from None
    if not lake.exists(tables.CUSTOMER_PROFILE):
        raise AudienceError(lake.missing(tables.CUSTOMER_PROFILE))
    if not lake.exists(tables.CUSTOMER_PROFILE, {"as_of": as_of}):
        dates = lake.partitions(tables.CUSTOMER_PROFILE, "as_of")
        held = f"{dates[0]} .. {dates[-1]}, {len(dates)} date(s)" if dates else "none"
        raise AudienceError(
            f"{tables.CUSTOMER_PROFILE} has no partition as_of={as_of} at {lake.uri(tables.CUSTOMER_PROFILE)} "
            f"(it holds: {held}): score the product groups for {as_of}, then materialize customer_profile for it"
        )
    return lake.read_partition(tables.CUSTOMER_PROFILE, {"as_of": as_of})


def build(lake: Lake, as_of: str, group: str, rule: AudienceRule) -> pd.DataFrame:
    """The audience of `group` at `as_of` under `rule` (rules.COLUMNS)."""
    profile = read_profile(lake, as_of)
    return select_audience(profile, group, rule, where=f"{tables.CUSTOMER_PROFILE} as_of={as_of}")


def export_path(lake: Lake, as_of: str, group: str) -> Path:
    """Where campaign tools pick an audience up (CONTRACTS §5): beside the lake,
    `data/exports/audiences/<as_of>/<product_group>.csv` for the default lake data/lake."""
    return Path(lake.root).parent / "exports" / tables.AUDIENCES / as_of / f"{group}.csv"


def write_csv(audience: pd.DataFrame, path: str | Path) -> Path:
    """The audience as CSV at `path`, replaced whole (a tool never reads half a file)."""
    replace_atomically(path, lambda tmp: audience.to_csv(tmp, index=False))
    return Path(path)
