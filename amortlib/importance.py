r"""Importance sampling with an inference network as the proposal, and its diagnostics.

With draws $x_1, \dots, x_n \sim q(\cdot \mid y)$ and weights $w_i = p(x_i, y) / q(x_i \mid y)$,
$\frac1n \sum_i w_i$ estimates the evidence $p(y)$ without bias and self-normalised averages
$\sum_i w_i f(x_i) / \sum_i w_i$ estimate posterior expectations. How well depends on how
variable the weights are:

- the **effective sample size** (Kong 1992) $\mathrm{ESS} = (\sum_i w_i)^2 / \sum_i w_i^2$ of a
  sample (`effective_sample_size`); as $n$ grows, $\mathrm{ESS}/n \to 1 / (1 + \chi^2)$, where
  $\chi^2(p \,\|\, q) = \int p(x \mid y)^2 / q(x \mid y)\, dx - 1$ is the chi-square divergence
  of the posterior from the proposal (`chi_square`, exact by quadrature for a scalar latent;
  `ess_fraction`);
- the **Pareto** $\hat k$ of Pareto-smoothed importance sampling (Vehtari et al. 2024): a
  generalized Pareto distribution fitted to the largest weights estimates the tail index $k$ of
  the weight distribution ($\Pr(w > t) \approx c\, t^{-1/k}$); the weights have a finite
  variance only for $k < 1/2$, and estimates are unreliable above $k \approx 0.7$
  (`pareto_k`, with the fit of Zhang and Stephens 2009 in `gpd_fit`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

tfd = tfp.distributions

__all__ = ["chi_square", "effective_sample_size", "ess_fraction", "gpd_fit",
           "log_importance_weights", "pareto_k"]

#: How many grids `chi_square` tries, doubling the width each time, before it returns ``inf``.
_WIDENINGS = 5


def log_importance_weights(model, q: tfd.Distribution, y, num_samples: int, *, seed: int):
    r"""Draws from a proposal and their log weights $\log p(x, y) - \log q(x \mid y)$.

    Args:
        model: a model (see `amortlib.models`); its ``log_prob`` gives $\log p(x, y)$.
        q: the proposal, a distribution batched like ``y`` (for example ``q_net(y)``).
        y: observations, a scalar or a 1-D batch.
        num_samples: draws per observation, a positive integer.
        seed: an integer seed.

    Returns:
        ``(x, log_w)``: tensors of shape ``[num_samples, *y.shape]``. The mean of ``exp(log_w)``
        estimates $p(y)$.

    Raises:
        ValueError: for bad ``y``, ``num_samples`` or ``seed``.

    Example:
        >>> from amortlib import GaussianUnknownMean
        >>> model = GaussianUnknownMean()
        >>> x, log_w = log_importance_weights(model, model.posterior(1.0), 1.0, 5, seed=0)
        >>> bool(np.allclose(log_w, model.evidence().log_prob(1.0)))  # exact proposal
        True
    """
    y = _checks.observations(y)
    num_samples = _checks.positive_int("num_samples", num_samples)
    x = q.sample(num_samples, seed=_checks.integer_seed(seed))
    return x, model.log_prob(x, y) - q.log_prob(x)


def effective_sample_size(log_weights, axis: int = 0) -> np.ndarray:
    r"""Kong's effective sample size $(\sum_i w_i)^2 / \sum_i w_i^2$, from log weights.

    Computed in log space, so weights far beyond the floating-point range are fine.

    Args:
        log_weights: log weights (unnormalised), an array.
        axis: the axis of the draws.

    Returns:
        The ESS, between 1 and the number of draws, with ``axis`` removed.

    Raises:
        ValueError: if a log weight is NaN or $+\infty$, if all log weights (of one slice
            along ``axis``) are $-\infty$, or there are no draws.

    Example:
        >>> float(effective_sample_size(np.log([1.0, 1.0, 1.0, 1.0])))
        4.0
    """
    log_w = np.asarray(log_weights, dtype=np.float64)
    if log_w.size == 0 or log_w.shape[axis] == 0:
        raise ValueError("log_weights must hold at least one draw")
    if np.any(np.isnan(log_w)) or np.any(log_w == np.inf):
        raise ValueError("log_weights must not be NaN or +inf")
    top = np.max(log_w, axis=axis, keepdims=True)
    if np.any(top == -np.inf):
        raise ValueError("log_weights must not all be -inf (every weight zero) along axis")
    w = np.exp(log_w - top)
    return np.sum(w, axis=axis) ** 2 / np.sum(w**2, axis=axis)


def _moments(name: str, dist: tfd.Distribution) -> tuple[np.ndarray, np.ndarray]:
    """A distribution's mean and standard deviation in float64, refused if not finite."""
    try:
        mean = np.asarray(dist.mean(), np.float64)
        sd = np.asarray(dist.stddev(), np.float64)
    except (NotImplementedError, ValueError) as error:
        raise ValueError(f"{name} must have a finite mean and standard deviation "
                         f"({type(dist).__name__}: {error})") from None
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ValueError(f"{name} must have a finite mean and a finite positive standard "
                         f"deviation; {type(dist).__name__} does not")
    return mean, sd


