r"""Generative models $p(\text{latents}, y)$ of the book's chapters, with their exact posteriors.

A model is a joint distribution over latent variables and an observation ``y``. Every model here
offers the same small interface, which is all the losses and the training loop use:

- ``sample(batch_size, seed)`` returns ``(latents, y)`` drawn from $p(\text{latents}, y)$;
- ``log_prob(latents, y)`` returns $\log p(\text{latents}, y)$, broadcasting over leading
  sample dimensions of ``latents``;
- ``posterior(y)`` returns the exact posterior $p(\text{latents} \mid y)$ as a distribution;
- ``evidence()`` returns the marginal $p(y)$.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

tfd = tfp.distributions

__all__ = ["LatentVariableModel", "GaussianUnknownMean", "LinearGaussianParams"]


class LatentVariableModel:
    """Base class: a model given as a `tfd.JointDistributionNamed` whose last part is ``y``.

    Subclasses set ``self.joint``; the latents are all of its parts except ``y``. With a single
    latent, ``latents`` is a tensor; with several, a dict keyed by the parts' names.
    """

    joint: tfd.JointDistributionNamed

    @property
    def latent_names(self) -> tuple[str, ...]:
        """Names of the latent variables, in the order the joint distribution lists them."""
        return tuple(name for name in self.joint.model if name != "y")

    def sample(self, batch_size: int, seed=None):
        """Draw ``batch_size`` pairs ``(latents, y)`` from the joint distribution.

        Args:
            batch_size: number of independent draws, a positive integer.
            seed: an integer, a stateless seed (a shape-[2] int tensor) or None (not reproducible).

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
        if not isinstance(latents, dict):
            (name,) = self.latent_names
            latents = {name: latents}
        return self.joint.log_prob(dict(latents, y=y))


class LinearGaussianParams(NamedTuple):
    r"""Parameters of $q(x \mid y) = \mathcal N(x;\ a y + b,\ c^2)$; ``c`` is a standard deviation."""

    a: float
    b: float
    c: float


class GaussianUnknownMean(LatentVariableModel):
    r"""Gaussian with unknown mean: $x \sim \mathcal N(\mu_0, \sigma_0^2)$, $y \mid x \sim \mathcal N(x, \sigma^2)$.

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
        r"""The closed-form optimum $(a^*, b^*, c^*)$ of $q(x \mid y) = \mathcal N(a y + b, c^2)$."""
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
