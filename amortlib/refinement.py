r"""Refinement: per-observation ELBO steps started from an inference network's output.

An amortized $q_\phi(x \mid y)$ is one function for every observation; the best Gaussian for one
observation $y$ may be better. *Refinement* (semi-amortized variational inference, Kim et al.
2018; iterative amortized inference, Marino et al. 2018) starts from the network's output at
each $y$ and takes gradient steps on that observation's own ELBO, with one free parameter
vector per observation, as factorized VI (F-VI) would. The ELBO it can gain at $y$ is at most
the *per-observation amortization gap*
$\mathrm{ELBO}(q^\star_y) - \mathrm{ELBO}(q_\phi(\cdot \mid y))$, where $q^\star_y$ is the best
Gaussian for that $y$ alone.

For a model with a scalar latent $x$ and $q = \mathcal N(m, s^2)$,

.. math::
    \mathrm{ELBO}(m, s;\ y) = \mathbb E_{\varepsilon \sim \mathcal N(0, 1)}
    \big[\log p(m + s \varepsilon,\ y)\big] + \tfrac12 \log(2 \pi e\, s^2),

a one-dimensional Gaussian expectation, which Gauss-Hermite quadrature with $n$ nodes computes
exactly when $\log p(x, y)$ is a polynomial of degree below $2n$ in $x$ and very accurately when
it is smooth on the scale of $s$ (`gaussian_elbo`). It is not accurate for a wide $q$ over a
near-kink of $\log p$: on Le's mixture prior (modes $\pm 5$, unit widths), whose log density
bends within about $0.2$ of $x = 0$, 64 nodes overstate the ELBO at $y = 0$ by about $2\times
10^{-3}$ nats for $q = \mathcal N(0, 1)$, $0.12$ for $\mathcal N(0, 5.05^2)$ and $0.5$ for
$\mathcal N(0, 20^2)$, while for $q$ near one mode the error is below $10^{-6}$.
`optimal_gaussian` maximises it for each $y$ by Newton's method from several starting points;
`refine` runs the refinement steps through the book's one training loop,
`amortlib.training.minimize`, for a whole batch of observations at once (one mean and one log
standard deviation per observation).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.losses import elbo_draws
from amortlib.training import History, minimize

tfd = tfp.distributions

__all__ = ["Refinement", "gaussian_elbo", "optimal_gaussian", "refine"]

_ESTIMATORS = ("quadrature", "reparameterize")


def _nodes(num_nodes) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights, the weights summing to one."""
    num_nodes = _checks.positive_int("num_nodes", num_nodes)
    if num_nodes < 2:
        raise ValueError(f"num_nodes must be at least 2, got {num_nodes}")
    nodes, weights = np.polynomial.hermite_e.hermegauss(num_nodes)
    return nodes, weights / np.sqrt(2 * np.pi)


def gaussian_elbo(model, y, loc, scale, *, num_nodes: int = 64) -> tf.Tensor:
    r"""$\mathrm{ELBO}(\mathcal N(m, s^2);\ y)$ for a scalar latent, by Gauss-Hermite quadrature.

    Differentiable in ``loc`` and ``scale`` (it is the loss `refine` minimises). Accurate to
    float32 precision when $\log p(x, y)$ is smooth over the nodes $m + s\,\varepsilon_j$; not
    when a wide $q$ straddles a near-kink of $\log p$ (see the module docstring: up to half a
    nat on Le's mixture for $s = 20$). Check such cases against an adaptive quadrature.

    Args:
        model: a model with one scalar latent (see `amortlib.models`); only ``model.log_prob``
            is used.
        y: observations, a scalar or a 1-D batch.
        loc, scale: the mean $m$ and standard deviation $s > 0$ of $q$, broadcastable to ``y``.
        num_nodes: number of quadrature nodes, at least 2.

    Returns:
        The ELBO at each observation, a float32 tensor of the shape of ``y``.

    Raises:
        ValueError: for bad ``y`` or ``num_nodes``, or (when run eagerly) a ``scale`` that is
            not positive and finite or a ``loc`` that is not finite.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean()
        >>> p = model.posterior([1.0])  # the ELBO of the posterior is log p(y)
        >>> elbo = gaussian_elbo(model, [1.0], p.mean(), p.stddev())
        >>> bool(abs(elbo - model.evidence().log_prob(1.0)) < 1e-5)
        True
    """
    y = _checks.observations(y)
    nodes, weights = _nodes(num_nodes)
    loc = tf.convert_to_tensor(loc, _checks.DTYPE)
    scale = tf.convert_to_tensor(scale, _checks.DTYPE)
    if tf.executing_eagerly():
        _check_gaussian(loc, scale, "loc", "scale")
    shape = tf.broadcast_dynamic_shape(tf.shape(y), tf.broadcast_dynamic_shape(
        tf.shape(loc), tf.shape(scale)))
    y, loc, scale = (tf.broadcast_to(t, shape) for t in (y, loc, scale))
    x = loc + scale * tf.reshape(tf.constant(nodes, _checks.DTYPE),
                                 [-1] + [1] * len(y.shape))
    log_joint = model.log_prob(x, y)  # [num_nodes, *shape]
    expected = tf.tensordot(tf.constant(weights, _checks.DTYPE), log_joint, axes=1)
    return expected + 0.5 * np.log(2 * np.pi * np.e) + tf.math.log(scale)


