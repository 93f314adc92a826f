"""The product-group catalogue: `data/product_groups.yaml` (CONTRACTS §2).

Pure logic: load and validate the YAML, and resolve each group to its products.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from propensity_assets.shared.catalogs import parse_yaml

KEY_PATTERN = re.compile(r"[a-z0-9_]+")  # matched whole: `$` would accept a trailing newline
# A catalogue is a short hand-written file: anything larger is refused before it is read.
MAX_BYTES = 1_000_000

# selector in the YAML → column of `products` it matches
SELECTORS = {
    "categories": "product_category",
    "departments": "department",
    "brands": "brand",
    "product_ids": "product_id",
}


class CatalogError(ValueError):
    """The product-group catalogue is invalid; the message names the file and group."""


@dataclass(frozen=True)
class ProductGroup:
    key: str
    description: str
    selectors: dict[str, tuple] = field(default_factory=dict)
    # `all: true`: every product, including product ids that `products` does not know.
    everything: bool = False

    def members(self, products: pd.DataFrame) -> pd.Series:
        """Boolean mask over `products`: the products that belong to this group."""
        mask = pd.Series(False, index=products.index)
        for selector, values in self.selectors.items():
            mask |= products[SELECTORS[selector]].isin(values)
        return mask


def parse_catalog(text: str, source: str = "product_groups.yaml") -> list[ProductGroup]:
    """Parse and structurally validate a catalogue. Errors name `source` and the group."""
    doc = parse_yaml(text, source, CatalogError)
    if not isinstance(doc, dict) or not isinstance(doc.get("product_groups"), dict):
        raise CatalogError(f"{source}: expected a top-level mapping 'product_groups: {{<key>: ...}}'")
    groups = []
    for key, body in doc["product_groups"].items():
        where = f"{source}: product group {key!r}"
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise CatalogError(f"{where}: key must be lowercase letters, digits and '_' ([a-z0-9_]+)")
        if not isinstance(body, dict):
            raise CatalogError(f"{where}: expected a mapping with 'description' and 'categories'")
        unknown = set(body) - set(SELECTORS) - {"description", "all"}
        if unknown:
            raise CatalogError(
                f"{where}: unknown field(s) {sorted(unknown)}; allowed: description, all, {', '.join(SELECTORS)}"
            )
        if "all" in body:
            if body["all"] is not True:
                raise CatalogError(f"{where}: 'all' must be true (select every product) or left out")
            if set(body) & set(SELECTORS):
                raise CatalogError(f"{where}: 'all: true' selects every product; remove the other selectors")
            groups.append(ProductGroup(key, str(body.get("description") or key), {}, everything=True))
            continue
        selectors = {}
        for selector in SELECTORS:
            values = body.get(selector)
            if values is None:
                continue
            if not isinstance(values, list) or not all(isinstance(v, (str, int)) for v in values):
                raise CatalogError(f"{where}: '{selector}' must be a list")
            if values:
                selectors[selector] = tuple(values)
        if not selectors:
            raise CatalogError(f"{where}: the group is empty; give 'all: true' or at least one of {', '.join(SELECTORS)}")
        groups.append(ProductGroup(key, str(body.get("description") or key), selectors))
    if not groups:
        raise CatalogError(f"{source}: no product groups defined")
    return groups


def load_catalog(path: str | Path) -> list[ProductGroup]:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CatalogError(f"{path}: {path.stat().st_size:,} bytes; a catalogue is at most {MAX_BYTES:,} bytes")
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the product-group catalogue: {exc}") from None
    return parse_catalog(text, str(path))


def resolve(groups: list[ProductGroup], products: pd.DataFrame, source: str = "product_groups.yaml") -> pd.DataFrame:
    """Map each group to its products: a frame (product_group, product_id).

    Every selector value must exist in `products` (an exact match: `CHEESES` is not
    `CHEESE`), and every group must select at least one product. An `all: true` group
    is one row with a null product_id, which `membership.group_transactions` reads as
    "every transaction", so product ids unknown to `products` count too.
    """
    frames = []
    for group in groups:
        if group.everything:
            frames.append(pd.DataFrame({"product_group": [group.key], "product_id": pd.array([None], dtype="Int64")}))
            continue
        for selector, values in group.selectors.items():
            column = SELECTORS[selector]
            known = set(products[column].dropna().unique())
            for value in values:
                if value not in known:
                    hint = difflib.get_close_matches(str(value), [str(k) for k in known], n=1)
                    raise CatalogError(
                        f"{source}: product group {group.key!r}: unknown {selector[:-1] if selector != 'categories' else 'category'} "
                        f"{value!r} (no product has {column} = {value!r})"
                        + (f"; did you mean {hint[0]!r}?" if hint else "")
                    )
        ids = products.loc[group.members(products), "product_id"].drop_duplicates()
        if ids.empty:
            raise CatalogError(f"{source}: product group {group.key!r} selects no products")
        frames.append(pd.DataFrame({"product_group": group.key, "product_id": pd.array(ids.to_numpy(), dtype="Int64")}))
    return pd.concat(frames, ignore_index=True)
