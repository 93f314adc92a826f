"""What a modelling stage declares; the shared lifecycle does the rest.

A stage (propensity, LTV, …) names its tables, its label and label window, its trainer,
its metrics and baselines, the vetting rule's defaults and its profile columns. Labels,
training, registration, vetting, promotion, scoring, rescoring and monitoring are the
same code for every stage (`lifecycle.labels`, `lifecycle.label_assets`,
`lifecycle.training`, `lifecycle.assets`, `lifecycle.sensors`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd


def lazy(target: str) -> Callable:
    """The function `module:name`, imported at its first call: a stage declares its model
    code this way, so loading the definitions never loads the model libraries."""
    module, _, name = target.partition(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


class Predictor(Protocol):
    """What a trained model is: picklable, importing only pandas/numpy/sklearn/lightgbm.

    `features` are the lake columns it reads; `predict` returns one value per row.
    """

    features: list[str]

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass
class TrainResult:
    predictor: Predictor
    params: dict[str, Any]  # the selected trial, flat (logged as MLflow params)
    trials: pd.DataFrame  # one row per trial: its parameters and selection metrics
    selection_metrics: dict[str, float]  # the selected trial on the selection rows
    importances: pd.Series | None = None
    # (y, prediction) on the vetting snapshot → {file name: matplotlib figure}, built lazily
    figures: Callable[[np.ndarray, np.ndarray], dict] | None = None


@dataclass(frozen=True)
class ProfileColumns:
    """The customer profile's columns from this stage's scores: `<prefix>__<group>` and
    `<prefix>_decile__<group>` (decile 1 = the top 10 %)."""

    prefix: str
    value_column: str


@dataclass(frozen=True)
class LabelSpec:
    """What a stage's label at (household h, group g, as_of d) is, from h's transaction lines
    of g's products on the days d ≤ day < d + horizon. The population (every household with
    a transaction before d) and the window are the lifecycle's (`lifecycle.labels`).

    `summed` is the transactions column summed over the window, exactly (0 when nothing was
    bought); without one, the label is 1 when h bought anything of g in the window, else 0.
    """

    description: str  # what the label asset shows in the UI
    schedule_minute: int  # the daily label run starts at 05:<minute>
    summed: str | None = None

    @classmethod
    def any_purchase(cls, description: str, schedule_minute: int) -> LabelSpec:
        return cls(description, schedule_minute)

    @classmethod
    def total(cls, column: str, description: str, schedule_minute: int) -> LabelSpec:
        return cls(description, schedule_minute, summed=column)


@dataclass(frozen=True)
class ModelStage:
    name: str  # propensity | ltv: the registered models are `<name>__<group>`
    title: str
    labels_table: str
    label: LabelSpec
    scores_table: str
    score_column: str  # the prediction's column in the scores table and the pyfunc output
    horizon_days: Callable[[], int]  # the label window; configuration may set it
    train: Callable[[pd.DataFrame, pd.DataFrame, Any], TrainResult]  # (fit, select, config)
    evaluate: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    baselines: Callable[[pd.DataFrame, int], dict[str, np.ndarray]]  # naive predictions per name
    metric: str  # the default selection and vetting metric
    higher_is_better: dict[str, bool]  # direction of every metric the rule may use
    baseline_metrics: tuple[str, ...]  # a candidate must beat every baseline on these
    profile: ProfileColumns
    # Extra constant columns on each scores row (e.g. LTV's horizon_days).
    score_extras: Callable[[], dict[str, Any]] = field(default=lambda: {})
    # (y, prediction) → named tables for MLflow and the UI (calibration, deciles, …)
    reports: Callable[[np.ndarray, np.ndarray], dict[str, pd.DataFrame]] = field(default=lambda y, p: {})
    # Vetting: on the vetting metric a candidate need not beat a baseline outright, only not
    # be worse with this confidence (paired bootstrap); 0: it must beat it.
    baseline_confidence: float = 0.0
    output_min: float = 0.0
    output_max: float | None = None  # 1.0 for probabilities
    # What `propensity-assets summary` reports on a holdout as_of: the metrics (the first two
    # are averaged in its headline) and the label window it covers.
    report_metrics: tuple[str, ...] = ()
    report_window: str = ""
    # What the label measures, as the evaluation charts name it ("purchase rate", "spend").
    actual_name: str = "actual"

    def model_name(self, group: str) -> str:
        return f"{self.name}__{group}"
