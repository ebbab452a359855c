"""stats.py against closed forms, textbook table values and hand-computed examples."""

import math
import statistics

import numpy as np
import pytest

from evaluation import stats


@pytest.mark.parametrize("t", [-7.0, -1.0, -0.3, 0.0, 0.25, 1.0, 3.0, 12.706, 100.0])
def test_t_cdf_matches_the_closed_forms_for_one_and_two_degrees_of_freedom(t):
    # df = 1 is the Cauchy distribution: 1/2 + atan(t)/pi; df = 2: 1/2 + t / (2 sqrt(2 + t^2))
    assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_t_cdf_by_hand():
    assert stats.t_cdf(1.0, 1) == pytest.approx(0.75)  # atan(1) = pi/4
    assert stats.t_cdf(1.0, 2) == pytest.approx(0.5 + 1 / (2 * math.sqrt(3)))
    assert stats.t_two_sided_p(math.sqrt(12), 2) == pytest.approx(1 - math.sqrt(12 / 14))  # 2 (1 - F(sqrt 12))


def test_incomplete_beta_against_the_binomial_sum():
    # for whole a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a)
    for x in (0.05, 0.3, 0.9):
        binomial = sum(math.comb(4, j) * x ** j * (1 - x) ** (4 - j) for j in range(2, 5))
        assert stats.incomplete_beta(x, 2, 3) == pytest.approx(binomial, abs=1e-12)


@pytest.mark.parametrize("df, table", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_the_textbook_table(df, table):
    assert stats.t_quantile(0.975, df) == pytest.approx(table, abs=6e-4)
    assert stats.t_quantile(0.025, df) == pytest.approx(-table, abs=6e-4)


def test_t_quantile_inverts_the_cdf_and_tends_to_the_normal():
    for df in (1, 3, 17):
        for p in (0.6, 0.9, 0.995):
            assert stats.t_cdf(stats.t_quantile(p, df), df) == pytest.approx(p, abs=1e-10)
    assert stats.t_quantile(0.975, 10 ** 7) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-5)
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 3)


def test_t_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, n 3; interval 2 ± t(2, .975) / sqrt(3) = 2 ± 4.3027 / 1.7321 = 2 ± 2.4841;
    # t = 2 / (1 / sqrt 3) = sqrt 12, and with 2 degrees of freedom p = 1 - sqrt(12 / 14) = 0.0742
    n, mean, (low, high), p = stats.t_interval([1.0, 2.0, 3.0])
    assert (n, mean) == (3, 2.0)
    assert (low, high) == (pytest.approx(-0.4841, abs=1e-4), pytest.approx(4.4841, abs=1e-4))
    assert p == pytest.approx(0.0742, abs=1e-4)


def test_one_value_has_no_test():
    assert stats.t_interval([0.4]) == (1, 0.4, None, None)


@pytest.mark.parametrize("differences", [[1 / 150] * 5, [0.0, 0.0], [-0.02] * 3])
def test_differences_without_spread_are_untestable_not_significant(differences):
    # every seed moved by the same step (one item out of 150): a t-test would give p = 0
    n, mean, interval, p = stats.t_interval(differences)
    assert (n, interval) == (len(differences), None) and math.isnan(p) and mean == pytest.approx(differences[0])


def test_float_noise_is_no_spread():
    # the same accuracy difference, computed from different sums, differs in the last bits only: sd ~ 1e-18
    differences = [(k + 1) / 150 - k / 150 for k in (3, 17, 40, 77, 149)]
    assert len(set(differences)) > 1 and statistics.stdev(differences) > 0  # the noise is there
    n, mean, interval, p = stats.t_interval(differences)
    assert interval is None and math.isnan(p)
    # a spread of one step in one seed is a spread, tested: mean 1.2 a, sd a sqrt(0.8 / 4),
    # t = 1.2 sqrt(5) / sqrt(0.2) = 6
    assert stats.t_interval([1 / 150] * 4 + [2 / 150])[3] == pytest.approx(stats.t_two_sided_p(6.0, 4))


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (never below the one before)
    adjusted, survives = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert survives == [True, False, False, True]
    # capped at 1, and one test is its own family
    assert stats.holm([0.5, 0.6])[0] == pytest.approx([1.0, 1.0])
    assert stats.holm([0.04]) == ([0.04], [True])
    assert stats.holm([]) == ([], [])
    # an untestable member (nan) stays in the family as p = 1: it never survives, and it counts in m
    adjusted, survives = stats.holm([0.01, math.nan, None])
    assert adjusted == pytest.approx([0.03, 1.0, 1.0]) and survives == [True, False, False]


def simulate(n_experiments, world_sd, seeds=5, items=150, langs=6, item_sd=0.3, residual_sd=0.3, true_mean=0.05):
    """Experiments as run.sh makes them: every seed draws its own world, with its own items (items nested in
    seeds). A paired difference per item and language = true mean + the world's effect (world_sd: the world and
    its training seed) + the item's (item_sd, within its world) + a residual (per language). Returns
    [(per-seed means, per-item means)] per experiment: what the report's test uses (the mean over items and
    languages in each seed) and what the old item-level test used (item k averaged over languages and seeds)."""
    rng = np.random.default_rng(20240611)
    shape = (n_experiments, seeds, items)
    # an item's difference averaged over its languages: the residuals' mean has sd residual_sd / sqrt(langs)
    d = (true_mean + rng.normal(0, world_sd, shape[:2])[..., None] + rng.normal(0, item_sd, shape)
         + rng.normal(0, residual_sd / math.sqrt(langs), shape))
    return [(e.mean(axis=1), e.mean(axis=0)) for e in d]


def coverage(intervals, true_mean=0.05):
    intervals = list(intervals)
    return sum(low <= true_mean <= high for low, high in intervals) / len(intervals)


@pytest.mark.parametrize("world_sd", [0.0, 0.04])
def test_the_interval_over_per_seed_means_covers_the_true_difference(world_sd):
    """The report's test (docs/method.md, "Statistics"): the t-interval over the per-seed means, df = seeds - 1,
    covers the true mean difference in 95% of experiments, whether the worlds differ or not. Fails if
    t_interval used the normal quantile (1.96 instead of t(4) = 2.78 covers ~88%) or counted items as df."""
    covered = coverage(stats.t_interval(list(seed_means))[2] for seed_means, _ in simulate(2000, world_sd))
    assert 0.93 <= covered <= 0.97


def test_an_interval_over_items_alone_undercovers_when_worlds_differ():
    """The old item-level interval (items averaged over languages and seeds, df = items - 1) drops the world's
    variance: with worlds that differ by an sd of 0.04 it covers the true difference far less often than 95%
    (the world's share of the mean's variance, 0.04^2 / 5 against 0.105 / 750, is about 70%)."""
    # 500 experiments: at ~0.7 coverage, an sd of 0.02
    covered = coverage(stats.t_interval(list(item_means))[2] for _, item_means in simulate(500, 0.04))
    assert covered < 0.85
