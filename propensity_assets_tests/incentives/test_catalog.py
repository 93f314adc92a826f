"""The study catalogue: the shipped file loads; each kind of invalid study is refused by name."""

import textwrap

import pandas as pd
import pytest

from propensity_assets.incentives.catalog import StudyCatalogError, load_catalog, parse_catalog
from propensity_assets_tests.incentives.conftest import SOFTWARE
from propensity_assets_tests.conftest import REPO


def test_shipped_catalogue_has_the_software_company_study():
    studies = {s.key: s for s in load_catalog(REPO / "data" / "incentive_studies.yaml")}
    sw = studies["software_company"]
    assert sw.treatment_names == ["Tech Support", "Discount", "New Engagement Strategy"]
    assert sw.mediators_of("Tech Support") == ["New Product Adoption"]
    assert sw.effects["Tech Support"] == ("total", "direct")
    frame = pd.DataFrame({"PC Count": [10, 50]})
    assert list(sw.treatments[0].unit_cost(frame)) == [1000.0, 5000.0]
    assert list(sw.treatments[1].unit_cost(frame)) == [7000.0, 7000.0]


def _broken(old: str, new: str) -> str:
    assert old in SOFTWARE
    return SOFTWARE.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, message",
    [
        (_broken("covariates: [Global Flag,", "covariates: [Global Flagg,"), "study 'sw': unknown column(s) ['Global Flagg']"),
        (_broken("100 * `PC Count`", "100 * `PCs`"), "treatment 'Tech Support': cost formula '100 * `PCs`' uses column 'PCs'"),
        (_broken("mediators: {New Product Adoption: [Tech Support]}", "mediators: {Discount: [Tech Support]}"),
         "mediator 'Discount' is also a treatment"),
        (_broken("[Revenue, Planning Summit]]", "[Revenue, Summit]]"), "'knowledge.required' edge ['Revenue', 'Summit'] names unknown variable 'Summit'"),
        (SOFTWARE + "  sw:\n    generate: software_company\n", "duplicate key 'sw'"),
        (_broken("  sw:", "  Software:"), "study 'Software': key must be lowercase"),
        (_broken("effects: {Tech Support: [total, direct],", "effects: {Tech Support: [total, direct], Revenue: [total],"),
         "effects: 'Revenue' is not a treatment"),
        (_broken("Discount: {cost: 7000}", "Discount: {cost: lots}"),
         "treatment 'Discount': cost 'lots': unexpected 'lots' at character 1: only min(...) and max(...) may be "
         "called, and columns are named in backticks. A cost is a number or a formula of numbers and backticked "
         "columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC Count`\""),
        # A formula that pandas' DataFrame.eval would have run as code.
        (_broken('Tech Support: {cost: "100 * `PC Count`"}', """Tech Support: {cost: "`PC Count`.to_csv('out.csv')"}"""),
         "treatment 'Tech Support': cost \"`PC Count`.to_csv('out.csv')\": unexpected '.to_csv' at character 11."),
        (_broken('Tech Support: {cost: "100 * `PC Count`"}', 'Tech Support: {cost: "`PC Count`.__class__"}'),
         "treatment 'Tech Support': cost '`PC Count`.__class__': unexpected '.__class__' at character 11."),
        (_broken("Discount: {cost: 7000}", "Discount: {cost: -7000}"),
         "treatment 'Discount': cost '-7000' is negative; a rebate needs allow_negative_cost: true"),
        (_broken("Discount: {cost: 7000}", "Discount: {cost: 1e400}"),
         "treatment 'Discount': cost '1e400': the number 1e400 is not finite (costs must be finite)"),
        (_broken("Discount: {cost: 7000}", "Discount: {cost: 1.0e+400}"),
         "treatment 'Discount': cost inf is not finite"),
        (_broken("Discount: {cost: 7000}", "Discount: {cost: 7000, rebate: true}"),
         "treatment 'Discount': unknown field(s) ['rebate']; expected ['allow_negative_cost', 'cost']"),
    ],
)
def test_invalid_catalogue_names_study_and_field(text, message):
    with pytest.raises(StudyCatalogError) as err:
        parse_catalog(text, "test.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("test.yaml")


def test_non_binary_treatment_and_missing_column_are_refused_on_the_data(software_study):
    from propensity_assets.incentives.generator import generate_software_company, GeneratorConfig

    data = generate_software_company(GeneratorConfig(n=50))
    bad = data.assign(Discount=data["Discount"] * 3)
    with pytest.raises(StudyCatalogError, match=r"study 'sw': treatment 'Discount' is not binary"):
        software_study.validate_data(bad, "accounts.csv")
    with pytest.raises(StudyCatalogError, match=r"accounts.csv: study 'sw': column\(s\) \['Size'\] not in the study table"):
        software_study.validate_data(data.drop(columns=["Size"]), "accounts.csv")


def test_costs_are_parsed_once_named_twice_and_rebates_need_their_flag(software_study):
    text = _broken('Tech Support: {cost: "100 * `PC Count`"}', 'Tech Support: {cost: "`PC Count` * `PC Count` - 50"}')
    text = text.replace("Discount: {cost: 7000}", "Discount: {cost: -7000, allow_negative_cost: true}", 1)
    study = parse_catalog(text, "test.yaml")[0]
    frame = pd.DataFrame({"PC Count": [10, 3]})
    # 10² − 50 = 50 and 3² − 50 = −41: negative for the second account only.
    assert list(study.treatments[0].unit_cost(frame)) == [50.0, -41.0]
    assert list(study.treatments[1].unit_cost(frame)) == [-7000.0, -7000.0]
    assert study.treatments[1].cost_problem(frame) is None  # a declared rebate
    assert study.treatments[0].cost_problem(frame) == (
        "cost formula '`PC Count` * `PC Count` - 50' is negative (set allow_negative_cost: true for a rebate) "
        "for 1 row(s) (rows 1)"
    )
    zero = pd.DataFrame({"PC Count": [0, 2, 0]})
    ratio = parse_catalog(_broken('Tech Support: {cost: "100 * `PC Count`"}', 'Tech Support: {cost: "100 / `PC Count`"}'),
                          "test.yaml")[0]
    assert ratio.treatments[0].cost_problem(zero) == "cost formula '100 / `PC Count`' is not finite for 2 row(s) (rows 0, 2)"


def test_a_study_table_whose_costs_are_negative_is_refused_naming_the_rows(software_study):
    from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company

    data = generate_software_company(GeneratorConfig(n=50))
    bad = data.assign(**{"PC Count": data["PC Count"].where(data.index != 7, -3)})
    with pytest.raises(StudyCatalogError) as err:
        software_study.validate_data(bad, "accounts.csv")
    assert str(err.value) == (
        "accounts.csv: study 'sw': treatment 'Tech Support': cost formula '100 * `PC Count`' is negative "
        "(set allow_negative_cost: true for a rebate) for 1 row(s) (rows 7)"
    )


def test_path_study_reads_csv_with_unit_id_and_truth(tmp_path):
    from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company
    from propensity_assets.incentives.study import study_data

    generate_software_company(GeneratorConfig(n=300, seed=4)).to_csv(tmp_path / "accounts.csv", index=False)
    text = _broken("generate: software_company\n    generator: {n: 2000, seed: 1}", "path: accounts.csv")
    catalogue = tmp_path / "studies.yaml"
    catalogue.write_text(text)
    study = load_catalog(catalogue)[0]
    data = study_data(study, str(catalogue))
    assert list(data["unit_id"]) == list(range(300))
    assert "Total Treatment Effect: Tech Support" in data.columns
    assert data["Tech Support"].isin([0, 1]).all()
    # without truth columns, the same definition still reads the file
    pd.read_csv(tmp_path / "accounts.csv").iloc[:, :14].to_parquet(tmp_path / "plain.parquet")
    catalogue.write_text(text.replace("path: accounts.csv", "path: plain.parquet"))
    plain = study_data(load_catalog(catalogue)[0], str(catalogue))
    assert len(plain) == 300 and not any("Treatment Effect" in c for c in plain.columns)
    catalogue.write_text(text.replace("path: accounts.csv", "path: missing.csv"))
    with pytest.raises(StudyCatalogError, match="study 'sw': path .*missing.csv' does not exist"):
        study_data(load_catalog(catalogue)[0], str(catalogue))


def test_a_study_may_not_take_a_key_another_stage_writes_under():
    # `retail_beef` would replace the retail study of beef in the incentive_* tables.
    with pytest.raises(StudyCatalogError) as err:
        parse_catalog(_broken("  sw:", "  retail_beef:"), "test.yaml")
    assert str(err.value) == (
        "test.yaml: study 'retail_beef': keys starting with 'retail_' are reserved for the retail campaign studies "
        "of the product groups (retail_<group>), which write the same lake tables under study=<key>; choose another key"
    )
    assert [s.key for s in parse_catalog(_broken("  sw:", "  retailer_beef:"), "test.yaml")] == ["retailer_beef"]


def test_a_study_path_must_be_a_regular_readable_table_and_errors_never_quote_it(tmp_path, monkeypatch):
    import os

    from propensity_assets.incentives import catalog as catalog_module
    from propensity_assets.incentives.study import study_data

    catalogue = tmp_path / "studies.yaml"

    def read(path: str):
        text = _broken("generate: software_company\n    generator: {n: 2000, seed: 1}", f"path: {path}")
        catalogue.write_text(text)
        with pytest.raises(StudyCatalogError) as err:
            study_data(load_catalog(catalogue)[0], str(catalogue))
        return str(err.value)

    where = f"{catalogue}: study 'sw': path "
    os.mkfifo(tmp_path / "pipe.csv")  # reading it would block for ever
    assert read("pipe.csv") == where + f"'{tmp_path / 'pipe.csv'}' is a named pipe; expected a regular CSV or Parquet file"
    (tmp_path / "folder.csv").mkdir()
    assert read("folder.csv") == where + f"'{tmp_path / 'folder.csv'}' is a directory; expected a regular CSV or Parquet file"
    # A secret behind a .csv link: refused for its columns, without its header in the message.
    (tmp_path / "secret.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "secret.txt")
    message = read("link.csv")
    assert "root" not in message.replace(str(tmp_path), "")
    assert message.endswith("not in the study table (1 columns)")
    (tmp_path / "ragged.csv").write_text('a,b\n1,2\n3,4,5,"secret"\n')
    assert read("ragged.csv") == where + f"'{tmp_path / 'ragged.csv'}' is not a CSV table with a header row (ParserError)"
    (tmp_path / "table.parquet").write_text("not parquet")
    assert read("table.parquet") == where + f"'{tmp_path / 'table.parquet'}' is not a Parquet file (ArrowInvalid)"
    monkeypatch.setattr(catalog_module, "MAX_STUDY_FILE_BYTES", 10)
    assert read("ragged.csv") == where + f"'{tmp_path / 'ragged.csv'}' holds 23 bytes, more than the 10 a study table may"
