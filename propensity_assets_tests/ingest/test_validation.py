"""Validation of raw tables: invalid rows quarantined with a reason, suspicious rows
kept and counted, malformed files refused with the file and column named."""

import json
from pathlib import Path

import pandas as pd
import pytest

from propensity_assets.ingest.sources import SCHEMA, RawTable, SourceError, read_source
from propensity_assets.ingest.validation import ValidationRules, coerce, empty_table, validate

TX_HEADER = "household_id,basket_id,product_id,quantity,sales_value,transaction_timestamp"
RULES = ValidationRules(min_timestamp="2017-01-01", max_timestamp="2018-01-02")


def write_csv(directory: Path, table: str, lines: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{table}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def strict_json(text: str) -> dict:
    """A JSON parser that, like DuckDB or Spark, refuses NaN/Infinity."""

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def tx_raw(tmp_path: Path, lines: list[str]) -> RawTable:
    write_csv(tmp_path / "src", "transactions", [TX_HEADER, *lines])
    return read_source("transactions", str(tmp_path / "src"))


GOOD = [
    "1,10,100,1,2.50,2017-03-01 10:00:00",
    "1,10,101,2,3.00,2017-03-01 10:00:00",
    "2,11,100,1,2.50,2017-04-02 08:30:00",
    "3,12,102,1,1.25,2017-05-03 18:00:00",
]


# -- invalid rows ----------------------------------------------------------------------------


def test_clean_csv_is_all_valid_and_typed(tmp_path):
    raw = tx_raw(tmp_path, GOOD)
    assert raw.origin.endswith("transactions.csv")
    assert (raw.frame.dtypes == object).all()  # CSV is read as text; validation types it
    result = validate(raw, RULES)
    assert result.rows_in == 4 and len(result.valid) == 4
    assert result.invalid_counts == {} and len(result.quarantine) == 0
    assert result.invalid_share == 0.0 and result.duplicate_share == 0.0
    valid = result.valid
    assert str(valid["household_id"].dtype) == "Int64"
    assert str(valid["basket_id"].dtype) == "Int64"
    assert str(valid["product_id"].dtype) == "Int64"
    assert valid["quantity"].dtype == "float64" and valid["sales_value"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(valid["transaction_timestamp"])
    assert valid["sales_value"].tolist() == [2.5, 3.0, 2.5, 1.25]
    assert valid["transaction_timestamp"].iloc[3] == pd.Timestamp("2017-05-03 18:00:00")
    assert result.suspicious_counts == {"nonpositive_quantity_with_sales": 0}


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (",13,100,1,2.50,2017-03-01 10:00:00", "null:household_id"),
        ("4,,100,1,2.50,2017-03-01 10:00:00", "null:basket_id"),
        ("4,13,100,1,2.50,", "null:transaction_timestamp"),
        ("4,13,100,abc,2.50,2017-03-01 10:00:00", "unparseable:quantity"),
        ("4,13,1.5,1,2.50,2017-03-01 10:00:00", "unparseable:product_id"),  # ids are whole numbers
        ("4,13,100,1,2.50,not a date", "unparseable:transaction_timestamp"),
        ("4,13,100,1,-2.50,2017-03-01 10:00:00", "negative_sales_value"),
        ("4,13,100,1,inf,2017-03-01 10:00:00", "non_finite:sales_value"),  # would make every sum infinite
        ("4,13,100,-inf,2.50,2017-03-01 10:00:00", "non_finite:quantity"),
        ("4,13,100,1,2.50,1999-12-31 23:00:00", "timestamp_out_of_range:transaction_timestamp"),
        ("4,13,100,1,2.50,2018-06-01 00:00:00", "timestamp_out_of_range:transaction_timestamp"),
        (GOOD[0], "duplicate_row"),
    ],
)
def test_each_invalid_reason(tmp_path, bad_line, reason):
    raw = tx_raw(tmp_path, [*GOOD, bad_line])
    result = validate(raw, RULES)
    assert result.invalid_counts == {reason: 1}
    assert len(result.valid) == 4 and result.rows_in == 5
    q = result.quarantine
    assert list(q.columns) == ["source_table", "reason", "record"]
    assert q["source_table"].tolist() == ["transactions"] and q["reason"].tolist() == [reason]
    record = strict_json(q["record"].iloc[0])
    assert set(record) == set(TX_HEADER.split(","))
    assert record["basket_id"] == bad_line.split(",")[1] or record["basket_id"] is None
    if reason == "duplicate_row":
        assert result.duplicate_share == pytest.approx(1 / 5) and result.invalid_share == 0.0
    else:
        assert result.invalid_share == pytest.approx(1 / 5) and result.duplicate_share == 0.0


