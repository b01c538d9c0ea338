import numpy as np
import pytest
import tensorflow as tf

from amortlib import GaussianUnknownMean


def test_posterior_is_bayes_rule(model):
    """log p(x|y) = log p(x, y) - log p(y) at every (x, y) of a grid: posterior and evidence."""
    y = np.linspace(-6, 6, 13).astype(np.float32)
    x = np.linspace(-6, 6, 41).astype(np.float32)[:, None]
    lhs = model.posterior(y).log_prob(x)
    rhs = model.log_prob(x, y) - model.evidence().log_prob(y)
    np.testing.assert_allclose(lhs, rhs, atol=2e-4)


def test_evidence_integrates_the_joint(model):
    """p(y) = integral of p(x, y) dx, by Simpson's rule on a fine grid."""
    y = np.array([-3.0, 0.0, 1.7], dtype=np.float32)
    x = np.linspace(model.mu0 - 14 * model.sigma0, model.mu0 + 14 * model.sigma0, 20001)
    dens = np.exp(model.log_prob(x[:, None].astype(np.float32), y).numpy().astype(np.float64))
    w = np.ones(len(x))
    w[1:-1:2], w[2:-1:2] = 4, 2
    integral = (x[1] - x[0]) / 3 * w @ dens
    np.testing.assert_allclose(integral, np.exp(model.evidence().log_prob(y)), rtol=1e-4)


def test_optimal_params_are_the_posterior(model):
    a, b, c = model.optimal_params()
    y = np.array([-2.0, 0.5, 4.0], dtype=np.float32)
    post = model.posterior(y)
    np.testing.assert_allclose(post.mean(), a * y + b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(post.stddev(), c, rtol=1e-6)
    # c* is a standard deviation: its square is the posterior variance 1 / (1/s0^2 + 1/s^2),
    # the expression the source prints for c* itself (the erratum).
    assert c**2 == pytest.approx(1 / (1 / model.sigma0**2 + 1 / model.sigma**2))


def test_source_settings_optimum():
    a, b, c = GaussianUnknownMean(0.0, 1.0, 1.0).optimal_params()
    assert (a, b, c) == pytest.approx((0.5, 0.0, np.sqrt(0.5)))
    assert c != pytest.approx(0.5)  # the value the source prints


def test_samples_follow_the_marginals(model):
    x, y = model.sample(200_000, seed=1)
    assert x.shape == y.shape == (200_000,)
    n = 200_000
    sd_y = np.sqrt(model.sigma0**2 + model.sigma**2)
    assert abs(np.mean(x) - model.mu0) < 5 * model.sigma0 / np.sqrt(n)
    assert abs(np.mean(y) - model.mu0) < 5 * sd_y / np.sqrt(n)
    assert np.std(y) == pytest.approx(sd_y, rel=5 * np.sqrt(0.5 / n))


def test_sampling_is_seeded():
    model = GaussianUnknownMean()
    first, second = model.sample(5, seed=3), model.sample(5, seed=3)
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(sigma0=0.0), "sigma0"),
        (dict(sigma0=-1.0), "sigma0"),
        (dict(sigma=-0.1), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(mu0=float("inf")), "mu0"),
        (dict(mu0="zero"), "mu0"),
    ],
)
def test_bad_model_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianUnknownMean(**kwargs)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        GaussianUnknownMean().sample(batch_size)


@pytest.mark.parametrize("y", [[0.0, float("nan")], [[1.0, 2.0], [3.0, 4.0]], "abc"])
def test_bad_observations(y):
    with pytest.raises(ValueError, match="y must"):
        GaussianUnknownMean().posterior(y)


def test_posterior_accepts_scalar_and_batch():
    model = GaussianUnknownMean()
    assert model.posterior(1.0).batch_shape == ()
    assert model.posterior(tf.zeros([7])).batch_shape == (7,)
