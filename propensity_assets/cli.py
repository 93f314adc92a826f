"""`propensity-assets`: project commands that Dagster's own CLI lacks.

- `sync-groups`: add/remove `product_group` partitions to match the catalogue on the
  persistent instance (the `dagster` CLI cannot add dynamic partitions).
- `partition-range START [END] [--group G]`: print the `--partition-range` argument
  that covers those dates for one group or for all groups, in the instance's order;
  `partition-range --groups-only` prints the range over all groups (for assets
  partitioned by group alone).
- `summary --as-of D`: what the lake holds for one as_of.
- `sync-studies`: the same for the `incentive_study` partitions and data/incentive_studies.yaml.
- `incentives STUDY`: the study's ATE table, refutations and policy comparison from the lake.
- `retail`: the verdict table of the product groups' retail campaign studies.
- `compile-btyd --as-of D`: fit the BTYD baseline once on the lake's household features
  at D, so that pytensor compiles its C code (~50 s, once per machine) before a training
  needs it; `make demo` runs it beside the label backfill.
- `promote GROUP VERSION [--stage S]`: move `champion` of `S__GROUP` (default propensity) to VERSION.
- `audience --group G --as-of D (--top K | --deciles N | --threshold P | --min-expected-value C)
  [--incentive X] [--out F]`: one campaign's audience from the lake, printed and written as CSV.
- `sql-catalog [--out F] [--spark-sql]`: the DuckDB file with a view per lake table
  (data/lake.duckdb), or the Spark SQL that registers the tables on a cluster.
- `demo-dates`: the demo's dates derived from the ingested transactions, as Make variables
  (`make demo` on PROPENSITY_SOURCE_DIR; ingest/demo_dates.py).
- `scale-data --factor N --out DIR [--seed S]`: write a synthetic dataset of N times the
  embedded households in the canonical schema, for `PROPENSITY_SOURCE_DIR` (ingest/scale.py).
"""

import argparse
import sys

from propensity_assets.shared import settings


def _stages():
    """The modelling stages whose holdout reports `summary` prints."""
    from propensity_assets.ltv.stage import LTV
    from propensity_assets.propensity.stage import PROPENSITY

    return (PROPENSITY, LTV)


def main(argv: list[str] | None = None) -> int:
    from propensity_assets.audiences import cli as audiences
    from propensity_assets.groups import cli as groups
    from propensity_assets.incentives import cli as incentives
    from propensity_assets.ingest import cli as ingest
    from propensity_assets.lifecycle import cli as lifecycle
    from propensity_assets.ltv import cli as ltv
    from propensity_assets.profile import cli as profile
    from propensity_assets.shared import cli as shared

    parser = argparse.ArgumentParser(prog="propensity-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    groups.register(sub)
    incentives.register(sub)
    shared.register(sub)
    lifecycle.register(sub, _stages())
    ltv.register(sub)
    ingest.register(sub)
    audiences.register(sub)
    profile.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Every error a user can act on names what is wrong; the traceback is for bugs.
        if settings.debug():
            raise
        known = _known_errors()
        prefix = "" if isinstance(exc, known) else f"{type(exc).__name__}: "
        print(f"error: {prefix}{exc}", file=sys.stderr)
        if not isinstance(exc, known):
            print("(set PROPENSITY_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2 if isinstance(exc, known) else 1


def _known_errors() -> tuple[type[Exception], ...]:
    """The project's own errors: their message is the whole story."""
    from propensity_assets.audiences.rules import AudienceError
    from propensity_assets.groups.catalog import CatalogError
    from propensity_assets.incentives.catalog import StudyCatalogError
    from propensity_assets.ingest.demo_dates import DemoDatesError
    from propensity_assets.ingest.scale import ScaleError
    from propensity_assets.ingest.sources import SourceError
    from propensity_assets.shared.registry import RegistryUnreachable

    return (settings.SettingsError, AudienceError, CatalogError, StudyCatalogError, SourceError, ScaleError,
            DemoDatesError, RegistryUnreachable)


if __name__ == "__main__":
    sys.exit(main())
