"""The software-company study, generated from its published structural model (INCENTIVES.md §1).

Pure logic: a seeded function of its config, returning one row per account with the
scenario's columns and its truth columns. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

TREATMENTS = ("Tech Support", "Discount", "New Engagement Strategy")
COVARIATES = (
    "Global Flag", "Major Flag", "SMC Flag", "Commercial Flag",
    "IT Spend", "Employee Count", "PC Count", "Size",
)
MEDIATOR = "New Product Adoption"
COLLIDER = "Planning Summit"
OUTCOME = "Revenue"
COLUMNS = (*COVARIATES, *TREATMENTS, MEDIATOR, COLLIDER, OUTCOME)


def truth_column(effect: str, treatment: str) -> str:
    """`Direct Treatment Effect: Tech Support`, as in the scenario's public dataset."""
    return f"{effect.capitalize()} Treatment Effect: {treatment}"


TRUTH_COLUMNS = tuple(truth_column(e, t) for t in TREATMENTS for e in ("direct", "total"))


@dataclass(frozen=True)
class GeneratorConfig:
    n: int = 10_000
    seed: int = 0
    # Standard deviation of the logit noise of New Product Adoption (1 in the published model).
    mediator_noise: float = 1.0
    # Multiplies the covariate part of each treatment's logit and divides its noise: 1 is the
    # published model; larger values make assignment nearly determined by the account.
    assignment_strength: float = 1.0
    # "random": the published treatment model. "threshold": each treatment a near-threshold function of
    # Employee Count, IT Spend and the SMC, Major and Commercial flags (THRESHOLD_SCORES), as sales teams
    # hand incentives out and as in the case study's own published data.
    assignment: str = "random"


ASSIGNMENTS = ("random", "threshold")
# Threshold assignment: each treatment's score over the standardized logs of IT Spend (a) and
# Employee Count (e) and the flags; the logit is THRESHOLD_SHARPNESS × (score − its median) / its sd
# plus Normal(0, THRESHOLD_NOISE²) noise. The median keeps the treated shares near one half; the
# sharpness puts about 90 % of the propensities outside [0.02, 0.98].
THRESHOLD_SCORES = {
    "Tech Support": {"a": 1.0, "e": 0.1, "SMC Flag": 0.5, "Commercial Flag": -0.3},
    "Discount": {"e": 1.0, "Major Flag": 0.8, "Commercial Flag": -0.4},
    "New Engagement Strategy": {"Major Flag": 1.0, "SMC Flag": 0.8, "Commercial Flag": -0.6, "a": -0.3},
}
THRESHOLD_SHARPNESS = 60.0
THRESHOLD_NOISE = 0.5


def adoption_uplift(noise_sd: float) -> float:
    """P(adoption | TS=1) − P(adoption | TS=0) under logit noise N(0, sd²): 0.39347 for sd 1,
    0.46212 for sd 0 (the INCENTIVES.md figures / 2,000). Seed-free, so the truth column
    does not depend on the sample."""
    if noise_sd == 0:
        return float(expit(1.0) - expit(-1.0))
    # Gauss-Hermite quadrature: exact to many digits, and seed-free.
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    z = nodes * noise_sd
    return float(np.sum(weights * (expit(1.0 + z) - expit(-1.0 + z))))


def _standardized(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / v.std()


def _threshold(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    z = (score - np.median(score)) / score.std()
    return rng.binomial(1, expit(THRESHOLD_SHARPNESS * z + rng.normal(0, THRESHOLD_NOISE, len(z))))


def generate_software_company(config: GeneratorConfig = GeneratorConfig()) -> pd.DataFrame:
    """Accounts drawn from the structural model; truth columns carry each account's effects."""
    n, rng, k = config.n, np.random.default_rng(config.seed), config.assignment_strength
    global_flag = rng.binomial(1, 0.2, n)
    major_flag = rng.binomial(1, 0.2, n)
    smc_flag = rng.binomial(1, 0.5, n)
    commercial_flag = rng.binomial(1, 0.7, n)
    size = (rng.exponential(100_000, n) + rng.uniform(5_000, 15_000, n)).astype(int)
    it_spend = np.exp(np.log(size) - 1.4 + rng.uniform(0, 1, n)).astype(int)
    pc_count = (rng.exponential(50, n) + rng.uniform(5, 10, n)).astype(int)
    employee_count = np.exp(0.9 * np.log(pc_count) + 0.4 + rng.uniform(0, 1, n)).astype(int)

    if config.assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {config.assignment!r}; expected one of {ASSIGNMENTS}")
    if config.assignment == "threshold":
        parts = {"a": _standardized(np.log(it_spend)), "e": _standardized(np.log(employee_count)),
                 "SMC Flag": smc_flag, "Major Flag": major_flag, "Commercial Flag": commercial_flag}
        tech_support, discount, nes = (
            _threshold(sum(w * parts[v] for v, w in THRESHOLD_SCORES[t].items()), rng) for t in TREATMENTS)
    else:
        def assign(linear: np.ndarray, noise_sd: float) -> np.ndarray:
            return rng.binomial(1, expit(k * linear + rng.normal(0, noise_sd / k, n)))

        tech_support = assign(1e-5 * it_spend - 0.465, 2.0)
        discount = assign(0.2 * major_flag + 5e-6 * it_spend - 0.27, 1.5)
        nes = assign(
            0.5 * major_flag + 0.1 * smc_flag - 0.2 * commercial_flag + 0.005 * employee_count - 0.005 * pc_count - 0.12,
            1.0,
        )
    adoption = rng.binomial(1, expit(2 * tech_support - 1 + rng.normal(0, config.mediator_noise, n)))
    tau_ts = 5_000 + 500 * global_flag + 0.02 * size
    tau_d = -1_000 * global_flag + 0.05 * size
    revenue = (
        tau_ts * tech_support + tau_d * discount + 0 * nes + 2_000 * adoption
        + 2_000 * major_flag + 5_000 * commercial_flag + 0.25 * it_spend
        + 1e-4 * employee_count + 1e-4 * pc_count + 5_000 + rng.normal(0, 1_000, n)
    )
    # expit(0.03·Revenue − 1,400) overflows harmlessly to 0/1; silence numpy's warning.
    with np.errstate(over="ignore"):
        summit = rng.binomial(1, expit(0.03 * revenue + 1_000 * nes - 1_400))
    frame = pd.DataFrame(
        {
            "Global Flag": global_flag, "Major Flag": major_flag, "SMC Flag": smc_flag,
            "Commercial Flag": commercial_flag, "IT Spend": it_spend, "Employee Count": employee_count,
            "PC Count": pc_count, "Size": size, "Tech Support": tech_support, "Discount": discount,
            "New Engagement Strategy": nes, MEDIATOR: adoption, COLLIDER: summit, OUTCOME: revenue,
        }
    )
    uplift = 2_000 * adoption_uplift(config.mediator_noise)
    frame[truth_column("direct", "Tech Support")] = tau_ts
    frame[truth_column("total", "Tech Support")] = tau_ts + uplift
    frame[truth_column("direct", "Discount")] = tau_d
    frame[truth_column("total", "Discount")] = tau_d
    frame[truth_column("direct", "New Engagement Strategy")] = 0.0
    frame[truth_column("total", "New Engagement Strategy")] = 0.0
    return frame
