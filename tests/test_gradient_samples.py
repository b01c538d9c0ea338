"""evaluation.gradient_samples, against gradients known in closed form."""

import numpy as np
import tensorflow as tf

from amortlib import evaluation


def test_rows_are_the_gradients_at_the_folded_seeds():
    # loss = w . eps_i + u^2 + sum of three Python-loop terms: d/dw = eps_i, d/du = 2u + 3.
    w, u, unused = tf.Variable([1.0, -2.0]), tf.Variable(0.75), tf.Variable(3.0)

    def loss_fn(seed):
        total = tf.reduce_sum(w * tf.random.stateless_normal([2], seed)) + u**2
        for _ in range(3):  # plain Python control flow
            total += u
        return total

    g_w, g_u, g_unused = evaluation.gradient_samples(loss_fn, [w, u, unused], num_samples=7,
                                                     seed=11)
    base = tf.constant([0, 11], tf.int64)
    expected = np.stack([tf.random.stateless_normal(
        [2], tf.random.experimental.stateless_fold_in(base, i)).numpy() for i in range(7)])
    np.testing.assert_array_equal(g_w, expected)
    np.testing.assert_allclose(g_u, np.full(7, 2 * 0.75 + 3), rtol=1e-6)
    np.testing.assert_array_equal(g_unused, np.zeros(7))  # not connected: zeros
    assert g_w.shape == (7, 2) and g_u.shape == (7,)


def test_traced_once_per_call():
    # The loss is traced once per call (the loop is a tf.while_loop, not unrolled, and nothing
    # retraces inside a call). TensorFlow's own "frequent retracing" warning counts traces of the
    # same code across calls, so it depends on what ran before; the trace count does not.
    v = tf.Variable(2.0)
    traces = []

    def loss_fn(step_seed):
        traces.append(1)  # runs only while tracing
        return v * v

    for seed in range(3):
        (g,) = evaluation.gradient_samples(loss_fn, [v], num_samples=5, seed=seed)
        np.testing.assert_allclose(g, np.full(5, 4.0))
    assert len(traces) == 3
