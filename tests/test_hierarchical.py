"""The models of amortlib.hierarchical against direct numpy/scipy computations and closed forms."""

import math

import numpy as np
import pytest
from scipy import stats

from amortlib.hierarchical import BayesianDecoder, LinearModel, NonlinearModel


def test_linear_sample_shapes_and_determinism():
    model = LinearModel(tau=1.5, sigma=0.5)
    latents, x = model.sample(7, seed=3, theta=2.0)
    theta, z = latents["theta"], latents["z"]
    assert theta.shape == (1,) and z.shape == (7, 1) and x.shape == (7,)
    np.testing.assert_array_equal(x, model.sample(7, seed=3, theta=2.0)[1])
    assert not np.array_equal(x, model.sample(7, seed=4, theta=2.0)[1])


def test_linear_sample_moments():
    """x_n = theta + tau z_n + sigma eps: mean theta, variance tau^2 + sigma^2."""
    model = LinearModel(tau=1.5, sigma=0.5)
    _, x = model.sample(200_000, seed=0, theta=2.0)
    var = 1.5**2 + 0.5**2
    assert abs(np.mean(x) - 2.0) < 5 * math.sqrt(var / 200_000)
    assert abs(np.var(x) - var) < 5 * var * math.sqrt(2 / 200_000)


def test_linear_log_joint_matches_scipy():
    model = LinearModel(tau=1.2, sigma=0.7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=5)
    theta = rng.normal(size=(3, 1))
    z = rng.normal(size=(3, 5, 1))
    expected = (stats.norm.logpdf(z[..., 0]) +
                stats.norm.logpdf(x, theta + 1.2 * z[..., 0], 0.7)).sum(-1)
    np.testing.assert_allclose(model.log_prob({"theta": theta, "z": z}, x), expected, rtol=1e-5)


def test_fvi_optimum_closed_form():
    model = LinearModel(tau=1.155, sigma=2.43)
    x = np.array([1.0, 3.0, -2.0, 0.5])
    opt = model.fvi_optimum(x)
    s2, t2 = 2.43**2, 1.155**2
    np.testing.assert_allclose(opt.z_mean, 1.155 / (s2 + t2) * (x - x.mean()))
    np.testing.assert_allclose(opt.z_sd**2, s2 / (s2 + t2))
    assert opt.theta_mean == pytest.approx(x.mean())
    assert opt.theta_sd**2 == pytest.approx(s2 / 4)
    assert model.slope == pytest.approx(1.155 / (s2 + t2))


def test_optimal_elbo_is_a_maximum_of_the_gaussian_elbo():
    """Perturbing any parameter of the closed-form optimum lowers the exact ELBO."""
    model = LinearModel(tau=1.155, sigma=2.43)
    x = np.asarray(model.sample(50, seed=1)[1], np.float64)
    opt = model.fvi_optimum(x)
    best = model.optimal_elbo(x)
    for delta in (1e-3, -1e-3):
        assert model.gaussian_elbo(x, opt.theta_mean + delta, opt.theta_sd, opt.z_mean,
                                   opt.z_sd) < best
        assert model.gaussian_elbo(x, opt.theta_mean, opt.theta_sd * (1 + delta), opt.z_mean,
                                   opt.z_sd) < best
        for n in (0, 17):
            mu = opt.z_mean.copy()
            mu[n] += delta
            assert model.gaussian_elbo(x, opt.theta_mean, opt.theta_sd, mu, opt.z_sd) < best
        assert model.gaussian_elbo(x, opt.theta_mean, opt.theta_sd, opt.z_mean,
                                   opt.z_sd * (1 + delta)) < best
    # The erratum's slope tau/(2 s^2)/(1 + tau^2/s^2) is not the optimum.
    wrong = (1.155 / (2 * 2.43**2)) / (1 + 1.155**2 / 2.43**2) * (x - x.mean())
    assert model.gaussian_elbo(x, opt.theta_mean, opt.theta_sd, wrong, opt.z_sd) < best - 1e-3


def test_gaussian_elbo_matches_the_formula_by_quadrature_for_one_point():
    """N = 1: integrate E_q[log p] + H(q) numerically on a grid (q(theta) q(z) Gaussian)."""
    model = LinearModel(tau=0.8, sigma=1.3)
    x, m, v_sd, mu, w_sd = 0.7, 0.2, 0.5, -0.3, 0.9
    t = np.linspace(m - 9 * v_sd, m + 9 * v_sd, 801)
    z = np.linspace(mu - 9 * w_sd, mu + 9 * w_sd, 801)
    T, Z = np.meshgrid(t, z, indexing="ij")
    q = stats.norm.pdf(T, m, v_sd) * stats.norm.pdf(Z, mu, w_sd)
    log_p = stats.norm.logpdf(Z) + stats.norm.logpdf(x, T + 0.8 * Z, 1.3)
    expected = np.trapezoid(np.trapezoid(q * log_p, z, axis=1), t)
    expected += stats.norm.entropy(m, v_sd) + stats.norm.entropy(mu, w_sd)
    assert model.gaussian_elbo([x], m, v_sd, [mu], [w_sd]) == pytest.approx(expected, abs=1e-6)


