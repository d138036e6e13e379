"""The statistics of a sweep summary against SciPy's and the textbook's: intervals in the metric's range, the paired
comparison by seed, Welch's where the seeds differ, and Holm's correction."""
import math

import numpy as np
import pytest
from scipy import stats

from tests.sweep.test_summary import header, make_job, table_rows
from trainer.metrics import RMSE, TEST, result_key
from trainer.sweep import summarize
from trainer.sweep.stats import BOOTSTRAP, PAIRED_T, RANGE, WELCH, compare, estimate, holm


def test_below_five_seeds_the_interval_is_the_range_of_their_values():
    found = estimate([0.1, 0.95, 0.9])
    assert (found.mean, found.low, found.high, found.n, found.method) == (pytest.approx(0.65), 0.1, 0.95, 3, RANGE)
    assert estimate([0.7]).low is None and estimate([0.7]).method is None  # one run: its value alone


def test_from_five_seeds_the_interval_is_scipys_bca_bootstrap_and_stays_in_the_values_range():
    values = [0.10, 0.95, 0.90, 0.97, 0.93]  # one seed failed to learn: a skewed, bounded sample
    found = estimate(values)
    scipy_says = stats.bootstrap((np.array(values),), np.mean, n_resamples=9999, method="BCa",
                                 rng=np.random.default_rng(0)).confidence_interval
    assert found.method == BOOTSTRAP and (found.low, found.high) == pytest.approx((scipy_says.low, scipy_says.high))
    assert 0.10 <= found.low < found.mean < found.high <= 0.97
    t_interval = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert t_interval[1] > 1  # what the Student-t interval said: accuracy above 1


def test_a_geometric_estimate_is_the_mean_and_interval_of_the_logs_mapped_back():
    found = estimate([0.5, 2.0, 8.0], log=True)
    assert (found.mean, found.low, found.high) == pytest.approx((2.0, 0.5, 8.0))


