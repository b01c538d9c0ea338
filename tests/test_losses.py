"""Each loss against its analytic value at the optimum, and its gradient there."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import LinearGaussian, pq_loss, qp_loss

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
