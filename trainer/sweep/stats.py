"""Statistics over a seed group's runs: the mean and an interval that stays in the metric's range, and the comparison
of a group with the best one, paired by seed where the two share their seeds. SciPy does the work; it is imported
only when a summary is computed. The choices, and what they can and cannot show (docs/sweeps.md says it for users):

- **Intervals.** Below MIN_BOOTSTRAP finished seeds the interval is the range of the seeds' values, lowest to
  highest: with two to four values no interval method has the coverage it claims (a Student-t interval on three
  accuracies reached from -0.38 to 1.68), and the range says what was seen. From MIN_BOOTSTRAP seeds on it is the
  95% BCa bootstrap interval of the mean (Efron 1987; `scipy.stats.bootstrap`), which corrects the percentile
  interval for the skew of a metric near its bound (accuracy near 1). Either way its bounds are means of the seeds'
  values, so it never leaves their range, nor the metric's (accuracy and ECE in [0, 1], losses and NLL >= 0). With
  few seeds a bootstrap interval is still too narrow: it is an honest picture of the spread, not a guarantee.
- **Paired by seed.** Jobs with the same seed share the split, the initialisation and the batch order, so the
  per-seed difference to the best group removes what the seeds share. For errors and losses (RMSE, MAE, NLL: a
  reader compares them as ratios) the per-seed ratio, tested on its logarithm. The test is Student's paired t on
  those differences (`scipy.stats.ttest_1samp` against 0): with three seeds it separates only a large, consistent
  difference, and it assumes differences roughly normal, which three values cannot check. We take it over
  Wilcoxon's signed-rank test because that cannot reach p < 0.05 with fewer than six pairs (its smallest two-sided
  p-value with five is 1/16). Always shown beside it: the mean difference, its interval, and the seeds the best
  group won.
- **Unpaired.** Where the groups share fewer than two seeds, Welch's t test (no equal-spread assumption) on the
  values, or on their logarithms for a ratio metric.
- **Several groups against the best.** Holm's step-down correction (Holm 1979) over all of them: with ten groups one
  "worse" at 5% would otherwise be expected by chance alone. Choosing the best group from the same runs favours it;
  the correction does not undo that, so a narrow "worse" is a hint, not a finding.
"""
import math
import statistics
import warnings
from dataclasses import dataclass

LEVEL = 0.95          # of the intervals; a group is "tied" with the best at a (Holm-adjusted) p >= 1 - LEVEL
MIN_BOOTSTRAP = 5     # finished seeds from which an interval is a bootstrap interval rather than the range
RESAMPLES = 9999      # bootstrap resamples (seeded, so a summary rebuilt from the same jobs is the same)
RANGE, BOOTSTRAP = "range", "BCa bootstrap"          # how an interval was made
PAIRED_T, WELCH = "paired t", "Welch"                # the tests a comparison can get


@dataclass(frozen=True)
class Estimate:
    """A mean over n runs and its interval [low, high], made by `method` (RANGE or BOOTSTRAP; None for one run).
    A geometric estimate (of ratios) has the geometric mean and the interval of the logarithms, mapped back."""
    mean: float
    n: int
    low: float | None = None
    high: float | None = None
    method: str | None = None


def estimate(values: list[float], *, log: bool = False) -> Estimate:
    """The mean of `values` and its interval (the range below MIN_BOOTSTRAP values, else the BCa bootstrap
    interval). `log=True`: the geometric mean and the interval of the logarithms (values > 0), mapped back."""
    n = len(values)
    if len(set(values)) == 1:  # exactly: rounding in the mean would give a spread of 1e-18
        method = RANGE if n < MIN_BOOTSTRAP else BOOTSTRAP
        return Estimate(values[0], n, *((values[0], values[0], method) if n > 1 else ()))
    logs = [math.log(value) for value in values] if log else values
    back = math.exp if log else float
    if n < MIN_BOOTSTRAP:
        low, high, method = min(logs), max(logs), RANGE
    else:
        (low, high), method = bootstrap_interval(logs), BOOTSTRAP
    return Estimate(back(statistics.fmean(logs)), n, back(low), back(high), method)


def bootstrap_interval(values: list[float]) -> tuple[float, float]:
    """The 95% BCa bootstrap interval of the mean (the percentile interval where BCa is undefined), clipped to the
    values' range against rounding in the resampled means."""
    import numpy as np
    from scipy import stats

    sample = np.asarray(values, dtype=float)
    interval = None
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SciPy warns where BCa is undefined (the fallback) or a resample is flat
            found = stats.bootstrap((sample,), np.mean, confidence_level=LEVEL, n_resamples=RESAMPLES,
                                    method=method, rng=np.random.default_rng(0)).confidence_interval
        if math.isfinite(found.low) and math.isfinite(found.high):
            interval = found
            break
    low, high = (sample.min(), sample.max()) if interval is None else (interval.low, interval.high)
    return max(float(low), float(sample.min())), min(float(high), float(sample.max()))


