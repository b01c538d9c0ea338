r"""Factorized and amortized variational inference, and the amortization gap between them.

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

`VariationalPosterior` joins $q(\theta)$ to a local family. Then:

- `elbo`: Monte Carlo ELBO with its standard error (entropies exact); `exact_elbo`: the ELBO
  without Monte Carlo error, for models that offer ``gaussian_elbo`` (closed form or quadrature);
- `elbo_difference` and `amortization_gap`: ELBO differences on *paired* draws, so that the
  standard error is that of the difference;
- `fit_vi`: maximise the ELBO with `amortlib.training.minimize` (loss $=-$ELBO);
- `steps_to_converge`: first step whose running-mean loss is within 1% of a target;
- `fvi_refinement`: the diagnostic of Margossian and Blei: run F-VI from the A-VI solution;
  if the ELBO still rises, the inference function is too weak.

Example:
    >>> from amortlib.hierarchical import LinearModel
    >>> model = LinearModel(tau=1.0, sigma=1.0)
    >>> _, _, x = model.sample(500, seed=0)
    >>> posterior, history = fit_vi(model, Amortized(Polynomial(1)), x, num_steps=1500,
    ...                             learning_rate=0.05, sample_size=4)
    >>> round(float(posterior.local_family.inference_function.loc_coef[1, 0]), 2)
    0.5
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.hierarchical import HierarchicalModel, _as_data
from amortlib.history import History, running_mean
from amortlib.networks import MLP
from amortlib.training import minimize

tfd = tfp.distributions

__all__ = [
    "Amortized",
    "Constant",
    "Convergence",
    "Estimate",
    "GradientMoments",
    "Factorized",
    "MLPFunction",
    "Polynomial",
    "Refinement",
    "VariationalPosterior",
    "amortization_gap",
    "elbo",
    "elbo_difference",
    "exact_elbo",
    "fit_vi",
    "fvi_refinement",
    "gradient_moments",
    "steps_to_converge",
    "traced_elbo",
]

_HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi * math.e)
INPUTS = ("x", "lagged")


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    value: float
    standard_error: float


class Convergence(NamedTuple):
    """When a run converged: the step (1-based) and the wall time in seconds up to it."""

    step: int
    seconds: float | None


class GradientMoments(NamedTuple):
    """Mean and variance over draws of a single-draw gradient, for one variable."""

    name: str
    mean: np.ndarray
    variance: np.ndarray


class Refinement(NamedTuple):
    """Result of `fvi_refinement`: the ELBO gain, the refined F-VI posterior and its history."""

    gain: Estimate
    posterior: VariationalPosterior
    history: History


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
        x = _as_data(x)
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
        x = _as_data(x)
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

    def local(self, x):
        """``(loc, scale)`` of the $q(z_n)$, each ``[N, local_dim]``."""
        return self.local_family(x)

    def entropy(self, x) -> tf.Tensor:
        """The entropy of $q$, exact: a sum of Gaussian entropies."""
        _, scale = self.local(x)
        size = tf.cast(tf.size(scale) + tf.size(self.theta_log_scale), tf.float32)
        return (size * _HALF_LOG_2PI_E + tf.reduce_sum(self.theta_log_scale)
                + tf.reduce_sum(tf.math.log(scale)))

    def sample(self, x, sample_size: int, seed):
        """Reparameterised draws: ``theta`` [S, global_dim] and ``z`` [S, N, local_dim]."""
        loc, scale = self.local(x)
        theta_seed, z_seed = tfp.random.split_seed(seed)
        eps_theta = tf.random.stateless_normal([sample_size, self.model.global_dim], theta_seed)
        eps_z = tf.random.stateless_normal([sample_size, *loc.shape], z_seed)
        theta = self.theta_loc + tf.exp(self.theta_log_scale) * eps_theta
        return theta, loc + scale * eps_z

    def elbo_draws(self, x, sample_size: int, seed) -> tf.Tensor:
        r"""``sample_size`` unbiased single-draw estimates of the ELBO.

        Each is $\log p(\theta, z, x) + \mathrm H(q)$ at one draw from $q$.
        """
        theta, z = self.sample(x, sample_size, seed)
        return self.model.log_joint(theta, z, x) + self.entropy(x)


# ---------------------------------------------------------------- ELBO, gap, fitting


def _check_posterior(name, posterior, model):
    if not isinstance(posterior, VariationalPosterior):
        raise ValueError(f"{name} must be a VariationalPosterior, got {type(posterior).__name__}")
    if posterior.model is not model:
        raise ValueError(f"{name} was built for a different model")


def _draws(posterior, x, sample_size, seed, chunk_size):
    """ELBO draws in chunks (bounded memory); chunk i uses a seed folded from ``seed`` and i."""
    base = _checks.seed(seed)
    if chunk_size is None:
        per_draw = int(x.shape[0]) * max(posterior.model.local_dim, 1)
        chunk_size = max(1, min(sample_size, 2**21 // per_draw))
    out = []
    for i, start in enumerate(range(0, sample_size, chunk_size)):
        count = min(chunk_size, sample_size - start)
        chunk_seed = tf.random.experimental.stateless_fold_in(base, i)
        out.append(posterior.elbo_draws(x, count, chunk_seed).numpy().astype(np.float64))
    return np.concatenate(out)


def elbo(model: HierarchicalModel, posterior: VariationalPosterior, x, *, sample_size: int = 100,
         seed: int = 0, chunk_size: int | None = None) -> Estimate:
    r"""Monte Carlo estimate of the ELBO with its standard error.

    .. math::
        \mathrm{ELBO}(q) = \mathbb E_q[\log p(\theta, z, x)] + \mathrm H(q)
        \approx \frac1S \sum_{s=1}^S \log p(\theta^{(s)}, z^{(s)}, x) + \mathrm H(q),

    with the entropy exact; the standard error is the sample standard deviation over $\sqrt S$.

    Args:
        model: the model.
        posterior: a `VariationalPosterior` built for ``model``.
        x: the data, shape [N] or [N, D].
        sample_size: number of draws $S \ge 2$.
        seed: an integer seed; the same seed gives the same draws of the noise.
        chunk_size: draws evaluated at once (default: bounded by memory).

    Returns:
        An `Estimate` ``(value, standard_error)``.

    Raises:
        ValueError: for a sample size below 2, a bad seed or data, or a posterior of another model.
    """
    _check_posterior("posterior", posterior, model)
    x = _as_data(x)
    sample_size = _checks.positive_int("sample_size", sample_size)
    if sample_size < 2:
        raise ValueError("sample_size must be at least 2 to estimate a standard error")
    if chunk_size is not None:
        chunk_size = _checks.positive_int("chunk_size", chunk_size)
    draws = _draws(posterior, x, sample_size, seed, chunk_size)
    return Estimate(float(draws.mean()), float(draws.std(ddof=1) / math.sqrt(sample_size)))


def exact_elbo(model: HierarchicalModel, posterior: VariationalPosterior, x) -> float:
    """The ELBO of ``posterior`` without Monte Carlo error, from ``model.gaussian_elbo``.

    Available for models with one global and one local dimension that define
    ``gaussian_elbo(x, theta_mean, theta_sd, z_mean, z_sd)`` (`LinearModel` in closed form,
    `NonlinearModel` by quadrature).

    Raises:
        ValueError: if the model has no ``gaussian_elbo``.
    """
    _check_posterior("posterior", posterior, model)
    if not hasattr(model, "gaussian_elbo") or model.global_dim != 1 or model.local_dim != 1:
        raise ValueError(f"model {model!r} has no exact gaussian_elbo")
    x = _as_data(x)
    loc, scale = posterior.local(x)
    return model.gaussian_elbo(
        x, float(posterior.theta_loc.numpy()[0]),
        float(np.exp(posterior.theta_log_scale.numpy()[0])),
        loc.numpy()[:, 0], scale.numpy()[:, 0],
    )


def traced_elbo(model: HierarchicalModel, posterior: VariationalPosterior, x) -> tf.Tensor:
    """The exact ELBO as a tensor, cheap enough to record at every step of `fit_vi`.

    For models that define ``expected_log_joint(x, theta_mean, theta_sd, z_mean, z_sd)``
    (`LinearModel`): that expectation plus the exact entropy of $q$. Use it in a ``trace_fn``,
    ``trace_fn=lambda q: {"elbo": traced_elbo(model, q, x)}``, to apply a convergence rule to the
    ELBO itself rather than to its noisy one-draw estimate.

    Raises:
        ValueError: if the model has no ``expected_log_joint``.
    """
    if not hasattr(model, "expected_log_joint") or model.global_dim != 1 or model.local_dim != 1:
        raise ValueError(f"model {model!r} has no exact expected_log_joint")
    loc, scale = posterior.local(x)
    expected = model.expected_log_joint(x, posterior.theta_loc[0],
                                        tf.exp(posterior.theta_log_scale[0]),
                                        loc[:, 0], scale[:, 0])
    return expected + posterior.entropy(x)


def elbo_difference(model: HierarchicalModel, posterior_a: VariationalPosterior,
                    posterior_b: VariationalPosterior, x, *, sample_size: int = 100,
                    seed: int = 0) -> Estimate:
    r"""ELBO(a) $-$ ELBO(b) on paired draws (the same standard-normal noise for both).

    Pairing removes the noise the two estimates share, so the standard error is that of the
    difference, usually far smaller than either ELBO's own. The entropies are exact.

    Returns:
        An `Estimate` of the difference.
    """
    _check_posterior("posterior_a", posterior_a, model)
    _check_posterior("posterior_b", posterior_b, model)
    x = _as_data(x)
    sample_size = _checks.positive_int("sample_size", sample_size)
    if sample_size < 2:
        raise ValueError("sample_size must be at least 2 to estimate a standard error")
    a = _draws(posterior_a, x, sample_size, seed, None)
    b = _draws(posterior_b, x, sample_size, seed, None)
    diff = a - b
    return Estimate(float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(sample_size)))


def amortization_gap(model: HierarchicalModel, fvi_posterior: VariationalPosterior,
                     avi_posterior: VariationalPosterior, x, *, sample_size: int = 100,
                     seed: int = 0) -> Estimate:
    r"""The amortization gap ELBO(F-VI) $-$ ELBO(A-VI), estimated on paired draws.

    It is $\ge 0$ when ``fvi_posterior`` is the optimum of F-VI, since A-VI's family is a subset
    of F-VI's; a trained F-VI run is only close to that optimum, so a small negative estimate
    means "no gap within the optimisation and Monte Carlo error".
    """
    return elbo_difference(model, fvi_posterior, avi_posterior, x, sample_size=sample_size,
                           seed=seed)


def fit_vi(model: HierarchicalModel, local_family, x, *, num_steps: int, learning_rate: float,
           sample_size: int = 1, anneal: bool = True, theta_loc=0.0, theta_scale=1.0,
           trace_fn: Callable[[VariationalPosterior], dict] | None = None, seed: int = 0,
           progress: bool = False) -> tuple[VariationalPosterior, History]:
    r"""Fit $q(\theta) \prod_n q(z_n)$ by maximising the ELBO with `amortlib.training.minimize`.

    F-VI with a `Factorized` family, A-VI with an `Amortized` one. Each step uses
    ``sample_size`` fresh reparameterised draws on the whole data set; the loss is $-$ELBO.

    Args:
        model: the model.
        local_family: a `Factorized` or `Amortized` family (trained in place).
        x: the data, shape [N] or [N, D].
        num_steps: number of Adam steps.
        learning_rate: Adam's (initial) learning rate.
        sample_size: draws per step.
        anneal: cosine decay of the learning rate to 1% (see `minimize`).
        theta_loc, theta_scale: initial mean and standard deviation of $q(\theta)$.
        trace_fn: optional ``trace_fn(posterior) -> {name: scalar}`` recorded every step.
        seed: an integer seed.
        progress: show a progress bar.

    Returns:
        ``(posterior, history)``; ``history.loss`` is the single-step estimate of $-$ELBO.

    Re-running the same problem does not retrace: called again with the same ``model``,
    ``local_family`` and ``x`` objects (and ``sample_size`` and ``trace_fn``), `fit_vi` returns
    the same posterior object, its $q(\theta)$ reset to ``theta_loc`` and ``theta_scale``, and
    reuses the compiled loop; the family keeps its trained values unless you re-initialise them
    in place first, for example from a new family of the same shape:
    ``for v, w in zip(family.variables, gap.Amortized(gap.MLPFunction(k, seed=s)).variables):
    v.assign(w)``. Another ``seed``, ``num_steps`` or ``learning_rate`` costs no tracing.

    Raises:
        ValueError: for bad sizes, data, or a family that does not fit the model or the data.
    """
    data = x
    x = _as_data(x)
    sample_size = _checks.positive_int("sample_size", sample_size)
    key = (id(model), id(local_family), id(data), sample_size, id(trace_fn))
    if key in _FIT_VI:
        _FIT_VI.move_to_end(key)
        _, posterior, loss_fn, traced = _FIT_VI[key]
        start, log_scale = _gaussian_start(theta_loc, theta_scale, [model.global_dim],
                                           names=("theta_loc", "theta_scale"))
        posterior.theta_loc.assign(start)
        posterior.theta_log_scale.assign(log_scale)
    else:
        posterior = VariationalPosterior(model, local_family, theta_loc=theta_loc,
                                         theta_scale=theta_scale)
        posterior.local(x)  # fail early, eagerly, if the family does not fit the data

        def loss_fn(step_seed):
            return -tf.reduce_mean(posterior.elbo_draws(x, sample_size, step_seed))

        traced = None if trace_fn is None else (lambda: trace_fn(posterior))
        _FIT_VI[key] = ((model, local_family, data, trace_fn), posterior, loss_fn, traced)
        while len(_FIT_VI) > 16:
            _FIT_VI.popitem(last=False)

    history = minimize(
        loss_fn, posterior.trainable_variables, num_steps=num_steps, learning_rate=learning_rate,
        anneal=anneal, trace_fn=traced, seed=seed, progress=progress, name="-ELBO",
    )
    return posterior, history


#: fit_vi's problems by (model, family, data, sample_size, trace_fn): reused, so that a rerun
#: with another seed reuses the compiled loop (see `fit_vi`).
_FIT_VI: collections.OrderedDict = collections.OrderedDict()


def steps_to_converge(loss, target: float, *, rel_tol: float = 0.01, window: int = 100,
                      elapsed=None) -> Convergence | None:
    r"""The first step whose running-mean loss is within ``rel_tol`` of ``target``.

    The running mean at step $t$ averages the losses of steps $\max(1, t - w + 1), \dots, t$ (a
    trailing window of $w$ = ``window`` steps, `amortlib.training.running_mean`, which smooths
    the Monte Carlo noise of single-step losses). Converged means
    $|\bar L_t - L^*| \le \text{rel\_tol}\, |L^*|$, the rule of Margossian and Blei with $L^*$
    the loss ($-$ELBO) at F-VI's optimum.

    Args:
        loss: the loss at every step, a non-empty 1-D array (for example ``history.loss``, or
            an exact $-$ELBO trace), or a `History` (then ``elapsed`` is its own).
        target: the target loss $L^*$, finite and non-zero.
        rel_tol: relative tolerance in (0, 1).
        window: running-mean window, >= 1.
        elapsed: optional wall time at the end of every step (``history.elapsed``), for the
            seconds of the result.

    Returns:
        `Convergence` ``(step, seconds)`` (step 1-based; seconds from ``elapsed``, or None
        without it), or None if the run never got there.

    Example:
        >>> steps_to_converge([10.0, 5.0, 1.0, 1.0], 1.0, window=1,
        ...                   elapsed=[1.0, 2.0, 3.0, 4.0])
        Convergence(step=3, seconds=3.0)
    """
    if isinstance(loss, History):
        loss, elapsed = loss.loss, loss.elapsed
    try:
        loss = np.asarray(loss, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"loss must be a 1-D array of numbers or a History, got {loss!r:.80}"
                         ) from None
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"loss must be a non-empty 1-D array, got shape {loss.shape}")
    if elapsed is not None:
        elapsed = np.asarray(elapsed, np.float64)
        if elapsed.shape != loss.shape:
            raise ValueError(f"elapsed must have the shape of loss {loss.shape}, got "
                             f"{elapsed.shape}")
    target = _checks.finite_scalar("target", target)
    if target == 0:
        raise ValueError("target must be non-zero (the tolerance is relative)")
    rel_tol = _checks.positive_scalar("rel_tol", rel_tol)
    if rel_tol >= 1:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol}")
    running = running_mean(loss, window)
    hits = np.flatnonzero(np.abs(running - target) <= rel_tol * abs(target))
    if hits.size == 0:
        return None
    i = int(hits[0])
    return Convergence(step=i + 1, seconds=None if elapsed is None else float(elapsed[i]))


def fvi_refinement(model: HierarchicalModel, posterior: VariationalPosterior, x, *,
                   num_steps: int = 200, learning_rate: float = 3e-4, sample_size: int = 1,
                   eval_sample_size: int = 100, seed: int = 0) -> Refinement:
    r"""The diagnostic of Margossian and Blei: a few F-VI steps started from a (A-VI) solution.

    A `Factorized` family is initialised at the $q(z_n)$ that ``posterior`` gives, $q(\theta)$
    is copied, and F-VI runs ``num_steps`` steps. If the ELBO rises clearly (a gain many standard
    errors above 0), free parameters can do better than the inference function: it is too weak.
    If the gain is within noise, the inference function was already as good as F-VI near there.

    Args:
        model: the model.
        posterior: the solution to refine (not modified).
        x: the data.
        num_steps: F-VI steps.
        learning_rate: Adam's learning rate. Keep it small: Adam moves every one of the
            2N + 2 free parameters by about one learning rate per step whatever its gradient, so
            from a converged solution a large rate (1e-2) lowers the ELBO by jitter alone and
            the diagnostic reads a negative gain.
        sample_size: draws per step.
        eval_sample_size: paired draws for the gain estimate (>= 2).
        seed: an integer seed.

    Returns:
        A `Refinement` ``(gain, posterior, history)``, ``gain`` = ELBO(refined) $-$ ELBO(start).
    """
    _check_posterior("posterior", posterior, model)
    x = _as_data(x)
    loc, scale = posterior.local(x)
    family = Factorized(int(x.shape[0]), model.local_dim, loc=loc.numpy(), scale=scale.numpy())
    refined, history = fit_vi(
        model, family, x, num_steps=num_steps, learning_rate=learning_rate,
        sample_size=sample_size, theta_loc=posterior.theta_loc.numpy(),
        theta_scale=np.exp(posterior.theta_log_scale.numpy()), seed=seed,
    )
    gain = elbo_difference(model, refined, posterior, x, sample_size=eval_sample_size, seed=seed)
    return Refinement(gain=gain, posterior=refined, history=history)


def gradient_moments(model: HierarchicalModel, posterior: VariationalPosterior, x, *,
                     sample_size: int = 100, seed: int = 0) -> list[GradientMoments]:
    r"""How noisy the gradient of one training step is: moments of single-draw gradients.

    For each of ``sample_size`` independent draws of $(\theta, z)$ from $q$ this takes the
    gradient of that draw's estimate of $-$ELBO (what `fit_vi` with ``sample_size=1`` follows),
    and returns, per trainable variable of ``posterior`` and per entry, the mean and the
    variance (``ddof=1``) of those gradients. The ratio $|\text{mean}| / \text{sd}$ is the
    signal-to-noise ratio of one step's gradient in that coordinate.

    Args:
        model: the model.
        posterior: the variational posterior, at the point where to measure (not modified).
        x: the data.
        sample_size: number of draws, >= 2.
        seed: an integer seed.

    Returns:
        One `GradientMoments` per trainable variable, in the order of
        ``posterior.trainable_variables``; ``mean`` and ``variance`` have the variable's shape.

    Raises:
        ValueError: for a sample size below 2, a bad seed, or a posterior of another model.
    """
    _check_posterior("posterior", posterior, model)
    x = _as_data(x)
    sample_size = _checks.positive_int("sample_size", sample_size)
    if sample_size < 2:
        raise ValueError("sample_size must be at least 2 to estimate a variance")
    variables = posterior.trainable_variables
    with tf.GradientTape() as tape:
        losses = -posterior.elbo_draws(x, sample_size, _checks.seed(seed))
    jacobians = tape.jacobian(losses, variables, experimental_use_pfor=True)
    out = []
    for variable, jac in zip(variables, jacobians):
        jac = jac.numpy().astype(np.float64)
        out.append(GradientMoments(variable.name, jac.mean(axis=0), jac.var(axis=0, ddof=1)))
    return out
