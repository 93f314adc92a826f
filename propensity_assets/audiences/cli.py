"""The audiences room's command: `audience`, one campaign's audience from the lake, printed and
written as CSV (the asset's code path, without writing the lake)."""

import argparse

from propensity_assets.shared import settings

SHOWN = 20  # rows printed; the CSV holds them all


def cmd_audience(args: argparse.Namespace) -> int:
    from propensity_assets.audiences.build import build, export_path, write_csv
    from propensity_assets.audiences.rules import AudienceError, rule_from
    from propensity_assets.groups.catalog import load_catalog
    from propensity_assets.shared.lake import Lake

    rule = rule_from(args.top, args.deciles, args.threshold, args.min_expected_value, args.incentive)
    catalogue = settings.product_groups_file()
    known = [group.key for group in load_catalog(catalogue)]
    if args.group not in known:
        raise AudienceError(f"product group {args.group!r} is not in {catalogue}; known: {', '.join(known)}")
    lake = Lake(settings.lake_uri())
    audience = build(lake, args.as_of, args.group, rule)
    path = write_csv(audience, args.out or export_path(lake, args.as_of, args.group))
    print(f"audience {args.as_of}|{args.group}: {len(audience)} households ({rule}) -> {path}")
    if len(audience):
        shown = audience.head(SHOWN).drop(columns="rule")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
        if len(audience) > SHOWN:
            print(f"... {len(audience) - SHOWN} more in the CSV")
    return 0


def register(sub) -> None:
    cmd = sub.add_parser("audience", help="choose, print and export one campaign's audience (CSV) from the lake")
    cmd.add_argument("--group", required=True, help="the campaign's product group")
    cmd.add_argument("--as-of", required=True, help="the scores' as_of, YYYY-MM-DD")
    rules = cmd.add_argument_group("the rule (exactly one)")
    rules.add_argument("--top", type=int, help="the k households with the highest score")
    rules.add_argument("--deciles", type=int, help="score deciles 1..N (1 = the top 10 %%)")
    rules.add_argument("--threshold", type=float, help="households whose score is above P (in [0, 1])")
    rules.add_argument("--min-expected-value", type=float, help="households whose score × LTV is above this cost")
    cmd.add_argument("--incentive", help="only households whose recommended incentive is this option")
    cmd.add_argument("--out", help="the CSV to write; default data/exports/audiences/<as_of>/<group>.csv beside the lake")
    cmd.set_defaults(func=cmd_audience)
