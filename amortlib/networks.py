r"""Inference networks: maps $g_\phi: y \mapsto q_\phi(\cdot \mid y)$.

Each network is a `tf.Module` whose call takes a batch of observations ``y`` and returns a
`tfd.Distribution` over the latents, batched over ``y``. Its trainable variables are $\phi$.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.models import LinearGaussianParams

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["LinearGaussian", "MLP", "MLPGaussian", "CategoricalGaussian", "OpenUniverseNetwork",
           "Categorical", "FiniteDiscrete"]


def _gumbel_max_draws(logits, n, seed, dtype):
    r"""``n`` draws per row of ``logits`` by the Gumbel-max trick on stateless uniforms.

    $\arg\max_k (\ell_k + G_k)$ with $G_k = -\log(-\log U_k)$ i.i.d. Gumbel is a draw from
    $\mathrm{softmax}(\ell)$; every (draw, row, category) has its own uniform, so draws for
    different rows are independent. Returns shape ``[n] + logits.shape[:-1]``.
    """
    logits = tf.stop_gradient(tf.convert_to_tensor(logits))
    shape = tf.concat([[n], tf.shape(logits)], 0)
    u = tf.random.stateless_uniform(shape, seed=tfp.random.sanitize_seed(seed),
                                    minval=np.finfo(np.float32).tiny, maxval=1.0,
                                    dtype=logits.dtype)
    return tf.cast(tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1), dtype)


class Categorical(tfd.Categorical):
    r"""`tfd.Categorical` whose draws for different batch members are independent.

    TensorFlow's CPU ``stateless_categorical`` (behind `tfd.Categorical.sample`) reuses random
    numbers across the rows of a batch: with logits of shape ``[500, 2]`` and 8 draws, about a
    quarter of the draws are exact copies of draws for other rows, whatever the seed. Each row's
    draws are still correct, so averages stay unbiased, but the variance of a batch average is
    inflated (about 1.5 times at 8 draws per row). This subclass samples by the Gumbel-max trick
    on `tf.random.stateless_uniform` instead; the seed contract (a stateless seed or an integer,
    the same seed giving the same draws) and everything else are those of `tfd.Categorical`.

    Example:
        >>> d = Categorical(logits=[[0.0, 0.0], [0.0, 1.0]])
        >>> d.sample(3, seed=(0, 1)).shape
        TensorShape([3, 2])
    """

    def _sample_n(self, n, seed=None):
        return _gumbel_max_draws(self.logits_parameter(), n, seed, self.dtype)


class FiniteDiscrete(tfd.FiniteDiscrete):
    r"""`tfd.FiniteDiscrete` sampled as `Categorical` is, with independent draws across rows.

    Example:
        >>> d = FiniteDiscrete((1.0, 2.0), logits=[[0.0, 0.0], [0.0, 1.0]])
        >>> d.sample(3, seed=(0, 1)).shape
        TensorShape([3, 2])
    """

    def _sample_n(self, n, seed=None, **kwargs):
        return tf.gather(self.outcomes,
                         _gumbel_max_draws(self.logits_parameter(), n, seed, tf.int32))


class LinearGaussian(tf.Module):
    r"""The inference network $q_\phi(x \mid y) = \mathcal N(x;\ a y + b,\ c^2)$, $\phi=(a, b, c)$.

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


def _hidden_sizes(hidden) -> tuple[int, ...]:
    if isinstance(hidden, str) or not isinstance(hidden, Sequence):
        raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}")
    return tuple(_checks.positive_int("hidden", h) for h in hidden)


_ACTIVATIONS = {"tanh": tf.tanh, "relu": tf.nn.relu}
_INITIALISERS = ("glorot", "he")


