"""Tests of amortlib.importance against closed forms, at settings the chapter does not use."""

import numpy as np
import pytest
import tensorflow_probability as tfp
from scipy import stats

from amortlib import GaussianUnknownMean
from amortlib import importance as imp

tfd = tfp.distributions


def chi2_gauss(mu_p, s_p, mu_q, s_q):
    """Closed form of chi^2(N(mu_p, s_p^2) || N(mu_q, s_q^2)) for 2 s_q^2 > s_p^2."""
    d = 2 * s_q**2 - s_p**2
    return s_q**2 / (s_p * np.sqrt(d)) * np.exp((mu_p - mu_q) ** 2 / d) - 1


@pytest.mark.parametrize("mu_p, s_p, mu_q, s_q", [(0.0, 1.0, 0.5, 1.3), (2.0, 0.5, -1.0, 0.8),
                                                  (0.0, 1.0, 0.0, 0.75)])
def test_chi_square_of_two_gaussians(mu_p, s_p, mu_q, s_q):
    p, q = tfd.Normal(np.float32(mu_p), np.float32(s_p)), tfd.Normal(np.float32(mu_q),
                                                                        np.float32(s_q))
    exact = chi2_gauss(mu_p, s_p, mu_q, s_q)
    np.testing.assert_allclose(imp.chi_square(p, q), exact, rtol=1e-4)
    np.testing.assert_allclose(imp.ess_fraction(p, q), 1 / (1 + exact), rtol=1e-4)


def test_chi_square_is_infinite_for_a_too_narrow_proposal():
    assert np.isinf(imp.chi_square(tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 0.7)))
    assert imp.ess_fraction(tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 0.7)) == 0.0


def test_chi_square_far_beyond_float32():
    """Same widths, means 12 apart: chi^2 = exp(144) - 1, far beyond float32."""
    value = imp.chi_square(tfd.Normal(-6.0, 1.0), tfd.Normal(6.0, 1.0))
    assert np.isclose(np.log1p(value), 144.0, atol=1e-3)


def test_effective_sample_size():
    assert imp.effective_sample_size(np.zeros(7)) == pytest.approx(7.0)
    assert imp.effective_sample_size([0.0, -1e4, -1e4]) == pytest.approx(1.0)
    # two values: (w1 + w2)^2 / (w1^2 + w2^2), scale-free
    log_w = np.log([1.0, 3.0]) + 900.0
    assert imp.effective_sample_size(log_w) == pytest.approx(16 / 10)
    np.testing.assert_allclose(imp.effective_sample_size(np.zeros((5, 3))), [5.0, 5.0, 5.0])


def test_sampled_ess_and_evidence_match_the_exact_ones():
    model = GaussianUnknownMean(mu0=-1.0, sigma0=2.0, sigma=1.5)
    y = np.float32(2.0)
    p = model.posterior(y)
    q = tfd.Normal(p.mean() + 0.5, 1.5 * p.stddev())
    _, log_w = imp.log_importance_weights(model, q, y, 200_000, seed=4)
    log_w = log_w.numpy().astype(np.float64)
    fraction = imp.effective_sample_size(log_w) / log_w.size
    assert fraction == pytest.approx(float(imp.ess_fraction(p, q)), abs=0.01)
    log_mean = np.logaddexp.reduce(log_w) - np.log(log_w.size)
    assert log_mean == pytest.approx(float(model.evidence().log_prob(y)), abs=0.01)


@pytest.mark.parametrize("shape", [-0.2, 0.3, 0.8])
def test_gpd_fit_recovers_the_shape(shape):
    draws = stats.genpareto(shape, scale=3.0).rvs(20_000, random_state=7)
    k, sigma = imp.gpd_fit(draws)
    assert k == pytest.approx(shape, abs=0.05)
    assert sigma == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("k", [0.3, 0.6, 0.9])
