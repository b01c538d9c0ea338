"""The reference loops that `bench/run.py` times against amortlib's compiled loop.

The same problems, losses, one-draw estimators and Adam (Keras's constants, beta1 0.9, beta2
0.999, epsilon 1e-7; cosine decay to 1% of the rate with ``anneal``) as amortlib, written twice:

- ``numpy``: a plain NumPy loop with hand-derived gradients (the floor: no autodiff, no graph);
- ``jax``: JAX + optax, the whole loop compiled as one `jax.lax.scan` (run only in the optional
  benchmark environment `.venv-bench`, see `requirements-bench.txt`; never a dependency of the
  book or the library).

Workloads (all float32):

- ``gum-qp`` / ``gum-pq``: Gaussian unknown mean (mu0 0, sigma0 1, sigma 1) with
  q(x | y) = N(a y + b, c^2), log c trained; qp is the reparameterised reverse-KL loss, pq the
  forward one; a fresh batch of ``size`` draws from the model every step.
- ``lin-fvi`` / ``lin-avi``: the linear hierarchical model (tau 1.155, sigma 2.43, theta 0) on
  ``size`` data points; loss = minus a one-draw ELBO over all points (flat prior on theta);
  F-VI has a mean and log scale per point, A-VI a degree-1 polynomial in x_n for both.

Each run returns the compilation time (first call minus a steady call; 0 for NumPy) and the
seconds per step in steady state. Run as a script it prints one JSON line (used to call the JAX
loop from the benchmark's own environment): ``python bench/loops.py jax gum-qp 1000 2000``.
"""

from __future__ import annotations

import json
import math
import sys
import time

B1, B2, EPS = 0.9, 0.999, 1e-7
MU0, S0, S = 0.0, 1.0, 1.0
TAU, SIGMA = 1.155, 2.43
WORKLOADS = ["gum-qp", "gum-pq", "lin-fvi", "lin-avi"]


def _rate(lr, step, num_steps, anneal):
    if not anneal:
        return lr
    frac = min(step, num_steps) / num_steps
    return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


# ------------------------------------------------------------------------------------ NumPy