def chi_square(p: tfd.Distribution, q: tfd.Distribution, *, num_points: int = 20001,
               width: float = 12.0, log: bool = False) -> np.ndarray:
    r"""$\chi^2(p \,\|\, q) = \int p(x)^2 / q(x)\, dx - 1$ for scalar events, by quadrature.

    Simpson's rule in float64 on a grid over ``width`` standard deviations either side of both
    distributions' means, the integrand formed in log space, so divergences far beyond the
    float32 range (say $e^{90}$) are computed. Where the integrand has not decayed to
    $10^{-12}$ of its peak at an end of the grid, the grid's width is doubled, up to four
    times. The integral is finite only if $q$'s tails are
    heavy enough: for Gaussian $q = \mathcal N(\mu_q, \sigma_q^2)$ and a Gaussian (or each
    component of a Gaussian-mixture) $p$ with standard deviation $\sigma_p$, only if
    $2 \sigma_q^2 > \sigma_p^2$. Where the integrand has still not decayed after the last
    widening, the result is ``inf``. Beyond $\log(1 + \chi^2) = 700$ the divergence itself
    overflows float64 and is returned as ``inf``; ``log=True`` returns $\log(1 + \chi^2)$
    instead, which stays finite there. ``p`` and ``q`` may have different float dtypes (each
    is evaluated in its own); both need a finite mean and standard deviation, which set the
    grid.

    Args:
        p: the target, for example the posterior ``model.posterior(y)``.
        q: the proposal, with the same batch shape.
        num_points: grid size, an odd integer >= 3.
        width: half-width of the grid in standard deviations, > 0.
        log: return $\log(1 + \chi^2)$ rather than $\chi^2$.

    Returns:
        The divergences (or $\log(1 + \chi^2)$), a NumPy float64 array of the batch shape.

    Raises:
        ValueError: for non-scalar events, a bad ``num_points`` or ``width``, or a ``p`` or
            ``q`` without a finite mean and standard deviation (a Cauchy, say).

    Example:
        >>> p, q = tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 2.0)  # 4 / sqrt(7) - 1
        >>> round(float(chi_square(p, q)), 6)
        0.511858
        >>> round(float(chi_square(tfd.Normal(0.0, 1.0), tfd.Normal(30.0, 1.0), log=True)), 3)
        900.0
    """
    num_points = _checks.positive_int("num_points", num_points)
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be an odd integer >= 3, got {num_points}")
    width = _checks.positive_scalar("width", width)
    if p.event_shape.rank != 0 or q.event_shape.rank != 0:
        raise ValueError(f"chi_square needs scalar events; got {p.event_shape} and "
                         f"{q.event_shape}")
    (p_mean, p_sd), (q_mean, q_sd) = _moments("p", p), _moments("q", q)
    weights = np.ones(num_points)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    for _ in range(_WIDENINGS):
        lo = np.minimum(p_mean - width * p_sd, q_mean - width * q_sd)
        hi = np.maximum(p_mean + width * p_sd, q_mean + width * q_sd)
        grid = np.linspace(lo, hi, num_points)
        log_f = (2 * np.asarray(p.log_prob(tf.cast(grid, p.dtype)), np.float64)
                 - np.asarray(q.log_prob(tf.cast(grid, q.dtype)), np.float64))
        top = np.max(log_f, axis=0)
        f = np.exp(log_f - top)
        undecayed = np.maximum(f[0], f[-1]) > 1e-12
        if not np.any(undecayed):
            break
        width *= 2.0
    step = (hi - lo) / (num_points - 1)
    log_integral = np.log(step / 3.0 * np.tensordot(weights, f, axes=1)) + top
    if log:
        return np.where(undecayed, np.inf, log_integral)
    value = np.expm1(np.minimum(log_integral, 700.0))
    return np.where(undecayed | (log_integral > 700.0), np.inf, value)


def ess_fraction(p: tfd.Distribution, q: tfd.Distribution, **kwargs) -> np.ndarray:
    r"""The large-sample $\mathrm{ESS}/n = 1 / (1 + \chi^2(p \,\|\, q))$, by `chi_square`.

    Computed as $\exp(-\log \int p^2 / q)$, so it is accurate even when $\chi^2$ overflows.

    Args:
        p, q: as for `chi_square`.
        **kwargs: ``num_points`` and ``width`` of `chi_square`.

    Returns:
        The fractions, a NumPy float64 array of the batch shape (0 where $\chi^2$ is infinite).

    Example:
        >>> round(float(ess_fraction(tfd.Normal(0.0, 1.0), tfd.Normal(0.0, 2.0))), 6)
        0.661438
    """
    return np.exp(-chi_square(p, q, log=True, **kwargs))


