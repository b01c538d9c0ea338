r"""Inference networks: maps $g_\phi: y \mapsto q_\phi(\cdot \mid y)$.

Each network is a `tf.Module` whose call takes a batch of observations ``y`` and returns a
`tfd.Distribution` over the latents, batched over ``y``. Its trainable variables are $\phi$.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.models import LinearGaussianParams

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["LinearGaussian"]


class LinearGaussian(tf.Module):
    r"""The inference network $q_\phi(x \mid y) = \mathcal N(x;\ a y + b,\ c^2)$ with $\phi = (a, b, c)$.

    ``c`` is a standard deviation, kept positive by storing $\log c$.

    Args:
        a: initial slope.
        b: initial offset.
        c: initial standard deviation, > 0.
        name: name of the module.

    Example:
        >>> q_net = LinearGaussian(a=0.5, b=0.0, c=1.0)
        >>> q_net([2.0]).mean().numpy()
        array([1.], dtype=float32)
    """

    def __init__(self, a: float = 0.0, b: float = 0.0, c: float = 1.0, name: str | None = None):
        super().__init__(name=name)
        self.a = tf.Variable(_checks.finite_scalar("a", a), dtype=_checks.DTYPE, name="a")
        self.b = tf.Variable(_checks.finite_scalar("b", b), dtype=_checks.DTYPE, name="b")
        self.c = tfp.util.TransformedVariable(
            _checks.positive_scalar("c", c), bijector=tfb.Exp(), dtype=_checks.DTYPE, name="c"
        )

    def __call__(self, y) -> tfd.Normal:
        r"""Return $q_\phi(x \mid y)$ for a scalar or a 1-D batch of observations ``y``."""
        y = _checks.observations(y)
        return tfd.Normal(loc=self.a * y + self.b, scale=self.c)

    def params(self) -> LinearGaussianParams:
        """The current $(a, b, c)$ as Python floats."""
        return LinearGaussianParams(
            float(self.a.numpy()), float(self.b.numpy()), float(tf.convert_to_tensor(self.c))
        )
