r"""Models with global and local latent variables, in the notation of Margossian and Blei.

A global latent $\theta$ (dimension ``global_dim``) is shared by all data points; each data
point $x_n$, $n = 1, \dots, N$, has its own local latent $z_n$ (dimension ``local_dim``). A
*simple hierarchical model* factorises as

.. math::
    p(\theta, z, x) = p(\theta) \prod_{n=1}^N p(z_n \mid \theta)\, p(x_n \mid z_n, \theta).

Every model here is a `HierarchicalModel`, with the contract of every model in amortlib (see
`amortlib.models`), its latents being ``{"theta", "z"}`` and its observations a whole data set:

- ``sample(num_points, seed)`` returns ``(latents, x)``: ``latents["theta"]``, one draw of
  $\theta$ (shape ``[global_dim]``), ``latents["z"]``, the local latents (``[N, local_dim]``),
  and the data ``x`` (``[N]`` for scalar observations, ``[N, D]`` for vectors);
- ``log_prob(latents, x)`` returns $\log p(\theta, z, x)$ for ``latents["theta"]`` of shape
  ``[S, global_dim]`` and ``latents["z"]`` of shape ``[S, N, local_dim]`` (``S`` draws), as a
  tensor of shape ``[S]``. An improper flat prior contributes 0.

Since $\theta$ couples all data points, a variational posterior
(`amortlib.families.VariationalPosterior`) is fitted to one whole data set at a time:
``amortlib.training.fit(model, posterior, "qp", data=x, batch_size=N, exact_entropy=True)``.

Models:

- `LinearModel`: flat prior on $\theta$, $z_n \sim \mathcal N(0, 1)$,
  $x_n \mid z_n, \theta \sim \mathcal N(\theta + \tau z_n, \sigma^2)$, with the closed-form
  optimum of factorized VI (`LinearModel.fvi_optimum`) and the exact ELBO of any mean-field
  Gaussian $q$ (`LinearModel.gaussian_elbo`, `LinearModel.optimal_elbo`);
- `NonlinearModel`: $\theta, z_n \sim \mathcal N(0, 1)$,
  $x_n \sim \mathcal N(\theta + z_n(1 + \sin z_n),\ \mathrm{sd}(z_n)^2)$;
- `BayesianDecoder`: a Bayesian neural network that decodes a latent code $z_n$ into an
  observed vector $x_n$ (an image), its weights $\theta$ the global latent.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

tfd = tfp.distributions

__all__ = [
    "HierarchicalModel",
    "LinearModel",
    "LinearOptimum",
    "NonlinearModel",
    "BayesianDecoder",
]

_LOG_2PI = math.log(2 * math.pi)


class HierarchicalModel:
    """Base class: a model $p(\\theta) \\prod_n p(z_n \\mid \\theta) p(x_n \\mid z_n, \\theta)$.

    Subclasses set ``global_dim`` and ``local_dim`` and implement ``sample`` and
    ``_log_joint(theta, z, x)``, the log density for ``theta`` [S, d_theta] and ``z`` [S, N, d_z].
    """

    global_dim: int = 1
    local_dim: int = 1
    #: Names of the latents, the keys of the dict that ``log_prob`` takes and ``sample`` returns.
    latent_names = ("theta", "z")
    #: Names of the latents shared by all data points (with any, `amortlib.training.fit` needs
    #: the whole data set in every step).
    global_latents = ("theta",)

    def sample(self, num_points: int, seed=None):
        """Draw ``(latents, x)`` with ``num_points`` data points.

        ``seed`` (an integer or a stateless seed tensor) is required: None is refused with a
        `ValueError`, as everywhere in amortlib (see ``_checks.seed``).
        """
        raise NotImplementedError

    def log_prob(self, latents, x) -> tf.Tensor:
        r"""$\log p(\theta, z, x)$ for ``S`` draws ``{"theta": [S, d_theta], "z": [S, N, d_z]}``.

        Returns a tensor of shape ``[S]``.

        Raises:
            ValueError: if ``latents`` is not a dict with the keys ``"theta"`` and ``"z"``, or
                for bad shapes or data.
        """
        if not isinstance(latents, dict) or sorted(latents) != ["theta", "z"]:
            raise ValueError(f"latents must be a dict with the keys 'theta' and 'z', got "
                             f"{latents!r:.80}")
        return self._log_joint(latents["theta"], latents["z"], x)

    def _log_joint(self, theta, z, x) -> tf.Tensor:
        raise NotImplementedError

    def check_latents(self, theta, z, x):
        """Convert and check the shapes of ``theta``, ``z`` and ``x`` for ``log_prob``."""
        x = _checks.data(x)
        theta = tf.convert_to_tensor(theta, dtype=_checks.DTYPE)
        z = tf.convert_to_tensor(z, dtype=_checks.DTYPE)
        if theta.shape.rank != 2 or theta.shape[-1] != self.global_dim:
            raise ValueError(
                f"theta must have shape [S, {self.global_dim}], got {tuple(theta.shape)}"
            )
        expected = (x.shape[0], self.local_dim)
        if z.shape.rank != 3 or tuple(z.shape[1:]) != expected:
            raise ValueError(
                f"z must have shape [S, {expected[0]}, {expected[1]}], got {tuple(z.shape)}")
        return theta, z, x


class LinearOptimum(NamedTuple):
    r"""The optimum of factorized VI in `LinearModel`: $q(\theta) \prod_n q(z_n)$, all Gaussian.

    Attributes:
        z_mean: means of $q(z_n)$, shape ``[N]``.
        z_sd: standard deviations of $q(z_n)$, shape ``[N]`` (all equal).
        theta_mean: mean of $q(\theta)$.
        theta_sd: standard deviation of $q(\theta)$.
    """

    z_mean: np.ndarray
    z_sd: np.ndarray
    theta_mean: float
    theta_sd: float


class LinearModel(HierarchicalModel):
    r"""The linear hierarchical model of Margossian and Blei (their Proposition 3.6).

    .. math::
        p(\theta) \propto 1, \qquad z_n \sim \mathcal N(0, 1), \qquad
        x_n \mid z_n, \theta \sim \mathcal N(\theta + \tau z_n,\ \sigma^2).

    The optimum of mean-field (factorized) VI has a closed form, with $\bar x$ the data mean:

    .. math::
        q^*(z_n) = \mathcal N\Big(\frac{\tau}{\sigma^2 + \tau^2}(x_n - \bar x),\
        \frac{\sigma^2}{\sigma^2 + \tau^2}\Big), \qquad
        q^*(\theta) = \mathcal N\big(\bar x,\ \sigma^2 / N\big).

    Args:
        tau: scale $\tau > 0$ of the local effect.
        sigma: observation noise standard deviation $\sigma > 0$.

    Raises:
        ValueError: if a scale is not positive and finite.

    Example:
        >>> model = LinearModel(tau=1.0, sigma=1.0)
        >>> opt = model.fvi_optimum([0.0, 2.0])
        >>> opt.z_mean.tolist(), round(opt.theta_mean, 3), round(float(opt.z_sd[0]) ** 2, 3)
        ([-0.5, 0.5], 1.0, 0.5)
    """

    global_dim = 1
    local_dim = 1

    def __init__(self, tau: float = 1.155, sigma: float = 2.43):
        self.tau = _checks.positive_scalar("tau", tau)
        self.sigma = _checks.positive_scalar("sigma", sigma)

    def __repr__(self) -> str:
        return f"LinearModel(tau={self.tau}, sigma={self.sigma})"

    @property
    def slope(self) -> float:
        r"""The slope $\tau / (\sigma^2 + \tau^2)$ of the ideal affine inference function."""
        return self.tau / (self.sigma**2 + self.tau**2)

    def sample(self, num_points: int, seed=None, *, theta: float = 0.0):
        """Draw ``(latents, x)``; the prior on theta is flat, so theta is given (default 0).

        Returns:
            ``({"theta": theta, "z": z}, x)``: ``theta`` of shape [1], ``z`` of shape [N, 1]
            and ``x`` of shape [N].
        """
        num_points = _checks.positive_int("num_points", num_points)
        theta = _checks.finite_scalar("theta", theta)
        z_seed, noise_seed = tfp.random.split_seed(_checks.seed(seed))
        z = tf.random.stateless_normal([num_points, 1], z_seed)
        noise = tf.random.stateless_normal([num_points], noise_seed)
        x = theta + self.tau * z[:, 0] + self.sigma * noise
        return {"theta": tf.constant([theta], _checks.DTYPE), "z": z}, x

    def _log_joint(self, theta, z, x) -> tf.Tensor:
        theta, z, x = self.check_latents(theta, z, x)
        if x.shape.rank != 1:
            raise ValueError(f"x must have shape [N] for LinearModel, got {tuple(x.shape)}")
        z = z[..., 0]
        prior = tfd.Normal(0.0, 1.0).log_prob(z)
        likelihood = tfd.Normal(theta + self.tau * z, self.sigma).log_prob(x)
        return tf.reduce_sum(prior + likelihood, axis=-1)

    def fvi_optimum(self, x) -> LinearOptimum:
        """The closed-form optimum of factorized VI for data ``x`` (shape [N])."""
        x = self._numpy_data(x)
        s2, t2 = self.sigma**2, self.tau**2
        return LinearOptimum(
            z_mean=self.slope * (x - x.mean()),
            z_sd=np.full(x.shape, math.sqrt(s2 / (s2 + t2))),
            theta_mean=float(x.mean()),
            theta_sd=self.sigma / math.sqrt(len(x)),
        )

    def gaussian_elbo(self, x, theta_mean, theta_sd, z_mean, z_sd) -> float:
        r"""The exact ELBO of a mean-field Gaussian $q(\theta) \prod_n q(z_n)$, in float64.

        With $q(\theta) = \mathcal N(m_\theta, v_\theta)$ and $q(z_n) = \mathcal N(m_n, v_n)$,

        .. math::
            \mathrm{ELBO} = \sum_n \Big[-\log 2\pi - \log\sigma - \frac{m_n^2 + v_n}{2}
            - \frac{(x_n - m_\theta - \tau m_n)^2 + v_\theta + \tau^2 v_n}{2\sigma^2}
            + \frac12 \log(2\pi e\, v_n)\Big] + \frac12 \log(2\pi e\, v_\theta).

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: mean and standard deviation (> 0) of $q(\theta)$.
            z_mean, z_sd: means and standard deviations (> 0) of the $q(z_n)$, scalars or [N].

        Returns:
            The ELBO as a Python float.
        """
        x = self._numpy_data(x)
        mu = np.broadcast_to(np.asarray(z_mean, np.float64).reshape(-1), x.shape)
        w = np.broadcast_to(np.asarray(z_sd, np.float64).reshape(-1), x.shape) ** 2
        m = _checks.finite_scalar("theta_mean", theta_mean)
        v = _checks.positive_scalar("theta_sd", theta_sd) ** 2
        if not np.all(w > 0):
            raise ValueError("z_sd must be positive")
        s2 = self.sigma**2
        terms = (
            -_LOG_2PI
            - math.log(self.sigma)
            - (mu**2 + w) / 2
            - ((x - m - self.tau * mu) ** 2 + v + self.tau**2 * w) / (2 * s2)
            + 0.5 * np.log(2 * math.pi * math.e * w)
        )
        return float(terms.sum() + 0.5 * math.log(2 * math.pi * math.e * v))

    def expected_log_joint(self, x, theta_mean, theta_sd, z_mean, z_sd) -> tf.Tensor:
        r"""$\mathbb E_q[\log p(\theta, z, x)]$ of a mean-field Gaussian, exactly, as a tensor.

        The log joint is quadratic in $(\theta, z)$, so its expectation is its value at the
        means minus half the curvature times the variances:
        $\log p(m_\theta, m, x) - \tfrac12\big(N v_\theta / \sigma^2 + (1 + \tau^2/\sigma^2)
        \sum_n v_n\big)$.
        Differentiable and traceable by `tf.function` (the float64 `gaussian_elbo` is not), so
        it can be recorded inside a compiled training loop.

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: mean and standard deviation of $q(\theta)$ (scalar tensors).
            z_mean, z_sd: means and standard deviations of the $q(z_n)$, shape [N].
        """
        x = tf.convert_to_tensor(x, _checks.DTYPE)
        at_means = tf.reduce_sum(
            tfd.Normal(0.0, 1.0).log_prob(z_mean)
            + tfd.Normal(theta_mean + self.tau * z_mean, self.sigma).log_prob(x)
        )
        curvature = (tf.cast(tf.size(x), _checks.DTYPE) / self.sigma**2 * theta_sd**2
                     + (1 + self.tau**2 / self.sigma**2) * tf.reduce_sum(z_sd**2))
        return at_means - 0.5 * curvature

    def optimal_elbo(self, x) -> float:
        """The exact ELBO at the optimum of factorized VI (the best any mean-field $q$ does)."""
        opt = self.fvi_optimum(x)
        return self.gaussian_elbo(x, opt.theta_mean, opt.theta_sd, opt.z_mean, opt.z_sd)

    @staticmethod
    def _numpy_data(x) -> np.ndarray:
        x = np.asarray(_checks.data(x).numpy(), dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"x must have shape [N] for LinearModel, got {x.shape}")
        return x


class NonlinearModel(HierarchicalModel):
    r"""The nonlinear model of Margossian and Blei's experiments.

    .. math::
        \theta \sim \mathcal N(0, 1), \quad z_n \sim \mathcal N(0, 1), \quad
        x_n \mid z_n, \theta \sim \mathcal N\big(\theta + z_n (1 + \sin z_n),\
        \mathrm{sd}(z_n)^2\big).

    The paper prints the variance as $\cos^2 z_n$ (``noise="cos"``, $\mathrm{sd} = |\cos z_n|$);
    then $\mathbb E_q[\log p(x_n \mid z_n, \theta)] = -\infty$ for every Gaussian $q(z_n)$,
    because $1/\cos^2 z$ is not integrable around the zeros of $\cos$. The authors' code uses
    $\mathrm{sd} = \exp(\cos z_n)$ (``noise="exp-cos"``, the default), which stays in
    $[e^{-1}, e]$ and gives a finite ELBO.

    Args:
        noise: ``"exp-cos"`` (default) or ``"cos"``.

    Example:
        >>> latents, x = NonlinearModel().sample(5, seed=0)
        >>> tuple(latents["theta"].shape), tuple(latents["z"].shape), tuple(x.shape)
        ((1,), (5, 1), (5,))
    """

    global_dim = 1
    local_dim = 1
    NOISES = ("exp-cos", "cos")

    def __init__(self, noise: str = "exp-cos"):
        self.noise = _checks.one_of("noise", noise, self.NOISES)

    def __repr__(self) -> str:
        return f"NonlinearModel(noise={self.noise!r})"

    @staticmethod
    def mean(theta, z):
        r"""The mean $\theta + z(1 + \sin z)$ of $x_n$."""
        return theta + z * (1.0 + tf.sin(z))

    def sd(self, z):
        """The observation standard deviation as a function of $z$."""
        return tf.exp(tf.cos(z)) if self.noise == "exp-cos" else tf.abs(tf.cos(z))

    def sample(self, num_points: int, seed=None):
        """Draw ``({"theta": [1], "z": [N, 1]}, x [N])`` from the model."""
        num_points = _checks.positive_int("num_points", num_points)
        s1, s2, s3 = tfp.random.split_seed(_checks.seed(seed), 3)
        theta = tf.random.stateless_normal([1], s1)
        z = tf.random.stateless_normal([num_points, 1], s2)
        x = self.mean(theta, z[:, 0]) + self.sd(z[:, 0]) * tf.random.stateless_normal(
            [num_points], s3
        )
        return {"theta": theta, "z": z}, x

    #: Factors with a standard deviation up to this are integrated by Gauss-Hermite quadrature.
    HERMITE_MAX_SD = 1.0
    #: The widest $q(z_n)$ that `gaussian_elbo` accepts.
    MAX_SD = 100.0

    def _expected_log_lik(self, x, m, v, mu, sd, num_nodes):
        r"""$\mathbb E_{q(\theta) q(z_n)} \log p(x_n \mid z_n, \theta)$ for each $n$, in float64.

        Gauss-Hermite with ``num_nodes`` nodes for ``sd <= HERMITE_MAX_SD``. Wider factors see
        many periods of $\cos z$ and $\sin z$, which Gauss-Hermite resolves only with a number of
        nodes growing like $\mathrm{sd}^2$ (64 nodes are off by 0.02 nats at sd 2.5 and by
        a nat or more at sd 4); for them the standardised variable
        $u = (z - m_n)/\mathrm{sd}_n$ is cut to $[-10, 10]$ (the Gaussian mass outside is
        below $10^{-22}$) and integrated by 10-node Gauss-Legendre on panels at most 0.5 wide
        in $z$ and 1 wide in $u$.
        """

        def integrand(z, x_n):
            g, c = z * (1 + np.sin(z)), np.cos(z)
            return -0.5 * _LOG_2PI - c - 0.5 * np.exp(-2 * c) * ((x_n - m - g) ** 2 + v)

        out = np.empty_like(x)
        narrow = sd <= self.HERMITE_MAX_SD
        if narrow.any():
            nodes, weights = np.polynomial.hermite.hermgauss(num_nodes)
            z = mu[narrow, None] + math.sqrt(2) * sd[narrow, None] * nodes  # [n, K]
            out[narrow] = integrand(z, x[narrow, None]) @ (weights / math.sqrt(math.pi))
        wide = np.flatnonzero(~narrow)
        if wide.size:
            half_width = 10.0
            panels = int(math.ceil(2 * half_width * max(sd[wide].max() / 0.5, 1.0)))
            t, w = np.polynomial.legendre.leggauss(10)
            edges = np.linspace(-half_width, half_width, panels + 1)
            centre, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
            u = (centre[:, None] + half[:, None] * t).ravel()
            weights = (half[:, None] * w).ravel() * np.exp(-u**2 / 2) / math.sqrt(2 * math.pi)
            chunk = max(1, 2**22 // u.size)
            for start in range(0, wide.size, chunk):
                idx = wide[start:start + chunk]
                z = mu[idx, None] + sd[idx, None] * u
                out[idx] = integrand(z, x[idx, None]) @ weights
        return out

    def gaussian_elbo(self, x, theta_mean, theta_sd, z_mean, z_sd, *,
                      num_nodes: int = 64) -> float:
        r"""The ELBO of a mean-field Gaussian $q$, by quadrature (no Monte Carlo).

        With $q(\theta) = \mathcal N(m_\theta, v_\theta)$, $q(z_n) = \mathcal N(m_n, v_n)$,
        $g(z) = z(1 + \sin z)$ and $c(z) = \cos z$ the log standard deviation, $\theta$ enters
        the likelihood through a square, so
        $\mathbb E_{q(\theta)}[(x_n - \theta - g)^2] = (x_n - m_\theta - g)^2 + v_\theta$ and only
        a one-dimensional integral over each $z_n$ remains:

        .. math::
            \mathbb E_q \log p(x_n \mid z_n, \theta) = \mathbb E_{q(z_n)}\Big[-\tfrac12 \log 2\pi
            - c(z_n) - \tfrac12 e^{-2 c(z_n)} \big((x_n - m_\theta - g(z_n))^2
            + v_\theta\big)\Big].

        Factors with standard deviation up to 1 (every posterior factor of this model, whose
        prior on $z_n$ has standard deviation 1) use Gauss-Hermite quadrature with
        ``num_nodes`` nodes: 64 nodes are accurate to about $10^{-9}$ nats per point at
        standard deviation 1. Wider factors, up to ``MAX_SD``, use composite Gauss-Legendre
        quadrature, accurate to about $10^{-12}$ relative at any width it accepts.

        Only for ``noise="exp-cos"``: with ``noise="cos"`` the ELBO is $-\infty$.

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: mean and standard deviation (> 0) of $q(\theta)$.
            z_mean, z_sd: means and standard deviations of the $q(z_n)$, scalars or [N];
                each standard deviation in $(0, 100]$.
            num_nodes: number of Gauss-Hermite nodes for the narrow factors, 64 to 250 (numpy's
                nodes overflow beyond).

        Returns:
            The ELBO as a Python float (computed in float64).

        Raises:
            ValueError: for the ``"cos"`` noise, bad shapes, or a standard deviation that is
                not positive or above ``MAX_SD``.
        """
        if self.noise != "exp-cos":
            raise ValueError("noise must be 'exp-cos' for a finite ELBO (with 'cos' it is -inf)")
        x = np.asarray(_checks.data(x).numpy(), np.float64)
        if x.ndim != 1:
            raise ValueError(f"x must have shape [N] for NonlinearModel, got {x.shape}")
        num_nodes = _checks.positive_int("num_nodes", num_nodes)
        if not 64 <= num_nodes <= 250:
            raise ValueError(f"num_nodes must be between 64 and 250, got {num_nodes}")
        m = _checks.finite_scalar("theta_mean", theta_mean)
        v = _checks.positive_scalar("theta_sd", theta_sd) ** 2
        try:
            mu = np.broadcast_to(np.asarray(z_mean, np.float64).reshape(-1), x.shape)
            sd = np.broadcast_to(np.asarray(z_sd, np.float64).reshape(-1), x.shape)
        except ValueError:
            raise ValueError(f"z_mean and z_sd must be scalars or of shape {x.shape}") from None
        if not np.all(np.isfinite(mu)):
            raise ValueError("z_mean must be finite")
        if not np.all((sd > 0) & (sd <= self.MAX_SD)):
            raise ValueError(f"z_sd must be positive and at most {self.MAX_SD}")
        expected = self._expected_log_lik(x, m, v, mu, sd, num_nodes).sum()
        expected += -0.5 * _LOG_2PI - (m**2 + v) / 2 + np.sum(-0.5 * _LOG_2PI - (mu**2 + sd**2) / 2)
        entropy = 0.5 * math.log(2 * math.pi * math.e * v) + np.sum(
            0.5 * np.log(2 * math.pi * math.e * sd**2))
        return float(expected + entropy)

    def quadrature_elbo(self, x, theta_mean, theta_sd, z_mean, z_sd, *,
                        num_nodes: int = 64) -> tf.Tensor:
        """`gaussian_elbo` as a differentiable float32 TensorFlow function (for optimisation).

        Gauss-Hermite quadrature only, so accurate for factors with standard deviation up to
        `HERMITE_MAX_SD` (= 1), as near this model's optimum; score the result with
        `gaussian_elbo`, which also integrates wider factors.

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: scalar tensors, mean and standard deviation of $q(\\theta)$.
            z_mean, z_sd: tensors of shape [N].
            num_nodes: Gauss-Hermite nodes.
        """
        nodes, weights = np.polynomial.hermite.hermgauss(num_nodes)
        nodes = tf.constant(nodes, _checks.DTYPE)
        weights = tf.constant(weights / math.sqrt(math.pi), _checks.DTYPE)
        z = z_mean[:, None] + math.sqrt(2) * z_sd[:, None] * nodes
        c = tf.cos(z)
        v = theta_sd**2
        integrand = (-z**2 / 2 - c
                     - 0.5 * tf.exp(-2 * c)
                     * ((x[:, None] - theta_mean - z * (1 + tf.sin(z))) ** 2 + v))
        size = tf.cast(tf.size(x), _checks.DTYPE)
        return (tf.reduce_sum(integrand * weights) - size * _LOG_2PI
                - 0.5 * _LOG_2PI - (theta_mean**2 + v) / 2
                + (size + 1) * 0.5 * math.log(2 * math.pi * math.e)
                + tf.math.log(theta_sd) + tf.reduce_sum(tf.math.log(z_sd)))

    def _log_joint(self, theta, z, x) -> tf.Tensor:
        theta, z, x = self.check_latents(theta, z, x)
        if x.shape.rank != 1:
            raise ValueError(f"x must have shape [N] for NonlinearModel, got {tuple(x.shape)}")
        z = z[..., 0]
        std = tfd.Normal(0.0, 1.0)
        log_p = std.log_prob(theta[:, 0]) + tf.reduce_sum(std.log_prob(z), -1)
        likelihood = tfd.Normal(self.mean(theta, z), self.sd(z)).log_prob(x)
        return log_p + tf.reduce_sum(likelihood, -1)


class BayesianDecoder(HierarchicalModel):
    r"""A Bayesian neural-network decoder: a latent code $z_n$ generates an observed vector $x_n$.

    .. math::
        \theta \sim \mathcal N(0, I), \quad z_n \sim \mathcal N(0, I_{d}), \quad
        x_n \mid z_n, \theta \sim \mathcal N\big(g_\theta(z_n),\ \sigma^2 I_D\big),

    with $g_\theta(z) = W_2\, \mathrm{relu}(W_1 z + b_1) + b_2$ a one-hidden-layer network whose
    weights and biases, flattened into one vector, are the global latent $\theta$.

    Args:
        latent_dim: dimension $d$ of each $z_n$.
        hidden: width of the hidden layer.
        obs_dim: dimension $D$ of each $x_n$ (for example 64 pixels).
        noise_sd: observation noise $\sigma > 0$.
        prior_sd: prior standard deviation of the weights (> 0).

    Example:
        >>> model = BayesianDecoder(latent_dim=2, hidden=3, obs_dim=4)
        >>> model.global_dim  # 2*3 + 3 + 3*4 + 4
        25
    """

    def __init__(self, latent_dim: int = 4, hidden: int = 32, obs_dim: int = 64,
                 noise_sd: float = 0.1, prior_sd: float = 1.0):
        self.local_dim = _checks.positive_int("latent_dim", latent_dim)
        self.hidden = _checks.positive_int("hidden", hidden)
        self.obs_dim = _checks.positive_int("obs_dim", obs_dim)
        self.noise_sd = _checks.positive_scalar("noise_sd", noise_sd)
        self.prior_sd = _checks.positive_scalar("prior_sd", prior_sd)
        d, h, o = self.local_dim, self.hidden, self.obs_dim
        self._shapes = [(d, h), (h,), (h, o), (o,)]
        self.global_dim = d * h + h + h * o + o

    def __repr__(self) -> str:
        return (f"BayesianDecoder(latent_dim={self.local_dim}, hidden={self.hidden}, "
                f"obs_dim={self.obs_dim}, noise_sd={self.noise_sd}, prior_sd={self.prior_sd})")

    def unpack(self, theta):
        """Split ``theta`` [S, global_dim] into ``(W1 [S,d,h], b1 [S,h], W2 [S,h,D], b2 [S,D])``."""
        sizes = [int(np.prod(s)) for s in self._shapes]
        parts = tf.split(theta, sizes, axis=-1)
        return [tf.reshape(p, [-1, *s]) for p, s in zip(parts, self._shapes)]

    def decode(self, theta, z) -> tf.Tensor:
        r"""The decoder's mean $g_\theta(z_n)$, [S, N, D], for ``theta`` [S, P], ``z`` [S, N, d]."""
        w1, b1, w2, b2 = self.unpack(tf.convert_to_tensor(theta, _checks.DTYPE))
        hidden = tf.nn.relu(tf.einsum("snd,sdh->snh", z, w1) + b1[:, None, :])
        return tf.einsum("snh,sho->sno", hidden, w2) + b2[:, None, :]

    def sample(self, num_points: int, seed=None):
        """Draw ``({"theta": [P], "z": [N, d]}, x [N, D])`` from the model."""
        num_points = _checks.positive_int("num_points", num_points)
        s1, s2, s3 = tfp.random.split_seed(_checks.seed(seed), 3)
        theta = self.prior_sd * tf.random.stateless_normal([1, self.global_dim], s1)
        z = tf.random.stateless_normal([1, num_points, self.local_dim], s2)
        mean = self.decode(theta, z)[0]
        x = mean + self.noise_sd * tf.random.stateless_normal(tf.shape(mean), s3)
        return {"theta": theta[0], "z": z[0]}, x

    def _log_joint(self, theta, z, x) -> tf.Tensor:
        theta, z, x = self.check_latents(theta, z, x)
        if x.shape.rank != 2 or x.shape[-1] != self.obs_dim:
            raise ValueError(f"x must have shape [N, {self.obs_dim}], got {tuple(x.shape)}")
        prior = tf.reduce_sum(tfd.Normal(0.0, self.prior_sd).log_prob(theta), -1)
        prior += tf.reduce_sum(tfd.Normal(0.0, 1.0).log_prob(z), [-2, -1])
        likelihood = tfd.Normal(self.decode(theta, z), self.noise_sd).log_prob(x)
        return prior + tf.reduce_sum(likelihood, [-2, -1])
