r"""Amortizing over data sets of any size: iid models and a permutation-invariant network.

The observation of these models is a whole **data set** $y = (y_1, \dots, y_n)$ of $n$ iid draws,
and $n$ varies from one data set to the next. A batch of data sets is a float tensor of shape
``[batch_size, width]``: row $b$ holds its $n_b \le$ ``width`` observations, and the rest of the
row is ``NaN``, which marks padding (where in the row does not matter). The models here

- `IidGaussianMean`: $x \sim \mathcal N(\mu_0, \sigma_0^2)$, $y_i \mid x \sim \mathcal N(x,
  \sigma^2)$ with known $\sigma$, posterior Gaussian;
- `IidNormalInverseGamma`: mean and variance unknown, with the conjugate Normal-Inverse-Gamma
  prior, posterior marginals Student-$t$ and inverse-gamma;

draw $n$ uniformly from ``n_min, ..., n_max`` and follow the contract of `amortlib.models`
(``sample``, ``log_prob``, ``posterior``), so that `amortlib.fit` trains a network on them.

`DeepSets` is the inference network (Zaheer et al. 2017): a shared encoder $\varphi$ applied to
each observation, a sum or a mean over the observations, and a head $\rho$ that reads the pooled
summary and $\log n$ and returns the parameters of $q$,

.. math::
    q_\phi(\cdot \mid y) = \text{family}\Big(\rho\big(\textstyle\bigoplus_{i \le n}
    \varphi(y_i),\ \log n\big)\Big),

with $\bigoplus$ the sum or the mean. Such a network is invariant to the order of the
observations and ignores the padding exactly, since padded entries are replaced by zero before
the encoder and their encodings are multiplied by zero before pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special

from amortlib import _checks
from amortlib.networks import MLP

tfd = tfp.distributions

__all__ = [
    "IidGaussianMean",
    "IidNormalInverseGamma",
    "DeepSets",
    "FAMILIES",
    "counts",
    "pad",
]

_NOT_FINITE = "best_normal_lognormal needs alpha_n = alpha0 + n/2 > 1"


def _plain(function):
    """Mark ``function`` as plain TensorFlow: `tf.function` traces it without autograph.

    The model and network code has no data-dependent Python control flow, so autograph's
    source conversion, which dominates the first trace of a training loop, is not needed.
    """
    return tf.autograph.experimental.do_not_convert(function)


def _data_sets(y, name: str = "y") -> tf.Tensor:
    """A float32 ``[batch, width]`` batch of NaN-padded data sets.

    Integer arrays are accepted (cast to float32; they cannot hold padding). The value checks
    (no infinities, no row that is all padding) need the values, so they run only eagerly:
    inside `tf.function` an all-padding row is not caught and gives $n = 0$ (a NaN or
    infinite summary), which `amortlib.fit` then reports as a non-finite loss.
    """
    try:
        y = tf.convert_to_tensor(y, dtype_hint=_checks.DTYPE)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric [batch, width] array, got {y!r}") from None
    if not (y.dtype.is_floating or y.dtype.is_integer):
        raise ValueError(f"{name} must hold real numbers (float, or integers without padding), "
                         f"got {y.dtype.name}")
    y = tf.cast(y, _checks.DTYPE)
    if y.shape.rank != 2:
        raise ValueError(f"{name} must have shape [batch, width], got shape {tuple(y.shape)}")
    if tf.executing_eagerly():
        values = y.numpy()
        if np.any(np.isinf(values)):
            raise ValueError(f"{name} must not contain infinities (NaN marks padding)")
        if np.any(np.all(np.isnan(values), axis=1)):
            raise ValueError(f"every data set in {name} needs at least one observation; "
                             "a row is all padding")
    return y


def counts(y) -> tf.Tensor:
    """The number of observations $n$ of each data set: its entries that are not ``NaN``.

    Args:
        y: a ``[batch, width]`` batch of NaN-padded data sets.

    Returns:
        A float32 tensor of shape ``[batch]``.

    Example:
        >>> counts([[1.0, float("nan")], [2.0, 3.0]]).numpy()
        array([1., 2.], dtype=float32)
    """
    y = _data_sets(y)
    return tf.reduce_sum(tf.cast(~tf.math.is_nan(y), _checks.DTYPE), axis=1)


def pad(data_sets: Sequence[Sequence[float]], width: int | None = None) -> tf.Tensor:
    """Stack data sets of different sizes into one NaN-padded ``[batch, width]`` tensor.

    Args:
        data_sets: a sequence of non-empty sequences of finite numbers.
        width: the row length, at least the largest size (default: the largest size).

    Returns:
        A float32 tensor ``[len(data_sets), width]``.

    Raises:
        ValueError: for an empty data set, a non-finite value, or a too small ``width``.

    Example:
        >>> pad([[1.0], [2.0, 3.0]]).numpy()
        array([[ 1., nan],
               [ 2.,  3.]], dtype=float32)
    """
    rows = [_checks.real_vector(f"data_sets[{i}]", d) for i, d in enumerate(data_sets)]
    if not rows:
        raise ValueError("data_sets must not be empty")
    longest = max(len(r) for r in rows)
    width = longest if width is None else _checks.positive_int("width", width)
    if width < longest:
        raise ValueError(f"width must be at least the largest data set ({longest}), got {width}")
    out = np.full((len(rows), width), np.nan, np.float32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return tf.constant(out)


class _IidModel:
    """Shared by the iid models: the range of $n$ and the padded draws of $y$."""

    def _set_sizes(self, n_min, n_max):
        self.n_min = _checks.positive_int("n_min", n_min)
        self.n_max = _checks.positive_int("n_max", n_max)
        if self.n_max < self.n_min:
            raise ValueError(f"n_max must be at least n_min ({self.n_min}), got {self.n_max}")

    def _sizes_and_noise(self, batch_size, seed, n):
        """Sizes ``[batch]`` (uniform, or all ``n``) and standard normals ``[batch, width]``."""
        batch_size = _checks.positive_int("batch_size", batch_size)
        n_seed, noise_seed, latent_seed = tfp.random.split_seed(_checks.seed(seed), n=3)
        if n is None:
            width = self.n_max
            sizes = tf.random.stateless_uniform([batch_size], n_seed, self.n_min,
                                                self.n_max + 1, dtype=tf.int32)
        else:
            width = _checks.positive_int("n", n)
            sizes = tf.fill([batch_size], width)
        noise = tf.random.stateless_normal([batch_size, width], noise_seed)
        return sizes, noise, latent_seed

    @staticmethod
    def _padded(values, sizes):
        keep = tf.range(tf.shape(values)[1])[tf.newaxis, :] < sizes[:, tf.newaxis]
        return tf.where(keep, values, tf.constant(np.nan, values.dtype))

    @staticmethod
    def _stats(y):
        """$n$, $\\sum y_i$ and $\\sum (y_i - \\bar y)^2$ of each data set."""
        mask = ~tf.math.is_nan(y)
        zeroed = tf.where(mask, y, 0.0)
        n = tf.reduce_sum(tf.cast(mask, y.dtype), axis=1)
        total = tf.reduce_sum(zeroed, axis=1)
        centred = tf.where(mask, y - (total / n)[:, tf.newaxis], 0.0)
        return n, total, tf.reduce_sum(centred**2, axis=1)

    @staticmethod
    def _masked_sum(values, y):
        return tf.reduce_sum(tf.where(tf.math.is_nan(y), tf.zeros_like(values), values), -1)


class IidGaussianMean(_IidModel):
    r"""An unknown mean observed $n$ times: $x \sim \mathcal N(\mu_0, \sigma_0^2)$,
    $y_1, \dots, y_n \mid x \sim \mathcal N(x, \sigma^2)$ iid, $n$ uniform on
    $\{n_\text{min}, \dots, n_\text{max}\}$.

    The posterior is Gaussian with precision $\lambda_n = 1/\sigma_0^2 + n/\sigma^2$ and mean
    $(\mu_0/\sigma_0^2 + \sum_i y_i/\sigma^2)/\lambda_n$: it depends on the data only through
    the sufficient statistic $(n, \sum_i y_i)$. With $\mu_0 = 0$ and $\sigma_0 = \sigma = 1$ it
    is $\mathcal N\big(\sum_i y_i/(n + 1),\ 1/(n + 1)\big)$.

    Args:
        n_min, n_max: the range of data-set sizes, $1 \le n_\text{min} \le n_\text{max}$.
        mu0: prior mean $\mu_0$.
        sigma0: prior standard deviation $\sigma_0 > 0$.
        sigma: noise standard deviation $\sigma > 0$.

    Example:
        >>> model = IidGaussianMean(mu0=1.0, sigma0=2.0, sigma=0.5)
        >>> p = model.posterior(pad([[1.0, 2.0]]))
        >>> [round(float(v), 4) for v in (p.mean()[0], p.stddev()[0])]
        [1.4848, 0.3482]
    """

    def __init__(self, n_min: int = 1, n_max: int = 50, *, mu0: float = 0.0,
                 sigma0: float = 1.0, sigma: float = 1.0):
        self._set_sizes(n_min, n_max)
        self.mu0 = _checks.finite_scalar("mu0", mu0)
        self.sigma0 = _checks.positive_scalar("sigma0", sigma0)
        self.sigma = _checks.positive_scalar("sigma", sigma)

    def __repr__(self) -> str:
        return (f"IidGaussianMean(n_min={self.n_min}, n_max={self.n_max}, mu0={self.mu0}, "
                f"sigma0={self.sigma0}, sigma={self.sigma})")

    @_plain
    def sample(self, batch_size: int, seed, *, n: int | None = None):
        r"""Draw ``batch_size`` pairs $(x, y)$; each $y$ a NaN-padded data set.

        Args:
            batch_size: number of data sets.
            seed: an integer or a stateless seed tensor (None is an error: draws must be
                reproducible).
            n: if given, every data set has exactly ``n`` observations (it may lie outside
                $[n_\text{min}, n_\text{max}]$) and ``y`` has width ``n``; otherwise sizes are
                uniform and the width is $n_\text{max}$.

        Returns:
            ``(x, y)`` with shapes ``[batch_size]`` and ``[batch_size, width]``.
        """
        sizes, noise, x_seed = self._sizes_and_noise(batch_size, seed, n)
        x = self.mu0 + self.sigma0 * tf.random.stateless_normal(tf.shape(sizes), x_seed)
        return x, self._padded(x[:, tf.newaxis] + self.sigma * noise, sizes)

    @_plain
    def log_prob(self, x, y) -> tf.Tensor:
        r"""$\log p(x) + \sum_{i \le n} \log p(y_i \mid x)$, given the size $n$.

        ``x`` may carry leading sample dimensions, broadcast against ``y``'s batch.
        """
        y = _data_sets(y)
        x = tf.convert_to_tensor(x, _checks.DTYPE)
        prior = tfd.Normal(self.mu0, self.sigma0).log_prob(x)
        return prior + self._masked_sum(tfd.Normal(x[..., tf.newaxis], self.sigma).log_prob(y), y)

    def posterior(self, y) -> tfd.Normal:
        r"""The exact posterior $p(x \mid y)$ of each data set."""
        n, total, _ = self._stats(_data_sets(y))
        precision = 1.0 / self.sigma0**2 + n / self.sigma**2
        mean = (self.mu0 / self.sigma0**2 + total / self.sigma**2) / precision
        return tfd.Normal(mean, tf.math.rsqrt(precision))


class IidNormalInverseGamma(_IidModel):
    r"""Unknown mean and variance with the conjugate Normal-Inverse-Gamma prior.

    $\sigma^2 \sim \mathrm{InvGamma}(\alpha_0, \beta_0)$,
    $x \mid \sigma^2 \sim \mathcal N(\mu_0, \sigma^2/\kappa_0)$,
    $y_1, \dots, y_n \mid x, \sigma^2 \sim \mathcal N(x, \sigma^2)$ iid, $n$ uniform on
    $\{n_\text{min}, \dots, n_\text{max}\}$. The posterior is Normal-Inverse-Gamma with

    .. math::
        \kappa_n = \kappa_0 + n, \quad \mu_n = \frac{\kappa_0 \mu_0 + n \bar y}{\kappa_n},
        \quad \alpha_n = \alpha_0 + \frac n2, \quad
        \beta_n = \beta_0 + \frac12 \sum_i (y_i - \bar y)^2
        + \frac{\kappa_0 n (\bar y - \mu_0)^2}{2 \kappa_n},

    so the marginal posteriors are $\sigma^2 \mid y \sim \mathrm{InvGamma}(\alpha_n, \beta_n)$
    and $x \mid y \sim t_{2\alpha_n}\big(\mu_n, \beta_n / (\alpha_n \kappa_n)\big)$, a
    Student-$t$ with $2\alpha_n$ degrees of freedom and squared scale
    $\beta_n / (\alpha_n \kappa_n)$. The latents are a dict ``{"x", "sigma2"}``.

    Args:
        n_min, n_max: the range of data-set sizes.
        mu0, kappa0, alpha0, beta0: the prior's $\mu_0$ and $\kappa_0, \alpha_0, \beta_0 > 0$.

    Example:
        >>> model = IidNormalInverseGamma(mu0=1.0, kappa0=2.0, alpha0=3.0, beta0=1.0)
        >>> [round(float(v[0]), 4) for v in model.posterior_params(pad([[0.0, 2.0]]))]
        [1.0, 4.0, 4.0, 2.0]
    """

    def __init__(self, n_min: int = 1, n_max: int = 50, *, mu0: float = 0.0,
                 kappa0: float = 1.0, alpha0: float = 3.0, beta0: float = 2.0):
        self._set_sizes(n_min, n_max)
        self.mu0 = _checks.finite_scalar("mu0", mu0)
        self.kappa0 = _checks.positive_scalar("kappa0", kappa0)
        self.alpha0 = _checks.positive_scalar("alpha0", alpha0)
        self.beta0 = _checks.positive_scalar("beta0", beta0)

    def __repr__(self) -> str:
        return (f"IidNormalInverseGamma(n_min={self.n_min}, n_max={self.n_max}, "
                f"mu0={self.mu0}, kappa0={self.kappa0}, alpha0={self.alpha0}, "
                f"beta0={self.beta0})")

    @_plain
    def sample(self, batch_size: int, seed, *, n: int | None = None):
        r"""Draw ``batch_size`` pairs $(\{x, \sigma^2\}, y)$; see `IidGaussianMean.sample`.

        Returns:
            ``({"x": [batch_size], "sigma2": [batch_size]}, y)``, ``y`` NaN-padded.
        """
        sizes, noise, latent_seed = self._sizes_and_noise(batch_size, seed, n)
        v_seed, x_seed = tfp.random.split_seed(latent_seed)
        shape = tf.shape(sizes)
        sigma2 = tfd.InverseGamma(self.alpha0, self.beta0).sample(shape, seed=v_seed)
        x = self.mu0 + tf.sqrt(sigma2 / self.kappa0) * tf.random.stateless_normal(shape, x_seed)
        y = x[:, tf.newaxis] + tf.sqrt(sigma2)[:, tf.newaxis] * noise
        return {"x": x, "sigma2": sigma2}, self._padded(y, sizes)

    @_plain
    def log_prob(self, latents: dict, y) -> tf.Tensor:
        r"""$\log p(x, \sigma^2) + \sum_{i \le n} \log p(y_i \mid x, \sigma^2)$, given $n$."""
        y = _data_sets(y)
        x = tf.convert_to_tensor(latents["x"], _checks.DTYPE)
        sigma2 = tf.convert_to_tensor(latents["sigma2"], _checks.DTYPE)
        prior = (tfd.InverseGamma(self.alpha0, self.beta0).log_prob(sigma2)
                 + tfd.Normal(self.mu0, tf.sqrt(sigma2 / self.kappa0)).log_prob(x))
        noise = tfd.Normal(x[..., tf.newaxis], tf.sqrt(sigma2)[..., tf.newaxis])
        return prior + self._masked_sum(noise.log_prob(y), y)

    def posterior_params(self, y):
        r"""$(\mu_n, \kappa_n, \alpha_n, \beta_n)$ of each data set, four ``[batch]`` tensors."""
        n, total, spread = self._stats(_data_sets(y))
        mean = total / n
        kappa = self.kappa0 + n
        mu = (self.kappa0 * self.mu0 + total) / kappa
        beta = (self.beta0 + 0.5 * spread
                + 0.5 * self.kappa0 * n * (mean - self.mu0) ** 2 / kappa)
        return mu, kappa, self.alpha0 + 0.5 * n, beta

    def posterior(self, y) -> tfd.JointDistributionNamed:
        r"""The exact joint posterior: $\sigma^2 \sim \mathrm{InvGamma}(\alpha_n, \beta_n)$,
        $x \mid \sigma^2 \sim \mathcal N(\mu_n, \sigma^2/\kappa_n)$."""
        mu, kappa, alpha, beta = self.posterior_params(y)
        return tfd.JointDistributionNamed(dict(
            sigma2=tfd.InverseGamma(alpha, beta),
            x=lambda sigma2: tfd.Normal(mu, tf.sqrt(sigma2 / kappa))))

    def marginals(self, y) -> tuple[tfd.StudentT, tfd.InverseGamma]:
        r"""The exact marginal posteriors: $x$ Student-$t$ and $\sigma^2$ inverse-gamma."""
        mu, kappa, alpha, beta = self.posterior_params(y)
        return (tfd.StudentT(2.0 * alpha, mu, tf.sqrt(beta / (alpha * kappa))),
                tfd.InverseGamma(alpha, beta))

    def best_normal_lognormal(self, y) -> tfd.JointDistributionNamed:
        r"""The pq optimum in the family of `FAMILIES` ``"normal-lognormal"``.

        Minimising $\mathrm{KL}(p(x, \sigma^2 \mid y) \,\|\, \mathcal N(x; m, s^2)\,
        \mathrm{LogNormal}(\sigma^2; l, t^2))$ matches moments of the marginals: $m = \mu_n$,
        $s^2 = \mathrm{Var}(x \mid y) = \beta_n / (\kappa_n (\alpha_n - 1))$ (needs
        $\alpha_n > 1$), $l = \mathbb E[\log \sigma^2 \mid y] = \log \beta_n - \psi(\alpha_n)$
        and $t^2 = \mathrm{Var}(\log \sigma^2 \mid y) = \psi'(\alpha_n)$.

        Raises:
            ValueError: if $\alpha_n \le 1$ for some data set (checked when eager), where
                $\mathrm{Var}(x \mid y)$ is infinite and no member of the family is best.
        """
        mu, kappa, alpha, beta = self.posterior_params(y)
        _variance_exists(alpha)
        return _normal_lognormal(mu, tf.sqrt(beta / (kappa * (alpha - 1.0))),
                                 tf.math.log(beta) - tf.math.digamma(alpha),
                                 tf.sqrt(tf.math.polygamma(1.0, alpha)))

    def marginal_kls(self, q: tfd.JointDistributionNamed, y) -> tuple[tf.Tensor, tf.Tensor]:
        r"""The KL of each exact marginal to the matching factor of a normal-lognormal $q$.

        In closed form, per data set: for $x$,
        $\mathrm{KL}(t_\nu(\mu_n, c^2) \,\|\, \mathcal N(m, s^2)) = -H_t + \frac12 \log(2\pi
        s^2) + \frac{(\mu_n - m)^2 + \mathrm{Var}(x \mid y)}{2 s^2}$ with the Student-$t$
        entropy $H_t = \frac{\nu + 1}2 [\psi(\frac{\nu + 1}2) - \psi(\frac\nu2)]
        + \log(\sqrt\nu\, B(\frac\nu2, \frac12)) + \log c$; for $\sigma^2$, on the log
        scale $u = \log\sigma^2$ (KL is unchanged by it), the same formula with the entropy
        $H_u = \alpha_n + \log\Gamma(\alpha_n) - \alpha_n \psi(\alpha_n)$, mean
        $\log\beta_n - \psi(\alpha_n)$ and variance $\psi'(\alpha_n)$. No quadrature, so the
        Student-$t$'s heavy tails are counted in full.

        Args:
            q: a batch of ``{"x": Normal, "sigma2": LogNormal}``, as
                ``DeepSets("normal-lognormal")`` or `best_normal_lognormal` return.
            y: the NaN-padded data sets, ``[batch, width]``.

        Returns:
            ``(kl_x, kl_sigma2)``, two float64 ``[batch]`` tensors in nats.

        Raises:
            ValueError: if $\alpha_n \le 1$ (checked when eager): $\mathrm{Var}(x \mid y)$ is
                infinite.
        """
        # In float64: the KL is a small difference of terms of order one, which float32 would
        # blur at about 1e-5 nats (the size of the x floor at n = 100).
        mu, kappa, alpha, beta = (tf.cast(v, tf.float64) for v in self.posterior_params(y))
        _variance_exists(alpha)
        factors = q.model
        qx, qv = (tfd.Normal(tf.cast(d.loc, tf.float64), tf.cast(d.scale, tf.float64))
                  for d in (factors["x"], factors["sigma2"].distribution))
        nu = 2.0 * alpha
        entropy_x = (0.5 * (nu + 1.0) * (tf.math.digamma(0.5 * (nu + 1.0))
                                         - tf.math.digamma(0.5 * nu))
                     + 0.5 * tf.math.log(nu) + tf.math.lbeta(tf.stack(
                         [0.5 * nu, tf.fill(tf.shape(nu), tf.constant(0.5, tf.float64))], -1))
                     + 0.5 * tf.math.log(beta / (alpha * kappa)))
        entropy_u = alpha + tf.math.lgamma(alpha) - alpha * tf.math.digamma(alpha)
        kl_x = _kl_to_normal(entropy_x, mu, beta / (kappa * (alpha - 1.0)), qx)
        kl_v = _kl_to_normal(entropy_u, tf.math.log(beta) - tf.math.digamma(alpha),
                             tf.math.polygamma(1.0, alpha), qv)
        return kl_x, kl_v

    def mutual_information(self, n) -> np.ndarray:
        r"""$I(x; \sigma^2 \mid y)$ under the posterior of a data set of size $n$.

        The forward KL from the joint posterior to a product $q(x)\,q(\sigma^2)$ is the two
        marginals' KLs plus this term, whatever $q$ is: it is the floor that a factorized $q$
        cannot go below beyond its marginals. It is $H(x \mid y) - \mathbb E[H(x \mid \sigma^2,
        y)]$, the Student-$t$ entropy minus $\mathbb E\,\frac12 \log(2\pi e \sigma^2/\kappa_n)$,
        and depends on $n$ only (not on the data):

        .. math::
            I = (\alpha_n + \tfrac12)[\psi(\alpha_n + \tfrac12) - \psi(\alpha_n)]
            + \tfrac12 \psi(\alpha_n) + \log B(\alpha_n, \tfrac12) - \tfrac12 \log(\pi e).

        Args:
            n: data-set sizes (positive integers), any shape.

        Returns:
            A float64 array of the shape of ``n``, in nats.
        """
        n = np.asarray(n)
        if n.size == 0 or not np.issubdtype(n.dtype, np.number) or np.any(n < 1) or np.any(
                n != np.round(n)):
            raise ValueError(f"n must hold positive integers, got {n!r}")
        a = self.alpha0 + 0.5 * n.astype(float)
        return ((a + 0.5) * (special.digamma(a + 0.5) - special.digamma(a))
                + 0.5 * special.digamma(a) + special.betaln(a, 0.5) - 0.5 * np.log(np.pi * np.e))


def _variance_exists(alpha) -> None:
    if tf.executing_eagerly() and np.any(np.asarray(alpha) <= 1.0):
        raise ValueError(f"{_NOT_FINITE} (the variance of x | y is infinite otherwise); got "
                         f"alpha_n = {np.asarray(alpha).min()}")


def _kl_to_normal(entropy, mean, variance, q: tfd.Normal) -> tf.Tensor:
    r"""$\mathrm{KL}(p \| q)$ for a Gaussian $q$, from $p$'s entropy, mean and variance."""
    s2 = q.scale**2
    return (-entropy + 0.5 * tf.math.log(2.0 * np.pi * s2)
            + ((mean - q.loc) ** 2 + variance) / (2.0 * s2))


