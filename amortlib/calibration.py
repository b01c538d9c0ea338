r"""Calibration of an inference network for a scalar latent: coverage and SBC, exact and simulated.

For a model with a scalar latent $x$, an exact posterior $p(x \mid y)$ and an evidence $p(y)$,
and an inference network $q(x \mid y)$, the *probability integral transform* (PIT) of a draw
$(x, y) \sim p(x, y)$ is $U = F_q(x \mid y)$, the CDF of $q$ at the true latent. Its CDF is a
one-dimensional integral over observations,

.. math::
    G(u) = \Pr(U \le u) = \int p(y)\, F_p\big(Q_q(u \mid y) \bigm| y\big)\, dy,

where $F_p$ is the posterior CDF and $Q_q$ the quantile function of $q$. Everything else
follows from $G$:

- the **expected coverage** of $q$'s central credible interval at level $1 - \alpha$ is
  $G(1 - \alpha/2) - G(\alpha/2)$: the posterior mass inside $q$'s interval, averaged over
  $p(y)$ (`expected_coverage`; `interval_mass` gives it for each $y$);
- the **SBC rank** of simulation-based calibration (Talts et al. 2018), the number of $L$ draws
  from $q(\cdot \mid y)$ below $x$, is Binomial$(L, U)$ given $U$, so
  $\Pr(r = k) = \mathbb E\big[\binom{L}{k} U^k (1 - U)^{L - k}\big]$ (`rank_distribution`).

$q$ is calibrated in this sense exactly when $G(u) = u$: the ranks are then uniform on
$\{0, \dots, L\}$ and every central interval has its nominal coverage. With ``center``, the
functions use instead the test quantity $f(x, y) = -|x - c(y)|$ (for Gaussian noise around
$x$ and $c(y) = y$, an increasing function of the log likelihood $\log p(y \mid x)$), whose PIT is
$\Pr_{x' \sim q}\big(|x' - c(y)| > |x - c(y)|\big)$ (Modrák et al. 2023).

`sbc_ranks` and `empirical_coverage` are the simulated versions that a practitioner runs when
the posterior is unknown; their Monte Carlo error is binomial.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special

from amortlib import _checks

tfd = tfp.distributions

__all__ = [
    "interval_mass",
    "pit_cdf",
    "expected_coverage",
    "rank_distribution",
    "sbc_ranks",
    "empirical_coverage",
]

_BISECTIONS = 40


def _levels(name: str, value, *, closed: bool = False) -> np.ndarray:
    """A 1-D float64 array of numbers in (0, 1) (in [0, 1] if ``closed``), or raise."""
    values = _checks.real_vector(name, np.atleast_1d(value))
    low_ok = values >= 0 if closed else values > 0
    high_ok = values <= 1 if closed else values < 1
    if not np.all(low_ok & high_ok):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {values.tolist()}")
    return values


def _bisect(increasing: Callable[[tf.Tensor], tf.Tensor], target, lo, hi) -> tf.Tensor:
    """Solve ``increasing(t) = target`` elementwise for ``t`` in ``[lo, hi]`` by bisection."""
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = increasing(mid) < target
        lo, hi = tf.where(below, mid, lo), tf.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _quantile(q: tfd.Distribution, u) -> tf.Tensor:
    """$Q_q(u)$, from ``q.quantile`` or, where TFP has none (mixtures), by bisection on the CDF."""
    u = tf.cast(u, _checks.DTYPE)
    try:
        return q.quantile(u)
    except NotImplementedError:
        pass
    mean, sd = q.mean(), q.stddev()
    shape = tf.broadcast_dynamic_shape(tf.shape(u), tf.shape(mean))
    lo = tf.broadcast_to(mean - 50.0 * sd, shape)
    hi = tf.broadcast_to(mean + 50.0 * sd, shape)
    return _bisect(q.cdf, tf.broadcast_to(u, shape), lo, hi)


def _mass_within(dist: tfd.Distribution, center, radius) -> tf.Tensor:
    """The mass of ``dist`` in ``[center - radius, center + radius]``."""
    return dist.cdf(center + radius) - dist.cdf(center - radius)


def _below(model, q_net, y, u, center) -> tf.Tensor:
    r"""$\Pr(U \le u \mid y)$ under the posterior, shape ``[len(u), len(y)]``."""
    p, q = model.posterior(y), q_net(y)
    u = tf.constant(u[:, None], _checks.DTYPE)
    if center is None:
        return p.cdf(_quantile(q, u))
    c = tf.convert_to_tensor(center(y), _checks.DTYPE)
    # U <= u  iff  |x - c| >= r_u, where q puts mass 1 - u within r_u of c.
    shape = tf.broadcast_dynamic_shape(tf.shape(u), tf.shape(c))
    reach = tf.abs(c - q.mean()) + 50.0 * q.stddev()
    radius = _bisect(lambda r: _mass_within(q, c, r), tf.broadcast_to(1.0 - u, shape),
                     tf.zeros(shape), tf.broadcast_to(reach, shape))
    return 1.0 - _mass_within(p, c, radius)


def _observation_grid(model, num_points: int):
    """A grid over 12 standard deviations either side of the mean of $p(y)$, with weights."""
    evidence = model.evidence()
    mean, sd = float(evidence.mean()), float(evidence.stddev())
    y = np.linspace(mean - 12 * sd, mean + 12 * sd, num_points)
    simpson = np.ones(num_points)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    density = np.exp(evidence.log_prob(y.astype(np.float32)).numpy().astype(np.float64))
    return y.astype(np.float32), simpson * (y[1] - y[0]) / 3.0 * density


def pit_cdf(model, q_net, u, *, center: Callable | None = None,
            num_points: int = 2001) -> np.ndarray:
    r"""The exact CDF $G(u) = \Pr(U \le u)$ of the PIT of ``q_net`` under ``model``.

    $U = F_q(x \mid y)$ for $(x, y) \sim p(x, y)$; $G(u) = \int p(y) F_p(Q_q(u \mid y) \mid y)\,
    dy$ by Simpson's rule on ``num_points`` observations over 12 standard deviations of $p(y)$.
    With ``center``, $U$ is the PIT of the test quantity $-|x - c(y)|$ instead:
    $U = \Pr_{x' \sim q(\cdot \mid y)}(|x' - c(y)| > |x - c(y)|)$, and
    $\Pr(U \le u \mid y)$ is the posterior mass at least $r_u(y)$ from $c(y)$, where $q$ puts
    mass $1 - u$ within $r_u(y)$ of $c(y)$ (found by bisection).

    Args:
        model: a model with a scalar latent, ``posterior(y)`` and ``evidence()``.
        q_net: ``q_net(y)`` returns a scalar distribution batched over ``y`` with a ``cdf``
            (a ``quantile`` is used when there is one, otherwise the CDF is inverted).
        u: the points, numbers in $[0, 1]$.
        center: optional ``center(y) -> c(y)``, for example ``lambda y: y``.
        num_points: observations in the quadrature, an odd integer >= 3.

    Returns:
        $G(u)$, a float64 array of the shape of ``u`` (1-D).

    Raises:
        ValueError: for points outside $[0, 1]$ or a bad ``num_points``.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean(mu0=1.0, sigma0=2.0, sigma=0.5)
        >>> pit_cdf(model, model.posterior, [0.1, 0.5, 0.9]).round(4)
        array([0.1, 0.5, 0.9])
    """
    u = _levels("u", u, closed=True)
    num_points = _grid_size(num_points)
    y, weights = _observation_grid(model, num_points)
    inner = np.clip(u, 0.0, 1.0)
    interior = (inner > 0) & (inner < 1)
    result = inner.copy()  # G(0) = 0 and G(1) = 1 for a continuous q
    if interior.any():
        chunk = max(1, 2_000_000 // num_points)
        values = inner[interior]
        parts = [np.asarray(_below(model, q_net, y, values[i:i + chunk], center), np.float64)
                 @ weights for i in range(0, len(values), chunk)]
        result[interior] = np.concatenate(parts)
    return result


def _grid_size(num_points) -> int:
    num_points = _checks.positive_int("num_points", num_points)
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be an odd integer >= 3, got {num_points}")
    return num_points


def interval_mass(model, q_net, y, level) -> np.ndarray:
    r"""The posterior mass inside $q$'s central credible interval, at each observation.

    $F_p(Q_q(1 - \alpha/2 \mid y) \mid y) - F_p(Q_q(\alpha/2 \mid y) \mid y)$ for each level
    $1 - \alpha$: what the interval $q$ reports at level $1 - \alpha$ really holds.

    Args:
        model: a model with a scalar latent and ``posterior(y)``.
        q_net: an inference network (see `pit_cdf`).
        y: observations, a scalar or a 1-D batch.
        level: credible levels $1 - \alpha$ in $(0, 1)$, a number or a 1-D sequence.

    Returns:
        A float64 array ``[len(level), len(y)]`` (``[len(level)]`` for a scalar ``y``).

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean(mu0=1.0, sigma0=2.0, sigma=0.5)
        >>> interval_mass(model, model.posterior, [-1.0, 3.0], 0.8).round(4)
        array([[0.8, 0.8]])
    """
    level = _levels("level", level)
    y = _checks.observations(y)
    alpha = tf.constant((1.0 - level)[:, None], _checks.DTYPE)
    if y.shape.rank == 0:
        alpha = alpha[:, 0]
    p, q = model.posterior(y), q_net(y)
    return np.asarray(p.cdf(_quantile(q, 1.0 - alpha / 2)) - p.cdf(_quantile(q, alpha / 2)),
                      np.float64)


def expected_coverage(model, q_net, level, *, num_points: int = 2001) -> np.ndarray:
    r"""The exact expected coverage of $q$'s central credible intervals.

    $C(1 - \alpha) = \int p(y)\, \Pr_{p(x \mid y)}\big(x \in [Q_q(\tfrac\alpha2 \mid y),
    Q_q(1 - \tfrac\alpha2 \mid y)]\big)\, dy = G(1 - \tfrac\alpha2) - G(\tfrac\alpha2)$,
    with $G$ from `pit_cdf`. A calibrated $q$ has $C(1 - \alpha) = 1 - \alpha$; below that it is
    overconfident (too narrow), above it conservative.

    Args:
        model, q_net, num_points: as for `pit_cdf`.
        level: credible levels $1 - \alpha$ in $(0, 1)$, a number or a 1-D sequence.

    Returns:
        The coverages, a float64 array of the levels' shape (1-D).

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean(mu0=1.0, sigma0=2.0, sigma=0.5)
        >>> expected_coverage(model, model.posterior, [0.5, 0.9]).round(4)
        array([0.5, 0.9])
    """
    level = _levels("level", level)
    alpha = 1.0 - level
    g = pit_cdf(model, q_net, np.concatenate([alpha / 2, 1 - alpha / 2]), num_points=num_points)
    return g[len(level):] - g[:len(level)]


def rank_distribution(model, q_net, num_draws: int, *, center: Callable | None = None,
                      num_points: int = 2001, num_u: int = 201) -> np.ndarray:
    r"""The exact distribution of the SBC rank with ``num_draws`` draws from $q$.

    Given the PIT $U$, the rank $r$ (the number of $L$ draws from $q(\cdot \mid y)$ below the
    true $x$, or with ``center`` below it in the test quantity) is Binomial$(L, U)$, so
    $\Pr(r = k) = \int_0^1 \binom{L}{k} u^k (1 - u)^{L - k}\, dG(u)$. $G$ is computed by
    `pit_cdf` on ``num_u`` points, $u_i = (1 - \cos(\pi i / (n_u - 1))) / 2$, which crowd
    towards 0 and 1 where a miscalibrated $q$ piles up its PIT, and taken as linear between them
    (so the cells are tiny where $G$ is steep). The integral is then a sum of differences of
    Beta CDFs, exact when $G$ is linear (as it is for a calibrated $q$), and the probabilities
    sum to one.

    Args:
        model, q_net, center, num_points: as for `pit_cdf`.
        num_draws: $L$, the draws from $q$ per simulation, a positive integer.
        num_u: points of the grid in $u$, an integer >= 2.

    Returns:
        $\Pr(r = k)$ for $k = 0, \dots, L$, a float64 array of length $L + 1$.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean(mu0=1.0, sigma0=2.0, sigma=0.5)
        >>> rank_distribution(model, model.posterior, 4, num_u=101).round(4)
        array([0.2, 0.2, 0.2, 0.2, 0.2])
    """
    num_draws = _checks.positive_int("num_draws", num_draws)
    num_u = _checks.positive_int("num_u", num_u)
    if num_u < 2:
        raise ValueError(f"num_u must be at least 2, got {num_u}")
    u = 0.5 * (1.0 - np.cos(np.pi * np.linspace(0.0, 1.0, num_u)))
    g = pit_cdf(model, q_net, u, center=center, num_points=num_points)
    k = np.arange(num_draws + 1)[:, None]
    # The integral of the Binomial(L, u) probability of k over a cell is a Beta CDF difference.
    beta_cdf = special.betainc(k + 1, num_draws - k + 1, u[None, :]) / (num_draws + 1)
    return (np.diff(beta_cdf, axis=1) / np.diff(u)) @ np.diff(g)


def _simulate(model, q_net, num_sims: int, num_draws: int, seed):
    data_seed, q_seed = tfp.random.split_seed(_checks.integer_seed(seed))
    x, y = model.sample(num_sims, seed=data_seed)
    if isinstance(x, dict):
        raise ValueError("model must have a single scalar latent")
    q = q_net(y)
    return x, y, q, (q.sample(num_draws, seed=q_seed) if num_draws else None)


def sbc_ranks(model, q_net, num_sims: int, num_draws: int, *, center: Callable | None = None,
              seed: int = 0) -> np.ndarray:
    r"""Simulated SBC ranks: ``num_sims`` draws $(x, y) \sim p$, each ranked among $L$ draws of $q$.

    The rank is the number of the ``num_draws`` draws $x_l \sim q(\cdot \mid y)$ with
    $x_l < x$ or, with ``center``, with $|x_l - c(y)| > |x - c(y)|$ (the test quantity
    $-|x - c(y)|$ of the draw below that of the truth). For a calibrated $q$ the ranks are uniform
    on $\{0, \dots, L\}$; `rank_distribution` gives their exact distribution for any $q$.

    Args:
        model: a model with a single scalar latent and ``sample``.
        q_net: an inference network (see `pit_cdf`), which must be able to ``sample``.
        num_sims: simulations, a positive integer.
        num_draws: $L$, draws from $q$ per simulation, a positive integer.
        center: optional ``center(y) -> c(y)``.
        seed: an integer seed.

    Returns:
        The ranks, an int array of length ``num_sims`` with values in $\{0, \dots, L\}$.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> ranks = sbc_ranks(GaussianUnknownMean(), GaussianUnknownMean().posterior, 100, 9)
        >>> ranks.shape, int(ranks.min()) >= 0, int(ranks.max()) <= 9
        ((100,), True, True)
    """
    num_sims = _checks.positive_int("num_sims", num_sims)
    num_draws = _checks.positive_int("num_draws", num_draws)
    x, y, _, draws = _simulate(model, q_net, num_sims, num_draws, seed)
    if center is None:
        below = draws < x
    else:
        c = tf.convert_to_tensor(center(y), _checks.DTYPE)
        below = tf.abs(draws - c) > tf.abs(x - c)
    return tf.reduce_sum(tf.cast(below, tf.int32), axis=0).numpy()


def empirical_coverage(model, q_net, level, num_sims: int, *, seed: int = 0):
    r"""Simulated coverage of $q$'s central intervals, with its binomial standard error.

    The fraction of ``num_sims`` draws $(x, y) \sim p(x, y)$ whose $x$ lies inside
    $[Q_q(\alpha/2 \mid y), Q_q(1 - \alpha/2 \mid y)]$; its standard error is
    $\sqrt{\hat C (1 - \hat C) / N}$.

    Args:
        model: a model with a single scalar latent and ``sample``.
        q_net: an inference network (see `pit_cdf`).
        level: credible levels $1 - \alpha$ in $(0, 1)$, a number or a 1-D sequence.
        num_sims: simulations $N$, a positive integer.
        seed: an integer seed.

    Returns:
        ``(coverage, standard_error)``, two float64 arrays of the levels' shape (1-D).

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean()
        >>> cover, se = empirical_coverage(model, model.posterior, [0.9], 4000)
        >>> bool(abs(cover[0] - 0.9) < 5 * se[0])
        True
    """
    level = _levels("level", level)
    num_sims = _checks.positive_int("num_sims", num_sims)
    x, _, q, _ = _simulate(model, q_net, num_sims, 0, seed)
    alpha = tf.constant((1.0 - level)[:, None], _checks.DTYPE)
    inside = (_quantile(q, alpha / 2) <= x) & (x <= _quantile(q, 1 - alpha / 2))
    cover = np.asarray(tf.reduce_mean(tf.cast(inside, tf.float64), axis=1))
    return cover, np.sqrt(cover * (1 - cover) / num_sims)