def numpy_run(workload, size, num_steps, *, lr=0.05, anneal=True, seed=0):
    """The NumPy floor: seconds per step (compilation 0)."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    f32 = np.float32
    if workload.startswith("gum"):
        params = [np.zeros((), f32), np.zeros((), f32), np.zeros((), f32)]  # a, b, log c
    else:
        x = (TAU * rng.standard_normal(size) + SIGMA * rng.standard_normal(size)).astype(f32)
        if workload == "lin-fvi":
            params = [np.zeros(size, f32), np.zeros(size, f32)]
        else:
            params = [np.zeros(2, f32), np.zeros(2, f32)]
        params += [np.zeros((), f32), np.zeros((), f32)]  # theta loc, log scale
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]

    def grads_gum_qp(a, b, logc):
        xs = (MU0 + S0 * rng.standard_normal(size, f32)).astype(f32)
        y = xs + S * rng.standard_normal(size, f32)
        e = rng.standard_normal(size, f32)
        c = np.exp(logc)
        xq = a * y + b + c * e
        g = (xq - MU0) / S0**2 - (y - xq) / S**2  # d loss / d x
        return [np.mean(g * y), np.mean(g), np.mean(g * c * e) - 1.0]

    def grads_gum_pq(a, b, logc):
        xs = (MU0 + S0 * rng.standard_normal(size, f32)).astype(f32)
        y = xs + S * rng.standard_normal(size, f32)
        c = np.exp(logc)
        r = (xs - a * y - b) / c
        return [np.mean(-r * y / c), np.mean(-r / c), np.mean(1.0 - r * r)]

    def grads_lin(*p):
        if workload == "lin-fvi":
            loc, log_scale = p[0], p[1]
        else:
            loc, log_scale = p[0][0] + p[0][1] * x, p[1][0] + p[1][1] * x
        t_loc, t_log_scale = p[2], p[3]
        e_t = f32(rng.standard_normal())
        e = rng.standard_normal(size, f32)
        t_scale, scale = np.exp(t_log_scale), np.exp(log_scale)
        theta = t_loc + t_scale * e_t
        z = loc + scale * e
        r = (x - theta - TAU * z) / SIGMA**2
        dz = z - TAU * r  # d loss / d z_n (loss = -log joint - entropy)
        dtheta = -np.sum(r)
        d_loc, d_log_scale = dz, dz * scale * e - 1.0
        if workload == "lin-fvi":
            local = [d_loc, d_log_scale]
        else:
            local = [np.array([d_loc.sum(), (d_loc * x).sum()], f32),
                     np.array([d_log_scale.sum(), (d_log_scale * x).sum()], f32)]
        return local + [dtheta, dtheta * t_scale * e_t - 1.0]

    grads = {"gum-qp": grads_gum_qp, "gum-pq": grads_gum_pq}.get(workload, grads_lin)
    start = time.perf_counter()
    for t in range(num_steps):
        g = grads(*params)
        rate = _rate(lr, t, num_steps, anneal)
        corr = rate * math.sqrt(1 - B2 ** (t + 1)) / (1 - B1 ** (t + 1))
        for i, gi in enumerate(g):
            m[i] = B1 * m[i] + (1 - B1) * gi
            v[i] = B2 * v[i] + (1 - B2) * gi * gi
            params[i] = (params[i] - corr * m[i] / (np.sqrt(v[i]) + EPS)).astype(f32)
    seconds = time.perf_counter() - start
    return {"compile_s": 0.0, "s_per_step": seconds / num_steps,
            "final": [float(np.mean(p)) for p in params]}


# ------------------------------------------------------------------------------------ JAX

def jax_run(workload, size, num_steps, *, lr=0.05, anneal=True, seed=0):
    """JAX + optax, the whole loop one compiled `lax.scan`: compilation and seconds per step."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import optax  # noqa: PLC0415

    key = jax.random.PRNGKey(seed)
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def normal_lp(v, loc, scale):
        return -0.5 * ((v - loc) / scale) ** 2 - jnp.log(scale) - half_log_2pi

    if workload.startswith("gum"):
        params = {"a": jnp.float32(0), "b": jnp.float32(0), "log_c": jnp.float32(0)}

        def loss(p, k):
            k1, k2, k3 = jax.random.split(k, 3)
            xs = MU0 + S0 * jax.random.normal(k1, (size,))
            y = xs + S * jax.random.normal(k2, (size,))
            c = jnp.exp(p["log_c"])
            if workload == "gum-pq":
                return -jnp.mean(normal_lp(xs, p["a"] * y + p["b"], c))
            xq = p["a"] * y + p["b"] + c * jax.random.normal(k3, (size,))
            return jnp.mean(normal_lp(xq, p["a"] * y + p["b"], c) - normal_lp(xq, MU0, S0)
                            - normal_lp(y, xq, S))
    else:
        kx1, kx2, key = jax.random.split(key, 3)
        x = TAU * jax.random.normal(kx1, (size,)) + SIGMA * jax.random.normal(kx2, (size,))
        shape = (size,) if workload == "lin-fvi" else (2,)
        params = {"loc": jnp.zeros(shape), "log_scale": jnp.zeros(shape),
                  "t_loc": jnp.float32(0), "t_log_scale": jnp.float32(0)}

        def loss(p, k):
            k1, k2 = jax.random.split(k)
            if workload == "lin-fvi":
                loc, log_scale = p["loc"], p["log_scale"]
            else:
                loc = p["loc"][0] + p["loc"][1] * x
                log_scale = p["log_scale"][0] + p["log_scale"][1] * x
            theta = p["t_loc"] + jnp.exp(p["t_log_scale"]) * jax.random.normal(k1, ())
            z = loc + jnp.exp(log_scale) * jax.random.normal(k2, (size,))
            log_joint = jnp.sum(normal_lp(z, 0.0, 1.0) + normal_lp(x, theta + TAU * z, SIGMA))
            entropy = jnp.sum(log_scale) + p["t_log_scale"]
            return -(log_joint + entropy)

    schedule = (optax.cosine_decay_schedule(lr, num_steps, alpha=0.01) if anneal
                else optax.constant_schedule(lr))
    optimizer = optax.adam(schedule, b1=B1, b2=B2, eps=EPS)

    @jax.jit
    def run(params, state, key):
        def step(carry, k):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p, k)
            updates, s = optimizer.update(g, s, p)
            return (optax.apply_updates(p, updates), s), value
        (params, state), losses = jax.lax.scan(step, (params, state),
                                               jax.random.split(key, num_steps))
        return params, state, losses

    state = optimizer.init(params)
    start = time.perf_counter()
    jax.block_until_ready(run(params, state, key))
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(run(params, state, jax.random.fold_in(key, 1)))
    steady = time.perf_counter() - start
    return {"compile_s": max(first - steady, 0.0), "s_per_step": steady / num_steps,
            "final": [float(jnp.mean(v)) for v in out[0].values()]}


if __name__ == "__main__":
    kind, workload, size, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    lr = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    runner = {"numpy": numpy_run, "jax": jax_run}[kind]
    print(json.dumps(runner(workload, size, steps, lr=lr, seed=seed)))