@dataclass(frozen=True)
class Comparison:
    """A group against the best group on the ranking metric. `difference` is the other group's value minus the best's
    (per seed, when paired), or with `ratio` the other's divided by the best's (the geometric mean ratio)."""
    test: str | None            # PAIRED_T, WELCH, or None: too few runs to test
    p_value: float | None       # the test's two-sided p-value
    difference: Estimate | None
    ratio: bool = False
    pairs: int = 0              # seeds both groups finished (a paired comparison)
    wins: int | None = None     # of those, the seeds in which the best group did better
    p_holm: float | None = None  # p_value adjusted by Holm's correction over every group compared with the best


def compare(best: dict, other: dict, *, higher_is_better: bool, ratio: bool = False) -> Comparison:
    """The other group against the best: `best` and `other` map each finished seed to its value. Paired by seed when
    they share at least two seeds, else Welch's test. `ratio`: compared as ratios (every value must be > 0, else
    as differences)."""
    ratio = ratio and all(value > 0 for value in (*best.values(), *other.values()))
    shared = sorted(best.keys() & other.keys())
    if len(shared) < 2:
        return unpaired(list(best.values()), list(other.values()), ratio=ratio)
    top, them = [best[seed] for seed in shared], [other[seed] for seed in shared]
    if ratio:
        differences = [math.log(o) - math.log(b) for b, o in zip(top, them)]
        difference = estimate([o / b for b, o in zip(top, them)], log=True)
    else:
        differences = [o - b for b, o in zip(top, them)]
        difference = estimate(differences)
    wins = sum(b > o if higher_is_better else b < o for b, o in zip(top, them))
    return Comparison(PAIRED_T, one_sample_p(differences), difference, ratio, pairs=len(shared), wins=wins)


def one_sample_p(differences: list[float]) -> float:
    """Two-sided p-value of Student's t test that the differences' mean is 0. Differences without spread have no t
    statistic (0/0) and are taken as they are: p = 1 when all are 0, p = 0 when all are one other value."""
    from scipy import stats

    if len(set(differences)) == 1:
        return 1.0 if differences[0] == 0 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's warning for nearly equal values: p is still right
        return float(stats.ttest_1samp(differences, 0.0).pvalue)


def unpaired(best: list[float], other: list[float], *, ratio: bool) -> Comparison:
    """Welch's test of the two samples (of their logarithms with `ratio`), and the difference of their means (the
    ratio of their geometric means) with a two-sample bootstrap interval when both have MIN_BOOTSTRAP values."""
    if not best or not other:
        return Comparison(None, None, None, ratio)
    top, them = ([math.log(v) for v in values] if ratio else values for values in (best, other))
    back = math.exp if ratio else float
    centre = statistics.fmean(them) - statistics.fmean(top)
    low = high = method = None
    if min(len(top), len(them)) >= MIN_BOOTSTRAP and len(set(top + them)) > 1:
        low, high = map(back, two_sample_interval(top, them))
        method = BOOTSTRAP
    difference = Estimate(back(centre), min(len(top), len(them)), low, high, method)
    return Comparison(WELCH if min(len(top), len(them)) >= 2 else None, welch_p(top, them), difference, ratio)


def two_sample_interval(best: list[float], other: list[float]) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of mean(other) - mean(best), each sample resampled on its own."""
    import numpy as np
    from scipy import stats

    statistic = lambda top, them, axis: np.mean(them, axis=axis) - np.mean(top, axis=axis)
    found = stats.bootstrap((np.asarray(best, float), np.asarray(other, float)), statistic, confidence_level=LEVEL,
                            n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(0))
    return float(found.confidence_interval.low), float(found.confidence_interval.high)


def welch_p(best: list[float], other: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that two samples share their mean; None when one has fewer than two
    values. Two samples without spread (every seed reached the same accuracy, say 1.0 on an easy task) have no t
    statistic (0/0) and are compared as they are: p = 1 for equal values, 0 for different ones."""
    from scipy import stats

    if len(best) < 2 or len(other) < 2:
        return None
    if len(set(best)) == 1 and len(set(other)) == 1:
        return 1.0 if best[0] == other[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's warning for nearly equal values: p is still right
        return float(stats.ttest_ind(best, other, equal_var=False).pvalue)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple test procedure"),
    in the order given; None (no test) stays None and does not count. With the m p-values sorted, the i-th smallest
    (from 1) becomes max over j <= i of min(1, (m - j + 1) p_(j)): comparing it with 0.05 controls the chance of
    any false "worse" at 5%."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted, running = [None] * len(p_values), 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted
