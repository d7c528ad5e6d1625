"""Which differences are real: confidence intervals, paired tests over shared seeds, rank groups, P(best), and
reproduction verdicts for published numbers.

The rules, stated once (README "Reading the leaderboard"):
- CI: the 95 % confidence interval of a method's mean over its evaluation seeds (Student's t, n - 1 dof).
- Paired comparison of A and B: over the evaluation seeds both have, the per-seed differences A - B; their mean,
  a 95 % t interval, the paired t-test's and the Wilcoxon signed-rank test's two-sided p-values. Seed s of two
  methods shares the network initialisation and data order, so the pairing removes most of the seed noise.
- Rank groups: methods in order of mean; the leader opens group 1, and every method whose paired difference from
  the group's first method is not significant at 5 % after Holm's correction (over the comparisons in that group)
  joins it ("tied within noise"); the next method opens the next group.
- P(best): the share of 2,000 paired bootstrap resamples of the shared seeds in which a method has the highest mean.
- Verdict beside a published number made with the card's recipe: "reproduced" when the published value lies inside
  our 95 % CI, or within max(1 std, 1 point) of our mean; else "not reproduced". A number made with another recipe
  gets "other recipe" (its gap is still shown).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

ALPHA = 0.05
BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Estimate:
    mean: float
    std: float  # population std (ddof = 0), the field's convention
    n: int
    low: float  # 95 % CI of the mean (nan for one seed)
    high: float


def estimate(values: list[float]) -> Estimate:
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean, std = float(x.mean()), float(x.std(ddof=0))
    if n < 2:
        return Estimate(mean, std, n, math.nan, math.nan)
    half = float(st.t.ppf(1 - ALPHA / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, std, n, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    a: str
    b: str
    n: int  # shared seeds
    diff: float  # mean of a - b over the shared seeds
    low: float  # 95 % t interval of the mean difference
    high: float
    p_t: float  # paired t-test, two-sided
    p_wilcoxon: float  # Wilcoxon signed-rank, two-sided (nan when every difference is 0 or n < 2)
    p_a_better: float  # share of paired bootstrap resamples with mean(a) > mean(b)

    def line(self) -> str:
        return (f"{self.a} − {self.b}: {self.diff:+.2f} points over {self.n} shared seed(s), 95% CI [{self.low:+.2f}, "
                f"{self.high:+.2f}]; paired t p = {self.p_t:.3g}, Wilcoxon p = {self.p_wilcoxon:.3g}; "
                f"P({self.a} better) = {self.p_a_better:.2f} (bootstrap over seeds)")


def paired(a: str, b: str, by_seed_a: dict[int, float], by_seed_b: dict[int, float]) -> Paired:
    """The paired comparison of two methods over the seeds both were evaluated with."""
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    d = np.array([by_seed_a[s] - by_seed_b[s] for s in seeds], dtype=float)
    n = len(d)
    if n == 0:
        return Paired(a, b, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    diff = float(d.mean())
    if n < 2:
        return Paired(a, b, n, diff, math.nan, math.nan, math.nan, math.nan, float(diff > 0))
    sd = float(d.std(ddof=1))
    if sd == 0:
        low = high = diff
        p_t = 1.0 if diff == 0 else 0.0
    else:
        half = float(st.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n))
        low, high = diff - half, diff + half
        p_t = float(st.ttest_rel(d, np.zeros(n)).pvalue)
    p_w = float(st.wilcoxon(d).pvalue) if np.any(d != 0) else math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = d[rng.integers(0, n, size=(BOOTSTRAP, n))].mean(axis=1)
    return Paired(a, b, n, diff, low, high, p_t, p_w, float((means > 0).mean()))


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given; nan stays nan)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p == p)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Ranking:
    order: list[str]  # methods by mean, best first
    group: dict[str, int]  # 1 = the leader's group
    p_best: dict[str, float]
    vs_group_head: dict[str, Paired]  # each method's comparison with the first method of its group


def rank(by_seed: dict[str, dict[int, float]]) -> Ranking:
    """Rank groups and P(best) of methods evaluated on one card (and arch), from their per-seed accuracies."""
    order = sorted(by_seed, key=lambda m: -float(np.mean(list(by_seed[m].values()))))
    group: dict[str, int] = {}
    versus: dict[str, Paired] = {}
    remaining, number = list(order), 0
    while remaining:
        number += 1
        head, rest = remaining[0], remaining[1:]
        group[head] = number
        comparisons = [paired(head, m, by_seed[head], by_seed[m]) for m in rest]
        adjusted = holm([c.p_t for c in comparisons])
        tied = [c.b for c, p in zip(comparisons, adjusted) if not (p < ALPHA)]  # nan (too few seeds) counts as tied
        for c in comparisons:
            if c.b in tied:
                group[c.b] = number
                versus[c.b] = c
        remaining = [m for m in rest if m not in tied]
    return Ranking(order, group, p_best(by_seed), versus)


def p_best(by_seed: dict[str, dict[int, float]]) -> dict[str, float]:
    """Share of paired bootstrap resamples (of the seeds every method has) in which each method's mean is highest."""
    methods = list(by_seed)
    seeds = sorted(set.intersection(*(set(v) for v in by_seed.values()))) if methods else []
    if not seeds:
        return {m: math.nan for m in methods}
    x = np.array([[by_seed[m][s] for s in seeds] for m in methods], dtype=float)  # methods × seeds
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(seeds), size=(BOOTSTRAP, len(seeds)))
    means = x[:, picks].mean(axis=2)  # methods × resamples
    best = means.argmax(axis=0)
    return {m: float((best == i).mean()) for i, m in enumerate(methods)}


REPRODUCED, NOT_REPRODUCED, OTHER_RECIPE = "reproduced", "not reproduced", "other recipe"


def verdict(ours: Estimate, published: float, same_recipe: bool) -> str:
    """The reproduction verdict of a published number against our estimate (rule in the module docstring)."""
    if not same_recipe:
        return OTHER_RECIPE
    inside = ours.n >= 2 and ours.low <= published <= ours.high
    close = abs(ours.mean - published) <= max(ours.std, 1.0)
    return REPRODUCED if inside or close else NOT_REPRODUCED
