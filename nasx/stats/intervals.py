"""Student t intervals, paired comparisons and trend verdicts (error falls / rises with a setting, or stays within
seed noise) for few seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .rank import pair_arrays

__all__ = ["student_t_quantile", "PairedComparison", "paired_comparison", "fixed_effects_slope", "TrendVerdict", "trend_verdict",
           "LackOfFit", "lack_of_fit", "LOF_LEVEL"]

LOF_LEVEL = 0.5  # a lack-of-fit p-value below this switches the verdict to the setting random-effect interval


# Student t intervals (scipy.stats.t)


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with df (> 0, not necessarily whole) degrees of freedom."""
    from scipy import stats

    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), not {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, not {df}")
    return float(stats.t.ppf(p, df))


def _t_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom."""
    from scipy import stats

    return float(stats.t.sf(t, df))


@dataclass(frozen=True)
class PairedComparison:
    """Mean and t interval of per-seed differences a - b."""

    mean_diff: float
    sd_diff: float  # sample standard deviation (n - 1 in the denominator)
    low: float
    high: float
    n: int
    level: float
    p_value: float  # two-sided paired t test (as scipy.stats.ttest_rel)
    significant: bool  # the interval excludes 0


def _t_summary(values: np.ndarray, level: float) -> PairedComparison:
    """Mean, sample sd, t interval and two-sided p-value (mean = 0) of values. With fewer than 2 values, a NaN,
    or values all equal (no spread: the t statistic is undefined, so no evidence either way) the interval and
    p-value are NaN and significant is False."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    n = int(values.size)
    if n == 0 or np.isnan(values).any():
        return PairedComparison(math.nan, math.nan, math.nan, math.nan, n, level, math.nan, False)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    if n < 2 or np.all(values == values[0]):
        return PairedComparison(mean, sd, math.nan, math.nan, n, level, math.nan, False)
    se = sd / math.sqrt(n)
    half = student_t_quantile((1 + level) / 2, n - 1) * se
    p_value = min(1.0, 2 * _t_tail(abs(mean) / se, n - 1))
    low, high = mean - half, mean + half
    return PairedComparison(mean, sd, low, high, n, level, p_value, bool(low > 0 or high < 0))


def paired_comparison(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedComparison:
    """Paired t comparison of two settings measured on the same seeds: mean of a - b with its t interval.

    a[i] and b[i] must come from the same seed. With fewer than 2 pairs, a NaN, or every difference equal
    (no spread to judge it by) the interval and p-value are NaN and significant is False."""
    xa, xb = pair_arrays(a, b)
    return _t_summary(xa - xb, level)


# Ablation verdicts: does a quantity (error) fall, rise, or stay within seed noise as a setting grows?


@dataclass(frozen=True)
class TrendVerdict:
    """The verdict on an ablation's trend: direction, the fixed-effects slope and its t interval, the mean of
    per-seed slopes beside it, and a sentence."""

    direction: str  # "falls", "rises" or "flat" (the interval holds 0, or too few runs to judge)
    slope: float  # common least-squares slope of a seed fixed-effects regression over all runs, per doubling
    low: float
    high: float
    n_seeds: int  # seeds with at least one run
    level: float
    per_seed: tuple[float, ...]  # each seed's own slope, over the settings every seed has
    text: str
    n_runs: int = 0  # runs in the regression
    df: int = 0  # its residual degrees of freedom: runs - seeds - 1
    p_value: float = math.nan  # two-sided, slope = 0
    per_seed_mean: float = math.nan  # the mean of per_seed, with its t interval over seeds (n_seeds - 1 df)
    per_seed_low: float = math.nan
    per_seed_high: float = math.nan
    lack_of_fit_p: float = math.nan  # the F test of the settings' deviations from the line (lack_of_fit)
    model: str = "seed fixed effects"  # the verdict's model: "seed fixed effects" (the line fits) or "setting
    # random effect" (lack of fit below LOF_LEVEL: the two-stage interval of the setting means' slope)


def _decimals(*values: float) -> int:
    """Decimals that give the largest magnitude two significant digits."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    return max(0, 1 - math.floor(math.log10(top))) if top > 0 else 1


def fixed_effects_slope(xs: np.ndarray, values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, int, float]:
    """The common slope of values (settings x seeds, NaN: no run) on xs with one intercept per seed, by ordinary
    least squares over every run (numpy lstsq), its Student t interval and two-sided p-value on the residual
    degrees of freedom (runs - seeds - 1): (slope, low, high, df, p). NaN where df < 1 or the fit is exact."""
    from scipy import stats

    ok = ~np.isnan(values)
    seeds = [j for j in range(values.shape[1]) if ok[:, j].any()]
    rows, cols = np.nonzero(ok[:, seeds])
    y = values[:, seeds][rows, cols]
    design = np.column_stack([xs[rows], np.eye(len(seeds))[cols]])
    df = y.size - len(seeds) - 1
    if df < 1 or np.ptp(xs[rows]) == 0:
        return math.nan, math.nan, math.nan, max(df, 0), math.nan
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < design.shape[1]:  # x does not vary within any seed: the slope is not identified
        return math.nan, math.nan, math.nan, df, math.nan
    resid = y - design @ coef
    sigma2 = float(resid @ resid) / df
    se = math.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0])
    slope = float(coef[0])
    if se == 0:
        return slope, math.nan, math.nan, df, math.nan
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return slope, slope - half, slope + half, df, float(2 * stats.t.sf(abs(slope) / se, df))


@dataclass(frozen=True)
class LackOfFit:
    """Do the settings deviate from the line? The F test of the seed + setting additive model against the seed +
    slope line, and the slope of the setting means with its t interval on settings - 2 degrees of freedom (the
    setting random-effect, two-stage interval)."""

    f: float
    p_value: float  # NaN: not testable (fewer than 3 settings, or no residual degrees of freedom)
    df1: int  # settings - 2
    df2: int  # runs - seeds - settings + 1
    slope: float  # of the setting means (seed offsets taken out) on x
    low: float
    high: float
    df: int  # settings - 2


def _lstsq_rss(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, int]:
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return coef, float(resid @ resid), int(rank)


def lack_of_fit(xs: np.ndarray, values: np.ndarray, level: float = 0.95) -> LackOfFit:
    """The lack-of-fit test of a line in x with one intercept per seed (values: settings x seeds, NaN: no run), and
    the two-stage slope: each setting's mean from the additive seed + setting fit (seed offsets taken out), then the
    least-squares line through those means, its t interval on settings - 2 degrees of freedom (valid when every
    setting carries an offset of its own: their scatter about the line is the error the slope must beat)."""
    from scipy import stats

    nan = math.nan
    ok = ~np.isnan(values)
    seeds = [j for j in range(values.shape[1]) if ok[:, j].any()]
    rows, cols = np.nonzero(ok[:, seeds])
    y = values[:, seeds][rows, cols]
    n_set = values.shape[0]
    seed_d = np.eye(len(seeds))[cols]
    setting_d = np.eye(n_set)[rows][:, 1:]
    line = np.column_stack([xs[rows], seed_d])
    full = np.column_stack([seed_d, setting_d])
    df1, df2 = n_set - 2, y.size - len(seeds) - n_set + 1
    coef, rss_full, rank = _lstsq_rss(full, y)
    if df1 < 1 or rank < full.shape[1]:
        return LackOfFit(nan, nan, max(df1, 0), max(df2, 0), nan, nan, nan, max(df1, 0))
    _, rss_line, _ = _lstsq_rss(line, y)
    f = p = nan
    if df2 >= 1 and rss_full > 0:
        f = ((rss_line - rss_full) / df1) / (rss_full / df2)
        p = float(stats.f.sf(f, df1, df2))
    means = float(np.mean(coef[:len(seeds)])) + np.r_[0.0, coef[len(seeds):]]  # each setting at the mean seed
    x = xs - xs.mean()
    slope = float(x @ (means - means.mean()) / (x @ x))
    resid = means - means.mean() - slope * x
    se = math.sqrt(float(resid @ resid) / df1 / float(x @ x))
    half = float(stats.t.ppf((1 + level) / 2, df1)) * se
    return LackOfFit(float(f), p, df1, df2, slope, slope - half, slope + half, df1)


# long: its docstring states the method and its calibration (two thirds of the lines)
def trend_verdict(values_by_setting: Mapping[float, Sequence[float]], level: float = 0.95, *,
                  quantity: str = "error", setting: str = "the setting", unit: str = "points",
                  log_scale: bool = True) -> TrendVerdict:
    """Whether quantity falls, rises or stays within seed noise as the setting grows.

    values_by_setting maps each setting value (e.g. cardinality 1, 2, 4, 8, 32) to the quantity measured with
    seeds 0, 1, ..., in the same seed order for every setting (NaN marks a missing run). x is log2(setting)
    (the change per doubling; the setting itself when log_scale is False).

    Method (the verdict): a seed fixed-effects regression over every run, quantity = a_seed + slope * x + noise,
    by least squares; the slope's Student t interval on runs - seeds - 1 degrees of freedom (11 for 3 seeds x 5
    settings). Each run is its own training, so its noise is independent given the seed's offset, which the
    seed intercepts absorb; the interval is exact under normal noise, and a missing run only drops one row.
    The trend "falls" or "rises" when the interval excludes 0; otherwise, or with fewer than 2 seeds or no
    residual degrees of freedom, it is "flat" (within seed noise, or not judged).
    Beside it (not the verdict): each seed's own slope over the settings every seed has (the same settings for
    all seeds), their mean and its t interval on seeds - 1 degrees of freedom (4.30 x the s.e. at 3 seeds).
    """
    if len(values_by_setting) < 2:
        raise ValueError("a trend needs at least 2 settings")
    settings = sorted(float(s) for s in values_by_setting)
    if log_scale and settings[0] <= 0:
        raise ValueError("settings must be > 0 on a log scale (pass log_scale=False)")
    rows = [np.asarray(values_by_setting[s], dtype=float).ravel() for s in sorted(values_by_setting)]
    if len({r.size for r in rows}) != 1:
        raise ValueError("every setting needs one value per seed, in the same seed order (NaN for a missing run)")
    values = np.vstack(rows)  # settings x seeds
    xs = np.log2(settings) if log_scale else np.asarray(settings)
    present = ~np.isnan(values)
    seeds = [j for j in range(values.shape[1]) if present[:, j].any()]
    used = [j for j in seeds if present[:, j].sum() >= 2]  # seeds that span at least 2 settings
    common = present[:, seeds].all(axis=1) if seeds else np.zeros(len(settings), bool)
    slopes = []
    if common.sum() >= 2:  # per-seed slopes on the same settings for every seed
        x = xs[common] - xs[common].mean()
        for j in seeds:
            y = values[common, j]
            slopes.append(float(x @ (y - y.mean()) / (x @ x)))
    beside = _t_summary(np.asarray(slopes), level)
    model, lof_p = "seed fixed effects", math.nan
    if len(used) >= 2:
        slope, low, high, df, p_value = fixed_effects_slope(xs, values[:, used], level)
        lof = lack_of_fit(xs, values[:, used], level)
        lof_p = lof.p_value
        if math.isfinite(lof_p) and lof_p < LOF_LEVEL and math.isfinite(lof.low):
            from scipy import stats

            model, (slope, low, high, df) = "setting random effect", (lof.slope, lof.low, lof.high, lof.df)
            se = (high - low) / 2 / float(stats.t.ppf((1 + level) / 2, df))
            p_value = float(2 * stats.t.sf(abs(slope) / se, df)) if se > 0 else math.nan
    else:
        slope, low, high, df, p_value = math.nan, math.nan, math.nan, 0, math.nan
    n_runs = int(present[:, used].sum()) if used else 0
    per = "per doubling" if log_scale else "per unit"
    pct = f"{level * 100:g}%"
    if not math.isfinite(low):
        direction = "flat"
        d = _decimals(slope)
        shown = "no slope" if slope != slope else f"slope {slope:.{d}f} {unit} {per}"
        text = (f"{quantity} cannot be judged against seed noise with {len(used)} usable seed(s) and {n_runs} runs "
                f"as {setting} rises ({shown})")
    else:
        d = _decimals(high - slope)  # two significant digits of the interval's half-width
        fit = (f"the settings deviate from a line (lack of fit p {lof_p:.2f} < {LOF_LEVEL:g}): the interval of the "
               f"setting means' slope on {df} df" if model == "setting random effect" else
               f"seed fixed effects, lack of fit p {lof_p:.2f}" if math.isfinite(lof_p) else "seed fixed effects")
        detail = (f"slope {slope:.{d}f} {unit} {per}, {pct} CI {low:.{d}f}..{high:.{d}f}, {n_runs} runs of "
                  f"{len(used)} seeds; {fit}")
        if high < 0:
            direction, text = "falls", f"{quantity} falls as {setting} rises ({detail})"
        elif low > 0:
            direction, text = "rises", f"{quantity} rises as {setting} rises ({detail})"
        else:
            direction, text = "flat", f"differences in {quantity} across {setting} are within seed noise ({detail})"
    return TrendVerdict(direction, slope, low, high, len(seeds), level, tuple(slopes), text, n_runs=n_runs, df=df,
                        p_value=p_value, per_seed_mean=beside.mean_diff, per_seed_low=beside.low,
                        per_seed_high=beside.high, lack_of_fit_p=lof_p, model=model)
