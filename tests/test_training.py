import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import GaussianUnknownMean, LinearGaussian, fit, minimize, pq_loss
from amortlib.optimizers import Adam

tfd = tfp.distributions


def trace_abc(net):
    return {"a": net.a, "b": net.b, "c": net.c}


@pytest.mark.parametrize("loss", ["qp", "pq"])
def test_fit_reaches_closed_form_optimum(loss):
    model = GaussianUnknownMean(mu0=2.0, sigma0=3.0, sigma=0.5)
    net = LinearGaussian()
    history = fit(model, net, loss, num_steps=1500, seed=1, progress=False, trace_fn=trace_abc)
    np.testing.assert_allclose(net.params(), model.optimal_params(), atol=0.01)
    assert history.loss.shape == (1500,) and history.trace["c"].shape == (1500,)
    assert history.trace["a"][-1] == pytest.approx(net.params().a)


def test_fit_is_deterministic_given_the_seed():
    runs = []
    for _ in range(2):
        net = LinearGaussian()
        runs.append(
            fit(GaussianUnknownMean(), net, "qp", num_steps=200, seed=7, progress=False).loss)
    np.testing.assert_array_equal(runs[0], runs[1])
    other = fit(GaussianUnknownMean(), LinearGaussian(), "qp", num_steps=200, seed=8,
                progress=False)
    assert not np.array_equal(runs[0], other.loss)


class SignedScaleNet(tf.Module):
    """A deliberately fragile network whose scale can go negative, making log q NaN."""

    def __init__(self):
        super().__init__()
        self.c = tf.Variable(0.9)

    def __call__(self, y):
        return tfd.Normal(0.5 * tf.convert_to_tensor(y), self.c)


@pytest.mark.parametrize("loss", ["qp", "pq"])
def test_fit_stops_with_the_step_when_loss_is_nan(loss):
    net = SignedScaleNet()
    # One Adam step of size 2 takes c from 0.9 to about -1.1, so step 1's loss is NaN.
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 1 \(of 100\)"):
        fit(GaussianUnknownMean(), net, loss, num_steps=100, learning_rate=2.0, anneal=False,
            progress=False)
    assert np.isfinite(net.c.numpy())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(loss="kl"), "loss"),
        (dict(loss="QP"), "loss"),
        (dict(num_steps=0), "num_steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=float("inf")), "learning_rate"),
        (dict(sample_size=0), "sample_size"),
        (dict(seed=1.5), "seed"),
        (dict(loss="pq", sample_size=2), "sample_size"),
        (dict(loss="pq", estimator="enumerate"), "estimator"),
        (dict(samples=2), "samples"),
        (dict(divergence_factor=0.5), "divergence_factor"),
        (dict(data=np.zeros(0)), "data"),
        (dict(data=[0.0, np.nan]), "data"),
        (dict(data=np.ones(3) + 1j), "data"),
        (dict(data=(np.zeros(3), np.zeros(4))), "latents"),
        (dict(loss="pq", data=np.zeros(3)), "data"),
        (dict(train_model=True), "train_model"),
        (dict(loss=len), "sample|seed|argument"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, name):
    args = dict(loss="qp") | kwargs
    loss = args.pop("loss")
    with pytest.raises((ValueError, TypeError), match=name):
        fit(GaussianUnknownMean(), LinearGaussian(), loss, progress=False, num_steps=2, **args)


def test_fit_needs_trainable_variables():
    with pytest.raises(ValueError, match="trainable"):
        fit(GaussianUnknownMean(), tf.Module(), "pq", progress=False)


def test_minimize_finds_the_minimum_of_a_noisy_quadratic():
    """E[(w - 3 + noise)^2] is minimised at w = 3, whatever the noise."""
    w = tf.Variable(0.0)

    def loss_fn(seed):
        return (w - 3.0 + 0.1 * tf.random.stateless_normal([], seed=seed)) ** 2

    history = minimize(loss_fn, [w], num_steps=500, learning_rate=0.1, progress=False,
                       trace_fn=lambda: {"w": w})
    assert w.numpy() == pytest.approx(3.0, abs=0.01)
    assert history.trace["w"][-1] == w.numpy()
    assert np.all(np.diff(history.elapsed) >= 0) and history.seconds == history.elapsed[-1]


def test_minimize_rejects_no_variables():
    with pytest.raises(ValueError, match="variables"):
        minimize(lambda seed: tf.constant(0.0), [], num_steps=1, learning_rate=0.1)


@pytest.mark.parametrize("variables", [
    [tf.constant(1.0)], [np.float32(1.0)], [tf.Variable(1.0, trainable=False)], 3.0])
def test_minimize_refuses_what_it_cannot_train(variables):
    """A tensor, a number or a non-trainable variable would "train" without a word."""
    with pytest.raises(TypeError, match="variables"):
        minimize(lambda seed: tf.constant(0.0), variables, num_steps=1, learning_rate=0.1,
                 progress=False)


def test_minimize_refuses_a_loss_that_reaches_no_variable():
    w = tf.Variable(1.0)
    with pytest.raises(ValueError, match="does not depend on any of the variables"):
        minimize(lambda seed: tf.constant(2.0), [w], num_steps=3, learning_rate=0.1,
                 progress=False)


@pytest.mark.parametrize("estimator", ["enumerate", "reinforce"])
def test_fit_passes_the_estimator_to_the_qp_loss(estimator):
    """fit(..., estimator=e) is minimize on qp_loss(..., estimator=e) with fit's seeding."""
    from amortlib import CategoricalGaussian, GaussianMixtureExplicit, qp_loss
    from amortlib.training import minimize

    model = GaussianMixtureExplicit()
    fitted = fit(model, CategoricalGaussian(), "qp", estimator=estimator, sample_size=4,
                 num_steps=5, batch_size=64, seed=3, progress=False)
    q_net = CategoricalGaussian()

    def loss_fn(step_seed):
        data_seed, q_seed = tfp.random.split_seed(step_seed)
        _, y = model.sample(64, seed=data_seed)
        return qp_loss(model, q_net, None, y, sample_size=4, estimator=estimator, seed=q_seed)

    direct = minimize(loss_fn, q_net.trainable_variables, num_steps=5, learning_rate=0.05,
                      seed=3, progress=False)
    np.testing.assert_allclose(fitted.loss, direct.loss, rtol=1e-5)


def test_fit_rejects_an_unknown_estimator():
    with pytest.raises(ValueError, match="estimator"):
        fit(GaussianUnknownMean(), LinearGaussian(), "qp", estimator="relax", progress=False)


def adam_reference(gradient, start, *, num_steps, learning_rate, anneal):
    """Adam written out in NumPy float64 from Kingma and Ba's algorithm, Keras's defaults."""
    beta1, beta2, epsilon = 0.9, 0.999, 1e-7
    w = [np.array(p, np.float64) for p in start]
    m = [np.zeros_like(p) for p in w]
    v = [np.zeros_like(p) for p in w]
    for t in range(num_steps):
        rate = learning_rate
        if anneal:  # cosine from the rate down to 1% of it
            rate *= 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * t / num_steps))
        for i, g in enumerate(gradient(*w)):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g**2
            m_hat, v_hat = m[i] / (1 - beta1 ** (t + 1)), v[i] / (1 - beta2 ** (t + 1))
            w[i] = w[i] - rate * np.sqrt(1 - beta2 ** (t + 1)) * m_hat / (
                np.sqrt(v_hat) * np.sqrt(1 - beta2 ** (t + 1)) + epsilon)
    return w


@pytest.mark.parametrize("anneal", [True, False])
def test_minimize_takes_adams_steps(anneal):
    """The fused update is Adam with Keras's constants, checked against NumPy in float64.

    The bias-corrected form above is Keras's: epsilon is added to sqrt(v) before the correction
    sqrt(1 - beta2^t), not after. The only float32 quantity in `minimize` is the learning rate.
    """
    target = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])

    def loss(matrix, scalar):
        return (tf.reduce_sum((matrix - target) ** 4)
                + (scalar - 0.3) ** 2 * tf.reduce_sum(matrix**2))

    def gradient(matrix, scalar):
        return (4 * (matrix - target) ** 3 + 2 * (scalar - 0.3) ** 2 * matrix,
                2 * (scalar - 0.3) * np.sum(matrix**2))

    start = [np.zeros([2, 3]), np.array(1.5)]
    variables = [tf.Variable(p, dtype=tf.float64) for p in start]
    minimize(lambda seed: loss(*variables), variables, num_steps=40, learning_rate=0.05,
             anneal=anneal, progress=False)
    expected = adam_reference(gradient, start, num_steps=40, learning_rate=0.05, anneal=anneal)
    for ours, exact in zip(variables, expected):
        np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-7)
    assert not np.allclose(expected[0], 0.0)  # it moved


