"""Each loss against its analytic value at the optimum, and its gradient there."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import LinearGaussian, MLPGaussian, pq_loss, qp_loss
from amortlib.losses import elbo_draws

tfd = tfp.distributions
N = 200_000


def optimal_net(model, **shift):
    params = model.optimal_params()._asdict()
    for name, delta in shift.items():
        params[name] += delta
    return LinearGaussian(**params)


def gaussian_entropy(sd):
    return 0.5 * np.log(2 * np.pi * np.e * sd**2)


@pytest.mark.parametrize("sample_size", [1, 5])
def test_qp_loss_at_optimum_is_minus_log_evidence(model, sample_size):
    """With q = p(x|y) every Monte Carlo term is log q - log p(x, y) = -log p(y), exactly."""
    _, y = model.sample(1000, seed=0)
    value = qp_loss(model, optimal_net(model), None, y, sample_size=sample_size, seed=1)
    expected = -tf.reduce_mean(model.evidence().log_prob(y))
    assert float(value) == pytest.approx(float(expected), abs=1e-4)


def test_expected_qp_loss_at_optimum_is_entropy_of_evidence(model):
    """E_p(y)[-log p(y)] is the entropy of N(mu0, s0^2 + s^2); -log p(y) has variance 1/2."""
    _, y = model.sample(N, seed=2)
    value = float(qp_loss(model, optimal_net(model), None, y, seed=3))
    expected = gaussian_entropy(np.sqrt(model.sigma0**2 + model.sigma**2))
    assert abs(value - expected) < 5 * np.sqrt(0.5 / N)


def test_expected_pq_loss_at_optimum_is_posterior_entropy(model):
    """E_p(x,y)[-log p(x|y)] is the posterior entropy (the same for every y); variance 1/2."""
    x, y = model.sample(N, seed=4)
    value = float(pq_loss(model, optimal_net(model), x, y))
    expected = gaussian_entropy(model.optimal_params().c)
    assert abs(value - expected) < 5 * np.sqrt(0.5 / N)


def batch_gradients(model, net, loss, num_batches=40, batch_size=20_000):
    """Gradient of the loss on independent batches: rows are batches, columns variables."""
    rows = []
    for k in range(num_batches):
        x, y = model.sample(batch_size, seed=100 + k)
        with tf.GradientTape() as tape:
            if loss == "qp":
                value = qp_loss(model, net, x, y, seed=200 + k)
            else:
                value = pq_loss(model, net, x, y)
        rows.append([float(g) for g in tape.gradient(value, net.trainable_variables)])
    return np.array(rows)


@pytest.mark.parametrize("loss", ["qp", "pq"])
def test_gradient_vanishes_at_optimum_and_not_elsewhere(model, loss):
    grads = batch_gradients(model, optimal_net(model), loss)
    mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
    assert np.all(np.abs(mean) < 5 * se + 1e-6), (mean, se)
    # The test has the power to see a real gradient: a little away from the optimum the same
    # estimate is many standard errors from zero.
    grads = batch_gradients(model, optimal_net(model, a=0.05, b=0.05), loss)
    mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
    assert np.max(np.abs(mean) / (se + 1e-12)) > 10


def test_qp_loss_rejects_bad_sample_size(model):
    with pytest.raises(ValueError, match="sample_size"):
        qp_loss(model, optimal_net(model), None, [0.0], sample_size=0, seed=0)


def test_qp_loss_refuses_a_distribution_it_cannot_reparameterise(model):
    def poisson_net(y):
        return tfd.Poisson(rate=tf.ones_like(tf.convert_to_tensor(y)))

    with pytest.raises(ValueError, match="reparameterised"):
        qp_loss(model, poisson_net, None, [1.0], seed=0)


@pytest.mark.parametrize("make_net", [
    lambda: LinearGaussian(a=0.3, b=0.1, c=0.8),
    lambda: MLPGaussian(hidden=(8,), seed=4),
])
def test_qp_loss_is_bit_identical_to_the_formula_before_elbo_draws(model, make_net):
    """Part I's qp loss, now minus the mean of elbo_draws, equals the old expression
    mean(log q(x | y) - log p(x, y)) on the same draws bit for bit, value and gradient."""
    q_net = make_net()
    _, y = model.sample(64, seed=3)
    seed = tf.constant([11, 12])
    with tf.GradientTape(persistent=True) as tape:
        q = q_net(y)
        x = q.sample(3, seed=seed)
        old = tf.reduce_mean(q.log_prob(x) - model.log_prob(x, y))
        new = qp_loss(model, q_net, None, y, seed=seed, sample_size=3)
    assert new.numpy() == old.numpy()
    for g_old, g_new in zip(tape.gradient(old, q_net.trainable_variables),
                            tape.gradient(new, q_net.trainable_variables)):
        np.testing.assert_array_equal(g_old, g_new)


def test_elbo_draws_with_the_exact_entropy_at_the_posterior(model):
    """With q = p(x|y) the plain draws are log p(y) exactly, and the closed-form entropy gives
    draws whose mean is log p(y) within Monte Carlo error (they are not constant)."""
    _, y = model.sample(4, seed=5)
    evidence = model.evidence().log_prob(y).numpy()
    plain = elbo_draws(model, optimal_net(model), y, seed=6, sample_size=20_000).numpy()
    np.testing.assert_allclose(plain, np.broadcast_to(evidence, plain.shape), rtol=1e-5)
    closed = elbo_draws(model, optimal_net(model), y, seed=6, sample_size=20_000,
                        exact_entropy=True).numpy()
    assert closed.shape == (20_000, 4) and np.all(closed.std(0) > 0.1)
    se = closed.std(0) / np.sqrt(20_000)
    assert np.all(np.abs(closed.mean(0) - evidence) < 5 * se)