def test_counts_per_reason_and_one_reason_per_row(tmp_path):
    lines = [
        *GOOD,
        ",13,100,1,2.50,2017-03-01 10:00:00",  # null key
        ",14,100,1,-9,2017-03-01 10:00:00",  # null key AND negative: the first problem wins
        "5,15,100,abc,2.50,2017-03-01 10:00:00",
        "5,16,100,xyz,2.50,2017-03-01 10:00:00",
        "5,17,100,1,-0.01,2017-03-01 10:00:00",
        "5,18,100,1,1.00,2016-12-31 23:59:59",
        GOOD[1],
        GOOD[1],
    ]
    result = validate(tx_raw(tmp_path, lines), RULES)
    assert result.invalid_counts == {
        "null:household_id": 2,
        "unparseable:quantity": 2,
        "negative_sales_value": 1,
        "timestamp_out_of_range:transaction_timestamp": 1,
        "duplicate_row": 2,
    }
    assert len(result.quarantine) == 8 and len(result.valid) == 4
    assert result.rows_in == 12
    assert result.invalid_share == pytest.approx(6 / 12)
    assert result.duplicate_share == pytest.approx(2 / 12)
    assert sorted(result.valid["basket_id"].tolist()) == [10, 10, 11, 12]  # one copy of a duplicate is kept
    for text in result.quarantine["record"]:
        strict_json(text)


