"""Training frames: point-in-time joins of lake features (`features.lookup`) and labels,
the training row budget, the snapshots a model sees and the selection split.

Pure pandas and pyarrow, no Spark, no Dagster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from propensity_assets.features.declaration import GROUP, HOUSEHOLD, KEYS
from propensity_assets.features.lookup import FeatureLookupError, feature_rows, missing_partitions
from propensity_assets.shared.lake import Lake


def _require_labelled(lake: Lake, group: str, dates: list[str], labels_table: str) -> None:
    missing = missing_partitions(lake, group, dates, labels_table)
    if missing:
        raise FeatureLookupError(
            f"product group {group!r}: the lake at {lake.root} lacks {len(missing)} partition(s), e.g. "
            f"{', '.join(missing[:4])}: backfill {HOUSEHOLD.table}, {GROUP.table} and {labels_table} for "
            f"{min(dates)}..{max(dates)} first (README, 'Materializing from the CLI')"
        )


def labelled_frame(
    lake: Lake, group: str, dates: list[str], labels_table: str, households: np.ndarray | None = None
) -> pd.DataFrame:
    """Features joined with labels at `dates` (the training and evaluation sets); with
    `households`, only their rows are read (pyarrow filters while scanning, so the rest
    never reaches memory)."""
    _require_labelled(lake, group, dates, labels_table)
    when = ds.field("as_of").isin(dates)
    if households is not None:
        when = when & ds.field("household_id").isin(pa.array(households, pa.int64()))
    frame = feature_rows(lake, group, when)
    labels = lake.read_pandas(labels_table, filters=when & (ds.field("product_group") == group))
    # An inner merge keeps the left frame's (sorted) order.
    return frame.merge(labels[["as_of", "household_id", "label"]], on=KEYS, how="inner", validate="one_to_one")


# -- a training set within the driver's budget --------------------------------------------

POSITIVE, ZERO = "positive", "zero"


@dataclass(frozen=True)
class TrainingSample:
    """How many training rows (household × snapshot) there were and how many were used.

    When the rows exceed `max_rows`, households are sampled, stratified by label: a
    household is `positive` when any of its training labels is > 0 (propensity: it bought
    the group in some label window; LTV: it spent on the group in some horizon) and `zero`
    otherwise. Each stratum keeps the same share of its rows (max_rows / rows available,
    rounded down), whole households at a time, chosen in a seeded random order; a
    household's snapshots stay together, as the household-grouped selection split needs.
    """

    max_rows: int
    rows_available: int
    rows_used: int
    strata: dict[str, dict]  # stratum → households, households_used, rows, rows_used, fraction

    @property
    def sampled(self) -> bool:
        return self.rows_used < self.rows_available

    def params(self) -> dict:
        """MLflow params and UI metadata."""
        out = {
            "training_max_rows": self.max_rows, "training_rows_available": self.rows_available,
            "training_rows_used": self.rows_used, "training_sampled": self.sampled,
        }
        for name, s in self.strata.items():
            out[f"training_fraction_{name}"] = round(s["fraction"], 6)
        return out


def sample_households(labels: pd.DataFrame, max_rows: int, seed: int) -> tuple[np.ndarray | None, TrainingSample]:
    """(households to keep, or None for all; the sample's record) from the training rows'
    `household_id` and `label` (see TrainingSample)."""
    if max_rows < 1:
        raise ValueError(f"the training row budget must be at least 1, got {max_rows}")
    per = labels.groupby("household_id")["label"].agg(rows="size", top="max").sort_index()
    per["stratum"] = np.where(per["top"] > 0, POSITIVE, ZERO)
    available = int(per["rows"].sum())
    sampled = available > max_rows
    keep, strata = [], {}
    rng = np.random.default_rng(seed)
    for name in (POSITIVE, ZERO):
        members = per[per["stratum"] == name]
        rows = int(members["rows"].sum())
        if not sampled:
            chosen = members.index.to_numpy()
        else:
            quota = math.floor(rows * max_rows / available)
            order = rng.permutation(len(members))
            ids, sizes = members.index.to_numpy()[order], members["rows"].to_numpy()[order]
            taken, total = [], 0
            for hid, size in zip(ids, sizes):
                if total + size <= quota:
                    taken.append(hid)
                    total += int(size)
            chosen = np.sort(np.asarray(taken, dtype="int64"))
        used = int(members.loc[chosen, "rows"].sum()) if len(chosen) else 0
        keep.append(chosen)
        strata[name] = {
            "households": len(members), "households_used": len(chosen), "rows": rows, "rows_used": used,
            "fraction": used / rows if rows else 1.0,
        }
    record = TrainingSample(max_rows, available, sum(s["rows_used"] for s in strata.values()), strata)
    return (np.sort(np.concatenate(keep)) if sampled else None), record


def training_frames(
    lake: Lake, group: str, dates: list[str], vetting: str, labels_table: str, max_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, TrainingSample]:
    """(training rows at `dates`, the vetting snapshot `vetting`, the sample's record): the
    labelled rows of `group`, the training rows within `max_rows`.

    The labels' Parquet footers count the training rows first. Within the budget this reads
    exactly what training always read. Over it, only household_id and label of the training
    dates are read, households are sampled (`sample_households`), and only their feature
    rows are read: the full training frame never exists on the driver. The vetting snapshot
    is read whole: it is one snapshot, and vetting compares models on all of it.
    """
    _require_labelled(lake, group, [*dates, vetting], labels_table)
    when = ds.field("as_of").isin(dates) & (ds.field("product_group") == group)
    available = sum(fragment.count_rows() for _, fragment in lake.partition_files(labels_table, when))
    if available <= max_rows:
        frame = labelled_frame(lake, group, [*dates, vetting], labels_table)
        train = frame[frame["as_of"].isin(dates)]
        return train, frame[frame["as_of"] == vetting], sample_households(train, max(max_rows, 1), seed)[1]
    labels = lake.read_pandas(labels_table, filters=when, columns=["household_id", "label"])
    households, record = sample_households(labels, max_rows, seed)
    del labels
    train = labelled_frame(lake, group, dates, labels_table, households)
    return train, labelled_frame(lake, group, [vetting], labels_table), record


# -- which snapshots a model sees --------------------------------------------------------


@dataclass(frozen=True)
class SnapshotPlan:
    """The as_of snapshots of one training at `cutoff`.

    `vetting` is the latest snapshot whose label window has closed by the cutoff
    (d + horizon ≤ cutoff). Neither fitting, early stopping nor the choice among
    trials sees it: candidate and champion are compared there. `train` are weekly
    snapshots before it; a household-grouped share of their rows selects trials.
    """

    cutoff: date
    horizon_days: int
    train: tuple[date, ...]
    vetting: date

    @property
    def train_as_of_max(self) -> str:
        return str(max(self.train))

    def tags(self) -> dict[str, str]:
        return {
            "cutoff": str(self.cutoff),
            "horizon_days": str(self.horizon_days),
            "train_as_of_min": str(min(self.train)),
            "train_as_of_max": str(max(self.train)),
            "train_snapshots": str(len(self.train)),
            "vetting_as_of": str(self.vetting),
        }


def snapshot_plan(cutoff: date, horizon_days: int, history_weeks: int, first_as_of: date) -> SnapshotPlan:
    vetting = cutoff - timedelta(days=horizon_days)
    train = [vetting - timedelta(weeks=k) for k in range(1, history_weeks + 1)]
    train = tuple(sorted(d for d in train if d > first_as_of))
    if not train:
        raise ValueError(
            f"cutoff {cutoff}: with a {horizon_days}-day label window the vetting snapshot is {vetting}, and no "
            f"weekly training snapshot before it falls after the first as_of {first_as_of}; choose a later cutoff"
        )
    return SnapshotPlan(cutoff, horizon_days, train, vetting)


def selection_split(frame: pd.DataFrame, share: float = 0.2, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, select): a household-grouped split, so that no household's snapshots sit on
    both sides and the choice among trials is not flattered by seeing a household twice."""
    households = np.sort(frame["household_id"].unique())
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(households, size=max(1, int(round(len(households) * share))), replace=False).tolist())
    mask = frame["household_id"].isin(chosen)
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
