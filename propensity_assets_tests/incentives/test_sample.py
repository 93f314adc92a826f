"""Studies too small or degenerate for their analysis are refused before anything is written,
naming the study, the column and the rows; an effect the graph says is zero is never `identified`.
Real Dagster instance and a temp lake, hand-built study tables whose answers are known."""

import textwrap

import dagster as dg
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from propensity_assets.incentives import study as S
from propensity_assets.incentives.catalog import StudyCatalogError, parse_catalog
from propensity_assets.incentives.estimation import EstimatorConfig
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.sample import check_arms, check_effect_arms
from propensity_assets.incentives.sensors import sync_studies
from propensity_assets.incentives.study_assets import StudyDataConfig, incentive_study_data
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource

TINY = textwrap.dedent(
    """
    incentive_studies:
      tiny:
        path: tiny.csv
        outcome: Revenue
        treatments:
          Discount: {cost: 100}
        covariates: [Size, Age]
      thirty:
        generate: software_company
        generator: {n: 30, seed: 0}
        outcome: Revenue
        treatments:
          Tech Support: {cost: "100 * `PC Count`"}
          Discount: {cost: 7000}
          New Engagement Strategy: {cost: 0}
        covariates: [Global Flag, Major Flag, SMC Flag, Commercial Flag, IT Spend, Employee Count, PC Count, Size]
    """
)
MIN_RULE = "each arm needs at least 30 (incentive_study_data config min_per_arm)"


def tiny_table(n: int = 120) -> pd.DataFrame:
    """`n` accounts, every other one given the Discount; Revenue = 2 × Size + 10 × Discount."""
    discount = np.arange(n) % 2
    size = np.arange(n, dtype=float) * 10
    return pd.DataFrame({"Size": size, "Age": np.arange(n) % 7, "Discount": discount, "Revenue": 2 * size + 10 * discount})


@pytest.fixture()
def world(tmp_path):
    catalogue = tmp_path / "studies.yaml"
    catalogue.write_text(TINY)
    tiny_table().to_csv(tmp_path / "tiny.csv", index=False)
    resources = {"lake": LakeResource(uri=str(tmp_path / "lake")),
                 "incentive_studies": IncentiveStudiesResource(path=str(catalogue))}
    with dg.instance_for_test() as instance:
        assert sync_studies(instance, str(catalogue)) == (["tiny", "thirty"], [])
        assert materialize(instance, resources, "tiny").success  # the previous good run's partition
        yield {"tmp": tmp_path, "instance": instance, "resources": resources, "lake": Lake(str(tmp_path / "lake"))}


def materialize(instance, resources, key, config: StudyDataConfig = StudyDataConfig()):
    return dg.materialize([incentive_study_data], instance=instance, resources=resources, partition_key=key,
                          run_config=dg.RunConfig(ops={"incentive_study_data": config}), raise_on_error=False)


def refused(world, table: pd.DataFrame | None, key: str = "tiny", config: StudyDataConfig = StudyDataConfig()) -> str:
    """The failure of the data asset on `table` (as tiny.csv); the lake's partition is unchanged."""
    before = world["lake"].read_partition("incentive_study_data", {"study": "tiny"})
    if table is not None:
        table.to_csv(world["tmp"] / "tiny.csv", index=False)
    result = materialize(world["instance"], world["resources"], key, config)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data is not None  # a dg.Failure, not a traceback
    after = world["lake"].read_partition("incentive_study_data", {"study": "tiny"})
    pd.testing.assert_frame_equal(after, before)
    assert world["lake"].partitions("incentive_study_data", "study") == ["tiny"]
    return failure.step_failure_data.user_failure_data.description


def where(world) -> str:
    return f"{world['tmp'] / 'tiny.csv'}: study 'tiny'"


def test_a_nan_or_infinite_outcome_or_covariate_is_refused_naming_the_rows(world):
    nan = tiny_table()
    nan.loc[[3, 17], "Revenue"] = np.nan
    assert refused(world, nan) == (
        f"{where(world)}: column 'Revenue' is not a finite number in 2 row(s) (rows 3, 17); every value of the "
        "outcome, treatments, covariates, mediators and other variables must be (no blank, NaN, inf or text). "
        "Nothing was written.")
    inf = tiny_table()
    inf.loc[[5, 6, 7, 8, 9, 10], "Size"] = [np.inf, -np.inf, np.inf, np.inf, np.inf, np.inf]
    assert refused(world, inf).startswith(
        f"{where(world)}: column 'Size' is not a finite number in 6 row(s) (rows 5, 6, 7, 8, 9, …); ")
    text = tiny_table().astype({"Age": object})
    text.loc[4, "Age"] = "old"
    assert refused(world, text).startswith(f"{where(world)}: column 'Age' is not a finite number in 1 row(s) (rows 4); ")