def test_nonlinear_log_joint_matches_scipy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=4)
    theta = rng.normal(size=(2, 1))
    z = rng.normal(size=(2, 4, 1))
    zz = z[..., 0]
    for noise, sd in [("exp-cos", np.exp(np.cos(zz))), ("cos", np.abs(np.cos(zz)))]:
        expected = (stats.norm.logpdf(theta[:, 0]) + stats.norm.logpdf(zz).sum(-1) +
                    stats.norm.logpdf(x, theta + zz * (1 + np.sin(zz)), sd).sum(-1))
        logp = NonlinearModel(noise).log_prob({"theta": theta, "z": z}, x)
        np.testing.assert_allclose(logp, expected, rtol=1e-5)


def test_nonlinear_sample_shapes():
    latents, x = NonlinearModel().sample(6, seed=0)
    theta, z = latents["theta"], latents["z"]
    assert theta.shape == (1,) and z.shape == (6, 1) and x.shape == (6,)


def test_decoder_log_joint_matches_numpy():
    model = BayesianDecoder(latent_dim=2, hidden=3, obs_dim=4, noise_sd=0.3, prior_sd=0.8)
    assert model.global_dim == 2 * 3 + 3 + 3 * 4 + 4
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(2, model.global_dim)).astype(np.float32)
    z = rng.normal(size=(2, 5, 2)).astype(np.float32)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    expected = []
    for s in range(2):
        t = theta[s]
        w1, b1 = t[:6].reshape(2, 3), t[6:9]
        w2, b2 = t[9:21].reshape(3, 4), t[21:]
        mean = np.maximum(z[s] @ w1 + b1, 0) @ w2 + b2
        expected.append(stats.norm.logpdf(t, 0, 0.8).sum() + stats.norm.logpdf(z[s]).sum()
                        + stats.norm.logpdf(x, mean, 0.3).sum())
    np.testing.assert_allclose(model.log_prob({"theta": theta, "z": z}, x), expected, rtol=1e-4)
    latents, xs = model.sample(5, seed=1)
    th, zs = latents["theta"], latents["z"]
    assert th.shape == (model.global_dim,) and zs.shape == (5, 2) and xs.shape == (5, 4)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: LinearModel(tau=0.0), "tau"),
        (lambda: LinearModel(sigma=-1.0), "sigma"),
        (lambda: LinearModel().sample(0), "num_points"),
        (lambda: LinearModel().sample(3, theta=float("nan")), "theta"),
        (lambda: LinearModel().fvi_optimum(np.zeros((2, 2))), "x"),
        (lambda: LinearModel().fvi_optimum([1.0, np.inf]), "x"),
        (lambda: LinearModel().fvi_optimum(np.zeros((2, 2, 2))), "x"),
        (lambda: LinearModel().gaussian_elbo([1.0], 0.0, -1.0, 0.0, 1.0), "theta_sd"),
        (lambda: LinearModel().gaussian_elbo([1.0], 0.0, 1.0, 0.0, 0.0), "z_sd"),
        (lambda: LinearModel().log_prob({"theta": np.zeros((2, 2)), "z": np.zeros((2, 3, 1))},
                                        np.zeros(3)), "theta"),
        (lambda: LinearModel().log_prob({"theta": np.zeros((2, 1)), "z": np.zeros((2, 4, 1))},
                                        np.zeros(3)), "z"),
        (lambda: LinearModel().log_prob({"theta": np.zeros((2, 1))}, np.zeros(3)), "latents"),
        (lambda: NonlinearModel(noise="sin"), "noise"),
        (lambda: BayesianDecoder(latent_dim=0), "latent_dim"),
        (lambda: BayesianDecoder(noise_sd=0.0), "noise_sd"),
        (lambda: BayesianDecoder(2, 3, 4).log_prob(
            {"theta": np.zeros((1, 25)), "z": np.zeros((1, 5, 2))}, np.zeros((5, 3))), "x"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_nonlinear_quadrature_elbo_agrees_with_monte_carlo_and_itself():
    from amortlib import families, gap

    model = NonlinearModel()
    _, x = model.sample(60, seed=5)
    rng = np.random.default_rng(0)
    mu, sd = rng.normal(size=60), rng.uniform(0.05, 1.0, size=60)
    exact = model.gaussian_elbo(x, 0.3, 0.2, mu, sd)
    # More nodes change nothing that matters: the quadrature has converged.
    assert model.gaussian_elbo(x, 0.3, 0.2, mu, sd, num_nodes=200) == pytest.approx(exact, abs=1e-6)
    tf_value = model.quadrature_elbo(np.asarray(x), np.float32(0.3), np.float32(0.2),
                                     mu.astype(np.float32), sd.astype(np.float32))
    assert float(tf_value) == pytest.approx(exact, abs=1e-3)
    family = families.Factorized(60, loc=mu[:, None], scale=sd[:, None])
    posterior = families.VariationalPosterior(model, family, theta_loc=0.3, theta_scale=0.2)
    estimate = gap.elbo(model, posterior, x, sample_size=4000, seed=1)
    assert abs(estimate.value - exact) < 5 * estimate.standard_error
    assert gap.exact_elbo(model, posterior, x) == pytest.approx(exact, abs=1e-3)
    with pytest.raises(ValueError, match="noise"):
        NonlinearModel("cos").gaussian_elbo(x, 0.3, 0.2, mu, sd)


def _adaptive_expected_log_lik(x, m, v, mu, sd):
    """E_q log p(x | z, theta) for one point by scipy's adaptive quadrature over z."""
    from scipy import integrate

    def integrand(z):
        c = np.cos(z)
        log_lik = (-0.5 * math.log(2 * math.pi) - c
                   - 0.5 * np.exp(-2 * c) * ((x - m - z * (1 + np.sin(z))) ** 2 + v))
        return log_lik * stats.norm.pdf(z, mu, sd)

    value, _ = integrate.quad(integrand, mu - 40 * sd, mu + 40 * sd, limit=5000,
                              epsabs=1e-12, epsrel=1e-12)
    return value


@pytest.mark.parametrize("sd", [0.02, 0.7, 1.0, 1.3, 2.5, 4.0, 7.0, 30.0])
def test_nonlinear_gaussian_elbo_matches_adaptive_quadrature_at_every_width(sd):
    """Narrow and wide q(z_n) alike: the ELBO of one point against scipy.integrate.quad."""
    model = NonlinearModel()
    # x is stored in float32 (as data are), so it is chosen exactly representable
    for x, m, sd_theta, mu in [(1.75, 0.4, 0.3, -0.8), (-6.0, -0.2, 0.05, 2.9)]:
        v = sd_theta**2
        expected = (_adaptive_expected_log_lik(x, m, v, mu, sd)
                    + stats.norm.logpdf(0.0) - (m**2 + v) / 2       # E log p(theta)
                    + stats.norm.logpdf(0.0) - (mu**2 + sd**2) / 2  # E log p(z)
                    + stats.norm.entropy(m, sd_theta) + stats.norm.entropy(mu, sd))
        value = model.gaussian_elbo([x], m, sd_theta, [mu], [sd])
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-8), (sd, x)