class MLP(tf.Module):
    r"""A small multilayer perceptron $\mathbb R^{d_\text{in}} \to \mathbb R^{d_\text{out}}$.

    Hidden layers apply ``activation`` to an affine map; the output layer is affine. Weights start
    from a uniform draw under a stateless seed, biases at zero (the output bias at
    ``output_bias``), so a network is a deterministic function of its arguments. Layer $i$ draws
    its weights from the seed folded with $i$, on $[-l, l]$ with $l = \sqrt{6 / (n_\text{in} +
    n_\text{out})}$ (``initialiser="glorot"``) or $l = \sqrt{6 / n_\text{in}}$ (``"he"``, for
    ReLU).

    Part I's networks use the defaults (tanh, Glorot); Part II's inference functions
    (`amortlib.families.MLPFunction`) use ReLU, He and ``zero_output=True``, so that the network
    starts as the constant ``output_bias``.

    Args:
        input_size: $d_\text{in}$, a positive integer.
        hidden: widths of the hidden layers, for example ``(16, 16)`` (may be empty).
        output_size: $d_\text{out}$, a positive integer.
        output_bias: initial bias of the output layer (a number or one per output).
        activation: ``"tanh"`` or ``"relu"``, applied after every hidden layer.
        initialiser: ``"glorot"`` or ``"he"``, the range of the initial uniform weights.
        zero_output: start the output layer's weights at zero instead of a random draw.
        seed: an integer seed for the initial weights (or a stateless seed tensor).
        name: name of the module.

    Example:
        >>> mlp = MLP(1, (8, 8), 2, seed=0)
        >>> mlp(tf.zeros([5, 1])).shape
        TensorShape([5, 2])
        >>> relu = MLP(1, (4,), 1, activation="relu", initialiser="he", zero_output=True)
        >>> float(tf.reduce_max(tf.abs(relu(tf.ones([3, 1])))))
        0.0
    """

    def __init__(self, input_size: int, hidden: Sequence[int], output_size: int, *,
                 output_bias=0.0, activation: str = "tanh", initialiser: str = "glorot",
                 zero_output: bool = False, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        sizes = [_checks.positive_int("input_size", input_size), *_hidden_sizes(hidden),
                 _checks.positive_int("output_size", output_size)]
        self.activation = _checks.one_of("activation", activation, tuple(_ACTIVATIONS))
        self.initialiser = _checks.one_of("initialiser", initialiser, _INITIALISERS)
        zero_output = _checks.boolean("zero_output", zero_output)
        base = _checks.seed(seed)
        self.weights, self.biases = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            if last and zero_output:
                init = tf.zeros([n_in, n_out])
            else:
                fan = n_in if self.initialiser == "he" else n_in + n_out
                limit = np.sqrt(6.0 / fan)
                init = tf.random.stateless_uniform(
                    [n_in, n_out], tf.random.experimental.stateless_fold_in(base, i),
                    -limit, limit)
            self.weights.append(tf.Variable(init, name=f"w{i}"))
            bias = tf.broadcast_to(tf.constant(output_bias, _checks.DTYPE), [n_out]) if last \
                else tf.zeros([n_out])
            self.biases.append(tf.Variable(bias, name=f"b{i}"))

    def __call__(self, inputs) -> tf.Tensor:
        """Apply the network to the last axis of ``inputs``, shape ``[..., input_size]``."""
        h = tf.convert_to_tensor(inputs, _checks.DTYPE)
        # One 2-D matmul on the rows, not einsum: about 5x faster steps for the mixture
        # networks, and every row is computed the same way whatever the leading axes.
        leading = tf.shape(h)[:-1]
        h = tf.reshape(h, [-1, h.shape[-1]])
        activation = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = tf.matmul(h, w) + b
            if i < len(self.weights) - 1:
                h = activation(h)
        return tf.reshape(h, tf.concat([leading, [h.shape[-1]]], 0))


def _sub_seeds(seed, count: int) -> list[tf.Tensor]:
    """Stateless seeds of a network's ``count`` MLPs, split from ``seed``.

    The library's seed policy (`_checks.seed`): ``seed`` (an integer in $[0, 2^{31})$ or a
    stateless seed tensor; None is refused) is split by `tfp.random.split_seed`, never added
    to, so every integer seed is valid, the sub-seeds are distinct, and an error names the
    value that was passed.
    """
    return list(tfp.random.split_seed(_checks.seed(seed), n=count))


class _Standardised(tf.Module):
    """Shared by the MLP networks: observations enter as $(y - \\text{loc}) / \\text{scale}$."""

    def _set_input(self, input_loc, input_scale):
        self.input_loc = _checks.finite_scalar("input_loc", input_loc)
        self.input_scale = _checks.positive_scalar("input_scale", input_scale)

    def _features(self, y, z=None, num_components: int = 0):
        """``[..., 1]`` standardised ``y``; with ``z``, ``y`` broadcast to it and one-hot ``z``."""
        u = (y - self.input_loc) / self.input_scale
        if z is None:
            return u[..., tf.newaxis]
        shape = tf.broadcast_dynamic_shape(tf.shape(u), tf.shape(z))
        u, z = tf.broadcast_to(u, shape), tf.broadcast_to(z, shape)
        return tf.concat([u[..., tf.newaxis], tf.one_hot(z, num_components)], axis=-1)


def _scale(raw):
    """A standard deviation from an unconstrained output: $\\exp$ of it, kept away from zero."""
    return tf.exp(raw) + 1e-4


class MLPGaussian(_Standardised):
    r"""$q_\phi(x \mid y) = \mathcal N\big(x;\ \eta^1(y),\ \eta^2(y)\big)$ with two small MLPs.

    $\eta^1$ gives the mean and $\eta^2$ the *variance* (the notation of Le's
    note); the second network outputs $\log \sqrt{\eta^2}$. Both read the
    standardised observation $(y - \text{input\_loc}) / \text{input\_scale}$.

    Args:
        hidden: hidden-layer widths of each MLP.
        input_loc, input_scale: centre and scale of typical observations.
        seed: an integer or stateless seed for the initial weights, split by
            `tfp.random.split_seed` into one seed per MLP.
        name: name of the module.

    Example:
        >>> q_net = MLPGaussian(hidden=(8,), input_scale=10.0, seed=0)
        >>> q_net([0.0, 3.0]).batch_shape
        TensorShape([2])
    """

    def __init__(self, hidden: Sequence[int] = (16, 16), *, input_loc: float = 0.0,
                 input_scale: float = 1.0, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        self._set_input(input_loc, input_scale)
        mean_seed, log_sd_seed = _sub_seeds(seed, 2)
        self.mean_net = MLP(1, hidden, 1, seed=mean_seed)
        self.log_sd_net = MLP(1, hidden, 1, seed=log_sd_seed)

    def loc(self, y) -> tf.Tensor:
        r"""$\eta^1(y)$, the mean of $q(x \mid y)$."""
        return self.mean_net(self._features(_checks.observations(y)))[..., 0]

    def variance(self, y) -> tf.Tensor:
        r"""$\eta^2(y)$, the variance of $q(x \mid y)$."""
        return _scale(self.log_sd_net(self._features(_checks.observations(y)))[..., 0]) ** 2

    def __call__(self, y) -> tfd.Normal:
        r"""Return $q_\phi(x \mid y)$ for a scalar or a 1-D batch of observations ``y``."""
        u = self._features(_checks.observations(y))
        return tfd.Normal(self.mean_net(u)[..., 0], _scale(self.log_sd_net(u)[..., 0]))


class CategoricalGaussian(_Standardised):
    r"""$q_\phi(z \mid y)\, q_\phi(x \mid y, z)$: a categorical, then a Gaussian.

    $q(z \mid y) = \mathrm{Categorical}(\mathrm{softmax}\ \eta^{z}(y))$ and
    $q(x \mid y, z) = \mathcal N(\eta^{\mu}(y, z), \eta^{\sigma}(y, z)^2)$, three MLPs; the
    last two read $y$ and the one-hot code of $z$. The call returns a
    `tfd.JointDistributionNamed` over ``{"z", "x"}``, matching `GaussianMixtureExplicit`.

    Args:
        num_components: $K$, the number of values of $z$.
        hidden: hidden-layer widths of each MLP.
        input_loc, input_scale: centre and scale of typical observations.
        seed: an integer or stateless seed for the initial weights, split by
            `tfp.random.split_seed` into one seed per MLP.
        name: name of the module.

    Example:
        >>> q_net = CategoricalGaussian(2, hidden=(8,), seed=0)
        >>> q_net.marginal([0.0, 1.0]).batch_shape
        TensorShape([2])
    """

    def __init__(self, num_components: int = 2, hidden: Sequence[int] = (16, 16), *,
                 input_loc: float = 0.0, input_scale: float = 1.0, seed: int = 0,
                 name: str | None = None):
        super().__init__(name=name)
        self.num_components = _checks.positive_int("num_components", num_components)
        self._set_input(input_loc, input_scale)
        k = self.num_components
        seeds = _sub_seeds(seed, 3)
        self.logits_net = MLP(1, hidden, k, seed=seeds[0])
        self.mean_net = MLP(1 + k, hidden, 1, seed=seeds[1])
        self.log_sd_net = MLP(1 + k, hidden, 1, seed=seeds[2])

    def z_given_y(self, y) -> Categorical:
        r"""$q(z \mid y)$."""
        return Categorical(logits=self.logits_net(self._features(_checks.observations(y))))

    def x_given_yz(self, y, z) -> tfd.Normal:
        r"""$q(x \mid y, z)$ for integer ``z`` broadcast against ``y``."""
        u = self._features(y, z, self.num_components)
        return tfd.Normal(self.mean_net(u)[..., 0], _scale(self.log_sd_net(u)[..., 0]))

    def __call__(self, y) -> tfd.JointDistributionNamed:
        r"""Return $q_\phi(z, x \mid y)$, batched over ``y``."""
        y = _checks.observations(y)
        return tfd.JointDistributionNamed(
            dict(z=self.z_given_y(y), x=lambda z: self.x_given_yz(y, z)))

    def marginal(self, y) -> tfd.MixtureSameFamily:
        r"""$q(x \mid y) = \sum_z q(z \mid y)\, q(x \mid y, z)$, a mixture of $K$ Gaussians."""
        y = _checks.observations(y)
        every_z = tf.broadcast_to(tf.range(self.num_components),
                                  tf.concat([tf.shape(y), [self.num_components]], 0))
        return tfd.MixtureSameFamily(self.z_given_y(y),
                                     self.x_given_yz(y[..., tf.newaxis], every_z))


class OpenUniverseNetwork(_Standardised):
    r"""The inference network for `OpenUniverseMixture`, one head per part of the latents.

    - $q(k \mid y)$ on $\{1, 2\}$ from an MLP;
    - $q(z \mid y, k = 2)$ from an MLP; for $k = 1$, $z$ is the padding variable of the model and
      $q(z \mid y, k = 1)$ is fixed to its prior ``padding_probs``, so it cancels in every loss;
    - $q(x \mid y, k = 1) = \mathcal N(m_1(y), s_1(y)^2)$ and
      $q(x \mid y, k = 2, z) = \mathcal N(m_2(y, z), s_2(y, z)^2)$, MLPs of $y$ (and one-hot $z$).

    Args:
        padding_probs: the model's prior of $z$ (``model.probs``); its length is $K$.
        hidden: hidden-layer widths of each MLP.
        input_loc, input_scale: centre and scale of typical observations.
        seed: an integer or stateless seed for the initial weights, split by
            `tfp.random.split_seed` into one seed per MLP.
        name: name of the module.

    Raises:
        ValueError: if ``padding_probs`` is not a probability vector.

    Example:
        >>> q_net = OpenUniverseNetwork((0.5, 0.5), hidden=(8,), seed=0)
        >>> sorted(q_net([0.0]).sample(seed=(0, 1)))
        ['k', 'x', 'z']
    """

    def __init__(self, padding_probs=(0.5, 0.5), hidden: Sequence[int] = (8, 8), *,
                 input_loc: float = 0.0, input_scale: float = 1.0, seed: int = 0,
                 name: str | None = None):
        super().__init__(name=name)
        self.padding_probs = _checks.probability_vector("padding_probs", padding_probs)
        self._set_input(input_loc, input_scale)
        k = self.num_components = len(self.padding_probs)
        seeds = _sub_seeds(seed, 5)
        self.k_net = MLP(1, hidden, 2, seed=seeds[0])
        self.z_net = MLP(1, hidden, k, seed=seeds[1])
        self.single_net = MLP(1, hidden, 2, seed=seeds[2])  # mean and log sd for k = 1
        self.mean_net = MLP(1 + k, hidden, 1, seed=seeds[3])
        self.log_sd_net = MLP(1 + k, hidden, 1, seed=seeds[4])

    def k_given_y(self, y) -> FiniteDiscrete:
        r"""$q(k \mid y)$ on the outcomes $\{1, 2\}$."""
        u = self._features(_checks.observations(y))
        return FiniteDiscrete((1.0, 2.0), logits=self.k_net(u))

    def z_given_y(self, y) -> Categorical:
        r"""$q(z \mid y, k = 2)$."""
        return Categorical(logits=self.z_net(self._features(_checks.observations(y))))

    def _x_params(self, y, k, z):
        single = self.single_net(self._features(y))
        u = self._features(y, z, self.num_components)
        loc = tf.where(k == 1.0, single[..., 0], self.mean_net(u)[..., 0])
        raw = tf.where(k == 1.0, single[..., 1], self.log_sd_net(u)[..., 0])
        return loc, _scale(raw)

    def __call__(self, y) -> tfd.JointDistributionNamed:
        r"""Return $q_\phi(k, z, x \mid y)$ on the padded latents, batched over ``y``."""
        y = _checks.observations(y)
        z_logits = self.z_net(self._features(y))
        log_pad = tf.constant(np.log(self.padding_probs), _checks.DTYPE)
        return tfd.JointDistributionNamed(
            dict(
                k=self.k_given_y(y),
                z=lambda k: Categorical(
                    logits=tf.where((k == 1.0)[..., tf.newaxis], log_pad, z_logits)),
                x=lambda k, z: tfd.Normal(*self._x_params(y, k, z)),
            )
        )

    def marginal(self, y) -> tfd.MixtureSameFamily:
        r"""$q(x \mid y)$: a mixture of $1 + K$ Gaussians ($k = 1$, then $k = 2$ with each $z$)."""
        y = _checks.observations(y)
        num = self.num_components
        log_k = tf.math.log_softmax(self.k_net(self._features(y)))
        log_z = tf.math.log_softmax(self.z_net(self._features(y)))
        logits = tf.concat([log_k[..., :1], log_k[..., 1:] + log_z], -1)
        shape = tf.concat([tf.shape(y), [1 + num]], 0)
        k = tf.broadcast_to(tf.constant([1.0] + [2.0] * num), shape)
        z = tf.broadcast_to(tf.concat([[0], tf.range(num)], 0), shape)
        loc, scale = self._x_params(y[..., tf.newaxis], k, z)
        return tfd.MixtureSameFamily(Categorical(logits=logits), tfd.Normal(loc, scale))
