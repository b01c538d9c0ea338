import math

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

from amortlib import gaussian
from amortlib import sequential as sq


def _random_precision(size, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(size, size))
    return a @ a.T + size * np.eye(size), rng.normal(size=size)


def _coordinate_ascent(precision, linear, num_sweeps=2000):
    """CAVI for a Gaussian target: m_i <- (h_i - sum_{j != i} L_ij m_j) / L_ii, in sweeps."""
    means = np.zeros(len(linear))
    for _ in range(num_sweeps):
        for i in range(len(linear)):
            others = precision[i] @ means - precision[i, i] * means[i]
            means[i] = (linear[i] - others) / precision[i, i]
    return means


def _conditional_gaussian(mean, cov, observed, values):
    """Mean and covariance of the unobserved coordinates given the observed ones (dense)."""
    hidden = np.setdiff1d(np.arange(len(mean)), observed)
    gain = cov[np.ix_(hidden, observed)] @ np.linalg.inv(cov[np.ix_(observed, observed)])
    cond_mean = mean[hidden] + gain @ (values - mean[observed])
    cond_cov = cov[np.ix_(hidden, hidden)] - gain @ cov[np.ix_(observed, hidden)]
    return cond_mean, cond_cov


# ----------------------------------------------------------------- generic Gaussian targets


def test_mean_field_optimum_matches_coordinate_ascent():
    precision, linear = _random_precision(6, 0)
    q = gaussian.mean_field_optimum(precision, linear)
    np.testing.assert_allclose(q.means, _coordinate_ascent(precision, linear), atol=1e-10)
    np.testing.assert_allclose(q.variances, 1 / np.diag(precision))


