"""Raw assets: the seven tables of CONTRACTS §1, validated and written to the lake as Parquet."""


from typing import Optional

import dagster as dg

from propensity_assets.ingest.sources import SCHEMA, read_source
from propensity_assets.ingest.validation import DEFAULT_MIN_TIMESTAMP, ValidationRules, empty_table, validate
from propensity_assets.groups.catalog import CatalogError, load_catalog, resolve
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.ingest.resources import SourceResource
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared import tables



class IngestConfig(dg.Config):
    """Validation thresholds, editable in the launchpad."""

    max_invalid_share: float = 0.01
    # An exact duplicate loses nothing (one copy is kept), so it has its own, looser bound:
    # the embedded `coupons` table repeats 4.2% of its rows; a double-loaded file repeats 50%.
    max_duplicate_share: float = 0.10
    max_suspicious_share: float = 0.01
    min_timestamp: str = DEFAULT_MIN_TIMESTAMP
    max_timestamp: Optional[str] = None  # default: tomorrow


def _reason_table(counts: dict[str, int]) -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("none")
    rows = "\n".join(f"| {reason} | {n:,} |" for reason, n in sorted(counts.items()))
    return dg.MetadataValue.md(f"| reason | rows |\n|---|---:|\n{rows}")


def _previous_rows(lake: LakeResource, table: str) -> int:
    """Rows of the lake's current `table` (0 when there is none)."""
    if not lake.lake.exists(table):
        return 0
    return lake.lake.read_arrow(table).num_rows


def _check_catalogue(raw, products, groups_path: str) -> None:
    """Refuse new products that the product-group catalogue cannot resolve, before anything
    is written: products, members and transactions would otherwise be left half-updated."""
    try:
        groups = load_catalog(groups_path)
    except CatalogError:
        return  # the catalogue's own error is reported by product_group_members and the sync
    try:
        resolve(groups, products, groups_path)
    except CatalogError as exc:
        raise dg.Failure(
            f"{raw.origin}: the new 'products' table does not resolve the product-group catalogue: {exc}. "
            "Nothing was written: the lake keeps its previous products. Fix the catalogue or the products file.",
            allow_retries=False,
        ) from None


