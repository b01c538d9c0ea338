"""Tests of amortlib.sets against closed forms, at settings the chapter does not use."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, special, stats

from amortlib import fit, kl_divergence
from amortlib.networks import MLP
from amortlib.sets import (
    FAMILIES,
    DeepSets,
    IidGaussianMean,
    IidNormalInverseGamma,
    _forward,
    counts,
    pad,
)

tfd = tfp.distributions


def test_pad_and_counts():
    y = pad([[1.0, 2.0, 3.0], [4.0]], width=5)
    assert y.shape == (2, 5)
    assert np.array_equal(counts(y).numpy(), [3.0, 1.0])
    assert np.isnan(y.numpy()[1, 1:]).all()


@pytest.mark.parametrize("bad, message", [
    ([[np.nan, np.nan]], "at least one observation"),
    ([[1.0, np.inf]], "infinities"),
    ([1.0, 2.0], r"\[batch, width\]"),
])
def test_bad_data_sets_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        counts(bad)


def test_pad_rejects_bad_input():
    with pytest.raises(ValueError, match="width"):
        pad([[1.0, 2.0]], width=1)
    with pytest.raises(ValueError, match="data_sets"):
        pad([])


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="n_max"):
        IidGaussianMean(n_min=5, n_max=3)
    with pytest.raises(ValueError, match="sigma0"):
        IidGaussianMean(sigma0=0.0)
    with pytest.raises(ValueError, match="alpha0"):
        IidNormalInverseGamma(alpha0=-1.0)
    with pytest.raises(ValueError, match="seed"):
        IidGaussianMean().sample(3, None)
    with pytest.raises(ValueError, match="family"):
        DeepSets("gamma")
    with pytest.raises(ValueError, match="pooling"):
        DeepSets(pooling="max")


def test_sample_sizes_and_padding():
    model = IidGaussianMean(n_min=3, n_max=7)
    x, y = model.sample(4000, seed=1)
    n = counts(y).numpy()
    assert y.shape == (4000, 7) and x.shape == (4000,)
    assert set(np.unique(n)) == set(range(3, 8))
    # Uniform sizes: each of the 5 values has probability 0.2 (5 s.e.).
    freq = np.bincount(n.astype(int), minlength=8)[3:] / 4000
    assert np.all(np.abs(freq - 0.2) < 5 * np.sqrt(0.2 * 0.8 / 4000))
    # Padding is at the end of each row.
    values = y.numpy()
    assert np.all(np.isnan(values) == (np.arange(7)[None, :] >= n[:, None]))
    _, fixed = model.sample(3, seed=2, n=12)
    assert fixed.shape == (3, 12) and np.all(counts(fixed).numpy() == 12)
    same = model.sample(5, seed=3)[1].numpy()
    assert np.array_equal(same, model.sample(5, seed=3)[1].numpy(), equal_nan=True)


def test_gaussian_mean_posterior_is_conjugate():
    model = IidGaussianMean(mu0=1.0, sigma0=2.0, sigma=0.5)
    data = [[0.2, 1.4, 2.0], [-3.0]]
    post = model.posterior(pad(data))
    for i, d in enumerate(data):
        precision = 1 / 4 + len(d) / 0.25
        mean = (1 / 4 + sum(d) / 0.25) / precision
        assert np.isclose(post.mean()[i], mean, atol=1e-5)
        assert np.isclose(post.stddev()[i], precision**-0.5, atol=1e-6)


def test_gaussian_mean_log_prob_ignores_padding():
    model = IidGaussianMean(mu0=1.0, sigma0=2.0, sigma=0.5)
    y = pad([[0.2, 1.4]], width=4)
    expected = (stats.norm.logpdf(0.3, 1.0, 2.0)
                + stats.norm.logpdf([0.2, 1.4], 0.3, 0.5).sum())
    assert np.isclose(model.log_prob(tf.constant([0.3]), y)[0], expected, atol=1e-4)


def test_normal_inverse_gamma_against_quadrature():
    """The marginals against 2-D quadrature of prior times likelihood."""
    model = IidNormalInverseGamma(mu0=0.5, kappa0=2.0, alpha0=2.5, beta0=1.5)
    data = np.array([1.0, -0.4, 2.2], np.float32)
    student, inv_gamma = model.marginals(pad([data]))
    xs, vs = np.linspace(-5, 6, 1101), np.linspace(1e-3, 30, 3001)
    log_joint = (stats.invgamma.logpdf(vs[None, :], 2.5, scale=1.5)
                 + stats.norm.logpdf(xs[:, None], 0.5, np.sqrt(vs[None, :] / 2.0))
                 + stats.norm.logpdf(data[:, None, None], xs[:, None],
                                     np.sqrt(vs[None, :])).sum(0))
    dens = np.exp(log_joint)
    dens /= integrate.simpson(integrate.simpson(dens, x=vs, axis=1), x=xs)
    x_density = np.exp(student.log_prob(xs[:, None]).numpy()[:, 0])
    v_density = np.exp(inv_gamma.log_prob(vs[:, None]).numpy()[:, 0])
    assert np.allclose(integrate.simpson(dens, x=vs, axis=1), x_density, atol=2e-4)
    assert np.allclose(integrate.simpson(dens, x=xs, axis=0), v_density, atol=2e-3)
    # The joint posterior's log density agrees with the normalised grid.
    joint = model.posterior(pad([data]))
    i, j = 500, 300
    value = joint.log_prob(dict(x=np.float32([xs[i]]), sigma2=np.float32([vs[j]])))
    assert np.isclose(value[0], np.log(dens[i, j]), atol=2e-3)


def test_best_normal_lognormal_matches_moments():
    model = IidNormalInverseGamma(mu0=0.5, kappa0=2.0, alpha0=2.5, beta0=1.5)
    y = pad([[1.0, -0.4, 2.2]])
    mu, kappa, alpha, beta = (float(v[0]) for v in model.posterior_params(y))
    best = model.best_normal_lognormal(y).model
    student, _ = model.marginals(y)
    assert np.isclose(best["x"].mean()[0], mu, atol=1e-6)
    assert np.isclose(best["x"].variance()[0], student.variance()[0], rtol=1e-5)
    log_v = best["sigma2"].distribution
    assert np.isclose(log_v.mean()[0], np.log(beta) - special.digamma(alpha), atol=1e-5)
    assert np.isclose(log_v.variance()[0], special.polygamma(1, alpha), rtol=1e-5)
    # Moving either log-scale parameter raises the quadrature KL.
    exact = tfd.ExpInverseGamma(np.float32(alpha), np.float32(beta))
    at_best = kl_divergence(exact, log_v[0])
    for d_loc, d_scale in [(0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05)]:
        moved = tfd.Normal(log_v.loc[0] + d_loc, log_v.scale[0] * np.exp(d_scale))
        assert kl_divergence(exact, moved) > at_best


def _quad_kl(log_p, log_q, lo, hi):
    def integrand(x):
        return np.exp(log_p(x)) * (log_p(x) - log_q(x))
    return integrate.quad(integrand, lo, hi, limit=500, epsabs=1e-12)[0]


def test_marginal_kls_against_quadrature():
    """Closed-form marginal KLs against scipy quad over the whole line, at small n."""
    model = IidNormalInverseGamma(mu0=0.5, kappa0=2.0, alpha0=1.5, beta0=0.7)
    y = pad([[1.3], [0.2, -0.9]])
    q = tfd.JointDistributionNamed(dict(
        x=tfd.Normal([0.4, -0.1], [0.9, 0.5]),
        sigma2=tfd.LogNormal([-0.5, 0.2], [0.8, 1.1])))
    kl_x, kl_v = model.marginal_kls(q, y)
    for i, (mu, kappa, alpha, beta) in enumerate(zip(*model.posterior_params(y))):
        mu, kappa, alpha, beta = (float(v) for v in (mu, kappa, alpha, beta))
        t = stats.t(2 * alpha, mu, np.sqrt(beta / (alpha * kappa)))
        qx = stats.norm(float(q.model["x"].loc[i]), float(q.model["x"].scale[i]))
        exact_x = _quad_kl(t.logpdf, qx.logpdf, -np.inf, np.inf)
        qv = stats.norm(float(q.model["sigma2"].distribution.loc[i]),
                        float(q.model["sigma2"].distribution.scale[i]))
        log_u = stats.loggamma(alpha, -np.log(beta)).logpdf  # log sigma^2 = -log Gamma
        exact_v = _quad_kl(lambda u, f=log_u: f(-u), qv.logpdf, -30, 30)
        assert np.isclose(kl_x[i], exact_x, rtol=1e-4, atol=1e-6), (i, exact_x)
        assert np.isclose(kl_v[i], exact_v, rtol=1e-4, atol=1e-6), (i, exact_v)


def test_marginal_kls_are_accurate_at_large_n():
    """The best normal's KL to a nearly Gaussian Student-t (about 1e-5 nats), to 1e-7."""
    model = IidNormalInverseGamma(alpha0=2.0, beta0=1.0)
    y = pad([np.linspace(-1.0, 1.0, 300)])
    kl_x, _ = model.marginal_kls(model.best_normal_lognormal(y), y)
    mu, kappa, alpha, beta = (float(v[0]) for v in model.posterior_params(y))
    t = stats.t(2 * alpha, mu, np.sqrt(beta / (alpha * kappa)))
    exact = _quad_kl(t.logpdf, stats.norm(mu, t.std()).logpdf, -np.inf, np.inf)
    assert 1e-6 < exact < 1e-4
    assert np.isclose(kl_x[0], exact, rtol=0, atol=1e-7), exact


