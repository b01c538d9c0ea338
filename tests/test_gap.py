"""F-VI, A-VI and the amortization gap against the closed-form optimum of the linear model."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import families, gap, losses
from amortlib.hierarchical import LinearModel, NonlinearModel
from amortlib.losses import elbo_draws
from amortlib.training import History

N = 400


@pytest.fixture(scope="module")
def linear():
    model = LinearModel(tau=1.155, sigma=2.43)
    _, x = model.sample(N, seed=0, theta=1.0)
    return model, x


def fitted(model, family, x, **options):
    """Fit a posterior with ``family`` by `gap.fit_vi`; return the posterior and the history."""
    posterior = families.VariationalPosterior(model, family)
    return posterior, gap.fit_vi(model, posterior, x, progress=False, **options)


def optimal_posterior(model, x, **shift):
    """The closed-form F-VI optimum as a VariationalPosterior, optionally shifted."""
    opt = model.fvi_optimum(x)
    family = families.Factorized(len(opt.z_mean),
                                 loc=opt.z_mean[:, None] + shift.get("z", 0.0),
                                 scale=opt.z_sd[:, None])
    return families.VariationalPosterior(model, family,
                                         theta_loc=opt.theta_mean + shift.get("theta", 0),
                                         theta_scale=opt.theta_sd)


def exact_elbo(model, posterior, x):
    loc, scale = posterior.local(x)
    return model.gaussian_elbo(x, float(posterior.theta_loc[0]),
                               float(np.exp(posterior.theta_log_scale[0])),
                               loc.numpy()[:, 0], scale.numpy()[:, 0])


def test_monte_carlo_elbo_at_optimum_matches_exact_formula(linear):
    model, x = linear
    estimate = gap.elbo(model, optimal_posterior(model, x), x, sample_size=2000, seed=1)
    assert estimate.standard_error > 0
    assert abs(estimate.value - model.optimal_elbo(x)) < 5 * estimate.standard_error


def test_elbo_is_deterministic_given_the_seed(linear):
    model, x = linear
    post = optimal_posterior(model, x)
    assert gap.elbo(model, post, x, sample_size=10, seed=3) == gap.elbo(model, post, x,
                                                                        sample_size=10, seed=3)


def elbo_gradients(model, posterior, x, num_batches=30, sample_size=50):
    rows = []
    for k in range(num_batches):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(losses.elbo_draws(model, posterior, x, seed=tf.constant([7, k]),
                                                     sample_size=sample_size, exact_entropy=True))
        grads = tape.gradient(value, posterior.trainable_variables)
        rows.append(np.concatenate([g.numpy().ravel() for g in grads]))
    return np.array(rows)


def test_elbo_gradient_vanishes_at_closed_form_optimum(linear):
    model, x = linear
    grads = elbo_gradients(model, optimal_posterior(model, x), x)
    mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
    # 2N + 2 parameters, each tested at 5 standard errors: a false alarm has probability ~1e-3.
    assert np.all(np.abs(mean) < 5 * se + 1e-4)
    # Power: a small shift of q(theta) or of the z-means gives gradients many SEs from zero.
    for shift in (dict(theta=0.05), dict(z=0.05)):
        grads = elbo_gradients(model, optimal_posterior(model, x, **shift), x)
        mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
        assert np.max(np.abs(mean) / (se + 1e-12)) > 10


@pytest.mark.parametrize("family", ["fvi", "avi1"])
def test_fvi_and_affine_avi_reach_the_closed_form_optimum(linear, family):
    model, x = linear
    local = (families.Factorized(N) if family == "fvi"
             else families.Amortized(families.Polynomial(1)))
    posterior, history = fitted(model, local, x, num_steps=3000, learning_rate=0.05,
                                  sample_size=4, seed=2)
    best = model.optimal_elbo(x)
    # The exact ELBO of the trained q is within 0.5 nats of the optimum (about 0.05%).
    assert best - 0.5 < exact_elbo(model, posterior, x) <= best + 1e-6
    assert history.loss.shape == (3000,)
    if family == "avi1":
        slope = float(local.inference_function.loc_coef[1, 0])
        assert slope == pytest.approx(model.slope, rel=0.02)


def test_constant_inference_function_leaves_the_predicted_gap(linear):
    """Constant q(z_n): the best is q(z_n) = N(0, s^2/(s^2+tau^2)); the gap is
    sum_n (x_n - xbar)^2 tau^2 / (2 s^2 (s^2 + tau^2))."""
    model, x = linear
    posterior, _ = fitted(model, families.Amortized(families.Constant()), x, num_steps=3000,
                          learning_rate=0.05, sample_size=4, seed=2)
    s2, t2 = model.sigma**2, model.tau**2
    xs = np.asarray(x, np.float64)
    predicted = np.sum((xs - xs.mean()) ** 2) * t2 / (2 * s2 * (s2 + t2))
    exact_gap = model.optimal_elbo(x) - exact_elbo(model, posterior, x)
    assert exact_gap == pytest.approx(predicted, abs=0.5)
    estimate = gap.amortization_gap(model, optimal_posterior(model, x), posterior, x,
                                    sample_size=200, seed=4)
    assert abs(estimate.value - exact_gap) < 5 * estimate.standard_error
    # Paired draws: the gap's standard error is far below that of one ELBO.
    single = gap.elbo(model, posterior, x, sample_size=200, seed=4)
    assert estimate.standard_error < single.standard_error


def test_fit_vi_is_deterministic(linear):
    model, x = linear
    runs = [fitted(model, families.Amortized(families.MLPFunction(3, seed=1)), x, num_steps=50,
                   learning_rate=0.01, seed=5)[1].loss for _ in range(2)]
    np.testing.assert_array_equal(*runs)


def test_refinement_diagnostic(linear):
    model, x = linear
    weak, _ = fitted(model, families.Amortized(families.Constant()), x, num_steps=2000,
                     learning_rate=0.05, sample_size=4, seed=2)
    strong, _ = fitted(model, families.Amortized(families.Polynomial(1)), x, num_steps=3000,
                       learning_rate=0.05, sample_size=4, seed=2)
    weak_gain = gap.fvi_refinement(model, weak, x, num_steps=300, learning_rate=0.02).gain
    strong_gain = gap.fvi_refinement(model, strong, x, num_steps=300, learning_rate=0.02).gain
    assert weak_gain.value > 10 * weak_gain.standard_error and weak_gain.value > 5
    assert strong_gain.value < 1.0


def test_lagged_inputs_give_z1_free_parameters():
    f = families.Polynomial(1, input_dim=2)
    family = families.Amortized(f, inputs="lagged")
    x = tf.constant([1.0, 2.0, 4.0])
    f.loc_coef.assign([[0.0], [1.0], [10.0]])
    family.first_loc.assign([[-7.0]])
    loc, scale = family(x)
    np.testing.assert_allclose(loc.numpy()[:, 0], [-7.0, 1 + 20, 2 + 40])
    assert scale.shape == (3, 1)
    names = {v.name.split(":")[0] for v in family.trainable_variables}
    assert {"first_loc", "first_log_scale", "loc_coef", "log_scale_coef"} <= names


def test_mlp_starts_at_standard_normal_and_has_two_networks():
    f = families.MLPFunction(5, hidden_layers=2)
    loc, scale = f(tf.constant([[0.3], [-2.0]]))
    np.testing.assert_array_equal(loc, 0.0)
    np.testing.assert_array_equal(scale, 1.0)
    assert len(f.trainable_variables) == 2 * 2 * 3


def test_steps_to_converge_uses_a_trailing_running_mean():
    loss = np.array([100.0, 100.0, 10.0, 10.0, 10.0])
    history = History(loss=loss, trace={}, elapsed=np.arange(1.0, 6.0) / 2)
    assert gap.steps_to_converge(history, 10.0, window=1) == (3, 1.5)
    # with a window of 2 the running mean at step 3 is 55; at step 4 it is 10
    assert gap.steps_to_converge(history, 10.0, window=2) == (4, 2.0)
    assert gap.steps_to_converge(history, 1.0) is None
    # a plain array: the same steps, seconds only with elapsed
    assert gap.steps_to_converge(loss, 10.0, window=2) == (4, None)
    assert gap.steps_to_converge(loss, 10.0, window=2, elapsed=history.elapsed) == (4, 2.0)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: families.Polynomial(-1), "degree"),
        (lambda: families.Polynomial(1.5), "degree"),
        (lambda: families.MLPFunction(0), "width"),
        (lambda: families.MLPFunction(2, hidden_layers=0), "hidden_layers"),
        (lambda: families.Constant(local_dim=0), "local_dim"),
        (lambda: families.Amortized(families.Constant(), inputs="y"), "inputs"),
        (lambda: families.Amortized(object()), "inference_function"),
        (lambda: families.Amortized(families.Constant())(tf.zeros([3, 2])), "input"),
        (lambda: families.Amortized(families.Constant(input_dim=2), inputs="lagged")(tf.zeros([1])),
         "lagged"),
        (lambda: families.Factorized(0), "num_points"),
        (lambda: families.Factorized(3, scale=-1.0), "scale"),
        (lambda: families.Factorized(3, loc=np.zeros(4)), "loc"),
        (lambda: families.Factorized(3)(tf.zeros([4])), "data points"),
        (lambda: families.VariationalPosterior(LinearModel(), families.Factorized(3, local_dim=2)),
         "local_dim"),
        (lambda: families.VariationalPosterior("model", families.Factorized(3)), "model"),
        (lambda: families.VariationalPosterior(LinearModel(), families.Factorized(3),
                                               theta_scale=0.0),
         "theta_scale"),
        (lambda: gap.elbo(LinearModel(), families.VariationalPosterior(LinearModel(),
                          families.Factorized(3)), np.zeros(3)), "different model"),
        (lambda: fitted(LinearModel(), families.Factorized(3), np.zeros(3), num_steps=0,
                        learning_rate=0.1), "num_steps"),
        (lambda: fitted(LinearModel(), families.Factorized(3), np.zeros(3), num_steps=5,
                        learning_rate=0.1, sample_size=0), "sample_size"),
        (lambda: fitted(LinearModel(), families.Factorized(3), np.zeros((3, 1, 1)), num_steps=5,
                        learning_rate=0.1), "x"),
        (lambda: fitted(NonlinearModel(), families.Factorized(3), [0.0, np.nan, 1.0],
                        num_steps=5, learning_rate=0.1), "x"),
        (lambda: gap.fit_vi(LinearModel(), families.Factorized(3), np.zeros(3), num_steps=5,
                            learning_rate=0.1), "VariationalPosterior"),
        (lambda: fitted(LinearModel(), families.Factorized(3), np.zeros(4), num_steps=5,
                        learning_rate=0.1), "data points"),
        (lambda: gap.steps_to_converge("history", 1.0), "history"),
        (lambda: gap.steps_to_converge(History(np.ones(2), {}, np.ones(2)), 0.0), "target"),
        (lambda: gap.steps_to_converge(History(np.ones(2), {}, np.ones(2)), 1.0, rel_tol=1.5),
         "rel_tol"),
        (lambda: gap.steps_to_converge(History(np.ones(2), {}, np.ones(2)), 1.0, window=0),
         "window"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_elbo_needs_two_draws(linear):
    model, x = linear
    post = optimal_posterior(model, x)
    with pytest.raises(ValueError, match="sample_size"):
        gap.elbo(model, post, x, sample_size=1)
    with pytest.raises(ValueError, match="sample_size"):
        gap.elbo_difference(model, post, post, x, sample_size=1)
    assert math.isfinite(gap.elbo(model, post, x, sample_size=2).value)


def test_traced_elbo_is_the_exact_elbo_inside_a_compiled_loop():
    model = LinearModel(tau=1.3, sigma=0.7)
    _, x = model.sample(300, seed=5)
    posterior, history = fitted(
        model, families.Amortized(families.Polynomial(1)), x, num_steps=50, learning_rate=0.05,
        seed=1,
        trace_fn=lambda q: {"elbo": gap.traced_elbo(model, q, x)})
    # The last traced value is the closed-form (float64) ELBO of the final parameters.
    exact = gap.exact_elbo(model, posterior, x)
    assert history.trace["elbo"][-1] == pytest.approx(exact, rel=1e-5)


def test_traced_elbo_needs_the_expectation():
    model = NonlinearModel()
    _, x = model.sample(10, seed=0)
    with pytest.raises(ValueError, match="expected_log_joint"):
        gap.traced_elbo(model, families.VariationalPosterior(model, families.Factorized(10)), x)


def test_gradient_moments_match_the_closed_form_for_the_linear_model():
    """d(-log p)/dm_n at a draw is kappa z_n - tau (x_n - theta) / s^2 (kappa = 1 + tau^2/s^2):
    mean kappa m_n - tau (x_n - m_theta) / s^2, variance kappa^2 s_n^2 + tau^2 s_theta^2 / s^4.
    For A-VI's intercept the gradient is the sum of these over n, with variance
    kappa^2 sum_n s_n^2 + N^2 tau^2 s_theta^2 / s^4.
    """
    tau, s = 0.7, 1.6
    model = LinearModel(tau=tau, sigma=s)
    x = tf.constant([0.5, -1.0, 2.0])
    kappa = 1 + tau**2 / s**2
    m, sd, m_theta, sd_theta = np.array([0.3, -0.2, 1.1]), np.array([0.5, 1.2, 0.8]), 0.4, 0.6
    family = families.Factorized(3, loc=m[:, None], scale=sd[:, None])
    posterior = families.VariationalPosterior(model, family, theta_loc=m_theta,
                                              theta_scale=sd_theta)
    size = 4000
    moments = {g.name.split(":")[0]: g for g in
               gap.gradient_moments(model, posterior, x, sample_size=size, seed=3)}
    loc = moments["loc"]
    mean = kappa * m - tau * (x.numpy() - m_theta) / s**2
    variance = kappa**2 * sd**2 + tau**2 * sd_theta**2 / s**4
    np.testing.assert_allclose(loc.mean[:, 0], mean, atol=5 * np.sqrt(variance / size).max())
    np.testing.assert_allclose(loc.variance[:, 0], variance, rtol=5 * math.sqrt(2 / size))
    # A-VI, constant function at (0, log 1): the intercept's gradient sums over n.
    amortized = families.VariationalPosterior(model, families.Amortized(families.Constant()),
                                              theta_loc=m_theta, theta_scale=sd_theta)
    intercept = gap.gradient_moments(model, amortized, x, sample_size=size, seed=4)
    intercept = {g.name.split(":")[0]: g for g in intercept}["loc_coef"]
    expected_mean = np.sum(-tau * (x.numpy() - m_theta) / s**2)
    expected_var = kappa**2 * 3 + 9 * tau**2 * sd_theta**2 / s**4
    assert intercept.mean[0, 0] == pytest.approx(expected_mean,
                                                 abs=5 * math.sqrt(expected_var / size))
    assert intercept.variance[0, 0] == pytest.approx(expected_var, rel=5 * math.sqrt(2 / size))
    with pytest.raises(ValueError, match="sample_size"):
        gap.gradient_moments(model, posterior, x, sample_size=1)


def test_gradient_moments_come_from_single_draw_gradients_of_elbo_draws():
    """Draw s is elbo_draws with the s-th of split_seed(seed, S), differentiated on its own."""
    model = LinearModel(tau=0.7, sigma=1.6)
    x = tf.constant([0.5, -1.0, 2.0, 0.1])
    posterior = families.VariationalPosterior(model, families.Factorized(4),
                                              theta_loc=0.4, theta_scale=0.6)
    seeds = tfp.random.split_seed(tf.constant([0, 7]), 3)
    grads = []
    for s in seeds:
        with tf.GradientTape() as tape:
            loss = -elbo_draws(model, posterior, x, seed=s, sample_size=1, exact_entropy=True)[0]
        grads.append([g.numpy() for g in tape.gradient(loss, posterior.trainable_variables)])
    moments = gap.gradient_moments(model, posterior, x, sample_size=3, seed=7)
    for i, m in enumerate(moments):
        draws = np.stack([g[i] for g in grads]).astype(np.float64)
        np.testing.assert_allclose(m.mean, draws.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.variance, draws.var(axis=0, ddof=1), rtol=1e-4, atol=1e-6)


def test_fit_vi_again_with_another_seed_does_not_retrace(linear):
    """The multi-seed pattern: one posterior, re-initialised in place, fitted with each seed."""
    model, x = linear
    family = families.Amortized(families.Polynomial(1))
    posterior = families.VariationalPosterior(model, family)
    runs = []
    for seed in [1, 2]:
        for v, w in zip(family.variables, families.Amortized(families.Polynomial(1)).variables):
            v.assign(w)
        posterior.set_theta(0.0, 1.0)
        runs.append(gap.fit_vi(model, posterior, x, num_steps=60, learning_rate=0.05, seed=seed,
                               progress=False))
    assert runs[1].trace_seconds == 0.0
    _, fresh = fitted(model, families.Amortized(families.Polynomial(1)), x, num_steps=60,
                      learning_rate=0.05, seed=2)
    assert fresh.trace_seconds > 0
    np.testing.assert_allclose(runs[1].loss, fresh.loss, rtol=1e-6)


def test_fit_vi_is_fit_with_the_whole_data_set_and_the_exact_entropy(linear):
    """fit_vi is a shorthand: the same run through amortlib.fit gives the same losses; fit
    refuses a hierarchical model without its data set or with minibatches of it."""
    from amortlib import fit

    model, x = linear
    runs = []
    for use_fit in (False, True):
        posterior = families.VariationalPosterior(model, families.Amortized(families.Polynomial(1)))
        if use_fit:
            runs.append(fit(model, posterior, "qp", data=x, batch_size=N, exact_entropy=True,
                            sample_size=2, num_steps=30, learning_rate=0.05, seed=3,
                            progress=False).loss)
        else:
            runs.append(gap.fit_vi(model, posterior, x, sample_size=2, num_steps=30,
                                   learning_rate=0.05, seed=3, progress=False).loss)
    np.testing.assert_allclose(*runs, rtol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be at least the number of data points"):
        fit(model, posterior, "qp", data=x, batch_size=N - 1, num_steps=2)
    with pytest.raises(ValueError, match="global latents"):
        fit(model, posterior, "qp", num_steps=2)


def test_posterior_is_a_joint_distribution_with_the_exact_entropy():
    model = LinearModel()
    family = families.Factorized(3, loc=[[0.1], [0.2], [0.3]], scale=[[0.5], [1.0], [2.0]])
    posterior = families.VariationalPosterior(model, family, theta_loc=1.0, theta_scale=0.3)
    q = posterior(np.zeros(3))
    draws = q.sample(4, seed=1)
    assert draws["theta"].shape == (4, 1) and draws["z"].shape == (4, 3, 1)
    assert q.log_prob(draws).shape == (4,)
    sds = np.array([0.3, 0.5, 1.0, 2.0])
    assert float(q.entropy()) == pytest.approx(np.sum(0.5 * np.log(2 * np.pi * np.e * sds**2)),
                                               rel=1e-6)


def test_both_forms_of_the_elbo_draws_estimate_the_exact_elbo(linear):
    """Both forms of elbo_draws are unbiased. Which is less noisy depends on q: at the F-VI
    optimum, log p - log q is nearly constant (the draws' terms that are quadratic in the
    latents almost cancel), so the plain form is far less noisy than the closed-form entropy;
    for a narrow q far from the posterior the closed form is the less noisy one."""
    model, x = linear
    narrow = families.VariationalPosterior(model, families.Factorized(N, scale=0.3),
                                           theta_scale=0.3)
    stds = []
    for posterior, exact in [(optimal_posterior(model, x), model.optimal_elbo(x)),
                             (narrow, exact_elbo(model, narrow, x))]:
        plain, closed = (losses.elbo_draws(model, posterior, x, seed=5, sample_size=2000,
                                           exact_entropy=flag).numpy().astype(np.float64)
                         for flag in (False, True))
        for draws in (plain, closed):
            assert abs(draws.mean() - exact) < 5 * draws.std() / math.sqrt(draws.size)
        stds.append((plain.std(), closed.std()))
    assert stds[0][0] < 0.1 * stds[0][1]
    assert stds[1][1] < 0.9 * stds[1][0]


def test_posterior_draws_each_part_with_its_own_split_of_the_seed():
    """The stream the book's Part II numbers were computed with: theta from the first of
    split_seed(seed), z from the second, each loc + scale * standard normal."""
    import tensorflow_probability as tfp

    model = LinearModel()
    family = families.Factorized(4, loc=0.3, scale=0.5)
    posterior = families.VariationalPosterior(model, family, theta_loc=0.2, theta_scale=0.7)
    seed = tf.constant([3, 4])
    draws = posterior(tf.zeros(4)).sample(5, seed=seed)
    theta_seed, z_seed = tfp.random.split_seed(seed)
    np.testing.assert_allclose(draws["theta"], 0.2 + 0.7 * tf.random.stateless_normal([5, 1],
                                                                                       theta_seed),
                               rtol=1e-6)
    np.testing.assert_allclose(draws["z"], 0.3 + 0.5 * tf.random.stateless_normal([5, 4, 1],
                                                                                   z_seed),
                               rtol=1e-6)