def _build_raw_asset(table: str) -> dg.AssetsDefinition:
    required, optional = SCHEMA[table]
    checks = [
        dg.AssetCheckSpec(
            "invalid_rows",
            asset=table,
            blocking=True,
            description="Fails the run when the share of quarantined rows exceeds max_invalid_share.",
        )
    ]
    if table == tables.TRANSACTIONS:
        checks.append(
            dg.AssetCheckSpec(
                "suspicious_rows",
                asset=table,
                description=(
                    "Counts kept-but-suspicious rows: non-positive quantity with positive "
                    "sales_value, and product ids unknown to `products`. Warns above max_suspicious_share."
                ),
            )
        )

    @dg.asset(
        name=table,
        group_name="ingest",
        kinds={"pandas", "parquet"},
        deps=[tables.PRODUCTS] if table == tables.TRANSACTIONS else [],
        check_specs=checks,
        description=(
            f"Raw `{table}` from the source (the embedded Complete Journey data by default), "
            f"validated and written to `<lake>/{table}/`. Required columns: {', '.join(required)}"
            + (f"; optional: {', '.join(optional)}" if optional else "")
            + ". Invalid rows go to `<lake>/quarantine/` with a reason."
        ),
    )
    def raw_table(
        context: dg.AssetExecutionContext,
        config: IngestConfig,
        lake: LakeResource,
        source: SourceResource,
        product_groups: ProductGroupsResource,
    ):
        raw = read_source(table, source.directory)
        if raw.frame is None:
            kept = _previous_rows(lake, table)
            if kept:
                # A source without this table keeps what an earlier ingest brought: a file
                # left out of a directory must not erase campaigns or demographics. An
                # empty file with the header empties the table on purpose.
                note = (f"the source has no {table} table ({raw.origin}); kept the previously ingested "
                        f"{table} ({kept:,} rows). To empty it, give a {table} file with the header only.")
                context.log.warning(note)
                meta = {"rows": kept, "source": "kept: previous ingest", "note": note, "kept_previous": True}
            else:
                lake.lake.write_pandas(table, empty_table(table))
                note = f"the source has no {table} table ({raw.origin}); written empty"
                context.log.info(note)
                meta = {"rows": 0, "source": raw.origin, "note": note, "kept_previous": False}
            yield dg.MaterializeResult(metadata=meta)
            yield dg.AssetCheckResult(check_name="invalid_rows", passed=True, metadata={"rows_in": 0})
            if table == tables.TRANSACTIONS:
                yield dg.AssetCheckResult(check_name="suspicious_rows", passed=True)
            return

        if table == tables.TRANSACTIONS and len(raw.frame) == 0:
            # Everything downstream is computed from transactions: an empty file would
            # silently empty every feature, label and score partition recomputed from it.
            raise dg.Failure(
                f"{raw.origin}: the 'transactions' table has no rows; expected at least one transaction. "
                "Nothing was written: the lake keeps its previous transactions.",
                allow_retries=False,
            )
        known_products = (
            lake.lake.read_pandas(tables.PRODUCTS, columns=["product_id"])["product_id"]
            if table == tables.TRANSACTIONS
            else None
        )
        if known_products is not None and known_products.empty:
            known_products = None  # no products table: nothing to check ids against
        rules = ValidationRules(config.min_timestamp, config.max_timestamp)
        result = validate(raw, rules, known_products)
        lake.lake.write_pandas(
            tables.QUARANTINE, result.quarantine, ["source_table"], specs=[{"source_table": table}]
        )
        invalid_ok = (
            result.invalid_share <= config.max_invalid_share
            and result.duplicate_share <= config.max_duplicate_share
        )
        invalid_meta = {
            "rows_in": result.rows_in,
            "quarantined": len(result.quarantine),
            "invalid_share": round(result.invalid_share, 6),
            "max_invalid_share": config.max_invalid_share,
            "duplicate_share": round(result.duplicate_share, 6),
            "max_duplicate_share": config.max_duplicate_share,
            "reasons": _reason_table(result.invalid_counts),
        }
        if not invalid_ok:
            # Record the failed check, then refuse before writing: the lake keeps the
            # previous good version of the table and nothing downstream runs.
            yield dg.AssetCheckResult(check_name="invalid_rows", passed=False, metadata=invalid_meta)
            raise dg.Failure(
                description=(
                    f"{raw.origin}: {len(result.quarantine):,} of {result.rows_in:,} rows of table "
                    f"{table!r} are invalid (invalid share {result.invalid_share:.2%}, limit "
                    f"max_invalid_share={config.max_invalid_share:.2%}; duplicate share "
                    f"{result.duplicate_share:.2%}, limit max_duplicate_share="
                    f"{config.max_duplicate_share:.2%}; reasons: "
                    + ", ".join(f"{reason} {n:,}" for reason, n in sorted(result.invalid_counts.items()))
                    + f"). They are in the lake's quarantine table "
                    f"(source_table={table}); the previous version of {table!r} is kept."
                    + rules.bounds_note(table, result.invalid_counts)
                ),
                metadata=invalid_meta,
            )
        if table == tables.PRODUCTS:
            _check_catalogue(raw, result.valid, product_groups.path)
        lake.lake.write_pandas(table, result.valid)
        metadata = {
            "rows": len(result.valid),
            "source": raw.origin,
            "lake_path": lake.lake.uri(table),
            "quarantined": len(result.quarantine),
            **{f"invalid:{reason}": n for reason, n in result.invalid_counts.items()},
            **{f"suspicious:{reason}": n for reason, n in result.suspicious_counts.items()},
        }
        if "transaction_timestamp" in result.valid.columns and len(result.valid):
            ts = result.valid["transaction_timestamp"]
            metadata.update(first_timestamp=str(ts.min()), last_timestamp=str(ts.max()))
            metadata["households"] = int(result.valid["household_id"].nunique())
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(check_name="invalid_rows", passed=True, metadata=invalid_meta)
        if table == tables.TRANSACTIONS:
            suspicious = sum(result.suspicious_counts.values())
            share = suspicious / len(result.valid) if len(result.valid) else 0.0
            yield dg.AssetCheckResult(
                check_name="suspicious_rows",
                passed=share <= config.max_suspicious_share,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "suspicious_rows": suspicious,
                    "suspicious_share": round(share, 6),
                    "reasons": _reason_table(result.suspicious_counts),
                },
            )

    return raw_table


raw_assets = [_build_raw_asset(table) for table in SCHEMA]