def test_mutual_information_against_monte_carlo():
    """I(x; sigma^2 | y) = E log N(x; mu_n, sigma^2/kappa_n) - log t(x), by simulation."""
    model = IidNormalInverseGamma(kappa0=2.0, alpha0=1.5, beta0=0.7)
    rng = np.random.default_rng(0)
    for n in (1, 3):
        alpha, kappa = 1.5 + n / 2, 2.0 + n
        v = stats.invgamma.rvs(alpha, scale=0.7, size=400_000, random_state=rng)
        x = rng.normal(0.0, np.sqrt(v / kappa))
        d = (stats.norm.logpdf(x, 0.0, np.sqrt(v / kappa))
             - stats.t.logpdf(x, 2 * alpha, 0.0, np.sqrt(0.7 / (alpha * kappa))))
        se = d.std() / np.sqrt(d.size)
        assert abs(model.mutual_information(n) - d.mean()) < 4 * se, n
    assert model.mutual_information([1, 5]).shape == (2,)
    with pytest.raises(ValueError, match="n must"):
        model.mutual_information(0)


def test_best_normal_lognormal_needs_finite_variance():
    model = IidNormalInverseGamma(alpha0=0.25)
    with pytest.raises(ValueError, match="alpha_n"):
        model.best_normal_lognormal(pad([[1.0]]))
    assert np.isfinite(model.best_normal_lognormal(pad([[1.0, 2.0]])).model["x"].scale[0])


