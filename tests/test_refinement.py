"""Tests of amortlib.refinement against closed forms, at settings the chapter does not use."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import GaussianMixturePrior, GaussianUnknownMean, LinearGaussian
from amortlib import refinement as rf

tfd = tfp.distributions

#: The chapter uses (0, 1, 1) and Le's mixture at sigma = 10.
MODEL = GaussianUnknownMean(mu0=1.5, sigma0=2.0, sigma=0.5)
Y = np.array([-3.0, 0.5, 6.0], dtype=np.float32)


def closed_form_elbo(model, y, m, s):
    """E_q log p(x, y) + H(q) for the conjugate Gaussian, in closed form (float64)."""
    def expected_log_normal(mean, sd):  # E_q log N(mean; x, sd^2) for x ~ N(m, s^2)
        return -0.5 * np.log(2 * np.pi * sd**2) - ((m - mean) ** 2 + s**2) / (2 * sd**2)

    prior = expected_log_normal(model.mu0, model.sigma0)
    likelihood = expected_log_normal(y, model.sigma)
    return prior + likelihood + 0.5 * np.log(2 * np.pi * np.e * s**2)


def test_gaussian_elbo_matches_closed_form():
    m, s = np.float32([0.3, -1.0, 2.0]), np.float32([0.4, 1.5, 0.2])
    elbo = rf.gaussian_elbo(MODEL, Y, m, s).numpy()
    np.testing.assert_allclose(elbo, closed_form_elbo(MODEL, Y.astype(float), m, s), atol=1e-4)


def test_posterior_elbo_is_the_log_evidence():
    p = MODEL.posterior(Y)
    elbo = rf.gaussian_elbo(MODEL, Y, p.mean(), p.stddev()).numpy()
    np.testing.assert_allclose(elbo, MODEL.evidence().log_prob(Y).numpy(), atol=1e-4)


def test_optimal_gaussian_is_the_posterior():
    loc, scale, elbo = rf.optimal_gaussian(MODEL, Y, starts=[(0.0, 3.0)])
    a, b, c = MODEL.optimal_params()
    np.testing.assert_allclose(loc, a * Y + b, atol=1e-4)
    np.testing.assert_allclose(scale, c, atol=1e-4)
    np.testing.assert_allclose(elbo, MODEL.evidence().log_prob(Y).numpy(), atol=1e-4)


def test_optimal_gaussian_on_a_mixture_costs_minus_log_w_max():
    model = GaussianMixturePrior(probs=(0.3, 0.7), locs=(-4.0, 4.0), scales=(1.0, 1.0), sigma=5.0)
    y = np.float32([-8.0, 0.0, 3.0])
    _, scale, elbo = rf.optimal_gaussian(model, y)
    w_max = model.component_posterior(y)[0].probs_parameter().numpy().max(1)
    kl = model.evidence().log_prob(y).numpy() - elbo
    # the best Gaussian beats -log w_max only by the other mode's sliver
    assert np.all(kl <= -np.log(w_max) + 1e-4)
    np.testing.assert_allclose(kl, -np.log(w_max), atol=2e-3)
    np.testing.assert_allclose(scale, np.sqrt(1 / (1 + 1 / 25)), atol=0.01)


@pytest.mark.parametrize("estimator", ["quadrature", "reparameterize"])
def test_refine_reaches_the_posterior_and_gains_the_reverse_kl(estimator):
    q_net = LinearGaussian(a=0.2, b=-1.0, c=2.0)
    kl = tfd.kl_divergence(q_net(Y), MODEL.posterior(Y)).numpy()
    result = rf.refine(MODEL, q_net, Y, num_steps=800, learning_rate=0.05, estimator=estimator,
                       sample_size=16, seed=3)
    p = MODEL.posterior(Y)
    tol = 1e-3 if estimator == "quadrature" else 0.05
    np.testing.assert_allclose(result.loc, p.mean().numpy(), atol=10 * tol)
    np.testing.assert_allclose(result.gain, kl, atol=tol)
    assert result.history.trace["elbo"].shape == (800, 3)
    assert isinstance(result.q(), tfd.Normal)
    # the network is unchanged
    assert q_net.params()[0] == pytest.approx(0.2)


def test_bad_inputs():
    q_net = LinearGaussian()
    with pytest.raises(ValueError, match="estimator"):
        rf.refine(MODEL, q_net, Y, num_steps=5, learning_rate=0.1, estimator="mc")
    with pytest.raises(ValueError, match="num_nodes"):
        rf.gaussian_elbo(MODEL, Y, 0.0, 1.0, num_nodes=1)
    with pytest.raises(ValueError, match="num_steps"):
        rf.refine(MODEL, q_net, Y, num_steps=0, learning_rate=0.1)
    with pytest.raises(ValueError, match="starts"):
        rf.optimal_gaussian(MODEL, Y, starts=[])
    with pytest.raises(ValueError, match="tfd.Normal"):
        rf.refine(MODEL, lambda y: tfd.Laplace(y, 1.0), Y, num_steps=5, learning_rate=0.1)
    with pytest.raises(ValueError, match="y"):
        rf.gaussian_elbo(MODEL, tf.zeros([2, 2]), 0.0, 1.0)


def test_bad_scales_are_refused():
    with pytest.raises(ValueError, match="scale"):
        rf.gaussian_elbo(MODEL, Y, 0.0, 0.0)
    with pytest.raises(ValueError, match="scale"):
        rf.gaussian_elbo(MODEL, Y, 0.0, -1.0)
    with pytest.raises(ValueError, match="loc"):
        rf.gaussian_elbo(MODEL, Y, np.nan, 1.0)
    with pytest.raises(ValueError, match=r"starts\[0\] scale"):
        rf.optimal_gaussian(MODEL, Y, starts=[(0.0, -1.0)])
    with pytest.raises(ValueError, match=r"starts\[1\] scale"):
        rf.optimal_gaussian(MODEL, Y, starts=[(0.0, 1.0), (0.0, 0.0)])


def _quad_elbo(m, s, y):
    """ELBO of N(m, s^2) on Le's mixture (s = 10) by adaptive quadrature in float64."""
    from scipy import integrate, stats

    def log_joint(x):
        prior = np.logaddexp(np.log(0.5) + stats.norm.logpdf(x, -5, 1),
                             np.log(0.5) + stats.norm.logpdf(x, 5, 1))
        return prior + stats.norm.logpdf(y, x, 10.0)

    value = integrate.quad(lambda x: stats.norm.pdf(x, m, s) * log_joint(x),
                           m - 40 * s, m + 40 * s, points=[0.0, m], limit=400,
                           epsabs=1e-12, epsrel=1e-12)[0]
    return value + 0.5 * np.log(2 * np.pi * np.e * s**2)


