"""The incentive-study catalogue: `data/incentive_studies.yaml` (CONTRACTS §9).

Pure logic: load and validate the YAML into `Study` objects. Every error names the
file, the study and the field, and says what was expected. Checks that need the data
(a column missing from a `path` file, a treatment that is not binary) run in
`Study.validate_data` when the table is read.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from propensity_assets.incentives.costs import CostFormula, CostFormulaError
from propensity_assets.shared.catalogs import parse_yaml

KEY_PATTERN = re.compile(r"[a-z0-9_]+")  # matched whole: `$` would accept a trailing newline
# Study keys another stage writes under in the same lake tables (`study=<key>`): a catalogue
# study may not take them, or its run would replace that stage's partition.
RETAIL_PREFIX = "retail_"
RESERVED_PREFIXES = {RETAIL_PREFIX: "the retail campaign studies of the product groups (retail_<group>)"}
# A study file is read whole into memory: refuse one larger than this before reading it.
MAX_STUDY_FILE_BYTES = 1 << 30
EFFECTS = ("total", "direct")
GENERATORS = ("software_company",)
FIELDS = {
    "description", "generate", "generator", "path", "id_column", "outcome", "treatments", "covariates",
    "mediators", "other", "effects", "knowledge", "expected_graph", "estimator", "effect_modifiers", "trim",
}
TREATMENT_FIELDS = {"cost", "allow_negative_cost"}


class StudyCatalogError(ValueError):
    """The incentive-study catalogue is invalid; the message names the file, study and field."""


@dataclass(frozen=True)
class Treatment:
    name: str
    cost: str  # a number or a formula over the study's columns (`costs.CostFormula`)
    # A negative cost is a rebate: refused unless the study says so for the treatment.
    allow_negative_cost: bool = False

    @property
    def formula(self) -> CostFormula:
        return CostFormula.parse(self.cost)

    @property
    def cost_columns(self) -> list[str]:
        return list(self.formula.columns)

    def unit_cost(self, data: pd.DataFrame) -> np.ndarray:
        """The cost of giving this treatment to each unit of `data` (parsed, never evaluated as code)."""
        return self.formula.evaluate(data)

    def cost_problem(self, data: pd.DataFrame) -> str | None:
        """What is wrong with this treatment's costs on `data` (not finite, or negative without
        `allow_negative_cost`), naming up to five rows; None when they are usable."""
        costs = self.unit_cost(data)
        bad = ~np.isfinite(costs)
        what = "not finite"
        if not bad.any() and not self.allow_negative_cost:
            bad, what = costs < 0, "negative (set allow_negative_cost: true for a rebate)"
        if not bad.any():
            return None
        return f"cost formula {self.cost!r} is {what} for {rows_shown(bad)}"


def rows_shown(mask) -> str:
    """`3 row(s) (rows 0, 4, 9)`: the count of the True rows of `mask` and the first five (from 0)."""
    rows = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(int(r)) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
    return f"{len(rows):,} row(s) (rows {shown})"


@dataclass(frozen=True)
class Study:
    key: str
    description: str
    outcome: str
    treatments: tuple[Treatment, ...]
    covariates: tuple[str, ...]
    mediators: dict[str, tuple[str, ...]] = field(default_factory=dict)  # mediator → treatments it mediates
    other: tuple[str, ...] = ()  # observed variables that are neither (colliders, post-outcome)
    effects: dict[str, tuple[str, ...]] = field(default_factory=dict)  # treatment → wanted effects
    tiers: tuple[tuple[str, ...], ...] = ()
    required: tuple[tuple[str, str], ...] = ()
    forbidden: tuple[tuple[str, str], ...] = ()
    expected_graph: tuple[tuple[str, str], ...] | None = None
    generate: str | None = None
    generator: dict = field(default_factory=dict)
    path: str | None = None
    id_column: str | None = None
    estimator: str = "linear_dml"
    # Covariates the study declares the effects vary with: the `declared` candidate specification.
    effect_modifiers: tuple[str, ...] = ()
    # Fit and average only over the units inside overlap (recorded in every estimate's population).
    trim: bool = False

    @property
    def treatment_names(self) -> list[str]:
        return [t.name for t in self.treatments]

    @property
    def variables(self) -> list[str]:
        """Every variable of the causal graph, in a stable order."""
        return list(dict.fromkeys([
            *self.covariates, *self.treatment_names, *self.mediators, self.outcome, *self.other
        ]))

    def columns(self) -> list[str]:
        """Every column the study reads: its variables and the columns its costs use."""
        costs = [c for t in self.treatments for c in t.cost_columns]
        return list(dict.fromkeys([*self.variables, *costs]))

    def mediators_of(self, treatment: str) -> list[str]:
        return [m for m, ts in self.mediators.items() if treatment in ts]

    def validate_data(self, data: pd.DataFrame, source: str) -> None:
        """Refuse a study table that lacks a column, holds a value that is not a finite number in a
        variable, or whose treatments are not binary (the arm sizes: `sample.check_arms`)."""
        where = f"{source}: study {self.key!r}"
        missing = [c for c in self.columns() if c not in data.columns]
        if missing:
            # The table's own header is not quoted: errors never echo a file's contents.
            raise StudyCatalogError(
                f"{where}: column(s) {missing} not in the study table ({len(data.columns)} columns)"
            )
        # Discovery, the nuisance models and DML all need every value of every variable: a NaN
        # or an inf would fail deep inside them (`Input data contains NaN`) without naming anything.
        for column in self.variables:
            values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            bad = ~np.isfinite(values)
            if bad.any():
                raise StudyCatalogError(
                    f"{where}: column {column!r} is not a finite number in {rows_shown(bad)}; every value of the "
                    "outcome, treatments, covariates, mediators and other variables must be (no blank, NaN, inf or text)"
                )
        for name in self.treatment_names:
            values = set(pd.unique(data[name].dropna()))
            if not values <= {0, 1, True, False}:
                raise StudyCatalogError(
                    f"{where}: treatment {name!r} is not binary (0/1); found values {sorted(values)[:5]}"
                )
        if self.id_column and self.id_column not in data.columns:
            raise StudyCatalogError(f"{where}: id_column {self.id_column!r} not in the study table")
        for t in self.treatments:
            problem = t.cost_problem(data)
            if problem:
                raise StudyCatalogError(f"{where}: treatment {t.name!r}: {problem}")


def _names(value, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StudyCatalogError(f"{where}: '{what}' must be a list of column names")
    return tuple(value)


def _edges(value, where: str, what: str, known: set[str]) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise StudyCatalogError(f"{where}: '{what}' must be a list of [from, to] pairs")
    edges = []
    for edge in value:
        if not (isinstance(edge, list) and len(edge) == 2 and all(isinstance(v, str) for v in edge)):
            raise StudyCatalogError(f"{where}: '{what}' entry {edge!r} is not a [from, to] pair")
        for node in edge:
            if node not in known:
                raise StudyCatalogError(
                    f"{where}: '{what}' edge {edge} names unknown variable {node!r}; "
                    f"the study's variables are {sorted(known)}"
                )
        edges.append((edge[0], edge[1]))
    return tuple(edges)


def parse_study(key, body, source: str) -> Study:
    where = f"{source}: study {key!r}"
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise StudyCatalogError(f"{where}: key must be lowercase letters, digits and '_' ([a-z0-9_]+)")
    for prefix, owner in RESERVED_PREFIXES.items():
        if key.startswith(prefix):
            raise StudyCatalogError(
                f"{where}: keys starting with {prefix!r} are reserved for {owner}, which write the same lake "
                f"tables under study=<key>; choose another key"
            )
    if not isinstance(body, dict):
        raise StudyCatalogError(f"{where}: expected a mapping with outcome, treatments and covariates")
    unknown = set(body) - FIELDS
    if unknown:
        raise StudyCatalogError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(FIELDS))}")
    if ("path" in body) == ("generate" in body):
        raise StudyCatalogError(f"{where}: give exactly one of 'path' (a CSV or Parquet file) and 'generate'")
    if "generate" in body and body["generate"] not in GENERATORS:
        raise StudyCatalogError(f"{where}: 'generate' must be one of {GENERATORS}, got {body['generate']!r}")
    if "path" in body and not str(body["path"]).lower().endswith((".csv", ".parquet", ".pq")):
        raise StudyCatalogError(f"{where}: 'path' must name a .csv or .parquet file, got {body['path']!r}")
    outcome = body.get("outcome")
    if not isinstance(outcome, str):
        raise StudyCatalogError(f"{where}: 'outcome' must be a column name")
    raw_treatments = body.get("treatments")
    if not isinstance(raw_treatments, dict) or not raw_treatments:
        raise StudyCatalogError(f"{where}: 'treatments' must map each treatment column to {{cost: ...}}")
    covariates = _names(body.get("covariates"), where, "covariates")
    other = _names(body.get("other"), where, "other")
    raw_mediators = body.get("mediators") or {}
    if not isinstance(raw_mediators, dict):
        raise StudyCatalogError(f"{where}: 'mediators' must map each mediator to the treatments it mediates")
    mediators = {m: _names(ts, f"{where}: mediator {m!r}", "treatments") for m, ts in raw_mediators.items()}
    treatments = []
    for name, spec in raw_treatments.items():
        if not isinstance(spec, dict) or "cost" not in spec:
            raise StudyCatalogError(f"{where}: treatment {name!r}: expected {{cost: <number or formula>}}")
        unknown = sorted(set(spec) - TREATMENT_FIELDS)
        if unknown:
            raise StudyCatalogError(f"{where}: treatment {name!r}: unknown field(s) {unknown}; expected {sorted(TREATMENT_FIELDS)}")
        allow_negative = spec.get("allow_negative_cost", False)
        if not isinstance(allow_negative, bool):
            raise StudyCatalogError(f"{where}: treatment {name!r}: allow_negative_cost must be true or false")
        if isinstance(spec["cost"], float) and not np.isfinite(spec["cost"]):
            raise StudyCatalogError(f"{where}: treatment {name!r}: cost {spec['cost']!r} is not finite")
        cost = str(spec["cost"])
        try:
            formula = CostFormula.parse(cost)
        except CostFormulaError as exc:
            raise StudyCatalogError(
                f"{where}: treatment {name!r}: cost {cost!r}: {exc}. A cost is a number or a formula of numbers and "
                "backticked columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC Count`\""
            ) from None
        if formula.constant is not None and not np.isfinite(formula.constant):
            raise StudyCatalogError(f"{where}: treatment {name!r}: cost {cost!r} is not finite")
        if formula.constant is not None and formula.constant < 0 and not allow_negative:
            raise StudyCatalogError(
                f"{where}: treatment {name!r}: cost {cost!r} is negative; a rebate needs allow_negative_cost: true"
            )
        treatments.append(Treatment(str(name), cost, allow_negative))
    names = [t.name for t in treatments]
    for m, ts in mediators.items():
        if m in names:
            raise StudyCatalogError(f"{where}: mediator {m!r} is also a treatment; a mediator must be an outcome of one")
        for t in ts:
            if t not in names:
                raise StudyCatalogError(f"{where}: mediator {m!r} mediates {t!r}, which is not a treatment of the study")
    roles = [*covariates, *names, *mediators, outcome, *other]
    dupes = sorted({v for v in roles if roles.count(v) > 1})
    if dupes:
        raise StudyCatalogError(f"{where}: column(s) {dupes} given more than one role (covariate, treatment, mediator, outcome, other)")
    known = set(roles)
    columns = set(roles)
    if "generate" in body:
        from propensity_assets.incentives.generator import COLUMNS

        columns = set(COLUMNS)
        bad = [c for c in roles if c not in columns]
        if bad:
            raise StudyCatalogError(
                f"{where}: unknown column(s) {bad}: the {body['generate']!r} generator makes {sorted(columns)}"
            )
    for t in treatments:
        for col in t.cost_columns:
            if col not in columns:
                raise StudyCatalogError(
                    f"{where}: treatment {t.name!r}: cost formula {t.cost!r} uses column {col!r}, which the study does not have"
                )
    raw_effects = body.get("effects") or {t: ["total"] for t in names}
    if not isinstance(raw_effects, dict):
        raise StudyCatalogError(f"{where}: 'effects' must map treatments to [total] or [total, direct]")
    effects = {}
    for t, wanted in raw_effects.items():
        if t not in names:
            raise StudyCatalogError(f"{where}: effects: {t!r} is not a treatment of the study")
        wanted = _names(wanted, f"{where}: effects of {t!r}", t)
        for e in wanted:
            if e not in EFFECTS:
                raise StudyCatalogError(f"{where}: effects of {t!r}: {e!r} is not one of {EFFECTS}")
            if e == "direct" and not [m for m, ts in mediators.items() if t in ts]:
                raise StudyCatalogError(f"{where}: effects of {t!r}: a direct effect needs a mediator of {t!r}")
        effects[t] = wanted
    knowledge = body.get("knowledge") or {}
    if not isinstance(knowledge, dict) or set(knowledge) - {"tiers", "required", "forbidden"}:
        raise StudyCatalogError(f"{where}: 'knowledge' may hold tiers, required and forbidden")
    tiers = tuple(_names(tier, f"{where}: knowledge", "tiers") for tier in knowledge.get("tiers") or [])
    for tier in tiers:
        for node in tier:
            if node not in known:
                raise StudyCatalogError(f"{where}: 'knowledge.tiers' names unknown variable {node!r}; the study's variables are {sorted(known)}")
    required = _edges(knowledge.get("required"), where, "knowledge.required", known)
    forbidden = _edges(knowledge.get("forbidden"), where, "knowledge.forbidden", known)
    both = set(required) & set(forbidden)
    if both:
        raise StudyCatalogError(f"{where}: edge(s) {sorted(both)} are both required and forbidden")
    expected = body.get("expected_graph")
    expected = _edges(expected, where, "expected_graph", known) if expected is not None else None
    id_column = body.get("id_column")
    if id_column is not None and "generate" in body:
        raise StudyCatalogError(f"{where}: 'id_column' is for a study read by path; a generated study's unit_id is the row number")
    generator = body.get("generator") or {}
    if not isinstance(generator, dict):
        raise StudyCatalogError(f"{where}: 'generator' must be a mapping (n, seed, mediator_noise, assignment_strength, assignment)")
    estimator = str(body.get("estimator", "linear_dml"))
    if estimator not in ("linear_dml", "causal_forest_dml"):
        raise StudyCatalogError(f"{where}: 'estimator' must be linear_dml or causal_forest_dml, got {estimator!r}")
    effect_modifiers = _names(body.get("effect_modifiers"), where, "effect_modifiers")
    stray = [m for m in effect_modifiers if m not in covariates]
    if stray:
        raise StudyCatalogError(f"{where}: effect_modifiers {stray} are not covariates of the study; expected some of {list(covariates)}")
    trim = body.get("trim", False)
    if not isinstance(trim, bool):
        raise StudyCatalogError(f"{where}: 'trim' must be true or false, got {trim!r}")
    return Study(
        key=key, description=" ".join(str(body.get("description") or key).split()), outcome=outcome,
        treatments=tuple(treatments), covariates=covariates, mediators=mediators, other=other, effects=effects,
        tiers=tiers, required=required, forbidden=forbidden, expected_graph=expected,
        generate=body.get("generate"), generator=dict(generator),
        path=str(body["path"]) if "path" in body else None, id_column=id_column, estimator=estimator,
        effect_modifiers=effect_modifiers, trim=trim,
    )


def parse_catalog(text: str, source: str = "incentive_studies.yaml") -> list[Study]:
    doc = parse_yaml(text, source, StudyCatalogError)
    if not isinstance(doc, dict) or not isinstance(doc.get("incentive_studies"), dict):
        raise StudyCatalogError(f"{source}: expected a top-level mapping 'incentive_studies: {{<key>: ...}}'")
    return [parse_study(key, body, source) for key, body in doc["incentive_studies"].items()]


def load_catalog(path: str | Path) -> list[Study]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyCatalogError(f"{path}: cannot read the incentive-study catalogue: {exc}") from None
    return parse_catalog(text, str(path))


def get_study(path: str | Path, key: str) -> Study:
    studies = {s.key: s for s in load_catalog(path)}
    if key not in studies:
        raise StudyCatalogError(f"{path}: no study {key!r}; known: {', '.join(studies) or 'none'}")
    return studies[key]


def resolve_path(study: Study, catalogue_path: str | Path) -> Path:
    """A study's `path`, relative to the catalogue file's directory unless absolute."""
    p = Path(study.path)
    return p if p.is_absolute() else Path(catalogue_path).resolve().parent / p


def read_study_table(study: Study, catalogue_path: str | Path) -> pd.DataFrame:
    """The study's table from its `path`: a regular file (CSV by its suffix, else Parquet) of
    at most MAX_STUDY_FILE_BYTES. Errors name the file and never quote its contents."""
    path = resolve_path(study, catalogue_path)
    where = f"{catalogue_path}: study {study.key!r}: path {str(path)!r}"
    try:
        info = os.stat(path)  # follows a link to what it names; opens nothing (a FIFO would block)
    except FileNotFoundError:
        raise StudyCatalogError(f"{where} does not exist") from None
    except OSError as exc:
        raise StudyCatalogError(f"{where} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise StudyCatalogError(f"{where} is {kind}; expected a regular CSV or Parquet file")
    if info.st_size > MAX_STUDY_FILE_BYTES:
        raise StudyCatalogError(
            f"{where} holds {info.st_size:,} bytes, more than the {MAX_STUDY_FILE_BYTES:,} a study table may"
        )
    csv = path.suffix.lower() == ".csv"
    try:
        data = pd.read_csv(path) if csv else pd.read_parquet(path)
    except Exception as exc:  # pandas' and pyarrow's parse errors may quote the file
        kind = "a CSV table with a header row" if csv else "a Parquet file"
        raise StudyCatalogError(f"{where} is not {kind} ({type(exc).__name__})") from None
    study.validate_data(data, str(path))
    return data
