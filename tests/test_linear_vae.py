"""Tests of amortlib.linear_vae against closed forms, at settings the chapter does not use.

The chapter uses scikit-learn's digits (d = 64, k = 10); these tests use small synthetic data
sets (d = 6, k = 2 or 3) with well separated covariance eigenvalues.
"""

import numpy as np
import pytest
import tensorflow_probability as tfp
from scipy import stats

from amortlib import linear_vae as lv

tfd = tfp.distributions

D, K = 6, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    basis, _ = np.linalg.qr(rng.standard_normal((D, D)))
    spread = np.sqrt([4.0, 2.0, 1.0, 0.3, 0.2, 0.1])
    x = rng.standard_normal((400, D)) * spread @ basis.T + np.arange(D)
    return x.astype(np.float32)


def set_model(model, weight, loc, var):
    model.weight.assign(np.asarray(weight, np.float32))
    model.loc.assign(np.asarray(loc, np.float32))
    model.log_noise_variance.assign(np.log(var))


@pytest.fixture
def model():
    m = lv.PPCA(D, K, seed=5)
    rng = np.random.default_rng(3)
    set_model(m, rng.standard_normal((D, K)), rng.standard_normal(D), 0.7)
    return m


def test_log_marginal_and_posterior_match_gaussian_algebra(model, data):
    weight, loc, var = model.params()
    cov = weight @ weight.T + var * np.eye(D)
    np.testing.assert_allclose(model.log_marginal(data[:20]),
                               stats.multivariate_normal(loc, cov).logpdf(data[:20]), rtol=1e-4)
    # p(z | x) by conditioning the joint Gaussian of (z, x).
    gain = weight.T @ np.linalg.inv(cov)
    post = model.posterior(data[:5])
    np.testing.assert_allclose(post.mean(), (data[:5] - loc) @ gain.T, atol=1e-4)
    np.testing.assert_allclose(post.covariance()[0], np.eye(K) - gain @ weight, atol=1e-5)


def test_elbo_is_log_marginal_minus_kl(model, data):
    enc = lv.LinearEncoder(D, K, seed=2, init_scale=0.3)
    enc.bias.assign([0.1, -0.2, 0.3])
    enc.log_scale.assign([-0.5, 0.0, 0.2])
    x = data[:50]
    kl = tfd.kl_divergence(enc(x), model.posterior(x))
    np.testing.assert_allclose(lv.elbo(model, enc, x), model.log_marginal(x) - kl, atol=2e-4)
    # The mean ELBO from the data's mean and covariance, used by train, agrees.
    centred = x - x.mean(0)
    mean_elbo = lv._mean_elbo(model.weight, model.loc, model.log_noise_variance, enc.matrix(),
                              enc.bias, enc.log_scale, x.mean(0), centred.T @ centred / len(x))
    np.testing.assert_allclose(mean_elbo, np.mean(lv.elbo(model, enc, x)), rtol=1e-5)


def test_sleep_loss_matches_monte_carlo(model):
    enc = lv.LinearEncoder(D, K, seed=4, init_scale=0.3)
    enc.log_scale.assign([0.3, -0.2, 0.1])
    z, x = model.sample(200_000, seed=9)
    values = -enc(x).log_prob(z).numpy().astype(float)
    se = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - float(lv.sleep_loss(model, enc))) < 5 * se


@pytest.mark.parametrize("fixed", [None, 1.5, 0.15])
def test_ml_solution_is_the_maximum(data, fixed):
    sol = lv.ml_solution(data, 2, noise_variance=fixed)
    m = lv.PPCA(D, 2)
    set_model(m, sol.weight, sol.loc, sol.noise_variance)
    np.testing.assert_allclose(np.mean(m.log_marginal(data)), sol.log_likelihood, atol=2e-4)
    if fixed is None:
        np.testing.assert_allclose(sol.noise_variance, sol.eigenvalues[2:].mean())
    # Active columns: squared norms lambda_j - sigma^2 where positive, zero otherwise.
    np.testing.assert_allclose(np.sum(sol.weight**2, 0),
                               np.maximum(sol.eigenvalues[:2] - sol.noise_variance, 0), atol=1e-9)
    # Random perturbations of (W, mu, sigma^2) only lower the likelihood (in float64).
    rng = np.random.default_rng(1)
    cov = np.cov(data.T.astype(float), bias=True)
    mean = data.astype(float).mean(0)

    def loglik(w, mu, var):
        c = w @ w.T + var * np.eye(D)
        diff = mean - mu
        return -0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(c)[1]
                       + np.trace(np.linalg.solve(c, cov + np.outer(diff, diff))))

    assert np.isclose(loglik(sol.weight, sol.loc, sol.noise_variance), sol.log_likelihood)
    for _ in range(20):
        w = sol.weight + 0.01 * rng.standard_normal(sol.weight.shape)
        var = sol.noise_variance * (1 + (0.01 * rng.standard_normal() if fixed is None else 0))
        assert loglik(w, sol.loc + 0.01 * rng.standard_normal(D), var) < sol.log_likelihood


def test_fixed_noise_collapses_small_eigenvalues(data):
    sol = lv.ml_solution(data, 3, noise_variance=1.5)  # eigenvalues about 4, 2, 1, ...
    norms = np.linalg.norm(sol.weight, axis=0)
    assert np.all(norms[sol.eigenvalues[:3] <= 1.5] == 0)
    assert np.all(norms[sol.eigenvalues[:3] > 1.5] > 0)


