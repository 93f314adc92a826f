"""Scaling benchmark: the pipeline's steps on 1× and N× the households, and their ratio.

Usage (from the repository root, in the project's virtualenv):

    .venv/bin/python benchmarks/scaling_benchmark.py                       # 1x and 10x, every step
    .venv/bin/python benchmarks/scaling_benchmark.py --factors 1,10,30 --steps ingest,features
    .venv/bin/python benchmarks/scaling_benchmark.py --features-from 2017-04-01   # a shorter feature range
    .venv/bin/python benchmarks/scaling_benchmark.py --workdir /tmp/scale --report   # the table of saved runs
    .venv/bin/python benchmarks/scaling_benchmark.py --factors 10 --workdir /tmp/scale --resume \
        --steps scoring --models-from /tmp/scale/x1                       # score 10x with 1x's models

Per factor N, the data is generated first (`propensity-assets scale-data --factor N`, not
timed: copy 0 is the embedded data, so 1x is the real Complete Journey read from a source
directory like every other factor), then, with a fresh DAGSTER_HOME, lake and MLflow store
under `<workdir>/x<N>/`, each step is one real `dagster` CLI run in a fresh process (so a
fresh Spark JVM), timed from start to exit with the peak RSS of its whole process tree
(benchmarks/measure.py, as features_benchmark.py measures):

    ingest               ingest_job (the seven raw tables, validated; product_group_members)
    household_features   every as_of of the feature range (default 2017-01-01 .. 2017-12-31), one run
    group_features       the same dates x every product group, one run
    propensity_labels    the dates training reads: its weekly snapshots and vetting snapshot, one run per date
    propensity_model     training at one cutoff (default 2017-12-01) for every group (--propensity-config)
    propensity_champion  vetting and promotion of those candidates (PROPENSITY_AUTO_PROMOTE=true)
    propensity_scores    scoring at one as_of (default 2017-12-01) for every group

With --ltv, the same for LTV (ltv_labels, ltv_model, ltv_champion, ltv_scores). A group whose
candidate fails vetting is promoted anyway before scoring (and the table says how many), so
every factor scores every group. Results are saved to `<workdir>/x<N>/results.json` as each
step ends; the report prints one markdown table: seconds, peak memory and the N/1 ratio per
step (wall and CPU seconds: on a shared machine load stretches the wall time, hardly the CPU time),
with the 1-minute load average seen during each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from measure import run_measured

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULE = ["-m", "propensity_assets.definitions"]
FEATURES = ("2017-01-01", "2017-12-31")  # as features_benchmark.py's year
CUTOFF = "2017-12-01"
AS_OF = "2017-12-01"
# Training settings that let the 10x run finish in a session: one trial of the search space,
# a shorter history than the default 30 weeks, and fewer boosting rounds.
PROPENSITY_CONFIG = {"history_weeks": 8, "max_trials": 1, "max_rounds": 300}
LTV_CONFIG = {"history_weeks": 8, "max_permutations": 1, "algorithms": ["lgbm_l2"], "reducers": ["none"],
              "feature_subsets": ["all"]}
STEPS = ["ingest", "household_features", "group_features", "propensity_labels", "propensity_model",
         "propensity_champion", "propensity_scores"]
LTV_STEPS = ["ltv_labels", "ltv_model", "ltv_champion", "ltv_scores"]
# Which --steps name selects which steps.
ALIASES = {"features": ["household_features", "group_features"],
           "training": ["propensity_labels", "propensity_model", "propensity_champion"],
           "scoring": ["propensity_scores"], "ltv": LTV_STEPS}


def run_checked(command: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout


def factor_env(base: Path, data: Path) -> dict[str, str]:
    """Everything a run reads and writes under `base`: lake, MLflow, Dagster home."""
    env = dict(os.environ)
    for name in ("PROPENSITY_AS_OF_START", "PROPENSITY_AS_OF_END", "PROPENSITY_LAKE_URI", "MLFLOW_TRACKING_URI",
                 "MLFLOW_REGISTRY_URI", "PROPENSITY_TODAY"):
        env.pop(name, None)
    home = base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    if link.is_symlink() or link.exists():  # a resumed work dir may link a checkout since moved
        link.unlink()
    link.symlink_to(REPO / "dagster.yaml")
    env.update(
        PROPENSITY_DATA_DIR=str(base),
        PROPENSITY_SOURCE_DIR=str(data),
        DAGSTER_HOME=str(home),
        PROPENSITY_AUTO_PROMOTE="true",
        DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="true",
        OMP_WAIT_POLICY=env.get("OMP_WAIT_POLICY", "PASSIVE"),
        PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
    )
    env.setdefault("PROPENSITY_PRODUCT_GROUPS", str(REPO / "data" / "product_groups.yaml"))
    return env


def label_dates(cutoff: str, horizon: int, history_weeks: int) -> list[str]:
    """The as_of dates whose labels a model trained at `cutoff` reads: its weekly training
    snapshots and its vetting snapshot."""
    sys.path.insert(0, str(REPO))
    from propensity_assets.lifecycle.frames import snapshot_plan

    plan = snapshot_plan(date.fromisoformat(cutoff), horizon, history_weeks, date(2017, 1, 1))
    return [str(d) for d in (*plan.train, plan.vetting)]


def force_champions(env: dict[str, str], stage: str) -> list[str]:
    """Promote the newest version of every group without a champion; the groups promoted."""
    code = (
        "import json, sys\n"
        "from propensity_assets import registry\n"
        "from propensity_assets.groups.catalog import load_catalog\n"
        "from propensity_assets.shared.resources import MlflowResource\n"
        "from propensity_assets import settings\n"
        "client = MlflowResource().client(); forced = []\n"
        "for group in (g.key for g in load_catalog(settings.product_groups_file())):\n"
        f"    name = registry.model_name({stage!r}, group)\n"
        "    if registry.version_by_alias(client, name, registry.CHAMPION) is None:\n"
        "        latest = max(int(v.version) for v in client.search_model_versions(f\"name='{name}'\"))\n"
        "        registry.promote(client, name, str(latest), 'scaling benchmark: score every group', by='benchmark')\n"
        "        forced.append(group)\n"
        "print(json.dumps(forced))\n"
    )
    return json.loads(run_checked([sys.executable, "-c", code], env, "promotion").strip().splitlines()[-1])


def run_factor(factor: int, args: argparse.Namespace, steps: list[str]) -> dict:
    work = args.workdir
    data = work / "data" / f"x{factor}"
    if not data.is_dir():
        started = time.perf_counter()
        run_checked([str(BIN / "propensity-assets"), "scale-data", "--factor", str(factor), "--out", str(data),
                     "--seed", str(args.seed)], dict(os.environ), "scale-data")
        print(f"[{factor}x] generated {data} in {time.perf_counter() - started:.0f} s (not timed)", flush=True)
    base = work / f"x{factor}"
    results_file = base / args.results
    if base.exists() and not args.resume:
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    saved = json.loads(results_file.read_text()) if results_file.exists() else {"factor": factor, "steps": {}}
    env = factor_env(base, data)
    (base / "logs").mkdir(exist_ok=True)
    run_checked([str(BIN / "propensity-assets"), "sync-groups"], env, "sync-groups")

    groups = instance_groups(env)

    def prange(start: str, end: str | None = None) -> str:
        """The --partition-range over those dates x every group (what `propensity-assets
        partition-range` prints), without a CLI start-up per step."""
        return f"{start}|{groups[0]}...{end or start}|{groups[-1]}"

    f_start, f_end = args.features_from, args.features_to
    l_dates = label_dates(args.cutoff, 30, args.propensity_config.get("history_weeks", 30))
    l_start = l_dates[0]
    ltv_h = int(os.environ.get("PROPENSITY_LTV_HORIZON_DAYS", "90"))
    ltv_dates = label_dates(args.cutoff, ltv_h, args.ltv_config.get("history_weeks", 30))
    ltv_start = ltv_dates[0]
    needs = (((l_start,) if "propensity_model" in steps else ()) + ((ltv_start,) if "ltv_model" in steps else ())
             + ((args.as_of,) if any(s.endswith("_scores") for s in steps) else ()))
    for needed in needs if "household_features" in steps else ():
        if not f_start <= needed <= f_end:
            sys.exit(f"the feature range {f_start} .. {f_end} does not hold {needed}, which training or scoring needs")

    commands = {
        "ingest": (["job", "execute", *MODULE, "-j", "ingest_job"], None),
        "household_features": (["--select", "household_features", "--partition-range", f"{f_start}...{f_end}"], None),
        "group_features": (["--select", "group_features", "--partition-range", prange(f_start, f_end)], None),
        # Labels only where training reads them (weekly snapshots): one run per date.
        "propensity_labels": [(["--select", "propensity_labels", "--partition-range", prange(d)], None) for d in l_dates],
        "propensity_model": (["--select", "propensity_model", "--partition-range", prange(args.cutoff)],
                             {"ops": {"propensity_model": {"config": args.propensity_config}}}),
        "propensity_champion": (["--select", "propensity_champion", "--partition-range", prange(args.cutoff)], None),
        "propensity_scores": (["--select", "propensity_scores", "--partition-range", prange(args.as_of)], None),
        "ltv_labels": [(["--select", "ltv_labels", "--partition-range", prange(d)], None) for d in ltv_dates],
        "ltv_model": (["--select", "ltv_model", "--partition-range", prange(args.cutoff)],
                      {"ops": {"ltv_model": {"config": args.ltv_config}}}),
        "ltv_champion": (["--select", "ltv_champion", "--partition-range", prange(args.cutoff)], None),
        "ltv_scores": (["--select", "ltv_scores", "--partition-range", prange(args.as_of)], None),
    }

    notes = {
        "household_features": f"{f_start} .. {f_end}",
        "group_features": f"{f_start} .. {f_end} x all groups",
        "propensity_labels": f"{', '.join(l_dates)} x all groups, one run per date (seconds summed)",
        "propensity_model": f"cutoff {args.cutoff} x all groups",
        "propensity_scores": f"as_of {args.as_of} x all groups",
        "ltv_labels": f"{', '.join(ltv_dates)} x all groups, one run per date (seconds summed)",
        "ltv_model": f"cutoff {args.cutoff} x all groups",
        "ltv_scores": f"as_of {args.as_of} x all groups",
    }
    for step in steps:
        if args.resume and step in saved["steps"]:
            print(f"[{factor}x] {step}: kept from {results_file}", flush=True)
            continue
        if step.endswith("_scores"):
            stage = step.removesuffix("_scores")
            if args.models_from and not (base / "mlflow").exists():
                # Score with models trained elsewhere (e.g. on 1x): scoring's cost is the
                # households scored; a tree model's size is set by its rounds and leaves.
                shutil.copytree(Path(args.models_from) / "mlflow", base / "mlflow")
                saved["models_from"] = str(args.models_from)
            saved.setdefault("forced_champions", {})[stage] = force_champions(env, stage)
        runs = commands[step] if isinstance(commands[step], list) else [commands[step]]
        total = {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss": 0, "max_load": 0.0, "mean_load": 0.0}
        for i, (rest, config) in enumerate(runs):
            command = [str(BIN / "dagster"), *(rest if step == "ingest" else ["asset", "materialize", *MODULE, *rest])]
            if config:
                command += ["--config-json", json.dumps(config)]
            log = base / "logs" / f"{step}{f'_{i}' if len(runs) > 1 else ''}.log"
            m = run_measured(command, env, log)
            if m.returncode != 0:
                sys.exit(f"[{factor}x] {step} failed ({m.returncode}); log: {log}\n" + m.output[-6000:])
            total["seconds"] += m.seconds
            total["cpu_seconds"] += m.cpu_seconds
            total["peak_rss"] = max(total["peak_rss"], m.peak_rss)
            total["max_load"] = max(total["max_load"], m.max_load)
            total["mean_load"] += m.mean_load * m.seconds
        total["mean_load"] /= total["seconds"]
        m = argparse.Namespace(**total)
        saved["steps"][step] = {**total, "what": notes.get(step, "")}
        results_file.write_text(json.dumps(saved, indent=1))
        print(f"[{factor}x] {step}: {m.seconds:.1f} s ({m.cpu_seconds:.0f} CPU s), peak RSS {m.peak_rss / 2**30:.2f} GiB, "
              f"load {m.mean_load:.1f} (max {m.max_load:.1f})", flush=True)
    saved["households"] = households(data)
    results_file.write_text(json.dumps(saved, indent=1))
    return saved


def instance_groups(env: dict[str, str]) -> list[str]:
    """The instance's product_group partitions, in its order."""
    code = ("import json, dagster as dg\n"
            "with dg.DagsterInstance.get() as i: print(json.dumps(i.get_dynamic_partitions('product_group')))")
    return json.loads(run_checked([sys.executable, "-c", code], env, "groups").strip().splitlines()[-1])


