"""One study end to end, as pure functions the assets call: data, graph, effects, policy.

Nothing here imports Dagster or MLflow, so tests and notebooks run a study directly:

    data = study_data(study, "data/incentive_studies.yaml")
    disc = discovery.discover(data, study)
    ids = identify_all(disc.graph, study)
    estimates = estimate_all(data, study, ids)
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pandas as pd

from propensity_assets.incentives import recommender as rec
from propensity_assets.incentives.catalog import Study, read_study_table, resolve_path
from propensity_assets.incentives.estimation import EffectEstimate, EstimatorConfig, estimate_effect
from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company, truth_column
from propensity_assets.incentives.identification import Identification, identify
from propensity_assets.incentives.sample import MIN_PER_ARM, check_arms

UNIT_ID = "unit_id"


def generator_config(study: Study, **overrides) -> GeneratorConfig:
    values = {**study.generator, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = set(values) - set(GeneratorConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"study {study.key!r}: unknown generator setting(s) {sorted(unknown)}; "
                         f"allowed: {sorted(GeneratorConfig.__dataclass_fields__)}")
    return GeneratorConfig(**values)


def study_data(study: Study, catalogue_path: str, min_per_arm: int = MIN_PER_ARM, **generator_overrides) -> pd.DataFrame:
    """The study table with `unit_id` first: generated, or read from the study's `path`; refused
    (`StudyCatalogError`) when a treatment arm has fewer than `min_per_arm` units."""
    if study.generate:
        source = f"generator {study.generate!r}"
        data = generate_software_company(generator_config(study, **generator_overrides))
        study.validate_data(data, source)
    else:
        source = str(resolve_path(study, catalogue_path))
        data = read_study_table(study, catalogue_path)
    check_arms(study, data, source, min_per_arm)
    ids = data[study.id_column] if study.id_column else np.arange(len(data))
    data = data.drop(columns=[UNIT_ID], errors="ignore")
    data.insert(0, UNIT_ID, np.asarray(ids))
    return data.reset_index(drop=True)


def truth_of(data: pd.DataFrame, treatment: str, effect: str) -> np.ndarray | None:
    col = truth_column(effect, treatment)
    return data[col].to_numpy(float) if col in data.columns else None


def graph_from_edges(edges: pd.DataFrame, study: Study) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(study.variables)
    g.add_edges_from(edges[["source", "target"]].itertuples(index=False, name=None))
    return g


def identify_all(graph: nx.DiGraph, study: Study) -> list[Identification]:
    return [identify(graph, study, t, e) for t, effects in study.effects.items() for e in effects]


def estimate_all(data: pd.DataFrame, study: Study, ids: list[Identification], config: EstimatorConfig) -> list[EffectEstimate]:
    return [
        estimate_effect(data, i.treatment, study.outcome, list(i.modifiers), list(i.controls), i.effect, config,
                        list(study.effect_modifiers))
        for i in ids
        if i.identified
    ]


def effects_table(data: pd.DataFrame, estimates: list[EffectEstimate]) -> pd.DataFrame:
    """`incentive_effects` (CONTRACTS §9), plus `in_overlap` (False: the unit was trimmed)."""
    frames = [
        pd.DataFrame({
            UNIT_ID: data[UNIT_ID].to_numpy(), "treatment": e.treatment, "effect": e.effect,
            "cate": e.cate, "cate_lower": e.cate_lower, "cate_upper": e.cate_upper, "in_overlap": e.in_overlap,
            "in_fit": e.fit_rows_or_all,
        })
        for e in estimates
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[UNIT_ID, "treatment", "effect", "cate", "cate_lower", "cate_upper", "in_overlap", "in_fit"])


def summary_table(data: pd.DataFrame, ids: list[Identification], estimates: list[EffectEstimate]) -> pd.DataFrame:
    """`incentive_summary` (CONTRACTS §9), with truth errors, overlap and the adjustment set beside."""
    by_key = {(e.treatment, e.effect): e for e in estimates}
    rows = []
    for i in ids:
        e = by_key.get((i.treatment, i.effect))
        # An effect the graph says is zero (no path) is estimated to test that claim, never `identified`.
        said = verdict(e, i.graph_path)
        reasons = [i.reason, *i.notes] if i.graph_path else [*i.notes, i.reason]
        row = {"treatment": i.treatment, "effect": i.effect, "ate": np.nan, "ate_lower": np.nan, "ate_upper": np.nan,
               "verdict": said.split(" on ", 1)[0],  # CONTRACTS §9: identified | not identified
               "reason": "; ".join([said, *reasons] if " on " in said else reasons),
               "adjustment": ", ".join(i.adjustment), "modifiers": ", ".join(i.modifiers), "controls": ", ".join(i.controls)}
        if e is not None:
            population = e.population_or_all
            row.update(ate=e.ate, ate_lower=e.ate_lower, ate_upper=e.ate_upper, n_fit=int(e.fit_rows_or_all.sum()),
                       population="all" if population.all() else "overlap", population_units=int(population.sum()),
                       population_share=float(population.mean()), specification=e.specification,
                       outcome_model=e.nuisances.outcome if e.nuisances else "lightgbm",
                       treatment_model=e.nuisances.treatment if e.nuisances else "lightgbm",
                       cate_units=int(np.isfinite(e.cate).sum()), **e.overlap.row(), **e.validation_row())
            if e.overlap.warning:
                row["reason"] += f"; WARNING {e.overlap.warning}"
            truth = truth_of(data, i.treatment, i.effect)
            if truth is not None:  # compared on the population the estimate covers, and over its CATEs
                has = np.isfinite(e.cate)
                row.update(
                    true_ate=float(truth[population].mean()), ate_error=float(e.ate - truth[population].mean()),
                    true_ate_all=float(truth.mean()),
                    truth_in_interval=bool(e.ate_lower <= truth[population].mean() <= e.ate_upper),
                    cate_rmse=float(np.sqrt(np.mean((e.cate[has] - truth[has]) ** 2))) if has.any() else np.nan,
                    cate_max_error=float(np.abs(e.cate[has] - truth[has]).max()) if has.any() else np.nan,
                    cate_coverage=float(np.mean((e.cate_lower[has] <= truth[has]) & (truth[has] <= e.cate_upper[has]))),
                )
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(estimate: EffectEstimate | None, graph_path: bool) -> str:
    """`identified`, `identified on the 15 % of units inside overlap`, or `not identified`. The
    summary's `verdict` column holds its first words; the population statement opens its `reason`."""
    if estimate is None or not graph_path:
        return "not identified"
    population = estimate.population_or_all
    if population.all():
        return "identified"
    return f"identified on the {population.mean() * 100:.0f} % of units inside overlap"


