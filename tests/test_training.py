import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import GaussianUnknownMean, LinearGaussian, fit, minimize

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
    ],
)
def test_fit_rejects_bad_arguments(kwargs, name):
    args = dict(loss="qp") | kwargs
    loss = args.pop("loss")
    with pytest.raises(ValueError, match=name):
        fit(GaussianUnknownMean(), LinearGaussian(), loss, progress=False, **args)


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
        return qp_loss(model, q_net, y, sample_size=4, estimator=estimator, seed=q_seed)

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
