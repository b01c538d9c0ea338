r"""Exact divergences between an inference network's $q_\phi(\cdot \mid y)$ and the posterior.

`forward_kl` is the divergence the pq loss averages, $\mathrm{KL}(p \,\|\, q)$; `reverse_kl` is the
one in the qp loss, $\mathrm{KL}(q \,\|\, p)$. Both are exact: in closed form where TFP knows the
pair of distributions, otherwise by quadrature on a fine grid for a scalar latent, and for
latents with discrete parts by enumerating the discrete values (with quadrature over the one
continuous latent given each of them).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.losses import discrete_configurations

tfd = tfp.distributions

__all__ = [
    "kl_divergence",
    "forward_kl",
    "reverse_kl",
    "total_variation",
    "importance_resample",
    "gradient_samples",
]


def kl_divergence(p: tfd.Distribution, q: tfd.Distribution, *, num_points: int = 40001,
                  support=None) -> np.ndarray:
    r"""$\mathrm{KL}(p \,\|\, q) = \int p(x) \log \frac{p(x)}{q(x)}\, dx$, batched.

    Uses TFP's closed form when one is registered for the pair; otherwise integrates over a grid of
    ``num_points`` points (Simpson's rule) covering 12 standard deviations either side of both
    distributions' means, which requires scalar events.

    With ``support`` (the values of the discrete latents, ``{name: values}``), ``p`` and ``q`` are
    joint distributions over those discrete latents and one scalar continuous latent, and

    .. math::
        \mathrm{KL}(p \,\|\, q) = \sum_c \int p(c, x)
        \log \frac{p(c, x)}{q(c, x)}\, dx,

    a sum over every joint value $c$ (see `amortlib.losses.discrete_configurations`), each
    integral by quadrature on a grid around both conditionals $p(x \mid c)$ and $q(x \mid c)$.
    This is exact up to the quadrature's error, including the discrete part
    $\mathrm{KL}(p(c) \,\|\, q(c))$.

    Args:
        p, q: distributions with the same batch shape.
        num_points: grid size for quadrature, an odd integer >= 3.
        support: ``{name: values}`` of the discrete latents of joint ``p`` and ``q``, or None.

    Returns:
        The divergences as a NumPy array of the batch shape.

    Raises:
        ValueError: if quadrature is needed but the events are not scalars, or with ``support``
            if there is not exactly one continuous latent.

    Example:
        >>> p = tfd.MixtureSameFamily(tfd.Categorical(probs=[0.5, 0.5]),
        ...                           tfd.Normal([-1.0, 1.0], [1.0, 1.0]))
        >>> float(kl_divergence(p, p)) == 0.0
        True
    """
    num_points = _grid_size(num_points)
    if support:
        return _enumerated_kl(p, q, dict(support), num_points)
    try:
        return tfd.kl_divergence(p, q).numpy()
    except NotImplementedError:
        pass
    if p.event_shape.rank != 0 or q.event_shape.rank != 0:
        raise ValueError("quadrature KL needs scalar events; got event shapes "
                         f"{p.event_shape} and {q.event_shape}")
    grid, step = _grid(p, q, num_points)
    log_p, log_q = p.log_prob(grid), q.log_prob(grid)
    return _simpson(tf.exp(log_p) * (log_p - log_q), step)


def _grid_size(num_points) -> int:
    num_points = _checks.positive_int("num_points", num_points)
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be an odd integer >= 3, got {num_points}")
    return num_points


def _grid(p, q, num_points):
    """A grid ``[num_points, *batch]`` over 12 standard deviations around both means."""
    lo = tf.minimum(p.mean() - 12 * p.stddev(), q.mean() - 12 * q.stddev())
    hi = tf.maximum(p.mean() + 12 * p.stddev(), q.mean() + 12 * q.stddev())
    return tf.linspace(lo, hi, num_points), ((hi - lo) / (num_points - 1)).numpy()


def _simpson(integrand, step) -> np.ndarray:
    """Simpson's rule along the first axis of ``integrand`` with grid spacing ``step``."""
    integrand = np.asarray(integrand, dtype=np.float64)
    weights = np.ones(integrand.shape[0])
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return np.asarray(step, np.float64) / 3.0 * np.tensordot(weights, integrand, axes=1)


def _enumerated_kl(p, q, support, num_points) -> np.ndarray:
    """KL between joint distributions over discrete latents and one scalar continuous latent."""
    continuous = [name for name in p.model if name not in support]
    if len(continuous) != 1:
        raise ValueError("support must name every latent but one scalar continuous latent; "
                         f"left {continuous}")
    (name,) = continuous
    total = 0.0
    for config in discrete_configurations(support):
        pinned = {k: tf.constant(v) for k, v in config.items()}
        # The conditionals of the continuous latent given c place the quadrature grid.
        p_x = p.sample_distributions(seed=(0, 0), value=pinned)[0][name]
        q_x = q.sample_distributions(seed=(0, 0), value=pinned)[0][name]
        if p_x.event_shape.rank != 0:
            raise ValueError(f"the continuous latent {name!r} must be a scalar")
        grid, step = _grid(p_x, q_x, num_points)
        log_p = p.log_prob(dict(pinned, **{name: grid}))
        log_q = q.log_prob(dict(pinned, **{name: grid}))
        total = total + _simpson(tf.exp(log_p) * (log_p - log_q), step)
    return total


def forward_kl(model, q_net, y) -> np.ndarray:
    r"""$\mathrm{KL}(p(\cdot \mid y) \,\|\, q_\phi(\cdot \mid y))$ at each observation in ``y``.

    Over all the model's latents; discrete ones (``model.discrete_support``) are enumerated.
    """
    y = _checks.observations(y)
    support = getattr(model, "discrete_support", None)
    q = q_net(y)
    _checks.model_and_network(model, q_net, q)
    return kl_divergence(model.posterior(y), q, support=support)


def reverse_kl(model, q_net, y) -> np.ndarray:
    r"""$\mathrm{KL}(q_\phi(\cdot \mid y) \,\|\, p(\cdot \mid y))$ at each observation in ``y``.

    Over all the model's latents; discrete ones (``model.discrete_support``) are enumerated.
    """
    y = _checks.observations(y)
    support = getattr(model, "discrete_support", None)
    q = q_net(y)
    _checks.model_and_network(model, q_net, q)
    return kl_divergence(q, model.posterior(y), support=support)


def total_variation(p: tfd.Distribution, q: tfd.Distribution) -> np.ndarray:
    r"""$\mathrm{TV}(p, q) = \tfrac12 \sum_c |p(c) - q(c)|$ for two finite discrete distributions.

    Args:
        p, q: `tfd.Categorical` or `tfd.FiniteDiscrete` with the same outcomes and batch shape.

    Returns:
        The distances, a NumPy array of the batch shape; each lies in $[0, 1]$.

    Raises:
        ValueError: if the numbers of outcomes differ.

    Example:
        >>> p = tfd.Categorical(probs=[0.5, 0.5])
        >>> q = tfd.Categorical(probs=[0.8, 0.2])
        >>> round(float(total_variation(p, q)), 6)
        0.3
    """
    p_probs = np.asarray(p.probs_parameter(), np.float64)
    q_probs = np.asarray(q.probs_parameter(), np.float64)
    if p_probs.shape[-1] != q_probs.shape[-1]:
        raise ValueError("p and q must have the same number of outcomes, got "
                         f"{p_probs.shape[-1]} and {q_probs.shape[-1]}")
    return 0.5 * np.abs(p_probs - q_probs).sum(-1)


def importance_resample(model, y, num_samples: int, *, seed: int = 0):
    r"""Approximate posterior draws for one observation by importance resampling from the prior.

    Draws ``num_samples`` latents from the prior $p(\text{latents})$, weights each by the
    likelihood $p(y \mid \text{latents})$, and resamples ``num_samples`` of them in proportion
    to the weights. The draws follow $p(\text{latents} \mid y)$ only as ``num_samples`` grows;
    the approximation Le (2017) used where the exact posterior was not derived.

    Args:
        model: a model (see `amortlib.models`).
        y: one observation, a scalar.
        num_samples: prior draws, and resampled draws, a positive integer.
        seed: an integer seed.

    Returns:
        ``(latents, ess)``: the resampled latents (a tensor or a dict, as ``model.sample``) and
        the effective sample size $(\sum_i w_i)^2 / \sum_i w_i^2$ of the weights.

    Raises:
        ValueError: if ``y`` is not a single finite number.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> x, ess = importance_resample(GaussianUnknownMean(), 1.0, 1000, seed=0)
        >>> x.shape
        TensorShape([1000])
    """
    y = _checks.observations(y)
    if y.shape.rank != 0:
        raise ValueError(f"y must be a single observation, got shape {tuple(y.shape)}")
    num_samples = _checks.positive_int("num_samples", num_samples)
    prior_seed, resample_seed = tfp.random.split_seed(_checks.seed(seed))
    latents, _ = model.sample(num_samples, seed=prior_seed)
    values = latents if isinstance(latents, dict) else {model.latent_names[0]: latents}
    log_w = model.joint.log_prob_parts(dict(values, y=y))["y"]  # log p(y | latents)
    index = tf.random.stateless_categorical(
        log_w[tf.newaxis], num_samples, seed=resample_seed)[0]
    ess = float(tf.exp(2 * tf.reduce_logsumexp(log_w) - tf.reduce_logsumexp(2 * log_w)))
    resampled = tf.nest.map_structure(lambda v: tf.gather(v, index), latents)
    return resampled, ess


def gradient_samples(loss_fn, variables, *, num_samples: int, seed: int = 0) -> list[np.ndarray]:
    r"""Evaluate a stochastic gradient many times at the same parameters, compiled.

    Call $i$ differentiates ``loss_fn(seed_i)`` with a stateless seed folded from ``seed`` and
    $i$; the variables do not change. The spread of the rows is the noise of the gradient
    estimator, for example to compare enumeration with the score-function estimator.

    Args:
        loss_fn: ``loss_fn(step_seed) -> scalar tensor``, traceable by `tf.function` as plain
            Python (without autograph: Python control flow must not depend on tensors).
        variables: the `tf.Variable`\ s to differentiate with respect to (non-empty).
        num_samples: number of gradient evaluations, a positive integer.
        seed: an integer seed.

    Returns:
        One array per variable, of shape ``[num_samples, *variable.shape]``.

    Raises:
        ValueError: for a bad ``num_samples`` or seed, or no variables.

    Example:
        >>> v = tf.Variable(1.0)
        >>> def loss_fn(s):
        ...     return v * tf.random.stateless_normal([], s)
        >>> [g.shape for g in gradient_samples(loss_fn, [v], num_samples=5)]
        [(5,)]
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    base = _checks.integer_seed(seed)
    variables = _checks.trainable_list(variables)

    # The loop is written as a tf.while_loop and traced without autograph: autograph would
    # otherwise rewrite loss_fn and everything it calls (TFP included) before tracing, which
    # took most of the tracing time.
    def body(i, rows):
        with tf.GradientTape() as tape:
            value = loss_fn(tf.random.experimental.stateless_fold_in(base, i))
        grads = tape.gradient(value, variables)
        return i + 1, [r.write(i, tf.zeros_like(v) if g is None else tf.convert_to_tensor(g))
                       for r, g, v in zip(rows, grads, variables)]

    @tf.function(autograph=False)
    def run():
        rows = [tf.TensorArray(v.dtype, size=num_samples) for v in variables]
        _, rows = tf.while_loop(lambda i, _: i < num_samples, body, (tf.constant(0), rows))
        return [r.stack() for r in rows]

    return [g.numpy() for g in run()]
