r"""The two ways to train an inference network, written once for any model and network.

Both losses average a divergence over observations drawn from the model, $y \sim p(y)$:

- the **qp loss** (variational inference, reverse KL) is the negative ELBO,

  .. math::
      \mathcal L_{qp}(\phi) = \mathbb E_{p(y)}\Big[\mathbb E_{q_\phi(x \mid y)}
      \big[\log q_\phi(x \mid y) - \log p(x, y)\big]\Big]
      = \mathbb E_{p(y)}\big[\mathrm{KL}(q_\phi(\cdot \mid y) \,\|\, p(\cdot \mid y)) - \log p(y)\big];

- the **pq loss** (inference compilation, forward KL) is the negative log density of the
  network at the model's own latents,

  .. math::
      \mathcal L_{pq}(\phi) = \mathbb E_{p(x, y)}\big[-\log q_\phi(x \mid y)\big]
      = \mathbb E_{p(y)}\big[\mathrm{KL}(p(\cdot \mid y) \,\|\, q_\phi(\cdot \mid y))\big]
      + \mathbb E_{p(y)}\big[\mathrm H(p(\cdot \mid y))\big].
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

__all__ = ["qp_loss", "pq_loss", "LOSSES"]


def qp_loss(model, q_net, y, *, sample_size: int = 1, seed=None) -> tf.Tensor:
    r"""Monte Carlo estimate of the qp loss (negative ELBO) on a batch of observations.

    Draws ``sample_size`` reparameterised samples $x \sim q_\phi(x \mid y)$ per observation and
    averages $\log q_\phi(x \mid y) - \log p(x, y)$ over samples and observations.

    Args:
        model: a model with ``log_prob(latents, y)`` (see `amortlib.models`).
        q_net: an inference network; ``q_net(y)`` returns a reparameterised distribution.
        y: observations, shape ``[batch_size]``.
        sample_size: samples from $q$ per observation, a positive integer.
        seed: an integer, a stateless seed (a shape-[2] int tensor) or None.

    Returns:
        A scalar tensor. When $q_\phi(\cdot \mid y) = p(\cdot \mid y)$ every term equals
        $-\log p(y)$ exactly.

    Raises:
        ValueError: if ``sample_size`` is not a positive integer or ``q_net``'s distribution
            cannot be reparameterised.
    """
    sample_size = _checks.positive_int("sample_size", sample_size)
    q = q_net(y)
    if q.reparameterization_type != tfp.distributions.FULLY_REPARAMETERIZED:
        raise ValueError(
            "q_net must return a fully reparameterised distribution for the reparameterised "
            f"qp loss; {type(q).__name__} is not"
        )
    x = q.sample(sample_size, seed=_checks.seed(seed))
    return tf.reduce_mean(q.log_prob(x) - model.log_prob(x, y))


def pq_loss(q_net, latents, y) -> tf.Tensor:
    r"""The pq loss (inference compilation) on a batch of model draws ``(latents, y)``.

    Averages $-\log q_\phi(\text{latents} \mid y)$; the draws must come from $p(\text{latents}, y)$.
    No reparameterisation is needed: the gradient flows only through $q$'s density.

    Args:
        q_net: an inference network.
        latents: latents drawn from the model together with ``y``.
        y: observations, shape ``[batch_size]``.

    Returns:
        A scalar tensor, an unbiased estimate of
        $\mathbb E_{p(y)}[\mathrm{KL}(p \,\|\, q)] + \mathbb E_{p(y)}[\mathrm H(p(\cdot \mid y))]$.
    """
    return -tf.reduce_mean(q_net(y).log_prob(latents))


#: The losses by name, as `amortlib.training.fit` accepts them.
LOSSES = ("qp", "pq")