def test_a_treatment_given_to_all_or_none_is_refused(world):
    assert refused(world, tiny_table().assign(Discount=1)) == (
        f"{where(world)}: treatment 'Discount' is given to every one of the 120 rows: an effect needs treated and "
        "untreated units. Nothing was written.")
    assert refused(world, tiny_table().assign(Discount=0)) == (
        f"{where(world)}: treatment 'Discount' is given to none of the 120 rows: an effect needs treated and "
        "untreated units. Nothing was written.")


def test_an_arm_below_the_minimum_is_refused_and_the_minimum_is_config(world):
    few = tiny_table().assign(Discount=(np.arange(120) >= 110).astype(int))
    assert refused(world, few) == (
        f"{where(world)}: treatment 'Discount' has 10 treated and 110 untreated rows; {MIN_RULE}; the treated arm is "
        "10 row(s) (rows 110, 111, 112, 113, 114, …). Nothing was written.")
    result = materialize(world["instance"], world["resources"], "tiny", StudyDataConfig(min_per_arm=10))
    assert result.success
    assert world["lake"].read_partition("incentive_study_data", {"study": "tiny"}).Discount.sum() == 10


def test_a_30_row_study_is_refused_before_it_is_written(world):
    message = refused(world, None, key="thirty")
    assert message.startswith("generator 'software_company': study 'thirty': treatment 'Tech Support' has ")
    assert f"untreated rows; {MIN_RULE}; the " in message and message.endswith(". Nothing was written.")
    assert not world["lake"].exists("incentive_study_data", {"study": "thirty"})


def test_the_checks_are_pure_functions_of_the_table():
    study = parse_catalog(TINY, "t.yaml")[0]
    check_arms(study, tiny_table(60), "t.csv")  # 30 and 30: enough
    with pytest.raises(StudyCatalogError) as err:
        check_arms(study, tiny_table(58), "t.csv")
    assert str(err.value) == (
        f"t.csv: study 'tiny': treatment 'Discount' has 29 treated and 29 untreated rows; {MIN_RULE}; the untreated "
        "arm is 29 row(s) (rows 0, 2, 4, 6, 8, …)")


def test_an_effect_whose_trimmed_fit_is_too_small_is_refused():
    study = parse_catalog(TINY, "t.yaml")[0]
    data = tiny_table().assign(unit_id=np.arange(120))
    [ident] = S.identify_all(nx.DiGraph([("Size", "Discount"), ("Size", "Revenue"), ("Discount", "Revenue")]), study)
    [estimate] = S.estimate_all(data, study, [ident], EstimatorConfig(folds=2, n_estimators=20))
    check_effect_arms(study, data, [estimate])
    estimate.in_overlap = estimate.in_fit = np.arange(120) >= 70  # a trimmed fit: 25 treated and 25 untreated left
    with pytest.raises(StudyCatalogError) as err:
        check_effect_arms(study, data, [estimate])
    assert str(err.value) == (
        "study 'tiny': Discount (total): the fit inside the overlap band has 25 treated and 25 untreated units; each "
        "arm needs at least 30 (incentive_effects config min_per_arm); trimmed: 70 row(s) (rows 0, 1, 2, 3, 4, …)")


def test_an_effect_without_a_path_in_the_graph_is_never_identified():
    study = parse_catalog(TINY, "t.yaml")[0]
    data = tiny_table().assign(unit_id=np.arange(120))
    graph = nx.DiGraph([("Size", "Discount"), ("Size", "Revenue"), ("Age", "Revenue")])  # no Discount → Revenue
    [ident] = S.identify_all(graph, study)
    estimates = S.estimate_all(data, study, [ident], EstimatorConfig(folds=2, n_estimators=20))
    assert len(estimates) == 1  # estimated all the same, to test the graph's claim
    row = S.summary_table(data, [ident], estimates).iloc[0]
    assert row.verdict == "not identified"
    assert row.reason.startswith("the graph has no path Discount → Revenue (effect 0 by the graph); estimated with "
                                 "the edge added, to test that; back-door set")
    graph.add_edge("Discount", "Revenue")
    [ident] = S.identify_all(graph, study)
    assert S.summary_table(data, [ident], estimates).iloc[0].verdict == "identified"