def _normal_lognormal(loc, scale, log_loc, log_scale) -> tfd.JointDistributionNamed:
    return tfd.JointDistributionNamed(dict(x=tfd.Normal(loc, scale),
                                           sigma2=tfd.LogNormal(log_loc, log_scale)))


def _forward(mlp: MLP, h: tf.Tensor) -> tf.Tensor:
    """``mlp(h)`` for a rank-2 ``h``, by `tf.matmul`.

    The same function as `MLP.__call__`, whose ``einsum`` (written for any rank) made a
    training step of `DeepSets` about eight times slower, gradient included, on the
    ``[batch * width, 1]`` inputs of the encoder.
    """
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
        h = tf.matmul(h, w) + b
        if i < len(mlp.weights) - 1:
            h = tf.tanh(h)
    return h


def _positive(raw):
    """A scale from an unconstrained output, kept away from zero."""
    return tf.exp(raw) + 1e-4


def _normal(params) -> tfd.Normal:
    return tfd.Normal(params[..., 0], _positive(params[..., 1]))


def _normal_lognormal_params(params) -> tfd.JointDistributionNamed:
    return _normal_lognormal(params[..., 0], _positive(params[..., 1]), params[..., 2],
                             _positive(params[..., 3]))


#: The families of $q$ that `DeepSets` can output, by name: ``(number of parameters, map)``.
#: With $s(\eta) = e^\eta + 10^{-4}$ (a scale kept away from zero):
#: ``"normal"``: $\mathcal N(x; \eta_1, s(\eta_2)^2)$, for `IidGaussianMean`;
#: ``"normal-lognormal"``: $\mathcal N(x; \eta_1, s(\eta_2)^2)\,
#: \mathrm{LogNormal}(\sigma^2; \eta_3, s(\eta_4)^2)$ over ``{"x", "sigma2"}``, for
#: `IidNormalInverseGamma`.
FAMILIES = {"normal": (2, _normal), "normal-lognormal": (4, _normal_lognormal_params)}

