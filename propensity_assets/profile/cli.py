"""The profile room's command: `sql-catalog`, the lake's SQL catalogue (the `sql_catalog`
asset's DuckDB file), or the Spark SQL that registers the same tables on a cluster."""

import argparse


def cmd_sql_catalog(args: argparse.Namespace) -> int:
    from propensity_assets.shared import settings, sql_catalog
    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    if args.spark_sql:
        print(sql_catalog.spark_sql(sql_catalog.lake_tables(lake)))
        return 0
    path = args.out or sql_catalog.default_path(lake)
    written = sql_catalog.write_duckdb(lake, path)
    print(f"{path}: {len(written)} views ({', '.join(t.name for t in written) or 'the lake holds no table'})")
    return 0


def register(sub) -> None:
    cmd = sub.add_parser("sql-catalog", help="write a DuckDB file with one view per lake table (or print Spark SQL)")
    cmd.add_argument("--out", help="the DuckDB file; default data/lake.duckdb beside the lake")
    cmd.add_argument("--spark-sql", action="store_true",
                     help="print CREATE TABLE ... USING parquet LOCATION statements for a Spark catalogue instead")
    cmd.set_defaults(func=cmd_sql_catalog)
