"""`propensity-assets sync-studies` and `propensity-assets incentives`."""

from propensity_assets import cli
from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.conftest import REPO


def test_sync_studies_adds_and_removes_partitions(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert cli.main(["sync-studies", "--file", str(REPO / "data" / "incentive_studies.yaml")]) == 0
    assert "added: software_company, software_company_poor_overlap, software_company_deterministic" in capsys.readouterr().out
    one = tmp_path / "one.yaml"
    text = (REPO / "data" / "incentive_studies.yaml").read_text()
    one.write_text(text.split("\n  # The same accounts")[0] + "\n")
    assert cli.main(["sync-studies", "--file", str(one)]) == 2  # a study would be removed: only with --prune
    assert (
        f"{one}: incentive_study partition(s) software_company_poor_overlap, software_company_deterministic are not in "
        "the catalogue; nothing was "
        "changed. Add them back, or run `propensity-assets sync-studies --prune` to remove them"
    ) in capsys.readouterr().err
    assert cli.main(["sync-studies", "--file", str(one), "--prune"]) == 0
    assert "removed: software_company_poor_overlap, software_company_deterministic" in capsys.readouterr().out
    with instance_at(home) as instance:
        assert instance.get_dynamic_partitions("incentive_study") == ["software_company"]


def test_sync_studies_refuses_an_invalid_catalogue(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "data" / "incentive_studies.yaml").read_text().replace("{cost: 7000}", "{cost: lots}", 1))
    assert cli.main(["sync-studies", "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "study 'software_company': treatment 'Discount': cost 'lots'" in err


def test_incentives_report_without_a_run_names_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROPENSITY_LAKE_URI", str(tmp_path / "lake"))
    assert cli.main(["incentives", "software_company"]) == 2
    assert "'incentive_summary' has no partition study=software_company" in capsys.readouterr().err


def test_retail_on_a_dataset_without_campaigns_says_there_is_nothing_to_do(tmp_path, capsys):
    """Transactions only: the retail study of each group writes a summary saying why it has
    nothing to do, and no study table; `retail` prints that reason and succeeds."""
    from propensity_assets.incentives.report import print_retail
    from propensity_assets.incentives.retail_study import no_campaigns
    from propensity_assets.incentives.retail_verdicts import nothing_to_do_row
    from propensity_assets.shared import tables
    from propensity_assets.shared.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    spec = {"study": "retail_all_products"}
    lake.write_pandas(tables.INCENTIVE_SUMMARY, nothing_to_do_row(no_campaigns().nothing_to_do).assign(**spec),
                      ["study"], specs=[spec])
    assert print_retail(lake.root, ["all_products", "beef"]) == 0
    assert capsys.readouterr().out == (
        "retail campaign studies: effect on the treated (ATT) per household-campaign, group spend in the 28-day "
        "window, 95 % household-clustered intervals\n"
        "  all_products: nothing to do: the dataset has no campaigns (campaigns or campaign_descriptions is empty)\n")
    assert print_retail(str(tmp_path / "empty"), ["all_products"]) == 2