def households(data: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    return len(pc.unique(pq.read_table(data / "transactions.parquet", columns=["household_id"])["household_id"]))


def report(results: dict[int, dict]) -> str:
    factors = sorted(results)
    base = factors[0]
    steps = [s for s in STEPS + LTV_STEPS if any(s in results[f]["steps"] for f in factors)]
    head = ["step"]
    for f in factors:
        head += [f"{f}x s", f"{f}x CPU s", f"{f}x peak GiB", f"{f}x load"]
    for f in factors[1:]:
        head += [f"{f}x/{base}x s", f"{f}x/{base}x CPU", f"{f}x/{base}x mem"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(a: dict | None, b: dict | None, key: str) -> str:
        return f"{b[key] / a[key]:.2f}" if a and b and a.get(key) and b.get(key) else ""

    for step in steps:
        row = [step]
        for f in factors:
            r = results[f]["steps"].get(step)
            row += [f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.0f}" if r.get("cpu_seconds") else "",
                    f"{r['peak_rss'] / 2**30:.2f}", f"{r['mean_load']:.1f} ({r['max_load']:.0f})"] if r else [""] * 4
        for f in factors[1:]:
            a, b = results[base]["steps"].get(step), results[f]["steps"].get(step)
            row += [ratio(a, b, "seconds"), ratio(a, b, "cpu_seconds"), ratio(a, b, "peak_rss")]
        lines.append("| " + " | ".join(row) + " |")
    what = {s: next((results[f]["steps"][s]["what"] for f in factors if s in results[f]["steps"]), "") for s in steps}
    lines.append("")
    lines += [f"- {s}: {w}" for s, w in what.items() if w]
    lines.append("- households: " + ", ".join(f"{f}x {results[f].get('households', 0):,}" for f in factors))
    for f in factors:
        for stage, groups in results[f].get("forced_champions", {}).items():
            if groups:
                lines.append(f"- {f}x {stage}: no vetted champion for {', '.join(groups)}; newest version promoted to score")
    lines.append("- load: mean (max) of the 1-minute load average during the run, on "
                 f"{os.cpu_count()} cores")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", default="1,10", help="comma-separated factors; the first is the base (default 1,10)")
    parser.add_argument("--steps", default="all",
                        help="comma-separated steps or groups of steps (features, training, scoring, ltv); default all")
    parser.add_argument("--ltv", action="store_true", help="also the LTV steps (labels, training, vetting, scoring)")
    parser.add_argument("--features-from", default=FEATURES[0])
    parser.add_argument("--features-to", default=FEATURES[1])
    parser.add_argument("--cutoff", default=CUTOFF, help="the training cutoff (a Friday)")
    parser.add_argument("--as-of", default=AS_OF, help="the scoring date")
    parser.add_argument("--propensity-config", type=json.loads, default=PROPENSITY_CONFIG,
                        help=f"propensity_model's run config (default {json.dumps(PROPENSITY_CONFIG)})")
    parser.add_argument("--ltv-config", type=json.loads, default=LTV_CONFIG,
                        help=f"ltv_model's run config (default {json.dumps(LTV_CONFIG)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="default: a new temp dir (kept: generated data is reusable)")
    parser.add_argument("--resume", action="store_true", help="keep the steps already saved for a factor")
    parser.add_argument("--report", action="store_true", help="only print the table of the saved results")
    parser.add_argument("--results", default="results.json", help="file name of a factor's saved results")
    parser.add_argument("--models-from", type=Path,
                        help="a factor's directory (e.g. <workdir>/x1) whose MLflow store scoring uses, without training")
    args = parser.parse_args(argv)
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="scaling_benchmark_"))).resolve()
    factors = [int(f) for f in args.factors.split(",")]
    wanted = STEPS + (LTV_STEPS if args.ltv else []) if args.steps == "all" else [
        s for name in args.steps.split(",") for s in ALIASES.get(name, [name])]
    unknown = [s for s in wanted if s not in STEPS + LTV_STEPS]
    if unknown:
        parser.error(f"unknown step(s) {unknown}; expected {STEPS + LTV_STEPS} or {sorted(ALIASES)}")
    # In pipeline order. A step reads what the steps before it wrote: run a subset with
    # --resume on a work dir where those ran.
    order = STEPS + LTV_STEPS
    steps = [s for s in order if s in wanted]
    print(f"work dir: {args.workdir}; factors {factors}; steps {steps}; cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    for factor in factors:
        saved = args.workdir / f"x{factor}" / args.results
        if args.report:
            if saved.exists():
                results[factor] = json.loads(saved.read_text())
            continue
        results[factor] = run_factor(factor, args, steps)
    if results:
        print("\n" + report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