def test_pareto_k_of_pareto_weights(k):
    """Weights U^(-k) have Pr(w > t) = t^(-1/k): tail index k exactly."""
    rng = np.random.default_rng(11)
    estimates = [imp.pareto_k(-k * np.log(rng.uniform(size=40_000))) for _ in range(5)]
    # tail of 600 draws per sample: sd about (1 + k) / sqrt(600) < 0.08; mean of 5 within 0.1
    assert np.mean(estimates) == pytest.approx(k, abs=0.1)


def test_pareto_k_is_scale_free_and_checks_input():
    log_w = np.random.default_rng(0).standard_normal(1000)
    assert imp.pareto_k(log_w) == pytest.approx(imp.pareto_k(log_w + 500.0))
    with pytest.raises(ValueError, match="25"):
        imp.pareto_k(np.zeros(10))
    with pytest.raises(ValueError, match="tail_size"):
        imp.pareto_k(log_w, tail_size=2)
    with pytest.raises(ValueError, match="flat"):
        imp.pareto_k(np.zeros(100))
    with pytest.raises(ValueError, match="NaN"):
        imp.effective_sample_size([0.0, np.nan])
    with pytest.raises(ValueError, match="exceedances"):
        imp.gpd_fit([1.0, 2.0])
    with pytest.raises(ValueError, match="num_points"):
        imp.chi_square(tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 2.0), num_points=4)
    with pytest.raises(ValueError, match="seed"):
        imp.log_importance_weights(GaussianUnknownMean(), tfd.Normal(0.0, 1.0), 0.0, 5, seed=None)


def test_edge_cases_are_refused_clearly():
    with pytest.raises(ValueError, match="-inf"):
        imp.effective_sample_size(np.full(10, -np.inf))
    with pytest.raises(ValueError, match="-inf"):  # one column all -inf
        imp.effective_sample_size(np.array([[0.0, -np.inf], [1.0, -np.inf]]))
    assert imp.effective_sample_size([0.0, -np.inf, 0.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="q must have a finite mean"):
        imp.chi_square(tfd.Normal(0.0, 1.0), tfd.Cauchy(0.0, 1.0))
    with pytest.raises(ValueError, match="p must have a finite mean"):
        imp.chi_square(tfd.Cauchy(0.0, 1.0), tfd.Normal(0.0, 1.0))


def test_chi_square_mixed_dtypes_and_log():
    """float64 p with float32 q (and back) give the closed form; log=True beyond float64."""
    exact = chi2_gauss(0.3, 1.1, -0.2, 1.4)
    for p_dtype, q_dtype in [(np.float64, np.float32), (np.float32, np.float64)]:
        p = tfd.Normal(p_dtype(0.3), p_dtype(1.1))
        q = tfd.Normal(q_dtype(-0.2), q_dtype(1.4))
        np.testing.assert_allclose(imp.chi_square(p, q), exact, rtol=1e-4)
    # means 40 apart, unit widths: log(1 + chi^2) = 40^2 = 1600, chi^2 itself overflows
    p, q = tfd.Normal(0.0, 1.0), tfd.Normal(40.0, 1.0)
    assert np.isinf(imp.chi_square(p, q))
    assert float(imp.chi_square(p, q, log=True)) == pytest.approx(1600.0, abs=1e-3)
    assert float(imp.ess_fraction(tfd.Normal(0.0, 1.0), tfd.Normal(3.0, 1.0))) == (
        pytest.approx(np.exp(-9.0), rel=1e-4))


def test_pareto_k_default_tail_rounds_up():
    """n = 1003: min(n / 5, 3 sqrt n) = 95.01, so PSIS fits the 96 largest weights."""
    log_w = np.random.default_rng(2).standard_normal(1003)
    assert imp.pareto_k(log_w) == imp.pareto_k(log_w, tail_size=96)
    assert imp.pareto_k(log_w) != imp.pareto_k(log_w, tail_size=95)
