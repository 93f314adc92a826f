"""Validation of a chosen CATE model: does it rank units, and may it speak outside overlap?

Pure logic.

- Ranking (EconML's `DRTester`, on the held-out split, nuisances fitted on the training split):
  calibration by CATE quartile (R²), the Qini coefficient and the area under the targeting-operator
  characteristic (TOC), each with its standard error. The CATEs rank units better than the ATE when
  the Qini coefficient is positive with a one-sided p-value below RANK_P. A CATE model that does not
  cannot drive the recommender: the effect's ATE stands in for every unit.
- Extrapolation: units outside overlap get a CATE only when the model's own 95 % intervals there
  stay within EXTRAPOLATION_RATIO times the median width inside overlap; a model that extrapolates
  (wide intervals where it saw no comparison) leaves them a null CATE instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RANK_P = 0.05
EXTRAPOLATION_RATIO = 2.0
N_BOOTSTRAP = 200


@dataclass
class Ranking:
    qini: float
    qini_se: float
    qini_p: float
    autoc: float
    autoc_se: float
    calibration_r2: float
    passed: bool
    results: object = field(repr=False, default=None)  # econml EvaluationResults, for the plots

    def row(self) -> dict:
        return {"qini": self.qini, "qini_se": self.qini_se, "qini_p": self.qini_p, "autoc": self.autoc,
                "autoc_se": self.autoc_se, "calibration_r2": self.calibration_r2, "ranks_better_than_ate": self.passed}


def rank_validation(cate_model, x_train, x_val, f_train, f_val, t_train, t_val, y_train, y_val,
                    model_regression, model_propensity, folds: int) -> Ranking:
    """DRTester on the held-out split: `x_*` the CATE model's input, `f_*` the nuisances' (X ∪ W)."""
    from econml.validate import DRTester

    tester = DRTester(model_regression=model_regression, model_propensity=model_propensity, cate=cate_model, cv=folds)
    tester.fit_nuisance(f_val, t_val, y_val, f_train, t_train, y_train)
    tester.get_cate_preds(x_val, x_train)
    res = tester.evaluate_all(n_groups=4, n_bootstrap=N_BOOTSTRAP)
    qini, toc, cal = res.qini, res.toc, res.cal
    q, q_se, q_p = float(qini.params[0]), float(qini.errs[0]), float(qini.pvals[0])
    return Ranking(q, q_se, q_p, float(toc.params[0]), float(toc.errs[0]), float(cal.cal_r_squared[0]),
                   bool(q > 0 and q_p < RANK_P), res)


def plot_ranking(ranking: Ranking, path: str, title: str) -> str:
    """Calibration, Qini and TOC of one effect side by side, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, tmt = ranking.results, 1
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    cal = res.cal.plot_data_dict[tmt]
    axes[0].errorbar(cal["g_cate"], cal["gate"], yerr=1.96 * cal["se_gate"], fmt="o")
    lims = [min(cal["g_cate"].min(), cal["gate"].min()), max(cal["g_cate"].max(), cal["gate"].max())]
    axes[0].plot(lims, lims, "k--", lw=1)
    axes[0].set(xlabel="mean CATE of the quartile", ylabel="doubly robust effect of the quartile",
                title=f"calibration R² {ranking.calibration_r2:.2f}")
    for ax, curve, name, coef in ((axes[1], res.qini, "Qini", ranking.qini), (axes[2], res.toc, "TOC", ranking.autoc)):
        df = curve.curves[tmt]
        ax.plot(df["Percentage treated"], df["value"])
        ax.fill_between(df["Percentage treated"], df["value"] - 1.96 * df["err"], df["value"] + 1.96 * df["err"], alpha=0.3)
        ax.axhline(0, color="k", lw=1)
        ax.set(xlabel="% treated, highest CATE first", title=f"{name} coefficient {coef:,.1f}")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class Extrapolation:
    outside: int  # units outside overlap
    width_inside: float  # median 95 % interval width inside overlap
    width_outside: float  # and outside
    passed: bool
    detail: str


def extrapolation_check(lower: np.ndarray, upper: np.ndarray, in_overlap: np.ndarray) -> Extrapolation:
    """May the model's CATEs stand for the units outside overlap (see the module)?"""
    width = np.asarray(upper, float) - np.asarray(lower, float)
    outside = ~np.asarray(in_overlap, bool)
    if not outside.any():
        return Extrapolation(0, float(np.median(width)), float("nan"), True, "every unit is inside overlap")
    inside_w = float(np.median(width[~outside])) if (~outside).any() else float("inf")
    outside_w = float(np.median(width[outside]))
    passed = bool(outside_w <= EXTRAPOLATION_RATIO * inside_w)
    detail = (f"median 95 % CATE interval width outside overlap {outside_w:,.1f} "
              f"{'≤' if passed else '>'} {EXTRAPOLATION_RATIO:g} × {inside_w:,.1f} inside "
              f"({int(outside.sum()):,} units outside)")
    return Extrapolation(int(outside.sum()), inside_w, outside_w, passed, detail)