def test_nonlinear_gaussian_elbo_mixes_narrow_and_wide_factors():
    """Points of one data set are integrated one by one: a sum of one-point ELBOs."""
    model = NonlinearModel()
    x, mu, sd = np.array([0.5, -2.0, 3.0]), np.array([0.1, 1.0, -2.0]), np.array([0.4, 3.0, 12.0])
    together = model.gaussian_elbo(x, 0.2, 0.1, mu, sd)
    one_by_one = sum(model.gaussian_elbo([x[n]], 0.2, 0.1, [mu[n]], [sd[n]]) for n in range(3))
    # Each one-point ELBO also counts q(theta) once: subtract the two extra copies.
    theta_terms = (stats.norm.logpdf(0.0) - (0.2**2 + 0.1**2) / 2
                   + stats.norm.entropy(0.2, 0.1))
    assert together == pytest.approx(one_by_one - 2 * theta_terms, rel=1e-12)


@pytest.mark.parametrize("kwargs, name", [
    (dict(z_sd=[101.0]), "z_sd"),
    (dict(z_sd=[0.0]), "z_sd"),
    (dict(z_mean=[np.nan]), "z_mean"),
    (dict(num_nodes=16), "num_nodes"),
])
def test_nonlinear_gaussian_elbo_refuses_what_it_cannot_integrate(kwargs, name):
    args = dict(x=[1.0], theta_mean=0.0, theta_sd=1.0, z_mean=[0.0], z_sd=[1.0]) | kwargs
    with pytest.raises(ValueError, match=name):
        NonlinearModel().gaussian_elbo(**args)