def _check_gaussian(loc, scale, loc_name: str, scale_name: str) -> None:
    """Refuse a non-finite mean or a standard deviation that is not positive and finite."""
    if not np.all(np.isfinite(np.asarray(loc))):
        raise ValueError(f"{loc_name} must be finite")
    scale = np.asarray(scale)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"{scale_name} must be positive and finite, got {scale}")


def _start_points(model, y) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """The posterior's mean and sd, and each component's if the model has a mixture posterior."""
    posterior = model.posterior(y)
    starts = [(posterior.mean(), posterior.stddev())]
    if hasattr(model, "component_posterior"):
        components = model.component_posterior(y)[1]
        for k in range(components.loc.shape[-1]):
            starts.append((components.loc[..., k], components.scale[..., k]))
    return starts


#: Compiled Newton ascents, one per model and settings, so that repeated calls do not retrace.
_ASCENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _ascent(model, num_nodes: int, num_iterations: int):
    """The compiled ascent of `optimal_gaussian` for ``model``, built once per setting."""
    cache = _ASCENTS.setdefault(model, {})
    key = (num_nodes, num_iterations)
    if key not in cache:
        cache[key] = _make_ascent(model, num_nodes, num_iterations)
    return cache[key]


def _make_ascent(model, num_nodes: int, num_iterations: int):
    """Damped Newton ascent in (m, log s) of independent problems, one per row of ``theta``."""
    steps = 2.0 ** -np.arange(0, 10, dtype=np.float32)
    num_candidates = len(steps) + 1

    def elbo_of(theta, y):
        return gaussian_elbo(model, y, theta[..., 0], tf.exp(theta[..., 1]), num_nodes=num_nodes)

    def newton_step(theta, y):
        # The problems do not interact, so derivatives of sums give each one's own.
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(theta)
            with tf.GradientTape() as inner:
                inner.watch(theta)
                total = tf.reduce_sum(elbo_of(theta, y))
            gradient = inner.gradient(total, theta)
            g_loc, g_log_scale = tf.reduce_sum(gradient[:, 0]), tf.reduce_sum(gradient[:, 1])
        row_loc, row_log_scale = outer.gradient(g_loc, theta), outer.gradient(g_log_scale, theta)
        del outer
        a, b, c = row_loc[:, 0], row_loc[:, 1], row_log_scale[:, 1]
        det = a * c - b * b
        concave = (a < 0) & (det > 0)
        safe_det = tf.where(concave, det, tf.ones_like(det))
        newton = -tf.stack([c * gradient[:, 0] - b * gradient[:, 1],
                            a * gradient[:, 1] - b * gradient[:, 0]], -1) / safe_det[:, None]
        direction = tf.where(concave[:, None], newton, gradient)
        # Candidate steps t * direction for t = 1, 1/2, 1/4, ... and t = 0; keep the best.
        candidates = tf.concat([theta[None] + steps[:, None, None] * direction[None],
                                theta[None]], 0)  # [num_candidates, batch, 2]
        values = tf.reshape(elbo_of(tf.reshape(candidates, [-1, 2]),
                                    tf.tile(y, [num_candidates])), [num_candidates, -1])
        values = tf.where(tf.math.is_finite(values), values, -np.inf)
        best = tf.argmax(values, axis=0)
        return tf.gather(tf.transpose(candidates, [1, 0, 2]), best, batch_dims=1)

    # A plain `tf.while_loop`, without autograph: autograph would convert every function that
    # the loop calls (seconds of work on the first call) to build the same loop.
    @tf.function(input_signature=[tf.TensorSpec([None, 2], _checks.DTYPE),
                                  tf.TensorSpec([None], _checks.DTYPE)], autograph=False)
    def ascend(theta, y):
        _, theta = tf.while_loop(lambda i, _: i < num_iterations,
                                 lambda i, theta: (i + 1, newton_step(theta, y)),
                                 (tf.constant(0), theta))
        return theta, elbo_of(theta, y)

    return ascend