def test_optimal_diagonal_q_and_approximation_gap(model, data):
    x = data[:30]
    best = lv.optimal_diagonal_q(model, x)
    kl_best = tfd.kl_divergence(best, model.posterior(x)).numpy()
    gap = lv.gaps(model, x).approximation
    np.testing.assert_allclose(kl_best, gap, rtol=1e-4)
    assert gap > 0.01
    # Any other diagonal Gaussian is worse.
    for factor in (0.9, 1.1):
        other = tfd.MultivariateNormalDiag(best.mean(), factor * best.stddev())
        assert np.all(tfd.kl_divergence(other, model.posterior(x)).numpy() > kl_best)
    # A decoder with orthogonal columns has no approximation gap.
    weight, loc, var = model.params()
    u, s, _ = np.linalg.svd(weight, full_matrices=False)
    set_model(model, u * s, loc, var)
    assert abs(lv.gaps(model, x).approximation) < 1e-9


@pytest.mark.parametrize("rank", [0, 1, 2, None])
def test_trained_encoder_reaches_its_exact_gap(model, data, rank):
    g = lv.gaps(model, data, rank=rank)
    enc = lv.LinearEncoder(D, K, rank=rank, seed=1, init_scale=0.1)
    lv.train(model, enc, data, num_steps=3000, learning_rate=0.1, train_model=False)
    trained = float(np.mean(model.log_marginal(data)) - np.mean(lv.elbo(model, enc, data)))
    assert abs(trained - g.total) < 2e-3 + 1e-4 * g.total, (trained, g)
    if rank is None:
        assert g.amortization == 0.0


def test_vae_reaches_maximum_likelihood(data):
    sol = lv.ml_solution(data, 2)
    m, enc = lv.PPCA(D, 2, seed=1), lv.LinearEncoder(D, 2, seed=2)
    lv.train(m, enc, data, num_steps=3000, learning_rate=0.1)
    assert abs(np.mean(lv.elbo(m, enc, data)) - sol.log_likelihood) < 2e-3
    weight = m.params()[0]
    np.testing.assert_allclose(weight @ weight.T, sol.covariance(), atol=0.02)


def test_wake_sleep_runs_and_moves_both(data):
    m, enc = lv.PPCA(D, 2, seed=1), lv.LinearEncoder(D, 2, seed=2)
    before = float(np.mean(lv.elbo(m, enc, data)))
    history = lv.train(m, enc, data, num_steps=300, learning_rate=0.03, objective="wake-sleep")
    assert history.num_steps == 300
    assert float(np.mean(lv.elbo(m, enc, data))) > before


def test_bad_input():
    m, enc = lv.PPCA(D, K), lv.LinearEncoder(D, K)
    with pytest.raises(ValueError, match="latent_dim"):
        lv.PPCA(D, 0)
    with pytest.raises(ValueError, match="noise_variance"):
        lv.PPCA(D, K, noise_variance=-1.0)
    with pytest.raises(ValueError, match="rank"):
        lv.LinearEncoder(D, K, rank=K)
    with pytest.raises(TypeError, match="rank"):
        lv.LinearEncoder(D, K, rank=1.5)
    with pytest.raises(ValueError, match="x must have shape"):
        lv.elbo(m, enc, np.zeros((4, D + 1)))
    with pytest.raises(TypeError, match="encoder"):
        lv.elbo(m, object(), np.zeros((4, D)))
    with pytest.raises(ValueError, match="latent_dim"):
        lv.elbo(m, lv.LinearEncoder(D, K + 1), np.zeros((4, D)))
    with pytest.raises(ValueError, match="objective"):
        lv.train(m, enc, np.zeros((4, D)), num_steps=1, learning_rate=0.1, objective="qp")
    with pytest.raises(ValueError, match="latent_dim"):
        lv.ml_solution(np.zeros((10, D)), D)
    with pytest.raises(ValueError, match="rank"):
        lv.gaps(m, np.zeros((4, D)), rank=K)
    for latent_dim in (D, D + 1):
        with pytest.raises(ValueError, match="latent_dim must be below data_dim"):
            lv.PPCA(D, latent_dim)


def test_ml_solution_refuses_a_noise_variance_that_is_round_off():
    # n = 3 points in d = 5 span 2 directions, so with k = 3 the discarded eigenvalues are
    # exactly zero; in floating point their mean is ~1e-17, which must not pass for sigma^2.
    x = np.random.default_rng(0).standard_normal((3, 5))
    lam = np.linalg.eigvalsh(np.cov(x.T, bias=True))
    assert np.sort(lam)[:3].max() < 1e-12 * lam.max()
    with pytest.raises(ValueError, match="discarded eigenvalues are all zero"):
        lv.ml_solution(x, 3)
    # k = 2 discards only zeros too; k = 1 keeps one positive eigenvalue among the discarded.
    with pytest.raises(ValueError, match="discarded eigenvalues are all zero"):
        lv.ml_solution(x, 2)
    sol = lv.ml_solution(x, 1)
    assert sol.noise_variance > 1e-3 * lam.max()


def test_encoders_trained_together_end_as_if_alone(model, data):
    together = [lv.LinearEncoder(D, K, rank=r, seed=3, init_scale=0.1) for r in (1, None)]
    lv.train(model, together, data, num_steps=200, learning_rate=0.05, train_model=False)
    for rank, enc in zip((1, None), together):
        alone = lv.LinearEncoder(D, K, rank=rank, seed=3, init_scale=0.1)
        lv.train(model, alone, data, num_steps=200, learning_rate=0.05, train_model=False)
        np.testing.assert_allclose(alone.matrix(), enc.matrix(), atol=1e-5)
        np.testing.assert_allclose(alone.log_scale, enc.log_scale, atol=1e-5)
    with pytest.raises(ValueError, match="several encoders"):
        lv.train(model, together, data, num_steps=1, learning_rate=0.1)