def five_seed_groups(tmp_path, spread_best, other):
    """Two groups of five seeds: best val acc per seed."""
    for num, (loss, accuracies) in enumerate([("ce", spread_best), ("mse", other)]):
        for seed, acc in enumerate(accuracies):
            make_job(tmp_path, 5 * num + seed, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc)
    text, _ = summarize(tmp_path)
    return {row[1]: dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")}


def test_a_group_that_loses_in_every_seed_is_separated_by_the_paired_test_where_welchs_is_not(tmp_path):
    # the seeds vary a lot (0.62 to 0.98), but mse is 0.02 to 0.04 below ce in every one of them
    ce = [0.62, 0.98, 0.75, 0.88, 0.70]
    mse = [0.59, 0.95, 0.73, 0.84, 0.68]
    rows = five_seed_groups(tmp_path, ce, mse)
    paired, welch = stats.ttest_rel(mse, ce).pvalue, stats.ttest_ind(ce, mse, equal_var=False).pvalue
    assert paired < 0.05 < 0.5 < welch
    assert rows["loss=mse"]["vs best"] == f"worse (p={paired:.2g})"  # one group compared: Holm changes nothing
    assert (rows["loss=mse"]["test"], rows["loss=mse"]["best won"]) == ("paired t, 5 seeds", "5/5")
    differences = np.subtract(mse, ce)
    ci = stats.bootstrap((differences,), np.mean, n_resamples=9999, method="BCa",
                         rng=np.random.default_rng(0)).confidence_interval
    assert rows["loss=mse"]["difference to best"] == f"{differences.mean():+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"
    assert rows["loss=mse"]["interval"] == "95% BCa of 5"


def test_groups_that_share_no_seeds_get_welchs_test_and_the_table_says_so(tmp_path):
    for num, (loss, seed, acc) in enumerate([("ce", 0, 0.9), ("ce", 1, 0.8), ("mse", 2, 0.7), ("mse", 3, 0.6)]):
        make_job(tmp_path, num, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc)
    text, _ = summarize(tmp_path)
    row = dict(zip(header(text, "## Seed groups"), table_rows(text, "## Seed groups")[1]))
    p = stats.ttest_ind([0.9, 0.8], [0.7, 0.6], equal_var=False).pvalue
    assert (row["test"], row["vs best"], row["best won"]) == ("Welch", f"{'tied' if p >= 0.05 else 'worse'} "
                                                                        f"(p={p:.2g})", "–")
    assert row["difference to best"] == "-0.2000"  # the difference of the means; too few seeds for an interval


def test_an_error_is_compared_by_its_per_seed_ratio_tested_on_the_logs(tmp_path):
    # the outlier sweep of docs/compare.md: l1 beats mse in every seed, by 2.8x, 6.5x and 4.3x in validation RMSE
    l1, mse = [0.10, 0.12, 0.19], [0.28, 0.78, 0.817]
    best_key = "best/val_rmse"
    for num, (loss, values) in enumerate([("l1", l1), ("mse", mse)]):
        for seed, value in enumerate(values):
            make_job(tmp_path, 3 * num + seed, [f"loss={loss}", f"seed={seed}"], test_acc=None,
                     **{best_key: value, result_key(TEST, RMSE): value})
    text, _ = summarize(tmp_path)
    row = dict(zip(header(text, "## Seed groups"), table_rows(text, "## Seed groups")[1]))
    ratios = np.divide(mse, l1)
    p = stats.ttest_1samp(np.log(ratios), 0).pvalue
    assert row["test"] == "paired t, 3 seeds" and row["best won"] == "3/3"
    assert row["difference to best"] == (f"×{math.exp(np.log(ratios).mean()):.3g} [{ratios.min():.3g}, "
                                         f"{ratios.max():.3g}]") == "×4.28 [2.8, 6.5]"
    assert row["vs best"] == f"{'tied' if p >= 0.05 else 'worse'} (p={p:.2g})"


def test_holms_correction_multiplies_the_ith_smallest_of_m_p_values_by_m_minus_i_and_keeps_them_ordered():
    # m = 4 tests (None is no test), sorted 0.01, 0.03, 0.04, 0.5: times 4, 3, 2, 1 = 0.04, 0.09, 0.08 -> 0.09
    # (never below the one before), 0.5
    assert holm([0.04, None, 0.01, 0.5, 0.03]) == pytest.approx([0.09, None, 0.04, 0.5, 0.09])
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == [] and holm([None]) == [None]


def test_holms_correction_turns_a_chance_worse_among_several_groups_into_tied(tmp_path):
    # four groups against the best: one comparison at p ~ 0.03 alone would be "worse"; among three it is not
    best = [0.90, 0.92, 0.94]
    others = {"mse": [0.88, 0.91, 0.925], "bce": [0.90, 0.92, 0.93], "l1": [0.92, 0.90, 0.94]}
    for num, (loss, values) in enumerate([("ce", best), *others.items()]):
        for seed, acc in enumerate(values):
            make_job(tmp_path, 3 * num + seed, [f"loss={loss}", f"seed={seed}"], best_val=acc, test_acc=acc)
    text, _ = summarize(tmp_path)
    rows = {row[1]: dict(zip(header(text, "## Seed groups"), row)) for row in table_rows(text, "## Seed groups")}
    raw = {loss: stats.ttest_rel(values, best).pvalue for loss, values in others.items()}
    assert raw["mse"] < 0.05 and rows["loss=mse"]["vs best"] == f"tied (p={min(1, 3 * raw['mse']):.2g})"


def test_compare_falls_back_to_differences_for_values_that_cannot_be_ratios():
    found = compare({"0": 0.5, "1": 0.0}, {"0": 0.75, "1": 0.25}, higher_is_better=False, ratio=True)
    assert not found.ratio and found.test == PAIRED_T and found.difference.mean == 0.25
    assert found.wins == 2 and found.p_value == 0.0  # the same difference in both seeds: no spread to test
    unpaired = compare({"0": 0.9, "1": 0.8}, {"2": 0.7}, higher_is_better=True)
    assert unpaired.test is None and unpaired.p_value is None and unpaired.difference.mean == pytest.approx(-0.15)
    assert compare({"0": 0.9}, {}, higher_is_better=True).difference is None
    assert WELCH == compare({"0": 0.9, "1": 0.8}, {"2": 0.7, "3": 0.5}, higher_is_better=True).test
