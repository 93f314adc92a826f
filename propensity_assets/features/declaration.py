"""Every feature, declared once: its name, the entity it describes, where it is stored or
derived, and how.

The way a Feast feature view declares a table's features and a feature service declares
what one model reads:

- `HOUSEHOLD` and `GROUP` are the feature views: the lake tables `household_features`
  and `group_features` (CONTRACTS §4 columns plus the project's own), in the order the
  tables store them. `features.logic` computes them in Spark.
- `GROUP_RATIOS` and `ltv_derived` are derived on the model side, from one group's
  joined household and group rows: the ratios by `features.lookup.with_ratios` (for
  training and scoring alike), the LTV rates by `ltv.features.derived_features`.
- `PROPENSITY` and `LTV_SUBSETS` are the feature services: the columns each model reads,
  in the order it reads them.

Plain Python: no Dagster, no Spark, no pandas. The registered models import it to find
their columns, and must load in a bare virtualenv.
"""

from __future__ import annotations

from dataclasses import dataclass

from propensity_assets.shared import tables

# The as-of and entity keys of one row of a training or scoring frame.
KEYS = ["as_of", "household_id"]

# Windows of W days at as_of d: d − W ≤ day < d (CONTRACTS §4).
CONTRACT_WINDOWS = (30, 90, 365)
# Short windows beyond the contract: a 30-day purchase horizon is best predicted by the
# last week or two.
WINDOWS = (7, 14, *CONTRACT_WINDOWS)
# What each window sums, per entity: distinct baskets, sales_value, quantity, distinct days.
METRICS = ("baskets", "spend", "units", "days")
# The entity prefixes of the two views' columns.
HH, GRP = "hh", "grp"


@dataclass(frozen=True)
class Feature:
    name: str
    entity: str  # household | household × product group
    source: str  # the lake table that stores it, or the function that derives it
    how: str
    window: int | None = None  # days, for a windowed feature
    contract: bool = False  # a column CONTRACTS §4 requires, with exactly this name and meaning


@dataclass(frozen=True)
class FeatureView:
    """A lake table of features: its keys and its feature columns, in stored order."""

    table: str
    keys: tuple[str, ...]
    features: tuple[Feature, ...]

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def contract_columns(self) -> list[str]:
        return [f.name for f in self.features if f.contract]


@dataclass(frozen=True)
class FeatureService:
    """The columns one model reads (`columns`, in that order) and the lake columns it needs
    to derive them (`inputs`)."""

    name: str
    inputs: tuple[str, ...]
    columns: tuple[str, ...]

    def require(self, frame_columns) -> list[str]:
        """`columns`, after checking a frame has them all (ValueError naming the missing ones)."""
        missing = [c for c in self.columns if c not in set(frame_columns)]
        if missing:
            raise ValueError(
                f"{self.name} features: the frame lacks {missing}; expected every column of features.declaration "
                f"({len(self.columns)} columns)"
            )
        return list(self.columns)


_WINDOW_MEANING = {
    "baskets": "distinct basket_id",
    "spend": "sum of sales_value",
    "units": "sum of quantity",
    "days": "distinct days",
}


def windowed(prefix: str, metric: str, window: int) -> str:
    """The name of a window sum: `<hh|grp>_<metric>_<W>d`."""
    return f"{prefix}_{metric}_{window}d"


def _stored(prefix: str, entity: str, table: str) -> tuple[Feature, ...]:
    out = [
        Feature(windowed(prefix, m, w), entity, table, f"{_WINDOW_MEANING[m]} over the last {w} days", w,
                w in CONTRACT_WINDOWS)
        for w in WINDOWS
        for m in METRICS
    ]
    never = "; null when the household never bought in the group before d" if prefix == GRP else ""
    out.append(Feature(f"{prefix}_days_since_last", entity, table,
                       f"d − the last day before d, in whole days (≥ 1){never}", contract=True))
    out.append(Feature(f"{prefix}_days_since_first", entity, table, f"d − the first day before d, in whole days{never}"))
    return tuple(out)


def spend_share(window: int) -> str:
    return f"grp_spend_share_{window}d"


HOUSEHOLD = FeatureView(
    table=tables.HOUSEHOLD_FEATURES,
    keys=("as_of", "household_id"),
    features=_stored(HH, "household", tables.HOUSEHOLD_FEATURES),
)

GROUP = FeatureView(
    table=tables.GROUP_FEATURES,
    keys=("as_of", "product_group", "household_id"),
    features=(
        *_stored(GRP, "household × product group", tables.GROUP_FEATURES),
        *(
            Feature(spend_share(w), "household × product group", tables.GROUP_FEATURES,
                    f"grp_spend_{w}d / hh_spend_{w}d; 0 when hh_spend_{w}d is 0", w, w in CONTRACT_WINDOWS)
            for w in WINDOWS
        ),
    ),
)

# Every stored feature column, household then group: what the lake lookups return.
STORED = (*HOUSEHOLD.columns, *GROUP.columns)


# -- derived from one group's joined row: the ratios (`features.lookup.with_ratios`) ------------

RATIO_WINDOWS = CONTRACT_WINDOWS
_RATIOS = "features.lookup.with_ratios"


def basket_share(window: int) -> str:
    return f"grp_basket_share_{window}d"