@pytest.mark.parametrize("m, s, low, high", [(0.0, 1.0, 1e-3, 4e-3), (0.0, 5.05, 0.08, 0.16),
                                             (0.0, 20.0, 0.4, 0.6), (4.9, 1.0, -1e-6, 1e-6)])
def test_gaussian_elbo_error_over_the_mixture_kink(m, s, low, high):
    """The module docstring's error of 64 nodes at y = 0: about 2e-3, 0.12, 0.5; < 1e-6."""
    model = GaussianMixturePrior(probs=(0.5, 0.5), locs=(-5.0, 5.0), scales=(1.0, 1.0),
                                 sigma=10.0)
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    x = m + s * nodes  # the same rule in float64, so float32 rounding does not blur the check
    log_joint = np.logaddexp(np.log(0.5) + stats_logpdf(x, -5.0), np.log(0.5)
                             + stats_logpdf(x, 5.0)) + stats_logpdf(0.0, x, 10.0)
    gh = weights @ log_joint / np.sqrt(2 * np.pi) + 0.5 * np.log(2 * np.pi * np.e * s**2)
    error = gh - _quad_elbo(m, s, 0.0)
    assert low < error < high
    lib = float(rf.gaussian_elbo(model, [0.0], [m], [s])[0])
    assert lib == pytest.approx(gh, abs=2e-5 * max(1.0, abs(gh)))


def stats_logpdf(x, loc, scale=1.0):
    """log N(x; loc, scale^2) in float64."""
    return -0.5 * np.log(2 * np.pi * scale**2) - (np.asarray(x) - loc) ** 2 / (2 * scale**2)
