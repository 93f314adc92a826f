"""What `incentive_effects` shows of each estimate's choice and validation: tables, MLflow metrics,
plots, and the asset checks that warn when a CATE model cannot be trusted.

Pure logic except `log_to_mlflow` (called inside the effects run).
"""

from __future__ import annotations

import pandas as pd

CATE_VALIDATION, EXTRAPOLATION = "cate_validation", "extrapolation"
CHECKS = {
    CATE_VALIDATION: "DRTester on held-out units: the CATEs rank units better than the ATE (Qini coefficient > 0, "
                     "one-sided p < 0.05); a CATE model that fails cannot drive the recommender",
    EXTRAPOLATION: "outside overlap, the CATE intervals stay within 2 × their median width inside; otherwise those "
                   "units get a null CATE and the ATE covers the units inside overlap only",
}


def tag(estimate) -> str:
    return f"{estimate.treatment.replace(' ', '_')}.{estimate.effect}"


def candidates_table(estimates) -> pd.DataFrame:
    """One row per effect × candidate specification: its R-score, the standard error of its gap to the best, chosen."""
    rows = [{"treatment": e.treatment, "effect": e.effect, **r} for e in estimates if e.choice is not None
            for r in e.choice.rows()]
    return pd.DataFrame(rows, columns=["treatment", "effect", "candidate", "r_score", "se_of_gap", "chosen"])


def nuisances_table(estimates) -> pd.DataFrame:
    """One row per effect × nuisance candidate: its cross-validated loss (outcome: MSE; treatment: log-loss), chosen."""
    rows = []
    for e in estimates:
        if e.nuisances is None:
            continue
        chosen = {"outcome": e.nuisances.outcome, "treatment": e.nuisances.treatment}
        for key, loss in e.nuisances.losses.items():
            part, name = key.split(".", 1)
            rows.append({"treatment": e.treatment, "effect": e.effect, "model of": part, "candidate": name,
                         "cv_loss": loss, "chosen": chosen[part] == name})
    return pd.DataFrame(rows, columns=["treatment", "effect", "model of", "candidate", "cv_loss", "chosen"])


def validation_table(estimates) -> pd.DataFrame:
    rows = []
    for e in estimates:
        row = {"treatment": e.treatment, "effect": e.effect, "specification": e.specification,
               "population": e.population_label, **e.validation_row()}
        row.pop("extrapolation_detail", None)
        rows.append(row)
    return pd.DataFrame(rows)


def check_results(estimates) -> dict[str, tuple[bool, str, pd.DataFrame]]:
    """Check name → (passed, description, the per-effect rows)."""
    ranked = [e for e in estimates if e.ranking is not None]
    failed = [f"{e.treatment} ({e.effect}): Qini {e.ranking.qini:,.1f} ± {e.ranking.qini_se:,.1f}, p {e.ranking.qini_p:.3f}; "
              f"its ATE stands in for every unit" for e in ranked if not e.ranking.passed]
    rank_rows = pd.DataFrame([{"treatment": e.treatment, "effect": e.effect, **e.ranking.row()} for e in ranked])
    extrap = [e for e in estimates if e.extrapolation is not None]
    bad = [f"{e.treatment} ({e.effect}): {e.extrapolation.detail}; those units get no CATE" for e in extrap
           if not e.extrapolation.passed]
    extrap_rows = pd.DataFrame([{"treatment": e.treatment, "effect": e.effect, "passed": e.extrapolation.passed,
                                 "outside": e.extrapolation.outside, "width_inside": e.extrapolation.width_inside,
                                 "width_outside": e.extrapolation.width_outside} for e in extrap])
    return {
        CATE_VALIDATION: (not failed, "; ".join(failed) or f"CATEs rank units on {len(ranked)} effect(s)", rank_rows),
        EXTRAPOLATION: (not bad, "; ".join(bad) or f"no effect extrapolates outside overlap ({len(extrap)} checked)",
                        extrap_rows),
    }


def log_to_mlflow(estimates, tmp: str) -> dict[str, str]:
    """R-scores and validation metrics per effect, and each effect's validation plot; effect → plot path."""
    import mlflow

    from propensity_assets.incentives.validation import plot_ranking

    plots = {}
    for e in estimates:
        if e.choice is not None:
            mlflow.log_metrics({f"{tag(e)}.r_score.{n}": v for n, v in e.choice.scores.items()})
            mlflow.set_tag(f"{tag(e)}.specification", e.specification)
        if e.nuisances is not None:
            mlflow.set_tags({f"{tag(e)}.outcome_model": e.nuisances.outcome, f"{tag(e)}.treatment_model": e.nuisances.treatment})
        if e.ranking is not None:
            mlflow.log_metrics({f"{tag(e)}.{k}": float(v) for k, v in e.ranking.row().items()})
            path = plot_ranking(e.ranking, f"{tmp}/{tag(e)}.png", f"{e.treatment} ({e.effect}), {e.specification}")
            mlflow.log_artifact(path, "validation")
            plots[f"{e.treatment} ({e.effect})"] = path
    mlflow.log_table(candidates_table(estimates), "specification_candidates.json")
    mlflow.log_table(nuisances_table(estimates), "nuisance_candidates.json")
    return plots
