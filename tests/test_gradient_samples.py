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


def test_traced_once_per_call_without_retracing_warning(caplog):
    v = tf.Variable(2.0)
    for seed in range(3):
        (g,) = evaluation.gradient_samples(lambda s: v * v, [v], num_samples=2, seed=seed)
        np.testing.assert_allclose(g, [4.0, 4.0])
    assert "retracing" not in caplog.text