def day_share(window: int) -> str:
    return f"grp_day_share_{window}d"


# How overdue the household is against its usual gap between group purchase days over
# the last year (365 / grp_days_365d). Unknown (null) when it never bought in the group or
# had no purchase day in the year. LTV's `grp_overdue` is another feature (see `ltv_derived`).
OVERDUE_VS_YEARLY_GAP = "grp_overdue_ratio"

GROUP_RATIOS = (
    *(
        feature
        for w in RATIO_WINDOWS
        for feature in (
            Feature(basket_share(w), "household × product group", _RATIOS,
                    f"grp_baskets_{w}d / hh_baskets_{w}d; 0 when hh_baskets_{w}d is 0", w),
            Feature(day_share(w), "household × product group", _RATIOS,
                    f"grp_days_{w}d / hh_days_{w}d; 0 when hh_days_{w}d is 0", w),
        )
    ),
    Feature(OVERDUE_VS_YEARLY_GAP, "household × product group", _RATIOS,
            "grp_days_since_last / (365 / grp_days_365d); null when either is unknown or grp_days_365d is 0"),
)


# -- derived for LTV (`ltv.features.derived_features`) ------------------------------------------

_LTV = "ltv.features.derived_features"
# The windows whose trend (recent rate against the next longer one) is a feature.
TREND_WINDOWS = tuple(w for w in WINDOWS if w >= 30)
# The windows whose raw sums keep their meaning however long a household's history is.
SHORT_WINDOWS = tuple(w for w in WINDOWS if w <= 30)


def ltv_derived(prefix: str) -> tuple[Feature, ...]:
    """LTV's derived features of one entity prefix (hh or grp), in the design matrix's order.

    Rates are per day actually observed in the window, min(W, hh_days_since_first), scaled
    to the horizon H, so they mean the same at every as_of.
    """
    entity = "household" if prefix == HH else "household × product group"
    longest = WINDOWS[-1]
    out = []
    for w in WINDOWS:
        out.append(Feature(f"{prefix}_spend_rate_{w}d", entity, _LTV, f"{prefix}_spend_{w}d × H / observed days", w))
        out.append(Feature(f"{prefix}_days_rate_{w}d", entity, _LTV, f"{prefix}_days_{w}d × H / observed days", w))
    out.append(Feature(f"{prefix}_spend_per_day", entity, _LTV,
                       f"{prefix}_spend_{longest}d / {prefix}_days_{longest}d; 0 without a day"))
    out.append(Feature(f"{prefix}_spend_per_basket", entity, _LTV,
                       f"{prefix}_spend_{longest}d / {prefix}_baskets_{longest}d; 0 without a basket"))
    for short, long in zip(TREND_WINDOWS, TREND_WINDOWS[1:]):
        out.append(Feature(f"{prefix}_trend_{short}_{long}d", entity, _LTV,
                           f"log1p(spend rate {short}d) − log1p(spend rate {long}d): 0 means steady"))
    out.append(Feature(f"{prefix}_recency", entity, _LTV, f"{prefix}_days_since_last; never bought: 730"))
    # Against the usual gap over the days observed in the longest window, unlike the
    # propensity ratio's fixed year: a household seen for 45 days has a 45-day year.
    out.append(Feature(f"{prefix}_overdue", entity, _LTV,
                       f"{prefix}_days_since_last / (min({longest}, observed days) / {prefix}_days_{longest}d); "
                       "never bought or no day: 730"))
    if prefix == GRP:
        out.append(Feature("grp_never_bought", entity, _LTV, "1 when grp_days_since_last is null, else 0"))
        out.append(Feature("grp_tenure", entity, _LTV, "grp_days_since_first; 0 when never bought"))
    return tuple(out)


def _names(features) -> tuple[str, ...]:
    return tuple(f.name for f in features)


# -- feature services ----------------------------------------------------------------------------

# Propensity reads every stored column and the ratios.
PROPENSITY = FeatureService("propensity", STORED, (*STORED, *_names(GROUP_RATIOS)))


def _ltv_subsets() -> dict[str, FeatureService]:
    hh_derived, grp_derived = _names(ltv_derived(HH)), _names(ltv_derived(GRP))
    derived = (*hh_derived, *grp_derived)
    hh = tuple(HOUSEHOLD.columns)
    shares = tuple(spend_share(w) for w in WINDOWS)
    short = tuple(
        f.name for f in (*HOUSEHOLD.features, *GROUP.features) if f.window in SHORT_WINDOWS and f.name not in shares
    )
    return {
        "all": FeatureService("ltv all", STORED, (*STORED, *derived)),
        # Leaves out the raw long-window sums and tenure, which change meaning with the
        # length of a household's history.
        "rates": FeatureService("ltv rates", STORED, (*short, *(c for c in derived if c != "grp_tenure"), *shares)),
        "household": FeatureService("ltv household", hh, (*hh, *hh_derived)),
        "group": FeatureService("ltv group", STORED, (*GROUP.columns, *grp_derived)),
        # The CONTRACTS §4 columns (and the project's stored ones) alone: the yardstick for
        # the derived ones.
        "lake": FeatureService("ltv lake", STORED, STORED),
    }


# The LTV search's named feature subsets (`LtvSearchSpace.feature_subsets`).
LTV_SUBSETS = _ltv_subsets()