def gpd_fit(exceedances) -> tuple[float, float]:
    r"""Fit a generalized Pareto distribution to positive exceedances (Zhang and Stephens 2009).

    The generalized Pareto distribution with shape $k$ and scale $\sigma$ has
    $\Pr(X > x) = (1 + k x / \sigma)^{-1/k}$. With $\theta = -k / \sigma$, the likelihood
    maximised over $k$ for fixed $\theta$ gives $k(\theta) = \frac1m \sum_i \log(1 - \theta
    x_i)$ and the profile log likelihood $m \big(\log(\theta / -k(\theta)) - k(\theta) -
    1\big)$. Zhang and Stephens average $\theta$ over a grid of $30 + \lfloor\sqrt m\rfloor$
    values with weights proportional to the profile likelihood; as in PSIS (Vehtari et al.
    2024), $k$ is then shrunk towards $1/2$ by a weak prior worth 10 observations.

    Args:
        exceedances: the $m \ge 5$ positive amounts by which the largest draws exceed a
            threshold, a 1-D array.

    Returns:
        ``(k, sigma)``.

    Raises:
        ValueError: for fewer than 5 exceedances, or ones that are not positive and finite.

    Example:
        >>> from scipy import stats
        >>> draws = stats.genpareto(0.5).rvs(4000, random_state=1)
        >>> round(gpd_fit(draws)[0], 1)
        0.5
    """
    x = np.sort(np.asarray(exceedances, dtype=np.float64))
    if x.ndim != 1 or x.size < 5:
        raise ValueError(f"exceedances must be a 1-D array of at least 5 values, got shape "
                         f"{x.shape}")
    if not np.all(np.isfinite(x)) or x[0] <= 0:
        raise ValueError("exceedances must be positive and finite")
    m = x.size
    grid_size = 30 + int(np.sqrt(m))
    j = np.arange(1, grid_size + 1)
    quartile = x[int(m / 4 + 0.5) - 1]
    theta = 1 / x[-1] + (1 - np.sqrt(grid_size / (j - 0.5))) / (3 * quartile)
    k_theta = np.mean(np.log1p(-theta[:, None] * x), axis=1)
    profile = m * (np.log(-theta / k_theta) - k_theta - 1)
    weights = np.exp(profile - profile.max())
    weights /= weights.sum()
    theta_hat = np.sum(weights * theta)
    k = np.mean(np.log1p(-theta_hat * x))
    sigma = -k / theta_hat
    return float((m * k + 10 * 0.5) / (m + 10)), float(sigma)


def pareto_k(log_weights, *, tail_size: int | None = None) -> float:
    r"""The Pareto $\hat k$ of a sample of importance weights (PSIS; Vehtari et al. 2024).

    Fits `gpd_fit` to the ``tail_size`` largest weights' excesses over the next largest one;
    by default ``tail_size`` is $\lceil\min(n/5, 3\sqrt n)\rceil$ for $n$ draws (rounded up,
    as in PSIS and ``loo``), PSIS's choice for
    proposals whose weights have finite variance. Scale-free: it depends on the weights only
    up to a common factor.

    Args:
        log_weights: the $n \ge 25$ log weights of one sample, a 1-D array.
        tail_size: the number of largest weights to fit, at least 5 and below $n$.

    Returns:
        $\hat k$, a float.

    Raises:
        ValueError: for too few draws, a bad ``tail_size``, or NaN or $+\infty$ log weights.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> log_w = -0.5 * np.log(rng.uniform(size=100_000))  # Pareto, tail index 2
        >>> abs(pareto_k(log_w) - 0.5) < 0.1
        True
    """
    log_w = np.asarray(log_weights, dtype=np.float64)
    if log_w.ndim != 1 or log_w.size < 25:
        raise ValueError(f"log_weights must be a 1-D array of at least 25 draws, got shape "
                         f"{log_w.shape}")
    if np.any(np.isnan(log_w)) or np.any(log_w == np.inf):
        raise ValueError("log_weights must not be NaN or +inf")
    n = log_w.size
    if tail_size is None:
        tail_size = int(np.ceil(min(n / 5, 3 * np.sqrt(n))))
    tail_size = _checks.positive_int("tail_size", tail_size)
    if not 5 <= tail_size < n:
        raise ValueError(f"tail_size must be at least 5 and below {n}, got {tail_size}")
    top = np.sort(log_w)[-(tail_size + 1):]
    threshold = top[0]
    excess = np.expm1(top[1:] - threshold)  # w / w_threshold - 1, scale-free
    excess = excess[excess > 0]
    if excess.size < 5:
        raise ValueError("fewer than 5 weights exceed the threshold: the tail is flat")
    return gpd_fit(excess)[0]