_POOLINGS = ("sum", "mean")


class DeepSets(tf.Module):
    r"""A permutation-invariant inference network for NaN-padded data sets.

    The encoder $\varphi$, an `amortlib.networks.MLP` from 1 to ``summary_size`` outputs, is
    applied to each standardised observation $(y_i - \text{input\_loc})/\text{input\_scale}$;
    padded entries are set to zero first and their encodings multiplied by zero, so they
    contribute nothing. The encodings are summed or averaged over the $n$ observations, $\log n$
    is appended, and the head $\rho$ (an MLP) maps the result to the parameters of ``family``.

    Args:
        family: a name in `FAMILIES`, the distribution $q$ returns.
        encoder: hidden widths of $\varphi$.
        summary_size: outputs of $\varphi$, the size of the pooled summary.
        head: hidden widths of $\rho$.
        pooling: ``"sum"`` or ``"mean"``.
        input_loc, input_scale: centre and scale of typical observations.
        seed: an integer seed for the initial weights.
        name: name of the module.

    Example:
        >>> q_net = DeepSets("normal", encoder=(8,), summary_size=4, head=(8,))
        >>> q_net(pad([[0.5, -1.0], [2.0]])).batch_shape
        TensorShape([2])
    """

    def __init__(self, family: str = "normal", *, encoder: Sequence[int] = (32, 32),
                 summary_size: int = 16, head: Sequence[int] = (32, 32),
                 pooling: str = "mean", input_loc: float = 0.0, input_scale: float = 1.0,
                 seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        _checks.one_of("family", family, tuple(FAMILIES))
        self.pooling = _checks.one_of("pooling", pooling, _POOLINGS)
        self.family = family
        self.input_loc = _checks.finite_scalar("input_loc", input_loc)
        self.input_scale = _checks.positive_scalar("input_scale", input_scale)
        summary_size = _checks.positive_int("summary_size", summary_size)
        num_params, self._make = FAMILIES[family]
        self.encoder = MLP(1, encoder, summary_size, seed=seed)
        # The head's seed is split from the encoder's (never added to it: no overflow).
        _, head_seed = tfp.random.split_seed(_checks.seed(seed), n=2)
        self.head = MLP(summary_size + 1, head, num_params, seed=head_seed)

    @_plain
    def summary(self, y) -> tf.Tensor:
        r"""The pooled summary and $\log n$, shape ``[batch, summary_size + 1]``."""
        y = _data_sets(y)
        mask = ~tf.math.is_nan(y)
        u = tf.where(mask, (y - self.input_loc) / self.input_scale, 0.0)
        weight = tf.cast(mask, _checks.DTYPE)
        # The encoder sees one observation per row, then the rows go back to their data sets.
        flat = _forward(self.encoder, tf.reshape(u, [-1, 1]))
        encoded = tf.reshape(flat, tf.concat([tf.shape(u), [-1]], 0)) * weight[..., tf.newaxis]
        n = tf.reduce_sum(weight, axis=1)
        pooled = tf.reduce_sum(encoded, axis=1)
        if self.pooling == "mean":
            pooled = pooled / n[:, tf.newaxis]
        return tf.concat([pooled, tf.math.log(n)[:, tf.newaxis]], axis=1)

    @_plain
    def params(self, y) -> tf.Tensor:
        """The unconstrained parameters of $q$ that the head outputs, ``[batch, num_params]``."""
        return _forward(self.head, self.summary(y))

    @_plain
    def __call__(self, y) -> tfd.Distribution:
        r"""Return $q_\phi(\cdot \mid y)$, batched over the data sets in ``y``."""
        return self._make(self.params(y))
