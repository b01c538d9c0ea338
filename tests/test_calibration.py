"""Tests of amortlib.calibration against closed forms, at settings the chapter does not use."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from amortlib import GaussianMixturePrior, GaussianUnknownMean, LinearGaussian, fit
from amortlib import calibration as cal

tfd = tfp.distributions

#: Conjugate Gaussian settings (mu0, sigma0, sigma); the chapter uses (0, 1, 1).
SETTINGS = [(2.0, 3.0, 0.5), (-1.5, 0.4, 2.0)]
LEVELS = np.array([0.3, 0.5, 0.8, 0.9, 0.95, 0.99])


@pytest.fixture(params=SETTINGS, ids=lambda s: "mu0={}-sigma0={}-sigma={}".format(*s))
def model(request):
    return GaussianUnknownMean(*request.param)


def prior_of(model):
    return lambda y: tfd.Normal(tf.fill(tf.shape(y), model.mu0), model.sigma0)


def scaled(model, ratio):
    """q = the posterior with its standard deviation multiplied by ``ratio``."""
    def q_net(y):
        p = model.posterior(y)
        return tfd.Normal(p.mean(), ratio * p.stddev())
    return q_net


def linear_coverage(model, a, b, c, level):
    """Closed form for q = N(a y + b, c^2): x - a y - b ~ N(-m, c*^2 + (a - a*)^2 var y)."""
    a_star, b_star, c_star = model.optimal_params()
    m = (a - a_star) * model.mu0 + b - b_star
    tau = np.sqrt(c_star**2 + (a - a_star) ** 2 * (model.sigma0**2 + model.sigma**2))
    z = stats.norm.ppf(0.5 + level / 2)
    return stats.norm.cdf((m + z * c) / tau) - stats.norm.cdf((m - z * c) / tau)


def test_exact_posterior_is_calibrated(model):
    u = np.linspace(0, 1, 11)
    np.testing.assert_allclose(cal.pit_cdf(model, model.posterior, u), u, atol=1e-5)
    np.testing.assert_allclose(cal.expected_coverage(model, model.posterior, LEVELS), LEVELS,
                               atol=1e-5)
    np.testing.assert_allclose(cal.interval_mass(model, model.posterior, [-3.0, 0.0, 4.0], LEVELS),
                               np.repeat(LEVELS[:, None], 3, 1), atol=1e-5)
    np.testing.assert_allclose(cal.rank_distribution(model, model.posterior, 7),
                               np.full(8, 1 / 8), atol=1e-5)


def test_prior_passes_sbc_exactly(model):
    u = np.linspace(0, 1, 11)
    np.testing.assert_allclose(cal.pit_cdf(model, prior_of(model), u), u, atol=1e-5)
    np.testing.assert_allclose(cal.rank_distribution(model, prior_of(model), 9),
                               np.full(10, 0.1), atol=1e-5)


@pytest.mark.parametrize("ratio", [0.5, 1.7])
def test_scaled_variance_has_closed_form_coverage(model, ratio):
    z = stats.norm.ppf(0.5 + LEVELS / 2)
    expected = 2 * stats.norm.cdf(z * ratio) - 1
    np.testing.assert_allclose(cal.expected_coverage(model, scaled(model, ratio), LEVELS),
                               expected, atol=1e-5)
    np.testing.assert_allclose(cal.interval_mass(model, scaled(model, ratio), [1.0, -2.0], 0.8),
                               np.full((1, 2), expected[2]), atol=1e-5)


@pytest.mark.parametrize("ratio", [0.5, 1.7])
def test_scaled_variance_rank_distribution(model, ratio):
    # U = Phi(Z / ratio), Z ~ N(0, 1): E[Binomial(k; L, U)] by Gauss-Hermite quadrature.
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    u = stats.norm.cdf(nodes / ratio)
    num = 6
    expected = stats.binom.pmf(np.arange(num + 1)[:, None], num, u) @ weights / weights.sum()
    np.testing.assert_allclose(cal.rank_distribution(model, scaled(model, ratio), num),
                               expected, atol=2e-4)


@pytest.mark.parametrize("params", [(0.3, 0.5, 0.4), (1.2, -1.0, 2.0)])
def test_linear_q_coverage_closed_form(model, params):
    q_net = LinearGaussian(*params)
    np.testing.assert_allclose(cal.expected_coverage(model, q_net, LEVELS),
                               linear_coverage(model, *params, LEVELS), atol=1e-5)


def test_mixture_q_uses_bisection():
    """A mixture q (no TFP quantile): the model's own prior is calibrated and passes SBC."""
    model = GaussianMixturePrior([0.3, 0.7], [-2.0, 3.0], [0.5, 1.5], sigma=2.0)
    prior = model.joint.model["x"]
    u = np.linspace(0, 1, 11)
    np.testing.assert_allclose(cal.pit_cdf(model, lambda y: prior, u), u, atol=1e-5)
    posterior_mass = cal.interval_mass(model, model.posterior, [-1.0, 2.0], [0.5, 0.9])
    np.testing.assert_allclose(posterior_mass, [[0.5, 0.5], [0.9, 0.9]], atol=1e-5)


