r"""Variational families of Part II: F-VI's free parameters, A-VI's inference functions.

For a model $p(\theta) \prod_n p(z_n \mid \theta) p(x_n \mid z_n, \theta)$ (see
`amortlib.hierarchical`) both methods use a mean-field Gaussian
$q(\theta) \prod_n q(z_n; \nu_n)$ with $q(z_n; \nu_n) = \mathcal N(\text{loc}_n,
\operatorname{diag} \text{scale}_n^2)$. They differ in where the local parameters $\nu_n$ come
from:

- **F-VI** (factorized): a free $\nu_n$ for every data point, `Factorized`;
- **A-VI** (amortized): $\nu_n = f_\phi(\text{input}_n)$ for one shared *inference function*
  $f_\phi$, `Amortized`. The input is $x_n$ (``inputs="x"``) or the pair $(x_{n-1}, x_n)$
  (``inputs="lagged"``, for the saw time series); with lagged inputs $z_1$ gets its own free
  parameters (the saw model fixes $x_0 = 0$ and its authors feed $(0, x_1)$ instead; the free
  parameters are unnecessary there but harmless).

Inference functions (each a `tf.Module` mapping inputs of shape ``[N, input_dim]`` to
``(loc, scale)``, both ``[N, local_dim]``): `Constant` (the same $q$ for every $n$, which is
`Polynomial` of degree 0), `Polynomial` of degree $d$ (in each input coordinate, no cross
terms), `MLPFunction` of width $k$ (two `amortlib.networks.MLP` with ReLU hidden layers, one
for the mean and one for the log standard deviation).

`VariationalPosterior` joins $q(\theta)$ to a local family; called on a data set it is a joint
distribution over ``{"theta", "z"}``, so `amortlib.losses.elbo_draws` estimates its ELBO,
`amortlib.training.fit` trains it, and `amortlib.gap` compares the two methods.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.hierarchical import HierarchicalModel
from amortlib.networks import MLP

__all__ = [
    "Amortized",
    "Constant",
    "Factorized",
    "MLPFunction",
    "Polynomial",
    "VariationalPosterior",
]

tfd = tfp.distributions
INPUTS = ("x", "lagged")


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _gaussian_start(loc, scale, shape, names=("loc", "scale")):
    """Check and broadcast initial means and standard deviations; return (loc, log scale)."""
    scale = np.asarray(scale, np.float32)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"{names[1]} must be positive and finite")
    try:
        loc = np.broadcast_to(np.asarray(loc, np.float32), shape)
        scale = np.broadcast_to(scale, shape)
    except ValueError:
        raise ValueError(f"{names[0]} and {names[1]} must broadcast to shape {shape}") from None
    return loc, np.log(scale)


# ---------------------------------------------------------------- inference functions


class Polynomial(tf.Module):
    r"""Inference function: mean and log standard deviation polynomials of degree $d$ in the input.

    For one input coordinate $u$ and each latent coordinate,

    .. math::
        \text{loc}(u) = \sum_{j=0}^d a_j u^j, \qquad \log \text{scale}(u) = \sum_{j=0}^d b_j u^j.

    With several input coordinates the features are $1$ and the powers $u_i^j$ of each
    coordinate (no cross terms). All coefficients start at 0, so $q(z_n) = \mathcal N(0, 1)$.
    Degree 0 is the constant inference function (the same $q$ for every data point).

    Args:
        degree: the degree $d \ge 0$.
        local_dim: dimension of each $z_n$.
        input_dim: number of input coordinates (1 for $x_n$, 2 for $(x_{n-1}, x_n)$).
        name: name of the module.

    Attributes:
        loc_coef: coefficients of the mean, shape ``[1 + d * input_dim, local_dim]``; row $j$ is
            the coefficient of $u^j$ when ``input_dim == 1``.
        log_scale_coef: coefficients of the log standard deviation, same shape.

    Example:
        >>> f = Polynomial(1)
        >>> loc, scale = f(tf.constant([[1.0], [2.0]]))
        >>> loc.numpy().ravel().tolist(), scale.numpy().ravel().tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """

    def __init__(self, degree: int, local_dim: int = 1, input_dim: int = 1,
                 name: str | None = None):
        super().__init__(name=name)
        self.degree = _non_negative_int("degree", degree)
        self.local_dim = _checks.positive_int("local_dim", local_dim)
        self.input_dim = _checks.positive_int("input_dim", input_dim)
        shape = [1 + self.degree * self.input_dim, self.local_dim]
        self.loc_coef = tf.Variable(tf.zeros(shape), name="loc_coef")
        self.log_scale_coef = tf.Variable(tf.zeros(shape), name="log_scale_coef")

    def features(self, inputs) -> tf.Tensor:
        """The features $(1, u, u^2, \\dots, u^d)$ of ``inputs`` [N, input_dim]."""
        ones = tf.ones_like(inputs[:, :1])
        return tf.concat([ones] + [inputs**j for j in range(1, self.degree + 1)], axis=-1)

    def __call__(self, inputs):
        """Return ``(loc, scale)``, each ``[N, local_dim]``."""
        feats = self.features(inputs)
        return feats @ self.loc_coef, tf.exp(feats @ self.log_scale_coef)


class Constant(Polynomial):
    """The constant inference function: one $q(z_n)$ shared by all data points (degree 0).

    Example:
        >>> Constant().degree
        0
    """

    def __init__(self, local_dim: int = 1, input_dim: int = 1, name: str | None = None):
        super().__init__(0, local_dim=local_dim, input_dim=input_dim, name=name)


class MLPFunction(tf.Module):
    r"""Inference function: two `amortlib.networks.MLP` of width $k$, for the mean and the log sd.

    Each has ``hidden_layers`` ReLU layers of ``width`` units (He-uniform weights, zero biases)
    and a linear output layer initialised at zero, so training starts from
    $q(z_n) = \mathcal N(0, 1)$ for every $n$. The mean's network draws its weights from
    ``seed`` folded with 0, the log standard deviation's from ``seed`` folded with 1.

    Args:
        width: units per hidden layer, $k \ge 1$.
        local_dim: dimension of each $z_n$.
        input_dim: number of input coordinates.
        hidden_layers: number of hidden layers, >= 1.
        seed: integer seed of the initial weights.
        name: name of the module.

    Example:
        >>> f = MLPFunction(4)
        >>> [tuple(w.shape) for w in f.loc_net.weights]
        [(1, 4), (4, 4), (4, 1)]
    """

    def __init__(self, width: int, local_dim: int = 1, input_dim: int = 1, hidden_layers: int = 2,
                 seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.width = _checks.positive_int("width", width)
        self.local_dim = _checks.positive_int("local_dim", local_dim)
        self.input_dim = _checks.positive_int("input_dim", input_dim)
        self.hidden_layers = _checks.positive_int("hidden_layers", hidden_layers)
        base = _checks.integer_seed(seed)
        self.loc_net, self.log_scale_net = (
            MLP(self.input_dim, [self.width] * self.hidden_layers, self.local_dim,
                activation="relu", initialiser="he", zero_output=True,
                seed=tf.random.experimental.stateless_fold_in(base, i))
            for i in (0, 1))

    def __call__(self, inputs):
        """Return ``(loc, scale)``, each ``[N, local_dim]``."""
        return self.loc_net(inputs), tf.exp(self.log_scale_net(inputs))


# ---------------------------------------------------------------- local families


class Factorized(tf.Module):
    r"""F-VI's local family: parameters $\nu_n = (\text{loc}_n, \log \text{scale}_n)$ for each $n$.

    Args:
        num_points: number of data points $N$.
        local_dim: dimension of each $z_n$.
        loc: initial means, broadcastable to ``[N, local_dim]`` (default 0).
        scale: initial standard deviations (> 0), broadcastable likewise (default 1).
        name: name of the module.

    Example:
        >>> family = Factorized(3)
        >>> loc, scale = family(tf.zeros([3]))
        >>> tuple(loc.shape), float(scale[0, 0])
        ((3, 1), 1.0)
    """

    def __init__(self, num_points: int, local_dim: int = 1, *, loc=0.0, scale=1.0,
                 name: str | None = None):
        super().__init__(name=name)
        self.num_points = _checks.positive_int("num_points", num_points)
        self.local_dim = _checks.positive_int("local_dim", local_dim)
        loc, log_scale = _gaussian_start(loc, scale, [self.num_points, self.local_dim])
        self.loc = tf.Variable(loc, name="loc")
        self.log_scale = tf.Variable(log_scale, name="log_scale")

    def __call__(self, x):
        """Return ``(loc, scale)``, each ``[N, local_dim]``; ``x`` must have ``N`` rows."""
        x = _checks.data(x)
        if x.shape[0] != self.num_points:
            raise ValueError(f"x has {x.shape[0]} data points; this family has {self.num_points}")
        return tf.identity(self.loc), tf.exp(self.log_scale)


class Amortized(tf.Module):
    r"""A-VI's local family: $\nu_n = f_\phi(\text{input}_n)$ for one inference function $f_\phi$.

    Args:
        inference_function: a `Constant`, `Polynomial`, `MLPFunction` or any module with attributes
            ``input_dim`` and ``local_dim`` mapping ``[N, input_dim]`` to ``(loc, scale)``.
        inputs: ``"x"``: the input of $z_n$ is $x_n$ (``input_dim`` = $D$, the size of one
            observation); ``"lagged"``: it is $(x_{n-1}, x_n)$ for $n \ge 2$ (``input_dim`` =
            $2D$), and $z_1$ gets free parameters ``first_loc`` and ``first_log_scale`` (a departure
            from the saw model's authors, who feed $(0, x_1)$ with $x_0 = 0$; unnecessary
            there, since $m_1^*$ lies on the same affine line, but harmless).
        name: name of the module.

    Example:
        >>> family = Amortized(Polynomial(1, input_dim=2), inputs="lagged")
        >>> family.inputs_of(tf.constant([1.0, 2.0, 3.0])).numpy().tolist()
        [[1.0, 2.0], [2.0, 3.0]]
    """

    def __init__(self, inference_function, inputs: str = "x", name: str | None = None):
        super().__init__(name=name)
        self.inputs = _checks.one_of("inputs", inputs, INPUTS)
        for attribute in ("input_dim", "local_dim"):
            if not hasattr(inference_function, attribute):
                raise ValueError(f"inference_function must have an attribute {attribute!r}")
        self.inference_function = inference_function
        self.local_dim = inference_function.local_dim
        if self.inputs == "lagged":
            self.first_loc = tf.Variable(tf.zeros([1, self.local_dim]), name="first_loc")
            self.first_log_scale = tf.Variable(tf.zeros([1, self.local_dim]),
                                               name="first_log_scale")

    def inputs_of(self, x) -> tf.Tensor:
        """The inference function's inputs: ``[N, D]`` for "x", ``[N - 1, 2D]`` for "lagged"."""
        x = _checks.data(x)
        x = x if x.shape.rank == 2 else x[:, None]
        if self.inputs == "x":
            features = x
        else:
            if x.shape[0] < 2:
                raise ValueError("lagged inputs need at least 2 data points")
            features = tf.concat([x[:-1], x[1:]], axis=-1)
        if features.shape[-1] != self.inference_function.input_dim:
            raise ValueError(
                f"the inference function takes {self.inference_function.input_dim} input "
                f"coordinates but inputs={self.inputs!r} gives {features.shape[-1]}"
            )
        return features

    def __call__(self, x):
        """Return ``(loc, scale)``, each ``[N, local_dim]``."""
        loc, scale = self.inference_function(self.inputs_of(x))
        if self.inputs == "lagged":
            loc = tf.concat([self.first_loc, loc], axis=0)
            scale = tf.concat([tf.exp(self.first_log_scale), scale], axis=0)
        return loc, scale