def test_integer_data_sets_are_accepted():
    assert np.array_equal(counts(np.array([[1, 2], [3, 4]])).numpy(), [2.0, 2.0])
    with pytest.raises(ValueError, match="real numbers"):
        counts(np.array([["a"]]))


def test_forward_is_the_mlp():
    mlp = MLP(1, (5, 4), 3, seed=2)
    h = tf.random.stateless_normal([7, 1], seed=(0, 1))
    assert np.allclose(_forward(mlp, h), mlp(h), atol=1e-6)


@pytest.mark.parametrize("pooling", ["sum", "mean"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_deep_sets_is_permutation_and_padding_invariant(pooling, family):
    q_net = DeepSets(family, encoder=(6,), summary_size=3, head=(5,), pooling=pooling,
                     input_scale=2.0, seed=4)
    data = [[0.5, -1.0, 2.5, 0.1], [3.0], [1.0, 1.0]]
    reference = q_net.params(pad(data)).numpy()
    shuffled = [d[::-1] for d in data]
    assert np.allclose(q_net.params(pad(shuffled)), reference, atol=1e-6)
    # Exact in real arithmetic; float32 can move the last bits (to rounding, 1e-6).
    assert np.allclose(q_net.params(pad(data, width=9)), reference, rtol=0, atol=1e-6)
    # Padding in the middle of a row is ignored too.
    gaps = np.array([[0.5, np.nan, -1.0, 2.5, np.nan, 0.1]], np.float32)
    assert np.allclose(q_net.params(gaps), reference[:1], atol=1e-6)


def test_deep_sets_pooling():
    """Mean pooling gives (1) and (1, 1) the same summary; sum pooling doubles it."""
    for pooling, factor in [("mean", 1.0), ("sum", 2.0)]:
        q_net = DeepSets("normal", encoder=(4,), summary_size=2, head=(3,),
                         pooling=pooling, seed=5)
        s = q_net.summary(pad([[1.0], [1.0, 1.0]])).numpy()
        assert np.allclose(s[1, :2], factor * s[0, :2], atol=1e-6)
        assert np.allclose(s[:, 2], np.log([1.0, 2.0]))


def test_fit_learns_a_known_variance_posterior():
    """pq training through amortlib.fit reaches a small KL at settings the book does not use."""
    model = IidGaussianMean(n_min=2, n_max=10, mu0=1.0, sigma0=2.0, sigma=0.5)
    q_net = DeepSets("normal", encoder=(16,), summary_size=4, head=(16,), seed=0,
                     input_loc=1.0, input_scale=2.0)
    fit(model, q_net, "pq", num_steps=600, batch_size=128, learning_rate=0.01, seed=0,
        progress=False)
    _, y = model.sample(500, seed=11)
    kl = kl_divergence(model.posterior(y), q_net(y))
    # An untrained network is far off; the trained one is within 0.1 nats on average.
    assert kl.mean() < 0.1
    fresh = DeepSets("normal", encoder=(16,), summary_size=4, head=(16,), seed=0)
    assert kl_divergence(model.posterior(y), fresh(y)).mean() > 1.0


def test_deep_sets_head_seed_is_split_not_added():
    """The largest valid seed builds (nothing is added to it); encoder and head differ."""
    top = DeepSets("normal", encoder=(4,), summary_size=3, head=(4,), seed=2**31 - 1)
    same = DeepSets("normal", encoder=(4,), summary_size=3, head=(4,), seed=2**31 - 1)
    for a, b in zip(top.trainable_variables, same.trainable_variables):
        assert np.array_equal(a.numpy(), b.numpy())
    # The encoder is the plain MLP of the seed; the head is not (a shared seed would give it
    # the first-layer weights of MLP(4, (4,), 2, seed)).
    assert np.array_equal(top.encoder.weights[0].numpy(),
                          MLP(1, (4,), 3, seed=2**31 - 1).weights[0].numpy())
    assert np.all(top.head.weights[0].numpy()
                  != MLP(4, (4,), 2, seed=2**31 - 1).weights[0].numpy())
    with pytest.raises(ValueError, match="seed .*2147483648"):
        DeepSets("normal", seed=2**31)