def optimal_gaussian(model, y, *, starts: Sequence | None = None, num_nodes: int = 64,
                     num_iterations: int = 25):
    r"""The best Gaussian for each observation: $\arg\max_{m, s} \mathrm{ELBO}(m, s;\ y)$.

    Runs a damped Newton ascent in $(m, \log s)$ from every start, for all observations at once:
    a Newton step where the Hessian is negative definite, a gradient step elsewhere, each
    shortened until the quadrature ELBO (`gaussian_elbo`) does not fall; then keeps, for each
    $y$, the start that reached the highest ELBO. With several local optima (a multimodal
    posterior), the result is the global optimum only if some start lies in its basin; the
    default starts are the posterior's mean and standard deviation and, for mixture posteriors
    (models with ``component_posterior``), every component. The first default start can be a
    wide $q$ where the quadrature ELBO is inexact (see `gaussian_elbo`); the ascent moves away
    from it, and where the winner is such a wide $q$, check its ELBO by adaptive quadrature.

    Args:
        model: a model with one scalar latent and an exact ``posterior`` (see `amortlib.models`).
        y: observations, a scalar or a 1-D batch.
        starts: optional sequence of ``(loc, scale)`` pairs, each broadcastable to ``y``.
        num_nodes: quadrature nodes, at least 2.
        num_iterations: Newton iterations per start, a positive integer.

    Returns:
        ``(loc, scale, elbo)``: NumPy arrays of the shape of ``y``.

    Raises:
        ValueError: for bad ``y``, ``num_nodes``, ``num_iterations``, an empty ``starts`` or a
            start whose scale is not positive and finite.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> loc, scale, elbo = optimal_gaussian(GaussianUnknownMean(), [2.0])
        >>> loc.round(4), scale.round(4)
        (array([1.], dtype=float32), array([0.7071], dtype=float32))
    """
    y = _checks.observations(y)
    num_iterations = _checks.positive_int("num_iterations", num_iterations)
    _nodes(num_nodes)
    if starts is None:
        starts = _start_points(model, y)
    starts = list(starts)
    if not starts:
        raise ValueError("starts must not be empty")
    for i, (loc, scale) in enumerate(starts):
        _check_gaussian(loc, scale, f"starts[{i}] loc", f"starts[{i}] scale")

    # Every start of every observation is one problem: stack them into one batch.
    num_starts = len(starts)
    ascend = _ascent(model, num_nodes, num_iterations)

    def flat(value):
        return tf.reshape(tf.broadcast_to(tf.cast(value, _checks.DTYPE), tf.shape(y)), [-1])

    loc = tf.concat([flat(loc) for loc, _ in starts], 0)
    scale = tf.concat([flat(scale) for _, scale in starts], 0)
    theta, value = ascend(tf.stack([loc, tf.math.log(scale)], -1),
                          tf.tile(tf.reshape(y, [-1]), [num_starts]))
    value = tf.reshape(value, [num_starts, -1])
    best = tf.argmax(value, axis=0)
    by_problem = tf.transpose(tf.reshape(theta, [num_starts, -1, 2]), [1, 0, 2])
    best_theta = tf.gather(by_problem, best, batch_dims=1)
    best_value = tf.reduce_max(value, axis=0)
    shape = y.shape
    return (np.reshape(best_theta[:, 0].numpy(), shape),
            np.reshape(np.exp(best_theta[:, 1].numpy()), shape),
            np.reshape(best_value.numpy(), shape))


@dataclasses.dataclass
class Refinement:
    """What `refine` returns.

    Attributes:
        loc: the refined mean at each observation.
        scale: the refined standard deviation at each observation.
        elbo_before: the quadrature ELBO of the network's own $q(\\cdot \\mid y)$.
        elbo_after: the quadrature ELBO of the refined Gaussian.
        history: the `History` of the refinement run (its loss is the negative ELBO summed over
            the observations; its trace holds each observation's quadrature ELBO after every
            step, under ``"elbo"``).
    """

    loc: np.ndarray
    scale: np.ndarray
    elbo_before: np.ndarray
    elbo_after: np.ndarray
    history: History

    @property
    def gain(self) -> np.ndarray:
        """The ELBO gained at each observation, ``elbo_after - elbo_before``."""
        return self.elbo_after - self.elbo_before

    def q(self) -> tfd.Normal:
        """The refined Gaussians, batched over the observations."""
        return tfd.Normal(self.loc, self.scale)