def test_timestamp_bounds_follow_the_rules(tmp_path):
    lines = [*GOOD, "4,13,100,1,2.50,2010-06-01 00:00:00"]
    # Default rules: 1900-01-01 .. tomorrow, so 2010 is fine.
    assert validate(tx_raw(tmp_path, lines)).invalid_counts == {}
    strict = validate(tx_raw(tmp_path, lines), ValidationRules(min_timestamp="2015-01-01"))
    assert strict.invalid_counts == {"timestamp_out_of_range:transaction_timestamp": 1}
    tight = validate(tx_raw(tmp_path, lines), ValidationRules("2000-01-01", "2017-04-30"))
    assert tight.invalid_counts == {"timestamp_out_of_range:transaction_timestamp": 1}  # 2010-06 ok, 2017-05-03 not
    assert tight.valid["transaction_timestamp"].max() < pd.Timestamp("2017-04-30")
    future = (pd.Timestamp.now() + pd.Timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert validate(tx_raw(tmp_path, [*GOOD, f"4,13,100,1,2.50,{future}"])).invalid_counts == {
        "timestamp_out_of_range:transaction_timestamp": 1
    }


def test_optional_columns_may_be_null_but_must_parse(tmp_path):
    header = TX_HEADER + ",store_id,retail_disc"
    lines = [
        header,
        "1,10,100,1,2.50,2017-03-01 10:00:00,,",  # optional nulls: fine
        "1,10,101,1,2.50,2017-03-01 10:00:00,7,-0.5",
        "1,10,102,1,2.50,2017-03-01 10:00:00,store9,0",
    ]
    write_csv(tmp_path / "src", "transactions", lines)
    result = validate(read_source("transactions", str(tmp_path / "src")), RULES)
    assert result.invalid_counts == {"unparseable:store_id": 1}
    assert result.valid["store_id"].isna().tolist() == [True, False]
    assert result.valid["retail_disc"].tolist()[1] == -0.5


def test_parquet_frames_with_native_types(tmp_path):
    frame = pd.DataFrame(
        {
            "household_id": pd.Series([1, None, 3, 4], dtype="Int64"),
            "basket_id": [10, 11, 12, 13],
            "product_id": [100, 100, 101, 999],
            "quantity": [1, 1, 0, 2],
            "sales_value": [2.5, 2.5, 3.0, 1.0],
            "transaction_timestamp": pd.to_datetime(["2017-03-01"] * 4),
            "week": [9, 9, 9, 9],  # extra columns are kept
        }
    )
    (tmp_path / "src").mkdir()
    frame.to_parquet(tmp_path / "src" / "transactions.parquet")
    raw = read_source("transactions", str(tmp_path / "src"))
    assert raw.origin.endswith("transactions.parquet")
    result = validate(raw, RULES, known_products=pd.Series([100, 101]))
    assert result.invalid_counts == {"null:household_id": 1}
    assert strict_json(result.quarantine["record"].iloc[0])["household_id"] is None
    assert result.suspicious_counts == {"nonpositive_quantity_with_sales": 1, "unknown_product_id": 1}
    assert "week" in result.valid.columns


def test_a_boolean_sales_value_column_is_the_wrong_type(tmp_path):
    frame = pd.DataFrame({"household_id": [1, 2], "basket_id": [10, 11], "product_id": [100, 100],
                          "quantity": [1, 1], "sales_value": [True, False],
                          "transaction_timestamp": pd.to_datetime(["2017-03-01"] * 2)})
    (tmp_path / "src").mkdir()
    frame.to_parquet(tmp_path / "src" / "transactions.parquet")
    raw = read_source("transactions", str(tmp_path / "src"))
    with pytest.raises(SourceError) as info:
        validate(raw, RULES)
    assert str(info.value) == (
        f"{raw.origin}: column 'sales_value' of table 'transactions' has the wrong type: "
        "expected numbers, got booleans (bool): True/False is not an amount"
    )


# -- suspicious rows -------------------------------------------------------------------------


def test_suspicious_rows_are_kept_and_counted(tmp_path):
    lines = [
        *GOOD,
        "4,13,100,0,2.50,2017-03-01 10:00:00",  # zero quantity, positive sales
        "4,13,101,-1,1.00,2017-03-01 10:00:00",  # negative quantity, positive sales
        "4,13,101,0,0,2017-03-01 10:00:00",  # zero and zero: not suspicious
        "4,14,555,1,1.00,2017-03-01 10:00:00",  # unknown product
        "4,14,556,0,1.00,2017-03-01 10:00:00",  # both
    ]
    known = pd.Series([100, 101, 102], dtype="Int64")
    result = validate(tx_raw(tmp_path, lines), RULES, known_products=known)
    assert result.invalid_counts == {} and len(result.valid) == 9
    assert result.suspicious_counts == {"nonpositive_quantity_with_sales": 3, "unknown_product_id": 2}
    # Without `products`, the unknown-id count is not reported at all.
    assert validate(tx_raw(tmp_path, lines), RULES).suspicious_counts == {"nonpositive_quantity_with_sales": 3}


def test_other_tables_report_no_transaction_suspicions(tmp_path):
    write_csv(tmp_path / "src", "products", ["product_id,product_category", "1,EGGS", "2,", "x,BEEF"])
    result = validate(read_source("products", str(tmp_path / "src")))
    # product_category is a string: null is allowed; product_id must parse.
    assert result.invalid_counts == {"unparseable:product_id": 1}
    assert result.suspicious_counts == {}
    assert result.valid["product_category"].tolist()[0] == "EGGS"


# -- malformed files -------------------------------------------------------------------------


def test_missing_required_column_names_file_and_column(tmp_path):
    path = write_csv(
        tmp_path / "src",
        "transactions",
        ["household_id,basket_id,product_id,quantity,transaction_timestamp", "1,10,100,1,2017-03-01"],
    )
    raw = read_source("transactions", str(tmp_path / "src"))
    with pytest.raises(SourceError) as err:
        validate(raw, RULES)
    message = str(err.value)
    assert str(path) in message and "sales_value" in message and "'transactions'" in message


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_column_entirely_of_the_wrong_type(tmp_path, fmt):
    frame = pd.DataFrame(
        {
            "household_id": ["1", "2"],
            "basket_id": ["10", "11"],
            "product_id": ["100", "101"],
            "quantity": ["a few", "many"],
            "sales_value": ["1.0", "2.0"],
            "transaction_timestamp": ["2017-03-01", "2017-03-02"],
        }
    )
    src = tmp_path / "src"
    src.mkdir()
    path = src / f"transactions.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    with pytest.raises(SourceError) as err:
        validate(read_source("transactions", str(src)), RULES)
    message = str(err.value)
    assert str(path) in message and "'quantity'" in message and "wrong type" in message and "'a few'" in message


def test_timestamp_column_of_text_is_the_wrong_type(tmp_path):
    write_csv(
        tmp_path / "src",
        "coupon_redemptions",
        ["household_id,coupon_upc,campaign_id,redemption_date", "1,5,1,yesterday", "2,6,1,soon"],
    )
    with pytest.raises(SourceError, match=r"coupon_redemptions\.csv.*'redemption_date'.*expected timestamp"):
        validate(read_source("coupon_redemptions", str(tmp_path / "src")))


def test_garbage_parquet_is_unreadable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "products.parquet"
    path.write_bytes(b"this is not parquet\x00\xff\xfe" * 10)
    with pytest.raises(SourceError) as err:
        read_source("products", str(src))
    assert str(path) in str(err.value) and "unreadable" in str(err.value)


def test_missing_required_table(tmp_path):
    write_csv(tmp_path / "src", "products", ["product_id,product_category", "1,EGGS"])
    with pytest.raises(SourceError) as err:
        read_source("transactions", str(tmp_path / "src"))
    message = str(err.value)
    assert "'transactions'" in message and str(tmp_path / "src") in message


def test_missing_directory_and_unknown_table(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_source("products", str(tmp_path / "nowhere"))
    with pytest.raises(SourceError, match="unknown table 'baskets'"):
        read_source("baskets", str(tmp_path))


@pytest.mark.parametrize("table", ["households", "campaigns", "campaign_descriptions", "coupons", "coupon_redemptions"])
def test_optional_table_missing_gives_no_frame(tmp_path, table):
    write_csv(tmp_path / "src", "products", ["product_id,product_category", "1,EGGS"])
    raw = read_source(table, str(tmp_path / "src"))
    assert raw.frame is None and raw.name == table
    empty = empty_table(table)
    assert len(empty) == 0 and list(empty.columns) == list(SCHEMA[table][0])


def test_parquet_is_preferred_over_csv(tmp_path):
    src = tmp_path / "src"
    write_csv(src, "products", ["product_id,product_category", "1,FROM CSV"])
    pd.DataFrame({"product_id": [1], "product_category": ["FROM PARQUET"]}).to_parquet(src / "products.parquet")
    raw = read_source("products", str(src))
    assert raw.frame["product_category"].tolist() == ["FROM PARQUET"]


def test_coerce_reports_first_problem_per_row():
    frame = pd.DataFrame(
        {"campaign_id": ["1", None, "x", "4"], "household_id": ["7", "8", "9", None]},
    )
    typed, problem = coerce(RawTable("campaigns", frame, "campaigns.csv"))
    assert pd.isna(problem.iloc[0])
    assert problem.iloc[1:].tolist() == ["null:campaign_id", "unparseable:campaign_id", "null:household_id"]
    assert typed["household_id"].tolist()[:3] == [7, 8, 9]
