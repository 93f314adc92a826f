"""The lifecycle's commands, over the modelling stages the CLI passes in: `summary --as-of D`
(what the lake holds for one as_of, and each stage's champions on it against the
baselines) and `promote GROUP VERSION`."""

import argparse
import functools
import sys

from propensity_assets.shared import settings, tables
from propensity_assets.shared.registry import MODEL_FAMILIES


def cmd_summary(args: argparse.Namespace, stages) -> int:
    """What the lake holds for one as_of: the numbers a user checks after `make demo`."""
    import pyarrow.dataset as ds

    from propensity_assets.shared.lake import Lake

    lake = Lake(settings.lake_uri())
    filt = ds.field("as_of") == args.as_of
    try:
        hh = lake.read_pandas(tables.HOUSEHOLD_FEATURES, filters=filt, columns=["household_id"])
        grp = lake.read_pandas(tables.GROUP_FEATURES, filters=filt, columns=["product_group", "household_id"])
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"lake: {lake.root}")
    print(f"household_features as_of {args.as_of}: {len(hh):,} households")
    print(f"group_features as_of {args.as_of}:")
    for group, rows in grp.groupby("product_group").size().items():
        print(f"  {group:<22} {rows:>7,} rows")
    for title, report in holdout_reports(lake, args.as_of, stages):
        print(title)
        print(report.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if lake.exists(tables.CUSTOMER_PROFILE, {"as_of": args.as_of}):
        profile = lake.read_pandas(tables.CUSTOMER_PROFILE, filters=filt)
        columns = [c for c in profile.columns if "__" in c and "_decile__" not in c]
        print(f"customer_profile as_of {args.as_of}: {len(profile):,} households x {len(columns)} columns "
              f"({', '.join(sorted({c.split('__')[0] for c in columns}))})")
    return 0


def holdout_reports(lake, as_of: str, stages):
    """(title, table) per modelling stage with scores and labels at `as_of`: each stage's
    declared report metrics, against its naive baselines."""
    from propensity_assets.lifecycle.evaluation import holdout_report

    for stage in stages:
        metrics = list(stage.report_metrics)
        report = holdout_report(stage, lake, as_of, metrics)
        if report.empty:
            continue
        means = ", ".join(f"mean {m} {report[m].mean():.4f}" for m in metrics[:2])
        yield (
            f"{stage.name} champions on the holdout as_of {as_of} {stage.report_window.format(as_of=as_of)} "
            f"vs the naive baselines; {means}",
            report,
        )


def cmd_promote(args: argparse.Namespace) -> int:
    """Move `champion` of <stage>__<group> to a version (manual promotion): a vetted, complete
    one, or any with --force."""
    from mlflow.exceptions import MlflowException

    from propensity_assets.shared import registry
    from propensity_assets.shared.resources import MlflowResource

    client = MlflowResource().client()
    name = registry.model_name(args.stage, args.group)
    try:
        mv = registry.promote(client, name, args.version, args.reason, by="manual", force=args.force, require_vetted=True)
    except MlflowException as exc:
        print(f"error: cannot promote {name} version {args.version}: {exc.message}", file=sys.stderr)
        return 2
    except (registry.PromotionRefused, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from propensity_assets.lifecycle.registration import describe_version

    describe_version(client, name, str(mv.version))  # the card says who promoted it and why
    print(f"{name}: champion -> version {mv.version}")
    return 0


def register(sub, stages) -> None:
    summary = sub.add_parser("summary", help="print what the lake holds for one as_of")
    summary.add_argument("--as-of", required=True)
    summary.set_defaults(func=functools.partial(cmd_summary, stages=stages))
    promote = sub.add_parser("promote", help="move the champion alias of a group's model to a version")
    promote.add_argument("group")
    promote.add_argument("version")
    promote.add_argument("--stage", default="propensity", choices=list(MODEL_FAMILIES))
    promote.add_argument("--reason", default="manual promotion")
    promote.add_argument("--force", action="store_true",
                         help="promote a version that is not vetted, or whose registration did not complete")
    promote.set_defaults(func=cmd_promote)