def test_minimize_leaves_variables_without_a_gradient_alone():
    used, unused = tf.Variable(0.0), tf.Variable(2.0)
    minimize(lambda seed: (used - 1.0) ** 2, [used, unused], num_steps=300, learning_rate=0.1,
             progress=False)
    assert used.numpy() == pytest.approx(1.0, abs=0.01) and unused.numpy() == 2.0


# --- a loop that never lies -----------------------------------------------------------------


def test_a_non_finite_loss_leaves_the_variables_of_the_step_before():
    """The guard: the variables after the failure are exactly those after the good steps.

    Without the check (the update applied to a NaN loss's gradient) they would be NaN, and
    without the error the run would return normally: both fail this test."""
    net = SignedScaleNet()
    with pytest.raises(FloatingPointError, match=r"at step 1 \(of 100\)"):
        fit(GaussianUnknownMean(), net, "pq", num_steps=100, learning_rate=2.0, anneal=False,
            progress=False)
    reference = SignedScaleNet()
    fit(GaussianUnknownMean(), reference, "pq", num_steps=1, learning_rate=2.0, anneal=False,
        progress=False)
    assert net.c.numpy() == reference.c.numpy() and np.isfinite(net.c.numpy())


def test_a_non_finite_gradient_with_a_finite_loss_stops_before_the_update():
    """sqrt(relu(w - 0.5)) is 0 for w <= 0.5 but its gradient there is NaN (inf times 0): the
    loss check alone would apply that gradient."""
    def make_loss(w):
        return lambda seed: tf.sqrt(tf.nn.relu(w - 0.5)) + 0.0 * tf.random.stateless_normal(
            [], seed)

    w, reference = tf.Variable(1.0), tf.Variable(1.0)
    with pytest.raises(FloatingPointError, match=r"gradient .* at step 1 \(of 10\)"):
        minimize(make_loss(w), [w], num_steps=10, learning_rate=1.0, anneal=False,
                 progress=False)
    minimize(make_loss(reference), [reference], num_steps=1, learning_rate=1.0, anneal=False,
             progress=False)
    assert w.numpy() == reference.numpy() < 0.5  # the value after step 0, not NaN


def test_divergence_to_huge_finite_values_is_an_error():
    """exp(w) with Adam pushing w up: the loss stays finite until 1e6 times its start."""
    w = tf.Variable(0.0)
    with pytest.raises(FloatingPointError, match="diverged at step"):
        minimize(lambda seed: -tf.exp(w), [w], num_steps=100, learning_rate=1.0, anneal=False,
                 progress=False)
    # w is where the loss first crossed the limit (not updated further); one Adam step of
    # at most about 1.0 earlier it was below
    assert 1e6 < np.exp(w.numpy()) < 1e6 * np.exp(1.01)
    w.assign(0.0)
    history = minimize(lambda seed: -tf.exp(w), [w], num_steps=10, learning_rate=1.0,
                       anneal=False, progress=False, divergence_factor=None)
    assert history.loss[-1] < -1e3


def test_a_non_finite_trace_value_is_an_error():
    w = tf.Variable(3.0)
    with pytest.raises(FloatingPointError, match="'log_w' became nan after step"):
        minimize(lambda seed: w, [w], num_steps=20, learning_rate=1.0, anneal=False,
                 progress=False, trace_fn=lambda: {"w": w, "log_w": tf.math.log(w)})


# --- optimiser, history, reuse ----------------------------------------------------------------


class SGD:
    """Plain gradient descent, to show that minimize takes any optimiser with the protocol."""

    def __init__(self, rate):
        self.rate = rate

    def build(self, variables):
        self.variables = variables

    def reset(self, num_steps):
        pass

    def apply(self, step, gradients):
        for w, g in zip(self.variables, gradients):
            w.assign_sub(self.rate * g)