# ---------------------------------------------------------------- the variational posterior


class VariationalPosterior(tf.Module):
    r"""$q(\theta) \prod_n q(z_n; \nu_n)$: a mean-field Gaussian $q(\theta)$ and a local family.

    Args:
        model: a `amortlib.hierarchical.HierarchicalModel` (gives ``global_dim``, ``local_dim``).
        local_family: a `Factorized` or `Amortized` family with the model's ``local_dim``.
        theta_loc: initial mean of $q(\theta)$, broadcastable to ``[global_dim]`` (default 0).
        theta_scale: initial standard deviation(s) of $q(\theta)$, > 0 (default 1).
        name: name of the module.
    """

    def __init__(self, model: HierarchicalModel, local_family, *, theta_loc=0.0, theta_scale=1.0,
                 name: str | None = None):
        super().__init__(name=name)
        if not isinstance(model, HierarchicalModel):
            raise ValueError(f"model must be a HierarchicalModel, got {type(model).__name__}")
        if getattr(local_family, "local_dim", None) != model.local_dim:
            raise ValueError(
                f"local_family must have local_dim {model.local_dim} (the model's), got "
                f"{getattr(local_family, 'local_dim', None)}"
            )
        self.model = model
        self.local_family = local_family
        theta_loc, theta_log_scale = _gaussian_start(theta_loc, theta_scale, [model.global_dim],
                                                     names=("theta_loc", "theta_scale"))
        self.theta_loc = tf.Variable(theta_loc, name="theta_loc")
        self.theta_log_scale = tf.Variable(theta_log_scale, name="theta_log_scale")

    def set_theta(self, theta_loc=0.0, theta_scale=1.0) -> None:
        """Set $q(\theta)$'s mean and standard deviation(s) in place (checked as in the call)."""
        theta_loc, theta_log_scale = _gaussian_start(theta_loc, theta_scale,
                                                     [self.model.global_dim],
                                                     names=("theta_loc", "theta_scale"))
        self.theta_loc.assign(theta_loc)
        self.theta_log_scale.assign(theta_log_scale)

    def local(self, x):
        """``(loc, scale)`` of the $q(z_n)$, each ``[N, local_dim]``."""
        return self.local_family(x)

    def __call__(self, x) -> tfd.JointDistributionNamed:
        r"""$q$ for the data set ``x``: a joint distribution over ``{"theta", "z"}``.

        ``theta`` has event shape ``[global_dim]`` and ``z`` ``[N, local_dim]``, both mean-field
        Gaussians, reparameterised, with an exact ``entropy()``: an inference network in the
        sense of `amortlib.losses`, so `amortlib.losses.elbo_draws` estimates its ELBO and
        `amortlib.training.fit` trains it.

        Example:
            >>> from amortlib.hierarchical import LinearModel
            >>> posterior = VariationalPosterior(LinearModel(), Factorized(3))
            >>> draws = posterior([0.0, 1.0, 2.0]).sample(2, seed=0)
            >>> tuple(draws["theta"].shape), tuple(draws["z"].shape)
            ((2, 1), (2, 3, 1))
        """
        loc, scale = self.local(x)
        return _MeanField({
            "theta": tfd.Independent(tfd.Normal(self.theta_loc, tf.exp(self.theta_log_scale)),
                                     reinterpreted_batch_ndims=1),
            "z": tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=2),
        })


class _MeanField(tfd.JointDistributionNamed):
    """A joint distribution of independent parts, each drawn with its own part of the seed.

    ``sample(n, seed)`` draws part $i$ with the $i$-th seed of ``tfp.random.split_seed(seed,
    n=len(parts))``, without the salt that `tfd.JointDistributionNamed` adds: the draws of
    `VariationalPosterior` are then those of amortlib's earlier hand-written sampler, so that
    the book's numbers did not move when it became a joint distribution.
    """

    def _sample_n(self, sample_shape, seed, value=None):
        if value is not None or seed is None:
            return super()._sample_n(sample_shape, seed, value=value)
        seeds = tfp.random.split_seed(seed, n=len(self.model))
        return {name: part.sample(sample_shape, seed=part_seed)
                for (name, part), part_seed in zip(self.model.items(), seeds)}
