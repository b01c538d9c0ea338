r"""Generative models $p(\text{latents}, y)$ of the book's chapters, with their exact posteriors.

A model is a joint distribution over latent variables and an observation ``y``. Every model here
offers the same small interface, which is all the losses and the training loop use:

- ``sample(batch_size, seed)`` returns ``(latents, y)`` drawn from $p(\text{latents}, y)$;
- ``log_prob(latents, y)`` returns $\log p(\text{latents}, y)$, broadcasting over leading
  sample dimensions of ``latents``;
- ``posterior(y)`` returns the exact posterior $p(\text{latents} \mid y)$ as a distribution;
- ``evidence()`` returns the marginal $p(y)$.

Models with discrete latents also list their values in ``discrete_support`` (a dict from the
latent's name to its values), which is what enumeration needs (see `amortlib.losses.qp_loss`
and `amortlib.evaluation.kl_divergence`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

tfd = tfp.distributions

__all__ = [
    "LatentVariableModel",
    "GaussianUnknownMean",
    "LinearGaussianParams",
    "GaussianMixturePrior",
    "GaussianMixtureExplicit",
    "OpenUniverseMixture",
    "gaussian_mixture_posterior",
]


class LatentVariableModel:
    """Base class: a model given as a `tfd.JointDistributionNamed` whose last part is ``y``.

    Subclasses set ``self.joint``; the latents are all of its parts except ``y``. With a single
    latent, ``latents`` is a tensor; with several, a dict keyed by the parts' names.
    """

    joint: tfd.JointDistributionNamed
    #: Values of each discrete latent, by name; empty when all latents are continuous.
    discrete_support: dict = {}

    @property
    def latent_names(self) -> tuple[str, ...]:
        """Names of the latent variables, in the order the joint distribution lists them."""
        return tuple(name for name in self.joint.model if name != "y")

    def sample(self, batch_size: int, seed=None):
        """Draw ``batch_size`` pairs ``(latents, y)`` from the joint distribution.

        Args:
            batch_size: number of independent draws, a positive integer.
            seed: an integer or a stateless seed (a shape-[2] int tensor); required, None
                is refused.

        Returns:
            ``(latents, y)``; ``y`` has shape ``[batch_size]``.
        """
        batch_size = _checks.positive_int("batch_size", batch_size)
        draws = dict(self.joint.sample(batch_size, seed=_checks.seed(seed)))
        y = draws.pop("y")
        latents = draws if len(draws) > 1 else draws.popitem()[1]
        return latents, y

    def log_prob(self, latents, y) -> tf.Tensor:
        r"""Return $\log p(\text{latents}, y)$, broadcasting ``latents`` against ``y``."""
        y = _checks.finite_values("y", y)
        if not isinstance(latents, dict):
            (name,) = self.latent_names
            latents = {name: latents}
        return self.joint.log_prob(dict(latents, y=y))


class LinearGaussianParams(NamedTuple):
    r"""Parameters of $q(x \mid y) = \mathcal N(x;\ a y + b,\ c^2)$; ``c`` is a standard deviation.
    """

    a: float
    b: float
    c: float


class GaussianUnknownMean(LatentVariableModel):
    r"""Gaussian with unknown mean: $x \sim \mathcal N(\mu_0, \sigma_0^2)$,
    $y \mid x \sim \mathcal N(x, \sigma^2)$.

    The posterior is Gaussian with precision $1/\sigma_0^2 + 1/\sigma^2$:

    .. math::

        p(x \mid y) = \mathcal N\!\left(x;\ a^* y + b^*,\ {c^*}^2\right),\quad
        a^* = \frac{\sigma_0^2}{\sigma_0^2 + \sigma^2},\quad
        b^* = \frac{\mu_0 \sigma^2}{\sigma_0^2 + \sigma^2},\quad
        c^* = \frac{\sigma_0 \sigma}{\sqrt{\sigma_0^2 + \sigma^2}}.

    Args:
        mu0: prior mean $\mu_0$, finite.
        sigma0: prior standard deviation $\sigma_0 > 0$.
        sigma: observation noise standard deviation $\sigma > 0$.

    Raises:
        ValueError: if a scale is not positive or a parameter is not finite.

    Example:
        >>> model = GaussianUnknownMean(mu0=0.0, sigma0=1.0, sigma=1.0)
        >>> model.optimal_params()  # doctest: +ELLIPSIS
        LinearGaussianParams(a=0.5, b=0.0, c=0.7071...)
    """

    def __init__(self, mu0: float = 0.0, sigma0: float = 1.0, sigma: float = 1.0):
        self.mu0 = _checks.finite_scalar("mu0", mu0)
        self.sigma0 = _checks.positive_scalar("sigma0", sigma0)
        self.sigma = _checks.positive_scalar("sigma", sigma)
        self.joint = tfd.JointDistributionNamed(
            dict(
                x=tfd.Normal(self.mu0, self.sigma0),
                y=lambda x: tfd.Normal(x, self.sigma),
            )
        )

    def __repr__(self) -> str:
        return f"GaussianUnknownMean(mu0={self.mu0}, sigma0={self.sigma0}, sigma={self.sigma})"

    def optimal_params(self) -> LinearGaussianParams:
        r"""The closed-form optimum $(a^*, b^*, c^*)$ of $q(x \mid y) = \mathcal N(a y + b, c^2)$.
        """
        s0_sq, s_sq = self.sigma0**2, self.sigma**2
        return LinearGaussianParams(
            a=s0_sq / (s0_sq + s_sq),
            b=self.mu0 * s_sq / (s0_sq + s_sq),
            c=(s0_sq * s_sq / (s0_sq + s_sq)) ** 0.5,
        )

    def posterior(self, y) -> tfd.Normal:
        r"""The exact posterior $p(x \mid y)$, batched over ``y``."""
        y = _checks.observations(y)
        a, b, c = self.optimal_params()
        return tfd.Normal(loc=a * y + b, scale=tf.fill(tf.shape(y), c))

    def evidence(self) -> tfd.Normal:
        r"""The marginal likelihood $p(y) = \mathcal N(y;\ \mu_0,\ \sigma_0^2 + \sigma^2)$."""
        return tfd.Normal(self.mu0, (self.sigma0**2 + self.sigma**2) ** 0.5)


def gaussian_mixture_posterior(y, probs, locs, scales, sigma):
    r"""Posterior of a Gaussian-mixture prior observed with Gaussian noise, per component.

    For $z \sim \mathrm{Categorical}(\pi)$, $x \mid z \sim \mathcal N(\mu_z, s_z^2)$ and
    $y \mid x \sim \mathcal N(x, \sigma^2)$, Bayes' rule gives, for each component $k$,

    .. math::

        p(z = k \mid y) \propto \pi_k\, \mathcal N(y;\ \mu_k,\ s_k^2 + \sigma^2), \qquad
        p(x \mid y, z = k) = \mathcal N\!\Big(x;\ \frac{\mu_k / s_k^2 + y / \sigma^2}
        {1 / s_k^2 + 1 / \sigma^2},\ \frac{1}{1 / s_k^2 + 1 / \sigma^2}\Big).

    Args:
        y: observations, shape ``[]`` or ``[batch_size]`` (already checked).
        probs, locs, scales: the prior's $\pi_k$, $\mu_k$, $s_k$, each of shape ``[K]``.
        sigma: the noise standard deviation $\sigma$.

    Returns:
        ``(logits, loc, scale)``: unnormalised $\log p(z = k \mid y)$ and the mean and standard
        deviation of $p(x \mid y, z = k)$, each of shape ``[..., K]``.

    Example:
        >>> logits, loc, scale = gaussian_mixture_posterior(
        ...     tf.constant(0.0), [0.5, 0.5], [-5.0, 5.0], [1.0, 1.0], 10.0)
        >>> loc.numpy().round(3), scale.numpy().round(3)
        (array([-4.95,  4.95], dtype=float32), array([0.995, 0.995], dtype=float32))
    """
    probs, locs, scales = (tf.constant(v, _checks.DTYPE) for v in (probs, locs, scales))
    y = y[..., tf.newaxis]
    logits = tf.math.log(probs) + tfd.Normal(locs, tf.sqrt(scales**2 + sigma**2)).log_prob(y)
    precision = 1.0 / scales**2 + 1.0 / sigma**2
    loc = (locs / scales**2 + y / sigma**2) / precision
    return logits, loc, tf.broadcast_to(tf.sqrt(1.0 / precision), tf.shape(loc))


def _select(values, index, num_components: int):
    """``values[..., index]`` for an integer ``index`` broadcast against ``values[..., 0]``."""
    return tf.reduce_sum(tf.one_hot(index, num_components) * values, axis=-1)


class _GaussianMixtureBase(LatentVariableModel):
    """Parameters, checks and the per-component posterior shared by the two mixture models."""

    def __init__(self, probs, locs, scales, sigma):
        self.probs = _checks.probability_vector("probs", probs)
        size = len(self.probs)
        self.locs = _checks.real_vector("locs", locs, size=size)
        self.scales = _checks.real_vector("scales", scales, size=size, positive=True)
        self.sigma = _checks.positive_scalar("sigma", sigma)

    @property
    def num_components(self) -> int:
        """The number of mixture components $K$."""
        return len(self.probs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(probs={self.probs.tolist()}, locs={self.locs.tolist()}, "
                f"scales={self.scales.tolist()}, sigma={self.sigma})")

    def _prior_component(self) -> tuple[tfd.Categorical, tfd.Normal]:
        return (tfd.Categorical(probs=tf.constant(self.probs, _checks.DTYPE)),
                tfd.Normal(tf.constant(self.locs, _checks.DTYPE),
                           tf.constant(self.scales, _checks.DTYPE)))

    def component_posterior(self, y) -> tuple[tfd.Categorical, tfd.Normal]:
        r"""$p(z \mid y)$ and $p(x \mid y, z = k)$ for every $k$ (batch shape ``[..., K]``)."""
        y = _checks.observations(y)
        logits, loc, scale = gaussian_mixture_posterior(
            y, self.probs, self.locs, self.scales, self.sigma)
        return tfd.Categorical(logits=logits), tfd.Normal(loc, scale)

    def marginal_posterior(self, y) -> tfd.MixtureSameFamily:
        r"""The posterior of $x$ alone, $\sum_k p(z = k \mid y)\, p(x \mid y, z = k)$."""
        return tfd.MixtureSameFamily(*self.component_posterior(y))

    def evidence(self) -> tfd.MixtureSameFamily:
        r"""$p(y) = \sum_k \pi_k\, \mathcal N(y;\ \mu_k,\ s_k^2 + \sigma^2)$."""
        mixing, component = self._prior_component()
        return tfd.MixtureSameFamily(
            mixing, tfd.Normal(component.loc, tf.sqrt(component.scale**2 + self.sigma**2)))


class GaussianMixturePrior(_GaussianMixtureBase):
    r"""A Gaussian-mixture prior with the component marginalised out; the latent is $x$ alone.

    .. math::

        p(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x;\ \mu_k, s_k^2), \qquad
        p(y \mid x) = \mathcal N(y;\ x, \sigma^2).

    The posterior is again a mixture of $K$ Gaussians (see `gaussian_mixture_posterior`), with
    weights $\propto \pi_k\, \mathcal N(y;\ \mu_k, s_k^2 + \sigma^2)$.

    Args:
        probs: mixture weights $\pi_k$, non-negative, summing to one.
        locs: component means $\mu_k$, one per weight.
        scales: component standard deviations $s_k > 0$, one per weight.
        sigma: observation noise standard deviation $\sigma > 0$.

    Raises:
        ValueError: if the weights do not sum to one or are negative, the three sequences differ
            in length, a scale is not positive, or a value is not finite.

    Example:
        >>> model = GaussianMixturePrior([0.5, 0.5], [-5.0, 5.0], [1.0, 1.0], sigma=10.0)
        >>> model.posterior([0.0]).mean().numpy()
        array([0.], dtype=float32)
    """

    def __init__(self, probs=(0.5, 0.5), locs=(-5.0, 5.0), scales=(1.0, 1.0), sigma: float = 10.0):
        super().__init__(probs, locs, scales, sigma)
        self.joint = tfd.JointDistributionNamed(
            dict(
                x=tfd.MixtureSameFamily(*self._prior_component()),
                y=lambda x: tfd.Normal(x, self.sigma),
            )
        )

    def posterior(self, y) -> tfd.MixtureSameFamily:
        r"""The exact posterior $p(x \mid y)$, a mixture of $K$ Gaussians, batched over ``y``."""
        return self.marginal_posterior(y)


class GaussianMixtureExplicit(_GaussianMixtureBase):
    r"""The same mixture with its component $z$ explicit: latents $(z, x)$.

    .. math::

        z \sim \mathrm{Categorical}(\pi), \qquad x \mid z \sim \mathcal N(\mu_z, s_z^2), \qquad
        y \mid x \sim \mathcal N(x, \sigma^2).

    The exact posterior factorises as $p(z \mid y)\, p(x \mid y, z)$, a categorical times a
    Gaussian (see `gaussian_mixture_posterior`). Components are numbered $0, \dots, K-1$.

    Args:
        probs, locs, scales, sigma: as for `GaussianMixturePrior`.

    Raises:
        ValueError: as for `GaussianMixturePrior`.

    Example:
        >>> model = GaussianMixtureExplicit()
        >>> model.latent_names, model.discrete_support
        (('z', 'x'), {'z': (0, 1)})
    """

    def __init__(self, probs=(0.5, 0.5), locs=(-5.0, 5.0), scales=(1.0, 1.0), sigma: float = 10.0):
        super().__init__(probs, locs, scales, sigma)
        mixing, component = self._prior_component()
        k = self.num_components
        self.discrete_support = {"z": tuple(range(k))}
        self.joint = tfd.JointDistributionNamed(
            dict(
                z=mixing,
                x=lambda z: tfd.Normal(_select(component.loc, z, k),
                                       _select(component.scale, z, k)),
                y=lambda x: tfd.Normal(x, self.sigma),
            )
        )

    def posterior(self, y) -> tfd.JointDistributionNamed:
        r"""The exact posterior $p(z \mid y)\, p(x \mid y, z)$, batched over ``y``."""
        z_given_y, x_given_yz = self.component_posterior(y)
        k = self.num_components
        return tfd.JointDistributionNamed(
            dict(
                z=z_given_y,
                x=lambda z: tfd.Normal(_select(x_given_yz.loc, z, k),
                                       _select(x_given_yz.scale, z, k)),
            )
        )


class OpenUniverseMixture(LatentVariableModel):
    r"""An open-universe mixture: the number of components $k \in \{1, 2\}$ is itself latent.

    .. math::

        k \sim \mathrm{Categorical}(\rho) \text{ on } \{1, 2\}; \quad
        \begin{cases}
        x \sim \mathcal N(\mu_0, s^2) & k = 1,\\
        z \sim \mathrm{Categorical}(\pi),\ x \mid z \sim \mathcal N(\mu_z, s^2) & k = 2;
        \end{cases} \quad y \mid x \sim \mathcal N(x, \sigma^2).

    **Latent representation.** A draw with $k = 1$ has no $z$. To give every draw the same
    latents $(k, z, x)$, $z$ is drawn from its prior $\pi$ whatever $k$ is, and ignored when
    $k = 1$. The padded joint $\tilde p(k, z, x, y) = p(k)\, \pi_z\, p(x \mid k, z)\, p(y \mid x)$
    has the original model as its marginal, and if an inference network also uses $\pi_z$ for
    $z$ when $k = 1$, the factor $\pi_z$ cancels in $\log \tilde q - \log \tilde p$. So the qp
    loss, the pq loss (up to the constant $-\rho_1\, \mathbb E_\pi[\log \pi_z]$, which the
    $k = 1$ draws add) and both KL divergences are the same on the padded space as on the
    original one.

    **Exact posterior.** With $v = s^2 + \sigma^2$,
    $p(k = 1 \mid y) \propto \rho_1\, \mathcal N(y;\ \mu_0, v)$ and
    $p(k = 2, z \mid y) \propto \rho_2\, \pi_z\, \mathcal N(y;\ \mu_z, v)$; given the
    component, $x$ is Gaussian with precision $1/s^2 + 1/\sigma^2$ and mean
    $(\mu/s^2 + y/\sigma^2)/(1/s^2 + 1/\sigma^2)$, $\mu$ the component's mean.

    Args:
        k_probs: $(\rho_1, \rho_2)$, the prior of $k$ (summing to one).
        loc_single: $\mu_0$, the mean of the single component when $k = 1$.
        probs: $\pi$, the weights of the components when $k = 2$.
        locs: their means $\mu_z$, one per weight.
        scale: $s > 0$, the standard deviation of every component.
        sigma: $\sigma > 0$, the observation noise.

    Raises:
        ValueError: for probabilities that are negative or do not sum to one, ``k_probs`` not of
            length 2, ``locs`` and ``probs`` of different lengths, or a scale that is not positive.

    Example:
        >>> model = OpenUniverseMixture()
        >>> model.k_posterior([0.0]).probs_parameter().numpy().round(4)
        array([[0.9981, 0.0019]], dtype=float32)
    """

    #: The values of $k$; stored as floats, since `tfd.FiniteDiscrete` needs float outcomes.
    K_VALUES = (1.0, 2.0)

    def __init__(self, k_probs=(0.5, 0.5), loc_single: float = 0.0, probs=(0.5, 0.5),
                 locs=(-5.0, 5.0), scale: float = 1.0, sigma: float = 1.0):
        self.k_probs = _checks.probability_vector("k_probs", k_probs)
        if len(self.k_probs) != 2:
            raise ValueError(f"k_probs must have two entries, for k = 1 and k = 2; "
                             f"got {len(self.k_probs)}")
        self.loc_single = _checks.finite_scalar("loc_single", loc_single)
        self.probs = _checks.probability_vector("probs", probs)
        self.locs = _checks.real_vector("locs", locs, size=len(self.probs))
        self.scale = _checks.positive_scalar("scale", scale)
        self.sigma = _checks.positive_scalar("sigma", sigma)
        num = len(self.probs)
        self.discrete_support = {"k": self.K_VALUES, "z": tuple(range(num))}
        locs_t = tf.constant(self.locs, _checks.DTYPE)
        self.joint = tfd.JointDistributionNamed(
            dict(
                k=tfd.FiniteDiscrete(self.K_VALUES, probs=tf.constant(self.k_probs, _checks.DTYPE)),
                z=tfd.Categorical(probs=tf.constant(self.probs, _checks.DTYPE)),
                x=lambda k, z: tfd.Normal(
                    tf.where(k == 1.0, self.loc_single, _select(locs_t, z, num)), self.scale),
                y=lambda x: tfd.Normal(x, self.sigma),
            )
        )

    @property
    def num_components(self) -> int:
        """The number of components when $k = 2$ (the length of ``probs``)."""
        return len(self.probs)

    def __repr__(self) -> str:
        return (f"OpenUniverseMixture(k_probs={self.k_probs.tolist()}, "
                f"loc_single={self.loc_single}, probs={self.probs.tolist()}, "
                f"locs={self.locs.tolist()}, scale={self.scale}, sigma={self.sigma})")

    def _all_components(self):
        """Weights, means and scales of the $1 + K$ components of $p(x)$: $k = 1$ first."""
        weights = np.concatenate([[self.k_probs[0]], self.k_probs[1] * self.probs])
        locs = np.concatenate([[self.loc_single], self.locs])
        return weights, locs, np.full(len(locs), self.scale)

    def _component_posterior(self, y):
        y = _checks.observations(y)
        return gaussian_mixture_posterior(y, *self._all_components(), self.sigma)

    def k_posterior(self, y) -> tfd.FiniteDiscrete:
        r"""$p(k \mid y)$ on the outcomes $\{1, 2\}$, batched over ``y``."""
        logits, _, _ = self._component_posterior(y)
        k_logits = tf.stack([logits[..., 0], tf.reduce_logsumexp(logits[..., 1:], -1)], -1)
        return tfd.FiniteDiscrete(self.K_VALUES, logits=k_logits)

    def z_posterior(self, y) -> tfd.Categorical:
        r"""$p(z \mid y, k = 2)$, batched over ``y``."""
        logits, _, _ = self._component_posterior(y)
        return tfd.Categorical(logits=logits[..., 1:])

    def marginal_posterior(self, y) -> tfd.MixtureSameFamily:
        r"""$p(x \mid y)$: a mixture of $1 + K$ Gaussians ($k = 1$, then $k = 2$ with each $z$)."""
        logits, loc, scale = self._component_posterior(y)
        return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Normal(loc, scale))

    def posterior(self, y) -> tfd.JointDistributionNamed:
        r"""The exact posterior $p(k, z, x \mid y)$ on the padded latents (see the class doc)."""
        logits, loc, scale = self._component_posterior(y)
        num = self.num_components
        log_prior_z = tf.constant(np.log(self.probs), _checks.DTYPE)
        z_logits = tf.math.log_softmax(logits[..., 1:])

        def x_given(k, z):
            return tfd.Normal(
                tf.where(k == 1.0, loc[..., 0], _select(loc[..., 1:], z, num)), scale[..., 0])

        return tfd.JointDistributionNamed(
            dict(
                k=self.k_posterior(y),
                z=lambda k: tfd.Categorical(
                    logits=tf.where((k == 1.0)[..., tf.newaxis], log_prior_z, z_logits)),
                x=x_given,
            )
        )

    def evidence(self) -> tfd.MixtureSameFamily:
        r"""$p(y) = \rho_1 \mathcal N(y;\ \mu_0, v) + \rho_2 \sum_z \pi_z \mathcal N(y;\ \mu_z, v)$.

        Here $v = s^2 + \sigma^2$.
        """
        weights, locs, scales = self._all_components()
        return tfd.MixtureSameFamily(
            tfd.Categorical(probs=tf.constant(weights, _checks.DTYPE)),
            tfd.Normal(tf.constant(locs, _checks.DTYPE),
                       tf.constant(np.sqrt(scales**2 + self.sigma**2), _checks.DTYPE)))