def unit_costs(data: pd.DataFrame, study: Study) -> dict[str, np.ndarray]:
    return {t.name: t.unit_cost(data) for t in study.treatments}


def total_effects(estimates: list[EffectEstimate], study: Study) -> dict[str, np.ndarray]:
    by_key = {(e.treatment, e.effect): e for e in estimates}
    missing = [t for t in study.treatment_names if (t, "total") not in by_key]
    if missing:
        raise ValueError(f"study {study.key!r}: no identified total effect for {missing}; cannot recommend")
    return {t: by_key[(t, "total")].cate for t in study.treatment_names}


def recommendations(data: pd.DataFrame, study: Study, effects: dict[str, np.ndarray]) -> pd.DataFrame:
    """`incentive_recommendations` (CONTRACTS §9)."""
    out = rec.recommend(rec.option_profits(effects, unit_costs(data, study), study.treatment_names))
    out.insert(0, UNIT_ID, data[UNIT_ID].to_numpy())
    return out


def true_effects(data: pd.DataFrame, study: Study) -> dict[str, np.ndarray] | None:
    truth = {t: truth_of(data, t, "total") for t in study.treatment_names}
    return None if any(v is None for v in truth.values()) else truth


def policy_report(data: pd.DataFrame, study: Study, policy: np.ndarray, evaluator=None,
                  held_out: np.ndarray | None = None) -> tuple[pd.DataFrame, object]:
    """The policy comparison (DR value; realized profit vs the oracle when truth columns exist);
    the recommender's DR value is `held_out`'s when given (`cross_fitted_policy`)."""
    if evaluator is None:
        evaluator = rec.DoublyRobustEvaluator().fit(data, list(study.covariates), study.treatment_names, study.outcome)
    table = rec.policy_comparison(policy, data, unit_costs(data, study), study.treatment_names, evaluator,
                                  true_effects(data, study), held_out)
    return table, evaluator


def cross_fitted_policy(data: pd.DataFrame, study: Study, specs: dict[str, tuple[list[str], list[str]]],
                        config: EstimatorConfig, fallback: str | None, folds: int = 2,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's recommended option, and its expected profit over no incentive, from total
    effects estimated on the other folds only: `specs` maps each treatment to its (modifiers,
    controls), as the effects run identified them; the estimates are made, validated and turned into
    a recommender exactly as there (`tracking.recommender_bundle`). The DR value of this policy is
    held out. A unit given the `fallback` has no expected profit: its gain counts as 0."""
    from sklearn.model_selection import KFold

    from propensity_assets.incentives.tracking import recommender_bundle

    policy = np.empty(len(data), dtype=object)
    gain = np.zeros(len(data))
    for fit_rows, held_rows in KFold(folds, shuffle=True, random_state=seed).split(data):
        fit, held = data.iloc[fit_rows].reset_index(drop=True), data.iloc[held_rows].reset_index(drop=True)
        estimates = [estimate_effect(fit, t, study.outcome, *specs[t], "total", config, list(study.effect_modifiers))
                     for t in study.treatment_names]
        model = rec.IncentiveRecommender.from_bundle(recommender_bundle(estimates, study, fallback))
        chosen = model.predict(None, held)
        policy[held_rows] = chosen["recommended"].to_numpy()
        gain[held_rows] = np.nan_to_num(chosen["expected_profit"].to_numpy(float))  # "none" earns 0
    return policy, gain


def wrong_specification(data: pd.DataFrame, study: Study, ident: Identification, add: list[str],
                        config: EstimatorConfig = EstimatorConfig()) -> EffectEstimate:
    """Estimate with variables the identification excluded (a collider, a mediator) added to W."""
    bad = replace(ident, controls=tuple(dict.fromkeys([*ident.controls, *add])))
    return estimate_effect(data, bad.treatment, study.outcome, list(bad.modifiers), list(bad.controls), bad.effect, config)