def test_mean_field_optimum_minimises_the_kl():
    """A direct numerical minimisation of KL(q || p) over means and log-variances agrees."""
    precision, linear = _random_precision(4, 1)
    q = gaussian.mean_field_optimum(precision, linear)

    def kl(params):
        q = gaussian.MeanField(params[:4], np.exp(params[4:]))
        return gaussian.mean_field_kl(precision, linear, q)

    result = scipy.optimize.minimize(kl, np.zeros(8), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(result.x[:4], q.means, atol=1e-5)
    np.testing.assert_allclose(np.exp(result.x[4:]), q.variances, atol=1e-5)
    assert result.fun == pytest.approx(kl(np.r_[q.means, np.log(q.variances)]), abs=1e-9)


def test_mean_field_kl_against_the_dense_formula():
    precision, linear = _random_precision(5, 2)
    rng = np.random.default_rng(3)
    means, variances = rng.normal(size=5), rng.uniform(0.1, 2.0, size=5)
    cov_p, mean_p = np.linalg.inv(precision), np.linalg.solve(precision, linear)
    d = means - mean_p
    expected = 0.5 * (np.trace(precision @ np.diag(variances)) + d @ precision @ d - 5
                      + np.linalg.slogdet(cov_p)[1] - np.sum(np.log(variances)))
    q = gaussian.MeanField(means, variances)
    assert gaussian.mean_field_kl(precision, linear, q) == pytest.approx(expected)


def test_mean_field_elbo_is_log_evidence_minus_kl():
    """ELBO* = log p(x) - KL(q* || p(.|x)), with log p(x) = log p(mu, x) - log N(mu; mu, L^-1)."""
    precision, linear = _random_precision(5, 4)
    mean = np.linalg.solve(precision, linear)
    log_joint_at_mean = -7.3  # any constant c(x) plus the quadratic at mu
    log_det = np.linalg.slogdet(precision)[1]
    log_evidence = log_joint_at_mean + 2.5 * math.log(2 * math.pi) - 0.5 * log_det
    q = gaussian.mean_field_optimum(precision, linear)
    assert gaussian.mean_field_elbo(log_joint_at_mean, precision) == pytest.approx(
        log_evidence - gaussian.mean_field_kl(precision, linear, q)
    )
    assert mean.shape == (5,)


def test_constrained_optimum_minimises_the_kl_over_its_family():
    precision, linear = _random_precision(6, 5)
    features = np.c_[np.ones(6), np.arange(6.0)]
    groups = np.array([0, 0, 0, 1, 1, 1])
    q = gaussian.constrained_mean_field_optimum(precision, linear, features, groups)

    def kl(params):
        variances = np.exp(params[2:])[groups]
        q = gaussian.MeanField(features @ params[:2], variances)
        return gaussian.mean_field_kl(precision, linear, q)

    result = scipy.optimize.minimize(kl, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
    assert result.fun == pytest.approx(gaussian.mean_field_kl(precision, linear, q), abs=1e-8)
    # Free features for every latent give back the unconstrained optimum.
    free = gaussian.constrained_mean_field_optimum(precision, linear, np.eye(6), np.arange(6))
    np.testing.assert_allclose(free.means, gaussian.mean_field_optimum(precision, linear).means)


def test_tridiagonal_eigenvalues():
    for size in [2, 3, 4, 10, 50]:
        matrix = gaussian.tridiagonal(size, 3.0, -2.0)
        k = np.arange(1, size + 1)
        expected = np.sort(3.0 - 4.0 * np.cos(k * np.pi / (size + 1)))
        np.testing.assert_allclose(np.linalg.eigvalsh(matrix), expected, atol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        gaussian.mean_field_optimum(gaussian.tridiagonal(10, 3.0, -2.0), np.ones(10))


def test_the_papers_matrix_is_indefinite_and_not_the_models_precision():
    psi = gaussian.paper_hmm_matrix(2)
    np.testing.assert_allclose(np.linalg.eigvalsh(psi), [2 - 5**0.5, 2 + 5**0.5])
    for size in [2, 3, 7, 100]:
        psi = gaussian.paper_hmm_matrix(size)
        assert psi[0, 0] == 1.0 and np.all(np.diag(psi)[1:] == 3.0)
        assert np.all(np.diag(psi, 1) == -2.0) and np.all(np.diag(psi, -1) == -2.0)
        assert not gaussian.is_positive_definite(psi)
        assert np.linalg.eigvalsh(psi)[0] < 0 < np.linalg.eigvalsh(psi)[-1]
        lam = sq.GaussianHMM(1.0, 1.0, 1.0, 1.0).precision(np.ones(size))
        assert not np.allclose(psi, lam)


# ----------------------------------------------------------------- the Gaussian HMM


@pytest.mark.parametrize("rho, initial_sd", [(0.9, 1.0), (-0.5, 2.0), (1.0, 0.7)])
def test_hmm_posterior_matches_dense_gaussian_conditioning(rho, initial_sd):
    """Build the joint covariance of (z, x) densely and condition on x."""
    hmm = sq.GaussianHMM(rho, 0.8, 1.3, initial_sd)
    n = 7
    # z = B e with e ~ N(0, diag(s0^2, sz^2, ...)), x = z + noise.
    b = np.zeros((n, n))
    for i in range(n):
        b[i, : i + 1] = rho ** (i - np.arange(i + 1))
    cov_z = b @ np.diag([initial_sd**2] + [0.8**2] * (n - 1)) @ b.T
    cov = np.block([[cov_z, cov_z], [cov_z, cov_z + 1.3**2 * np.eye(n)]])
    x = np.random.default_rng(0).normal(size=n)
    mean, post_cov = _conditional_gaussian(np.zeros(2 * n), cov, np.arange(n, 2 * n), x)
    np.testing.assert_allclose(hmm.posterior_mean(x), mean, atol=1e-10)
    np.testing.assert_allclose(hmm.posterior_covariance(x), post_cov, atol=1e-10)


def test_hmm_log_prob_is_the_information_form():
    """log p(z, x) + z' L z / 2 - h' z does not depend on z (flat initial prior included)."""
    for hmm in [sq.GaussianHMM(0.9, 1.0, 0.5, 2.0),
                sq.GaussianHMM(1.0, 0.5**0.5, 1.0, math.inf)]:
        x = np.random.default_rng(1).normal(size=6)
        z = np.random.default_rng(2).normal(size=(5, 6))
        lam, h = hmm.precision(x), hmm.linear_term(x)
        rest = hmm.log_prob({"z": z}, x) + 0.5 * np.einsum("si,ij,sj->s", z, lam, z) - z @ h
        np.testing.assert_allclose(rest, rest[0], atol=1e-10)


def test_hmm_of_the_papers_script_with_constant_data():
    """z_1 ~ N(0,1), z_n ~ N(z_{n-1}, 1), x_n ~ N(z_n, 1): diagonal 3 (2 last), off -1.

    With all x_n = 1, Lambda m = 1 by hand: m_1 = 1 / golden ratio, m_2 = 3 m_1 - 1,
    m_{n+1} = 3 m_n - m_{n-1} - 1, and the means rise towards 1.
    """
    hmm = sq.GaussianHMM(1.0, 1.0, 1.0, 1.0)
    size = 30
    lam = hmm.precision(np.ones(size))
    np.testing.assert_allclose(np.diag(lam), [3.0] * (size - 1) + [2.0])
    np.testing.assert_allclose(np.diag(lam, 1), -1.0)
    assert np.linalg.eigvalsh(lam)[0] > 1.0  # at least 1 / sigma_x^2
    means = hmm.fvi_optimum(np.ones(size)).means
    golden = (1 + 5**0.5) / 2
    np.testing.assert_allclose(means[0], 1 / golden, atol=1e-10)
    np.testing.assert_allclose(means[1], 3 * means[0] - 1, rtol=1e-10)
    np.testing.assert_allclose(means[2:], 3 * means[1:-1] - means[:-2] - 1, atol=1e-10)
    assert np.all(np.diff(means) > 0) and abs(means[-1] - 1) < 1e-10


@pytest.mark.parametrize(
    "rho, transition_sd, observation_sd, initial_sd",
    [(0.5, 1.0, 10.0, math.inf), (-0.5, 1.0, 10.0, math.inf), (2.0, 0.3, 5.0, 4.0),
     (1.0, 0.5**0.5, 1.0, math.inf)],
)
def test_hmm_precision_is_positive_definite_without_diagonal_dominance(
        rho, transition_sd, observation_sd, initial_sd):
    """Lambda = D + (PSD transition part): eigenvalues >= 1 / sigma_x^2, dominance or not."""
    hmm = sq.GaussianHMM(rho, transition_sd, observation_sd, initial_sd)
    lam = hmm.precision(np.zeros(8))
    diagonal = np.full(8, 1 / observation_sd**2)
    diagonal[0] += 1 / initial_sd**2
    transition = lam - np.diag(diagonal)
    assert np.linalg.eigvalsh(transition)[0] > -1e-12  # positive semidefinite
    assert np.linalg.eigvalsh(lam)[0] >= 1 / observation_sd**2 - 1e-12
    assert gaussian.is_positive_definite(lam)
    if rho == 0.5:  # the first row is not diagonally dominant here
        assert lam[0, 0] < abs(lam[0, 1])


def test_hmm_equal_observations_get_different_optimal_means():
    hmm = sq.GaussianHMM()
    _, x = hmm.sample(30, seed=0)
    x[20] = x[5]
    means = hmm.fvi_optimum(x).means
    assert abs(means[20] - means[5]) > 1e-3


def test_hmm_optimal_elbo_against_direct_expectation():
    """ELBO* = E_q log p(z, x) + H(q) by the exact Gaussian expectation of the quadratic."""
    hmm = sq.GaussianHMM(0.8, 0.9, 1.1, 1.5)
    _, x = hmm.sample(8, seed=3)
    q = hmm.fvi_optimum(x)
    # E_q log p = log p(m, x) - sum_i L_ii v_i / 2, and H(q) = sum_i log(2 pi e v_i) / 2.
    expected = (hmm.log_prob({"z": q.means}, x)
                - 0.5 * np.sum(np.diag(hmm.precision(x)) * q.variances)
                + 0.5 * np.sum(np.log(2 * math.pi * math.e * q.variances)))
    assert hmm.optimal_elbo(x) == pytest.approx(expected, rel=1e-12)


def test_hmm_sampling_is_seeded_and_has_the_right_spread():
    hmm = sq.GaussianHMM(0.0, 1.0, 1.0, 1.0)
    latents, x = hmm.sample(100_000, seed=4)
    z = latents["z"]
    np.testing.assert_array_equal(x, hmm.sample(100_000, seed=4)[1])
    assert np.var(z) == pytest.approx(1.0, abs=5 * math.sqrt(2 / 100_000))
    assert np.var(x - z) == pytest.approx(1.0, abs=5 * math.sqrt(2 / 100_000))


# ----------------------------------------------------------------- the saw time series


def test_saw_posterior_matches_dense_gaussian_conditioning():
    model = sq.SawTimeSeries(alpha=0.6, theta_sd=1.5, latent_sd=0.8, observation_sd=1.2)
    _, x = model.sample(6, seed=0)
    x = x.numpy().astype(np.float64)
    n = len(x)
    # Given the data, theta ~ N(0, s_t^2) and z_n ~ N(x_{n-1}, s_z^2) independently, and
    # x_n = alpha (theta + z_n) + noise is linear in u = (theta, z): condition on it.
    previous = np.r_[0.0, x[:-1]]
    prior_mean = np.r_[0.0, previous]
    prior_cov = np.diag([1.5**2] + [0.8**2] * n)
    design = 0.6 * np.c_[np.ones(n), np.eye(n)]  # x = design @ u + noise
    joint_mean = np.r_[prior_mean, design @ prior_mean]
    joint_cov = np.block([[prior_cov, prior_cov @ design.T],
                          [design @ prior_cov,
                           design @ prior_cov @ design.T + 1.2**2 * np.eye(n)]])
    mean, cov = _conditional_gaussian(joint_mean, joint_cov, np.arange(n + 1, 2 * n + 1), x)
    np.testing.assert_allclose(model.posterior_mean(x), mean, atol=1e-10)
    np.testing.assert_allclose(model.posterior_covariance(x), cov, atol=1e-10)


def test_saw_flat_prior_is_the_limit_of_wide_priors():
    x = np.random.default_rng(8).normal(size=7)
    flat = sq.SawTimeSeries(alpha=0.75)
    wide = sq.SawTimeSeries(alpha=0.75, theta_sd=1e6)
    np.testing.assert_allclose(flat.posterior_mean(x), wide.posterior_mean(x), rtol=1e-8)
    np.testing.assert_allclose(flat.precision(x), wide.precision(x), atol=1e-11)


def test_saw_log_joint_is_the_information_form():
    for model in [sq.SawTimeSeries(alpha=0.6, theta_sd=2.0, latent_sd=0.7, observation_sd=0.9),
                  sq.SawTimeSeries(alpha=-1.3, latent_sd=1.4, observation_sd=0.6)]:
        x = np.random.default_rng(5).normal(size=5)
        u = np.random.default_rng(6).normal(size=(4, 6))
        logp = model.log_prob({"theta": tf.constant(u[:, :1]), "z": tf.constant(u[:, 1:, None])},
                              tf.constant(x)).numpy()
        lam, h = model.precision(x), model.linear_term(x)
        rest = logp + 0.5 * np.einsum("si,ij,sj->s", u, lam, u) - u @ h
        np.testing.assert_allclose(rest, rest[0], atol=1e-10)
    in_float32 = model.log_prob({"theta": tf.zeros([2, 1]), "z": tf.zeros([2, 5, 1])},
                                x.astype(np.float32))
    assert in_float32.dtype == tf.float32


def test_saw_optimal_means_are_affine_in_the_lagged_pair():
    model = sq.SawTimeSeries(alpha=0.5, latent_sd=0.7, observation_sd=1.5)
    _, x = model.sample(50, seed=1, theta=2.0)
    x = x.numpy().astype(np.float64)
    q = model.fvi_optimum(x)
    sz2, sx2 = 0.7**2, 1.5**2
    previous = np.r_[0.0, x[:-1]]
    expected = ((previous / sz2 + 0.5 * (x - 0.5 * q.means[0]) / sx2)
                / (1 / sz2 + 0.25 / sx2))
    np.testing.assert_allclose(q.means[1:], expected, atol=1e-10)
    # theta's mean is the exact marginal posterior mean (flat prior): integrating z_n out,
    # x_n | theta ~ N(alpha (theta + x_{n-1}), alpha^2 s_z^2 + s_x^2), so it is the mean of
    # x_n / alpha - x_{n-1}.
    assert q.means[0] == pytest.approx(np.mean(x / 0.5 - previous), rel=1e-10)
    np.testing.assert_allclose(q.variances, 1 / np.diag(model.precision(x)))


def test_saw_gaussian_elbo_is_optimal_elbo_minus_kl_difference():
    """ELBO(q) = ELBO(q*) - [KL(q || p) - KL(q* || p)] for any mean-field Gaussian q."""
    model = sq.SawTimeSeries(alpha=0.5, observation_sd=0.8)
    x = model.paper_data(20, seed=3).numpy().astype(np.float64)
    lam, h = model.precision(x), model.linear_term(x)
    rng = np.random.default_rng(4)
    means, sds = rng.normal(size=21), rng.uniform(0.3, 1.5, size=21)
    elbo = model.gaussian_elbo(x, means[0], sds[0], means[1:], sds[1:])
    q_star = model.fvi_optimum(x)
    expected = model.optimal_elbo(x) - (
        gaussian.mean_field_kl(lam, h, gaussian.MeanField(means, sds**2))
        - gaussian.mean_field_kl(lam, h, q_star))
    assert elbo == pytest.approx(expected, rel=1e-10)
    assert model.gaussian_elbo(x, q_star.means[0], q_star.variances[0] ** 0.5, q_star.means[1:],
                               q_star.variances[1:] ** 0.5) == pytest.approx(model.optimal_elbo(x))


def test_saw_expected_log_joint_against_the_float64_elbo():
    model = sq.SawTimeSeries(alpha=0.75, theta_sd=3.0, latent_sd=1.2, observation_sd=0.9)
    x = model.paper_data(30, seed=9).numpy()
    rng = np.random.default_rng(10)
    means, sds = rng.normal(size=31), rng.uniform(0.3, 1.5, size=31)
    expected = model.expected_log_joint(x, means[0], sds[0], means[1:], sds[1:])
    entropy = 0.5 * np.sum(np.log(2 * math.pi * math.e * sds**2))
    exact = model.gaussian_elbo(x.astype(np.float64), means[0], sds[0], means[1:], sds[1:])
    assert float(expected) + entropy == pytest.approx(exact, rel=1e-5)


def test_saw_elbo_by_monte_carlo():
    """The exact ELBO agrees with a plain Monte Carlo average of log p + entropy."""
    model = sq.SawTimeSeries()
    _, x = model.sample(10, seed=5, theta=1.0)
    x = x.numpy().astype(np.float64)
    q = model.fvi_optimum(x)
    draws = q.means + np.sqrt(q.variances) * np.random.default_rng(6).normal(size=(200_000, 11))
    theta, z = tf.constant(draws[:, :1]), tf.constant(draws[:, 1:, None])
    logp = model.log_prob({"theta": theta, "z": z}, tf.constant(x))
    values = logp.numpy() + 0.5 * np.sum(np.log(2 * math.pi * math.e * q.variances))
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - model.optimal_elbo(x)) < 5 * se


def test_saw_amortized_families_exact_gaps():
    model = sq.SawTimeSeries()
    x = model.paper_data(300, seed=2).numpy().astype(np.float64)
    lam, h = model.precision(x), model.linear_term(x)
    groups = np.r_[0, np.ones(len(x), int)]
    best = gaussian.mean_field_kl(lam, h, model.fvi_optimum(x))
    gap = {inputs: gaussian.mean_field_kl(lam, h, gaussian.constrained_mean_field_optimum(
        lam, h, model.features(x, inputs), groups)) - best for inputs in ("x", "lagged")}
    assert gap["lagged"] == pytest.approx(0.0, abs=1e-8)
    assert gap["x"] > 10.0


def test_saw_sampling_follows_the_model():
    model = sq.SawTimeSeries(alpha=0.5, latent_sd=1.0, observation_sd=0.5)
    latents, x = model.sample(50_000, seed=7, theta=1.5)
    theta, z = float(latents["theta"][0]), latents["z"].numpy()[:, 0].astype(np.float64)
    x = x.numpy().astype(np.float64)
    assert theta == 1.5
    resid_z = z - np.r_[0.0, x[:-1]]
    resid_x = x - 0.5 * (theta + z)
    n = len(x)
    assert np.var(resid_z) == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))
    assert np.var(resid_x) == pytest.approx(0.25, abs=5 * 0.25 * math.sqrt(2 / n) + 1e-6)
    assert abs(resid_x.mean()) < 5 * 0.5 / math.sqrt(n) + 1e-5
    proper = sq.SawTimeSeries(alpha=0.5, theta_sd=2.0)
    thetas = [float(proper.sample(2, seed=s)[0]["theta"][0]) for s in range(2000)]
    assert np.std(thetas) == pytest.approx(2.0, rel=0.1)


