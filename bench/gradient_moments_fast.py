"""A proposal for `amortlib.gap.gradient_moments`, measured against it (not part of the library).

`gap.gradient_moments` takes the Jacobian of the S single-draw losses with `tape.jacobian` (pfor).
Each row's backward pass starts from a one-hot cotangent over all S draws, so pfor materialises
S x S x N values: O(S^2 N). At S = 200 and N = 10,000 (when_to_amortize's cell 11a) that is most
of the chapter's time. The same per-draw gradients in O(S N), by the chain rule:

- one backward pass of sum_s log p(theta_s, z_s, x) gives every draw's d log p_s / d(theta_s, z_s)
  (draw s's log joint depends on draw s alone);
- theta_s = m + sd eps_s and z_s = loc + scale eps_s give the cotangents of (m, log sd) and
  (loc, scale) per draw; a vectorised (pfor) VJP through the local family, which has no S axis,
  maps (loc, scale) to its variables; the entropy's gradient is the same for every draw.

The noise is drawn exactly as `VariationalPosterior.sample` draws it (same seeds, same calls).

Run: ``python bench/gradient_moments_fast.py`` (prints times and the largest differences).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.python.ops.parallel_for import control_flow_ops as pfor_ops

from amortlib import _checks, families, gap
from amortlib.hierarchical import LinearModel


def per_draw_moments(model, posterior, x, *, sample_size, seed):
    """Mean and variance (ddof=1) of single-draw gradients of -ELBO, as gap.gradient_moments."""
    x = _checks.data(x)
    variables = list(posterior.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
        loc, scale = posterior.local(x)
        entropy = posterior.entropy(x)
    theta_seed, z_seed = tfp.random.split_seed(_checks.seed(seed))
    eps_theta = tf.random.stateless_normal([sample_size, model.global_dim], theta_seed)
    eps_z = tf.random.stateless_normal([sample_size, *loc.shape], z_seed)
    sd = tf.exp(posterior.theta_log_scale)
    theta, z = posterior.theta_loc + sd * eps_theta, loc + scale * eps_z
    with tf.GradientTape() as inner:
        inner.watch([theta, z])
        total = tf.reduce_sum(model.log_joint(theta, z, x))
    g_theta, g_z = inner.gradient(total, [theta, z])
    g_entropy = tape.gradient(entropy, variables, unconnected_gradients="zero")

    def local_vjp(i):
        return tape.gradient([loc, scale], variables, unconnected_gradients="zero",
                             output_gradients=[tf.gather(g_z, i), tf.gather(g_z * eps_z, i)])

    local = pfor_ops.pfor(local_vjp, sample_size)
    out = []
    for variable, g_local, g_h in zip(variables, local, g_entropy):
        g = g_local + g_h
        if variable is posterior.theta_loc:
            g = g + g_theta
        elif variable is posterior.theta_log_scale:
            g = g + g_theta * sd * eps_theta
        g = -g.numpy().astype(np.float64)
        out.append(gap.GradientMoments(variable.name, g.mean(axis=0), g.var(axis=0, ddof=1)))
    return out


def main():
    model = LinearModel(tau=1.155, sigma=2.43)
    _, _, x = model.sample(10_000, seed=10_000)
    makers = {"F-VI": lambda: families.Factorized(10_000),
              "A-VI": lambda: families.Amortized(families.Polynomial(1))}
    for name, make in makers.items():
        results = {}
        for how, function in [("proposed", per_draw_moments), ("gap", gap.gradient_moments)]:
            posterior = families.VariationalPosterior(model, make())
            start = time.perf_counter()
            results[how] = function(model, posterior, x, sample_size=200, seed=0)
            print(f"{name} {how}: {time.perf_counter() - start:.2f} s", flush=True)
        for a, b in zip(results["gap"], results["proposed"]):
            worst = max(float(np.max(np.abs(u - v) / np.maximum(np.abs(u), 1e-30)))
                        for u, v in [(a.mean, b.mean), (a.variance, b.variance)])
            print(f"  {a.name}: largest relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