def test_minimize_takes_another_optimizer():
    """Gradient descent on (w - 3)^2 at rate 0.1: w_t = 3 (1 - 0.8^t), exactly."""
    w = tf.Variable(0.0, dtype=tf.float64)
    minimize(lambda seed: (w - 3.0) ** 2, [w], num_steps=10, optimizer=SGD(0.1), progress=False)
    assert w.numpy() == pytest.approx(3 * (1 - 0.8**10), rel=1e-12)
    with pytest.raises(ValueError, match="learning_rate"):
        minimize(lambda seed: w**2, [w], num_steps=1, optimizer=SGD(0.1), learning_rate=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        minimize(lambda seed: w**2, [w], num_steps=1, optimizer=object())


def test_another_optimizer_is_not_applied_on_a_failed_step():
    """An optimiser without ``apply_masked`` runs in a branch: a NaN loss at step 1 (w = 0 after
    one step from 1 at rate 1, then log(w) = -inf) leaves w at its value after step 0."""
    w = tf.Variable(1.0, dtype=tf.float64)
    with pytest.raises(FloatingPointError, match=r"at step 1 \(of 5\)"):
        minimize(lambda seed: w - tf.math.log(w) * tf.cast(w < 0.5, tf.float64) * 1e300,
                 [w], num_steps=5, optimizer=SGD(1.0), progress=False)
    assert w.numpy() == 0.0


@pytest.mark.parametrize("anneal", [True, False])
def test_adam_apply_masked_is_apply_or_nothing(anneal):
    """Active: the update of `apply`, bit for bit. Inactive: every variable keeps its value
    exactly, even for a NaN gradient (the moments may change; `reset` starts a run afresh)."""
    start = [np.array([0.3, -1.2], np.float32), np.array(2.5, np.float64)]
    gradients = [tf.constant([0.7, -0.1]), tf.constant(-3.0, tf.float64)]
    results = {}
    for how in ["apply", "masked"]:
        variables = [tf.Variable(v) for v in start]
        adam = Adam(0.1, anneal=anneal)
        adam.build(variables)
        adam.reset(10)
        for step in range(3):
            if how == "apply":
                adam.apply(tf.constant(step), gradients)
            else:
                adam.apply_masked(tf.constant(step), gradients, tf.constant(True))
        results[how] = [v.numpy() for v in variables]
        before = [v.numpy() for v in variables]
        nan = [tf.fill([2], np.nan), tf.constant(np.nan, tf.float64)]
        adam.apply_masked(tf.constant(3), nan, tf.constant(False))
        for v, b in zip(variables, before):
            np.testing.assert_array_equal(v.numpy(), b)
    for a, m in zip(results["apply"], results["masked"]):
        np.testing.assert_array_equal(a, m)


def test_history_records_chunk_and_trace_times():
    w = tf.Variable(0.0)
    history = minimize(lambda seed: (w - 1.0) ** 2, [w], num_steps=100, learning_rate=0.1,
                       progress=False)
    assert history.chunk_ends.tolist() == list(range(4, 101, 4))  # 25 chunks of 4 steps
    assert history.trace_seconds > 0 and np.all(history.chunk_seconds > 0)
    expected = np.median(history.chunk_seconds[1:]) / 4
    assert history.seconds_per_step == pytest.approx(expected)
    assert history.first_chunk_seconds == pytest.approx(
        history.trace_seconds + history.chunk_seconds[0])
    assert history.seconds >= history.first_chunk_seconds


def test_rerunning_with_another_seed_does_not_retrace():
    """The same loss_fn and variables: a second run (another seed, rate and length) reuses the
    compiled loop, and its result is that of a fresh run (Adam's moments are reset)."""
    traces = []
    w = tf.Variable(0.0)

    def loss_fn(seed):
        traces.append(1)  # Python runs only while tracing
        return (w - 2.0 + tf.random.stateless_normal([], seed)) ** 2

    minimize(loss_fn, [w], num_steps=50, learning_rate=0.1, seed=1, progress=False)
    w.assign(0.0)
    again = minimize(loss_fn, [w], num_steps=60, learning_rate=0.2, seed=2, progress=False)
    assert len(traces) == 1 and again.trace_seconds == 0.0
    v = tf.Variable(0.0)
    fresh = minimize(lambda seed: (v - 2.0 + tf.random.stateless_normal([], seed)) ** 2, [v],
                     num_steps=60, learning_rate=0.2, seed=2, progress=False)
    np.testing.assert_array_equal(again.loss, fresh.loss)
    assert w.numpy() == v.numpy()


def test_fit_again_with_another_seed_does_not_retrace():
    traces = []

    def counted_pq(model, q_net, latents, observations, *, seed):
        traces.append(1)
        return pq_loss(model, q_net, latents, observations, seed=seed)

    model, net = GaussianUnknownMean(), LinearGaussian()
    for seed in range(3):
        for variable, value in zip(net.trainable_variables, [0.0, 0.0, 0.0]):
            variable.assign(value)  # b, c's log and a, re-initialised in place
        fit(model, net, counted_pq, num_steps=20, seed=seed, progress=False)
    assert len(traces) == 1


# --- losses as callables, fixed data, joint training --------------------------------------------


def test_fit_takes_a_loss_callable_and_checks_its_options():
    def scaled_pq(model, q_net, latents, observations, *, seed, weight=1.0):
        return weight * pq_loss(model, q_net, latents, observations, seed=seed)

    model = GaussianUnknownMean(mu0=2.0, sigma0=3.0, sigma=0.5)
    net = LinearGaussian()
    fit(model, net, scaled_pq, weight=2.0, num_steps=1500, seed=1, progress=False)
    np.testing.assert_allclose(net.params(), model.optimal_params(), atol=0.01)
    with pytest.raises(ValueError, match="sample_size is not an option of the 'scaled_pq'"):
        fit(model, net, scaled_pq, sample_size=2, progress=False)


@pytest.mark.parametrize("batch_size", [50, 1000])
def test_fit_qp_on_fixed_observations_reaches_the_posterior(batch_size):
    """q can equal p(x | y) for every y, so the ELBO of any fixed data set is maximised there."""
    model = GaussianUnknownMean(mu0=-1.5, sigma0=0.4, sigma=2.0)
    _, y = model.sample(200, seed=3)
    net = LinearGaussian()
    history = fit(model, net, "qp", data=y.numpy(), batch_size=batch_size, num_steps=3000,
                  sample_size=8, seed=2, progress=False)
    np.testing.assert_allclose(net.params(), model.optimal_params(), atol=0.02)
    assert history.num_steps == 3000


class LearnedPriorMean(tf.Module):
    """x ~ N(mu0, 1), y | x ~ N(x, 1) with mu0 trainable: the simplest model to fit jointly."""

    def __init__(self):
        super().__init__()
        self.mu0 = tf.Variable(0.0)

    def sample(self, n, seed):
        x_seed, y_seed = tfp.random.split_seed(seed)
        x = self.mu0 + tf.random.stateless_normal([n], x_seed)
        return x, x + tf.random.stateless_normal([n], y_seed)

    def log_prob(self, x, y):
        return tfd.Normal(self.mu0, 1.0).log_prob(x) + tfd.Normal(x, 1.0).log_prob(y)


def test_fit_trains_the_model_and_the_network_jointly():
    """Maximum marginal likelihood: mu0 -> mean(y) (y ~ N(mu0, 2)); q -> p(x | y) there."""
    y = np.random.default_rng(0).normal(1.7, np.sqrt(2.0), 500).astype(np.float32)
    model, net = LearnedPriorMean(), LinearGaussian()
    fit(model, net, "qp", data=y, train_model=True, num_steps=3000, sample_size=8, seed=0,
        progress=False)
    assert model.mu0.numpy() == pytest.approx(y.mean(), abs=0.02)
    a, b, c = net.params()  # posterior N((mu0 + y) / 2, 1/2)
    assert (a, b, c) == pytest.approx((0.5, y.mean() / 2, np.sqrt(0.5)), abs=0.02)
    with pytest.raises(ValueError, match="train_model=True but model has no trainable"):
        fit(tf.Module(), net, "qp", data=y, train_model=True, progress=False)


def test_trace_fn_may_record_a_vector_per_step():
    # One traced value per coordinate (e.g. per observation): History holds [steps, size].
    w = tf.Variable([1.0, -2.0, 0.5])
    history = minimize(lambda seed: tf.reduce_sum(w**2), [w], num_steps=6, learning_rate=0.1,
                       trace_fn=lambda: {"w": tf.identity(w)}, progress=False)
    assert history.trace["w"].shape == (6, 3)
    np.testing.assert_array_equal(history.trace["w"][-1], w.numpy())