def test_data_dependent_test_quantity(model):
    """Any test quantity is calibrated under the posterior; the prior fails -|x - y|."""
    center = lambda y: y  # noqa: E731
    np.testing.assert_allclose(
        cal.rank_distribution(model, model.posterior, 5, center=center), np.full(6, 1 / 6),
        atol=1e-4)
    exact = cal.rank_distribution(model, prior_of(model), 5, center=center)
    num_sims = 20000
    ranks = cal.sbc_ranks(model, prior_of(model), num_sims, 5, center=center, seed=4)
    freq = np.bincount(ranks, minlength=6) / num_sims
    assert np.all(np.abs(freq - exact) < 5 * np.sqrt(exact * (1 - exact) / num_sims))
    assert exact[-1] > 1 / 6 + 0.02  # the truth is closer to y than prior draws are


def test_simulated_versions_agree_with_exact(model):
    q_net = scaled(model, 0.7)
    cover, se = cal.empirical_coverage(model, q_net, LEVELS, 20000, seed=1)
    exact = cal.expected_coverage(model, q_net, LEVELS)
    assert np.all(np.abs(cover - exact) < 5 * se + 1e-12), (cover, exact, se)
    num_sims = 20000
    ranks = cal.sbc_ranks(model, q_net, num_sims, 4, seed=2)
    freq = np.bincount(ranks, minlength=5) / num_sims
    p = cal.rank_distribution(model, q_net, 4)
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / num_sims)), (freq, p)
    # and the test has power: the ranks are far from uniform
    assert np.abs(p - 0.2).max() > 20 * np.sqrt(0.2 * 0.8 / num_sims)


@pytest.mark.parametrize("kwargs, match", [
    (dict(level=1.0), "level"), (dict(level=[0.5, -0.1]), "level"),
    (dict(level=0.5, num_points=100), "num_points")])
def test_bad_arguments(kwargs, match):
    model = GaussianUnknownMean(*SETTINGS[0])
    with pytest.raises(ValueError, match=match):
        cal.expected_coverage(model, model.posterior, **kwargs)


def test_bad_rank_arguments():
    model = GaussianUnknownMean(*SETTINGS[0])
    with pytest.raises(ValueError, match="num_draws"):
        cal.rank_distribution(model, model.posterior, 0)
    with pytest.raises(ValueError, match="u must lie"):
        cal.pit_cdf(model, model.posterior, [0.5, 1.2])
    with pytest.raises(ValueError, match="num_sims"):
        cal.sbc_ranks(model, model.posterior, 0, 3)


# --- fit on a fixed simulation budget ------------------------------------------------------

def test_fit_on_fixed_data_reaches_the_least_squares_fit():
    """The pq loss on n pairs is the Gaussian regression likelihood: its optimum is OLS."""
    model = GaussianUnknownMean(*SETTINGS[0])
    x, y = model.sample(12, seed=5)
    q_net = LinearGaussian()
    fit(model, q_net, "pq", data=(x, y), num_steps=1500, batch_size=64, learning_rate=0.05,
        progress=False)
    xn, yn = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(np.stack([yn, np.ones_like(yn)], 1), xn, rcond=None)
    c = np.sqrt(np.mean((xn - a * yn - b) ** 2))
    np.testing.assert_allclose(q_net.params(), (a, b, c), atol=2e-3)


def test_fit_on_fixed_data_minibatches_use_only_the_data():
    """Minibatches of a data set unlike the model's draws: SGD ends near that set's OLS fit."""
    model = GaussianUnknownMean(*SETTINGS[0])
    y = np.linspace(-3.0, 3.0, 40)
    x = 1.0 - 0.5 * y + 0.3 * np.sign(np.sin(7 * y))  # slope -0.5: the model's is 0.97
    q_net = LinearGaussian()
    fit(model, q_net, "pq", data=(x.astype(np.float32), y.astype(np.float32)),
        num_steps=1500, batch_size=8, learning_rate=0.05, progress=False)
    (a, b), *_ = np.linalg.lstsq(np.stack([y, np.ones_like(y)], 1), x, rcond=None)
    c = np.sqrt(np.mean((x - a * y - b) ** 2))
    np.testing.assert_allclose(q_net.params(), (a, b, c), atol=0.03)


@pytest.mark.parametrize("data, match", [
    (tf.zeros([3]), "pair"), ((tf.zeros([3]), tf.zeros([4])), "3 rows|4 rows"),
    ((tf.zeros([3]), tf.zeros([3, 2])), "1-D")])
def test_fit_rejects_bad_data(data, match):
    model = GaussianUnknownMean(*SETTINGS[0])
    with pytest.raises(ValueError, match=match):
        fit(model, LinearGaussian(), "pq", data=data, num_steps=1, progress=False)