def test_saw_paper_data_follow_the_authors_recursion():
    model = sq.SawTimeSeries(alpha=0.75)
    x = model.paper_data(20_000, seed=11).numpy().astype(np.float64)
    resid = x - 0.75 * (3.4159 + np.r_[0.0, x[:-1]])
    assert abs(resid.mean()) < 5 / math.sqrt(len(x))
    assert np.var(resid) == pytest.approx(1.0, abs=5 * math.sqrt(2 / len(x)) + 1e-5)


# ----------------------------------------------------------------- bad inputs


_SAW, _I2, _1s = sq.SawTimeSeries(), np.eye(2), np.ones(2)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: sq.SawTimeSeries(alpha=math.nan), "alpha"),
        (lambda: sq.SawTimeSeries(theta_sd=0.0), "theta_sd"),
        (lambda: sq.SawTimeSeries(theta_sd="wide"), "theta_sd"),
        (lambda: sq.SawTimeSeries(alpha=0.0), "alpha"),
        (lambda: sq.SawTimeSeries().sample(3, seed=0), "theta"),
        (lambda: sq.SawTimeSeries().sample(3, seed=0, theta=math.nan), "theta"),
        (lambda: sq.SawTimeSeries().paper_data(0), "num_points"),
        (lambda: sq.SawTimeSeries(latent_sd=-1.0), "latent_sd"),
        (lambda: sq.SawTimeSeries(observation_sd="a"), "observation_sd"),
        (lambda: sq.SawTimeSeries().sample(0, theta=1.0), "num_points"),
        (lambda: sq.SawTimeSeries().sample(3, seed=-1, theta=1.0), "seed"),
        (lambda: sq.SawTimeSeries().precision([1.0]), "x"),
        (lambda: sq.SawTimeSeries().linear_term([[1.0, 2.0]]), "x"),
        (lambda: sq.SawTimeSeries().fvi_optimum([1.0, math.inf]), "x"),
        (lambda: sq.SawTimeSeries().features([1.0, 2.0], "both"), "inputs"),
        (lambda: _SAW.log_prob({"theta": tf.zeros([2]), "z": tf.zeros([2, 3, 1])}, tf.zeros([3])),
         "theta"),
        (lambda: _SAW.log_prob({"theta": tf.zeros([2, 1]), "z": tf.zeros([2, 4, 1])},
                               tf.zeros([3])), "z"),
        (lambda: _SAW.log_prob((tf.zeros([2, 1]), tf.zeros([2, 3, 1])), tf.zeros([3])),
         "latents"),
        (lambda: sq.GaussianHMM(transition_coef=math.inf), "transition_coef"),
        (lambda: sq.GaussianHMM(transition_sd=0.0), "transition_sd"),
        (lambda: sq.GaussianHMM(observation_sd=-2.0), "observation_sd"),
        (lambda: sq.GaussianHMM(initial_sd=0.0), "initial_sd"),
        (lambda: sq.GaussianHMM(initial_sd=math.nan), "initial_sd"),
        (lambda: sq.GaussianHMM(initial_sd="wide"), "initial_sd"),
        (lambda: sq.GaussianHMM(initial_sd=math.inf).sample(5), "initial_sd"),
        (lambda: sq.GaussianHMM().sample(2.5), "num_points"),
        (lambda: sq.GaussianHMM().log_prob({"z": np.zeros(3)}, np.zeros(4)), "z"),
        (lambda: sq.GaussianHMM().log_prob(np.zeros(4), np.zeros(4)), "latents"),
        (lambda: gaussian.tridiagonal(0, 3.0, -2.0), "size"),
        (lambda: gaussian.tridiagonal(3, math.nan, -2.0), "diagonal"),
        (lambda: gaussian.tridiagonal(3, 3.0, None), "off_diagonal"),
        (lambda: gaussian.mean_field_optimum(np.ones((2, 3)), np.ones(2)), "precision"),
        (lambda: gaussian.mean_field_optimum(np.eye(2), np.ones(3)), "linear"),
        (lambda: gaussian.mean_field_optimum([[1.0, 2.0], [0.0, 1.0]], np.ones(2)), "precision"),
        (lambda: gaussian.mean_field_optimum(-np.eye(2), np.ones(2)), "precision"),
        (lambda: gaussian.mean_field_optimum(np.eye(2), [1.0, math.nan]), "linear"),
        (lambda: gaussian.mean_field_kl(_I2, _1s, gaussian.MeanField(_1s, np.zeros(2))),
         "q.variances"),
        (lambda: gaussian.mean_field_kl(_I2, _1s, gaussian.MeanField(np.ones(3), np.ones(3))), "q"),
        (lambda: gaussian.mean_field_elbo(math.inf, np.eye(2)), "log_joint_at_mean"),
        (lambda: gaussian.mean_field_elbo(0.0, -np.eye(2)), "precision"),
        (lambda: gaussian.mean_field_elbo(0.0, np.eye(2), [1.0, -1.0]), "variances"),
        (lambda: _SAW.gaussian_elbo([1.0, 2.0], 0.0, 0.0, [0.0, 0.0], [1.0, 1.0]), "theta_sd"),
        (lambda: sq.SawTimeSeries().gaussian_elbo([1.0, 2.0], 0.0, 1.0, [0.0], [1.0]), "z_mean"),
        (lambda: gaussian.constrained_mean_field_optimum(_I2, _1s, _1s, [0, 0]), "features"),
        (lambda: gaussian.constrained_mean_field_optimum(_I2, _1s, np.ones((2, 2)), [0, 0]),
         "features"),
        (lambda: gaussian.constrained_mean_field_optimum(_I2, _1s, _I2, [0.5, 1.0]),
         "variance_groups"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_checked_precision_factor_is_reused_and_keyed_by_content(monkeypatch):
    """The second check of the same matrix reuses its factor; a changed matrix is checked anew."""
    from amortlib import _checks

    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    lam, h = a @ a.T + 6 * np.eye(6), rng.normal(size=6)
    q = gaussian.MeanField(rng.normal(size=6), rng.uniform(0.1, 1.0, size=6))
    expected = 0.5 * (np.sum(np.diag(lam) * q.variances) - 6 - np.sum(np.log(q.variances))
                      - np.linalg.slogdet(lam)[1]
                      + (q.means - np.linalg.solve(lam, h)) @ lam
                      @ (q.means - np.linalg.solve(lam, h)))
    calls = []
    cholesky = np.linalg.cholesky
    monkeypatch.setattr(np.linalg, "cholesky", lambda m: calls.append(1) or cholesky(m))
    _checks._FACTORS.clear()
    np.testing.assert_allclose(gaussian.mean_field_kl(lam, h, q), expected, rtol=1e-12)
    np.testing.assert_allclose(gaussian.mean_field_optimum(lam.copy(), h).means,
                               np.linalg.solve(lam, h), rtol=1e-12)
    assert len(calls) == 1
    lam[0, 0] = -1.0  # the same array, now indefinite: not the cached matrix any more
    with pytest.raises(ValueError, match="positive definite"):
        gaussian.mean_field_kl(lam, h, q)
    lam[0, 0], lam[0, 1] = 7.0, lam[0, 1] + 1.0
    with pytest.raises(ValueError, match="symmetric"):
        gaussian.mean_field_optimum(lam, h)


def test_a_remembered_factor_cannot_be_written_to():
    """The factor handed out is a view of a read-only array: its flag cannot be turned back on."""
    from amortlib import _checks

    lam = np.array([[2.0, 1.0], [1.0, 2.0]])
    for _ in range(2):  # the first check, then the remembered factor
        _, factor = _checks.precision_and_factor(lam)
        with pytest.raises(ValueError):
            factor.flags.writeable = True
        with pytest.raises(ValueError):
            factor[0, 0] = 99.0
    np.testing.assert_allclose(gaussian.mean_field_optimum(lam, [3.0, 3.0]).means, [1.0, 1.0])
