"""Statistics over a seed group's runs: the mean and its confidence interval, and the test of a group against the
best one. SciPy does the work; it is imported only when a summary is computed."""
import statistics
import warnings
from dataclasses import dataclass
from functools import lru_cache

LEVEL = 0.95  # of the confidence intervals; Welch's test calls two groups tied at p >= 1 - LEVEL


@lru_cache(maxsize=None)
def _t_quantile(n):
    from scipy import stats

    return float(stats.t.ppf((1 + LEVEL) / 2, n - 1))


@dataclass(frozen=True)
class Estimate:
    """A mean over n runs and the half-width of its confidence interval (Student's t with n - 1 degrees of
    freedom; None for a single run)."""
    mean: float
    n: int
    half_width: float = None

    @property
    def low(self):
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self):
        return None if self.half_width is None else self.mean + self.half_width


def estimate(values):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean, len(values))
    if len(set(values)) == 1:  # exactly: rounding in the mean would give a spread of 1e-18
        return Estimate(values[0], len(values), 0.0)
    from scipy import stats

    return Estimate(mean, len(values), _t_quantile(len(values)) * float(stats.sem(values)))


def welch_p(best, other):
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