def refine(model, q_net, y, *, num_steps: int, learning_rate: float, anneal: bool = True,
           estimator: str = "quadrature", sample_size: int = 1, num_nodes: int = 64,
           seed: int = 0) -> Refinement:
    r"""Refine an inference network's Gaussian output at each observation by ELBO steps.

    One free pair $(m_i, \log s_i)$ per observation $y_i$, initialised at the network's output
    $q_\phi(x \mid y_i)$, trained by Adam on $-\sum_i \mathrm{ELBO}(m_i, s_i;\ y_i)$ with
    `amortlib.training.minimize`, the book's one compiled loop. The terms do not interact, so
    this is one refinement per observation, run for all of them in one compiled run. The
    network itself is not changed.

    Args:
        model: a model with one scalar latent (see `amortlib.models`).
        q_net: an inference network whose call returns a `tfd.Normal` batched over ``y``.
        y: the observations to refine at, a scalar or a 1-D batch.
        num_steps: Adam steps, a positive integer.
        learning_rate: Adam's (initial) learning rate, > 0.
        anneal: cosine decay of the learning rate to 1% of it (as in `minimize`).
        estimator: the ELBO the steps follow: ``"quadrature"`` (deterministic, `gaussian_elbo`)
            or ``"reparameterize"`` (a Monte Carlo estimate, `amortlib.losses.elbo_draws` with
            ``sample_size`` reparameterised draws per observation and step).
        sample_size: draws per observation and step for ``"reparameterize"``.
        num_nodes: quadrature nodes for the ELBO (of the steps and of the reported values).
        seed: an integer seed (used by ``"reparameterize"``).

    Returns:
        A `Refinement`; its ELBOs are by quadrature whatever the estimator.

    Raises:
        ValueError: for an unknown estimator, bad sizes, or a network whose output is not a
            `tfd.Normal`.

    Example:
        >>> from amortlib import GaussianUnknownMean, LinearGaussian
        >>> model, q_net = GaussianUnknownMean(), LinearGaussian(a=0.0, b=0.0, c=1.0)
        >>> result = refine(model, q_net, [2.0], num_steps=300, learning_rate=0.1)
        >>> result.loc.round(2), result.scale.round(2)
        (array([1.], dtype=float32), array([0.71], dtype=float32))
    """
    _checks.one_of("estimator", estimator, _ESTIMATORS)
    sample_size = _checks.positive_int("sample_size", sample_size)
    _nodes(num_nodes)
    y = _checks.observations(y)
    q = q_net(y)
    if not isinstance(q, tfd.Normal):
        raise ValueError(f"q_net must return a tfd.Normal, got {type(q).__name__}")
    loc0 = tf.broadcast_to(q.mean(), tf.shape(y))
    scale0 = tf.broadcast_to(q.stddev(), tf.shape(y))
    loc = tf.Variable(loc0, name="refined_loc")
    log_scale = tf.Variable(tf.math.log(scale0), name="refined_log_scale")

    def elbo():
        return gaussian_elbo(model, y, loc, tf.exp(log_scale), num_nodes=num_nodes)

    def refined(observations):  # the refined Gaussians, as an inference network
        return tfd.Normal(loc, tf.exp(log_scale))

    def loss_fn(step_seed):
        if estimator == "quadrature":
            return -tf.reduce_sum(elbo())
        draws = elbo_draws(model, refined, y, seed=step_seed, sample_size=sample_size)
        return -tf.reduce_sum(tf.reduce_mean(draws, axis=0))

    before = elbo().numpy()
    history = minimize(loss_fn, [loc, log_scale], num_steps=num_steps,
                       learning_rate=learning_rate, anneal=anneal,
                       trace_fn=lambda: {"elbo": elbo()}, seed=seed, progress=False,
                       name="refinement loss")
    return Refinement(loc=loc.numpy(), scale=np.exp(log_scale.numpy()), elbo_before=before,
                      elbo_after=elbo().numpy(), history=history)
