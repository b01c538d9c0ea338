r"""Two sequential models beyond simple hierarchical ones, with everything computed exactly.

Notation of Margossian and Blei: global latent $\theta$, local latents $z_n$, observations
$x_n$, $n = 1, \dots, N$:

- `SawTimeSeries`: $p(\theta) \prod_n p(z_n \mid x_{n-1})\, p(x_n \mid z_n, \theta)$, a time
  series whose latents hang between consecutive observations like the teeth of a saw;
- `GaussianHMM`: $\prod_n p(z_n \mid z_{n-1})\, p(x_n \mid z_n)$, a hidden Markov model with
  Gaussian transitions and emissions.

Both are linear-Gaussian, so for fixed data the log joint is a quadratic in the latents
$u$ (for the saw $u = (\theta, z_1, \dots, z_N)$, for the HMM $u = z$): each model gives its
precision $\Lambda$ and linear term $h$, and `amortlib.gaussian` computes the exact posterior
and the exact optima of F-VI and of A-VI with affine inference functions.

`SawTimeSeries` is an `amortlib.hierarchical.HierarchicalModel` (its ``log_prob`` is
TensorFlow), so `amortlib.training.fit` trains F-VI and A-VI on it. `GaussianHMM` has the same
contract (``sample`` returns ``({"z": z}, x)``, ``log_prob`` takes that dict) in float64 NumPy,
for exact checks.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import tensorflow as tf

from amortlib import _checks
from amortlib.gaussian import GaussianLatents, mean_field_elbo
from amortlib.hierarchical import HierarchicalModel

__all__ = [
    "GaussianHMM",
    "SawTimeSeries",
]

_LOG_2PI = math.log(2 * math.pi)


def _sd_or_inf(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or inf, got {value!r}") from None
    if not value > 0:  # also catches NaN
        raise ValueError(f"{name} must be a positive number or inf, got {value}")
    return value


def _standard_normals(shape, seed) -> np.ndarray:
    return tf.random.stateless_normal(shape, _checks.seed(seed), dtype=tf.float64).numpy()


def _normal_log_prob(value, loc, scale):
    return -0.5 * ((value - loc) / scale) ** 2 - tf.math.log(scale) - 0.5 * _LOG_2PI


# ---------------------------------------------------------------------------------------------
# The saw time series


class SawTimeSeries(GaussianLatents, HierarchicalModel):
    r"""The saw time series: each local latent links the previous observation to the current one.

    Margossian and Blei's model, as in their code's log joint:

    .. math::

        p(\theta) \propto 1,\qquad
        z_n \mid x_{n-1} \sim \mathcal N(x_{n-1}, \sigma_z^2),\qquad
        x_n \mid z_n, \theta \sim \mathcal N(\alpha (z_n + \theta), \sigma_x^2),

    for $n = 1, \dots, N$, with $x_0 = 0$; their experiment has $\alpha = 0.75$ and
    $\sigma_z = \sigma_x = 1$. ``theta_sd`` gives $\theta$ a proper prior
    $\mathcal N(0, \sigma_\theta^2)$ instead. Marginally
    $x_n = \alpha (\theta + x_{n-1}) + \text{noise}$, an autoregression, stationary for
    $|\alpha| < 1$. The posterior precision over $u = (\theta, z_1, \dots, z_N)$ is an arrow:
    $\Lambda_{\theta\theta} = 1/\sigma_\theta^2 + N \alpha^2/\sigma_x^2$,
    $\Lambda_{z_n z_n} = 1/\sigma_z^2 + \alpha^2/\sigma_x^2$,
    $\Lambda_{\theta z_n} = \alpha^2/\sigma_x^2$, so F-VI's optimal mean of $z_n$,

    .. math::

        m_n^* = \frac{x_{n-1}/\sigma_z^2 + \alpha (x_n - \alpha m_\theta^*)/\sigma_x^2}
                     {1/\sigma_z^2 + \alpha^2/\sigma_x^2},

    is an affine function of the pair $(x_{n-1}, x_n)$ but not a function of $x_n$ alone.

    Args:
        alpha: the coefficient $\alpha$, finite; non-zero when the prior on $\theta$ is flat
            (otherwise the data say nothing about $\theta$ and its posterior is improper).
        theta_sd: prior standard deviation $\sigma_\theta > 0$ of $\theta$, or ``math.inf``
            (the default) for the flat prior of the paper.
        latent_sd: $\sigma_z > 0$.
        observation_sd: $\sigma_x > 0$.

    Example:
        >>> model = SawTimeSeries(alpha=0.75)
        >>> latents, x = model.sample(5, theta=1.0, seed=0)
        >>> latents["z"].shape, x.shape
        (TensorShape([5, 1]), TensorShape([5]))
    """

    global_dim = 1
    local_dim = 1

    def __init__(
        self,
        alpha: float = 0.75,
        theta_sd: float = math.inf,
        latent_sd: float = 1.0,
        observation_sd: float = 1.0,
    ):
        self.alpha = _checks.finite_scalar("alpha", alpha)
        self.theta_sd = _sd_or_inf("theta_sd", theta_sd)
        self.latent_sd = _checks.positive_scalar("latent_sd", latent_sd)
        self.observation_sd = _checks.positive_scalar("observation_sd", observation_sd)
        if self.alpha == 0 and math.isinf(self.theta_sd):
            raise ValueError(
                "alpha must be non-zero with a flat prior on theta (theta_sd=inf): "
                "otherwise the posterior of theta is improper"
            )

    def __repr__(self) -> str:
        return (
            f"SawTimeSeries(alpha={self.alpha}, theta_sd={self.theta_sd}, "
            f"latent_sd={self.latent_sd}, observation_sd={self.observation_sd})"
        )

    def sample(self, num_points: int, seed=None, *, theta=None):
        """Draw ``({"theta": theta, "z": z}, x)``: shapes ``[1]``, ``[N, 1]`` and ``[N]``.

        Args:
            num_points: $N$.
            seed: an integer seed.
            theta: a fixed value of $\theta$; required when its prior is flat (a flat prior
                has no draws), otherwise $\theta$ is drawn from its prior when None.
        """
        num_points = _checks.positive_int("num_points", num_points)
        noise = _standard_normals([3, num_points], seed)
        if theta is None:
            if math.isinf(self.theta_sd):
                raise ValueError("theta must be given: a flat prior on theta has no draws")
            theta = self.theta_sd * noise[0, 0]
        theta = _checks.finite_scalar("theta", theta)
        # z_n = x_{n-1} + s_z e_n, x_n = alpha (z_n + theta) + s_x eps_n, x_0 = 0, so
        # x_n = alpha x_{n-1} + alpha theta + alpha s_z e_n + s_x eps_n.
        shocks = self.alpha * (theta + self.latent_sd * noise[1]) + self.observation_sd * noise[2]
        x = scipy.signal.lfilter([1.0], [1.0, -self.alpha], shocks)
        z = np.concatenate([[0.0], x[:-1]]) + self.latent_sd * noise[1]
        as_tensor = lambda a: tf.constant(a, dtype=tf.float32)  # noqa: E731
        return {"theta": as_tensor([theta]), "z": as_tensor(z[:, None])}, as_tensor(x)

    def paper_data(self, num_points: int, seed=None, *, theta: float = 3.4159) -> tf.Tensor:
        r"""Data from the authors' recursion, $x_n = \alpha(\theta + x_{n-1}) + \epsilon_n$.

        With $\epsilon_n \sim \mathcal N(0, 1)$ and $x_0 = 0$, at their $\theta = 3.4159$. This
        is not a draw from the model (whose $x_n$ carries the extra noise $\alpha \sigma_z e_n$
        of $z_n$ around $x_{n-1}$); it is the data set on which their ELBOs were computed.
        Returns float32 ``x`` of shape ``[num_points]``.
        """
        num_points = _checks.positive_int("num_points", num_points)
        theta = _checks.finite_scalar("theta", theta)
        noise = _standard_normals([num_points], seed)
        x = scipy.signal.lfilter([1.0], [1.0, -self.alpha], self.alpha * theta + noise)
        return tf.constant(x, dtype=tf.float32)

    def _log_joint(self, theta, z, x) -> tf.Tensor:
        r"""$\log p(\theta, z, x)$ for ``theta`` [S, 1] and ``z`` [S, N, 1]; returns [S].

        A flat prior on $\theta$ contributes 0. Works in the dtype of ``theta`` (float32 in
        training, float64 for exact values).
        """
        theta = tf.convert_to_tensor(theta, dtype_hint=tf.float32)
        z = tf.convert_to_tensor(z, dtype=theta.dtype)
        x = tf.convert_to_tensor(x, dtype=theta.dtype)
        if theta.shape.rank != 2 or theta.shape[-1] != 1:
            raise ValueError(f"theta must have shape [S, 1], got {tuple(theta.shape)}")
        if z.shape.rank != 3 or tuple(z.shape[1:]) != (x.shape[0], 1) or x.shape.rank != 1:
            raise ValueError(
                f"z must have shape [S, N, 1] and x shape [N], "
                f"got {tuple(z.shape)} and {tuple(x.shape)}"
            )
        return self._log_density(theta[..., 0], z[..., 0], x)

    def _log_density(self, theta, z, x):
        # theta [S], z [S, N], x [N] -> [S], in the dtype of theta.
        previous = tf.concat([tf.zeros([1], x.dtype), x[:-1]], axis=0)
        sd = lambda s: tf.constant(s, theta.dtype)  # noqa: E731
        total = (
            tf.reduce_sum(_normal_log_prob(z, previous, sd(self.latent_sd)), -1)
            + tf.reduce_sum(_normal_log_prob(
                x, self.alpha * (theta[..., None] + z), sd(self.observation_sd)), -1)
        )
        if not math.isinf(self.theta_sd):
            total = total + _normal_log_prob(theta, 0.0, sd(self.theta_sd))
        return total

    def _curvatures(self, num_points):
        # Lambda_thetatheta and Lambda_{z_n z_n}.
        s_x2 = self.observation_sd**2
        return (1 / self.theta_sd**2 + num_points * self.alpha**2 / s_x2,
                1 / self.latent_sd**2 + self.alpha**2 / s_x2)

    def precision(self, x) -> np.ndarray:
        r"""The posterior precision $\Lambda$ over $(\theta, z_1, \dots, z_N)$, [N + 1, N + 1]."""
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        n = len(x)
        lam = np.zeros((n + 1, n + 1))
        lam[0, 0], local_curvature = self._curvatures(n)
        lam[0, 1:] = lam[1:, 0] = self.alpha**2 / self.observation_sd**2
        local = np.arange(1, n + 1)
        lam[local, local] = local_curvature
        return lam

    def linear_term(self, x) -> np.ndarray:
        r"""The linear term $h$ over $(\theta, z_1, \dots, z_N)$.

        $h_\theta = \alpha \sum_n x_n / \sigma_x^2$ and
        $h_{z_n} = x_{n-1}/\sigma_z^2 + \alpha x_n/\sigma_x^2$.
        """
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        previous = np.concatenate([[0.0], x[:-1]])
        s_x2 = self.observation_sd**2
        return np.concatenate(
            [[self.alpha * x.sum() / s_x2],
             previous / self.latent_sd**2 + self.alpha * x / s_x2]
        )

    def expected_log_joint(self, x, theta_mean, theta_sd, z_mean, z_sd) -> tf.Tensor:
        r"""$\mathbb E_q[\log p(\theta, z, x)]$ of a mean-field Gaussian, exactly, as a tensor.

        The log joint is quadratic, so this is its value at the means minus
        $\tfrac12 (\Lambda_{\theta\theta} v_\theta + \Lambda_{zz} \sum_n w_n)$, with
        $v_\theta$, $w_n$ the variances. Traceable by `tf.function`, so `gap.traced_elbo` can
        record the exact ELBO at every training step.

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: mean and standard deviation of $q(\theta)$ (scalar tensors).
            z_mean, z_sd: means and standard deviations of the $q(z_n)$, shape [N].
        """
        x = tf.convert_to_tensor(x, _checks.DTYPE)
        theta_mean = tf.convert_to_tensor(theta_mean, _checks.DTYPE)
        z_mean = tf.convert_to_tensor(z_mean, _checks.DTYPE)
        theta_sd = tf.convert_to_tensor(theta_sd, _checks.DTYPE)
        z_sd = tf.convert_to_tensor(z_sd, _checks.DTYPE)
        at_means = self._log_density(theta_mean[None], z_mean[None], x)[0]
        curvature_theta, curvature_z = self._curvatures(int(x.shape[0]))
        return at_means - 0.5 * (curvature_theta * theta_sd**2
                                 + curvature_z * tf.reduce_sum(z_sd**2))

    def optimal_elbo(self, x) -> float:
        """The ELBO at F-VI's optimum, exactly (`mean_field_elbo`)."""
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        mean = self.posterior_mean(x)
        at_mean = self._log_joint(
            tf.constant(mean[None, :1]), tf.constant(mean[None, 1:, None]), tf.constant(x)
        )
        return mean_field_elbo(float(at_mean[0]), self.precision(x))

    def gaussian_elbo(self, x, theta_mean, theta_sd, z_mean, z_sd) -> float:
        r"""The exact ELBO of $q(\theta) \prod_n q(z_n)$, all Gaussian, in float64.

        Args:
            x: data, shape [N].
            theta_mean, theta_sd: mean and standard deviation (> 0) of $q(\theta)$.
            z_mean, z_sd: means and standard deviations (> 0) of the $q(z_n)$, [N].
        """
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        theta_mean = _checks.finite_scalar("theta_mean", theta_mean)
        theta_sd = _checks.positive_scalar("theta_sd", theta_sd)
        z_mean = np.asarray(z_mean, dtype=np.float64).reshape(-1)
        z_sd = np.asarray(z_sd, dtype=np.float64).reshape(-1)
        if z_mean.shape != x.shape or z_sd.shape != x.shape:
            raise ValueError(f"z_mean and z_sd must have shape {x.shape}")
        at_means = self._log_joint(
            tf.constant([[theta_mean]], tf.float64),
            tf.constant(z_mean[None, :, None]),
            tf.constant(x),
        )
        variances = np.r_[theta_sd, z_sd] ** 2
        return mean_field_elbo(float(at_means[0]), self.precision(x), variances)

    def features(self, x, inputs: str) -> np.ndarray:
        r"""Features that make the means of $z_n$ affine in the inference function's input.

        Columns: a free mean for $\theta$; then for the $z$'s an intercept and the input,
        $x_n$ for ``inputs="x"`` or $(x_{n-1}, x_n)$ for ``inputs="lagged"`` (where $z_1$ gets
        a free mean of its own; the model fixes $x_0 = 0$, and the authors instead feed
        $(0, x_1)$, which gives the same optimum since $m_1^*$ lies on the same affine line, so
        the free mean is unnecessary but harmless). Use with
        `amortlib.gaussian.constrained_mean_field_optimum`.
        """
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        _checks.one_of("inputs", inputs, ("x", "lagged"))
        n = len(x)
        columns = [np.r_[1.0, np.zeros(n)], np.r_[0.0, np.ones(n)], np.r_[0.0, x]]
        if inputs == "lagged":
            first = np.zeros(n + 1)
            first[1] = 1.0
            columns[1][1] = 0.0
            columns[2][1] = 0.0
            columns += [first, np.r_[0.0, 0.0, x[:-1]]]
        return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------------------------
# The Gaussian hidden Markov model


class GaussianHMM(GaussianLatents):
    r"""A hidden Markov model with Gaussian transitions and emissions (linear-Gaussian).

    .. math::

        z_1 \sim \mathcal N(0, \sigma_0^2),\qquad
        z_n \mid z_{n-1} \sim \mathcal N(\rho z_{n-1}, \sigma_w^2),\qquad
        x_n \mid z_n \sim \mathcal N(z_n, \sigma_x^2).

    ``initial_sd=math.inf`` gives a flat prior on $z_1$ (the posterior stays proper). The
    posterior precision of $z$ is tridiagonal:

    .. math::

        \Lambda_{nn} = \frac1{\sigma_x^2} + \frac{[n > 1]}{\sigma_w^2}
        + \frac{[n < N]\, \rho^2}{\sigma_w^2} + \frac{[n = 1]}{\sigma_0^2},\qquad
        \Lambda_{n, n+1} = -\frac{\rho}{\sigma_w^2},\qquad h_n = \frac{x_n}{\sigma_x^2}.

    It is positive definite for every $\rho$: the quadratic part of $-\log p(z, x)$ in $z$ is
    $\tfrac12 z^\top D z + \tfrac1{2\sigma_w^2} \sum_{n \ge 2} (z_n - \rho z_{n-1})^2$ with
    the diagonal $D = \operatorname{diag}(1/\sigma_x^2 + [n = 1]/\sigma_0^2)$, so
    $z^\top \Lambda z \ge z^\top D z \ge \|z\|^2/\sigma_x^2 > 0$ for $z \ne 0$: a positive
    diagonal part plus a positive-semidefinite transition part. (The matrix need not be
    diagonally dominant: with a flat prior on $z_1$ its first row has
    $\Lambda_{11} = 1/\sigma_x^2 + \rho^2/\sigma_w^2$, which is below
    $|\Lambda_{12}| = |\rho|/\sigma_w^2$ when, for example, $\rho = 0.5$, $\sigma_w = 1$ and
    $\sigma_x = 10$.)

    Args:
        transition_coef: $\rho$, finite.
        transition_sd: $\sigma_w > 0$.
        observation_sd: $\sigma_x > 0$.
        initial_sd: $\sigma_0 > 0$, or ``math.inf`` for a flat prior on $z_1$.

    Example:
        >>> hmm = GaussianHMM(transition_coef=1.0)  # the model of the paper's appendix
        >>> hmm.precision([1.0, 1.0, 1.0])
        array([[ 3., -1.,  0.],
               [-1.,  3., -1.],
               [ 0., -1.,  2.]])
    """

    def __init__(
        self,
        transition_coef: float = 0.9,
        transition_sd: float = 1.0,
        observation_sd: float = 1.0,
        initial_sd: float = 1.0,
    ):
        self.transition_coef = _checks.finite_scalar("transition_coef", transition_coef)
        self.transition_sd = _checks.positive_scalar("transition_sd", transition_sd)
        self.observation_sd = _checks.positive_scalar("observation_sd", observation_sd)
        self.initial_sd = _sd_or_inf("initial_sd", initial_sd)

    def __repr__(self) -> str:
        return (
            f"GaussianHMM(transition_coef={self.transition_coef}, "
            f"transition_sd={self.transition_sd}, observation_sd={self.observation_sd}, "
            f"initial_sd={self.initial_sd})"
        )

    #: Names of the latents, the keys of the dict that ``log_prob`` takes and ``sample`` returns.
    latent_names = ("z",)

    def sample(self, num_points: int, seed=None):
        """Draw ``({"z": z}, x)``, ``z`` and ``x`` of shape ``[num_points]`` (float64 NumPy).

        Raises:
            ValueError: if the prior on $z_1$ is flat (``initial_sd=inf``): it cannot be sampled.
        """
        num_points = _checks.positive_int("num_points", num_points)
        if math.isinf(self.initial_sd):
            raise ValueError("initial_sd must be finite to sample: a flat prior has no draws")
        noise = _standard_normals([2, num_points], seed)
        shocks = self.transition_sd * noise[0]
        shocks[0] = self.initial_sd * noise[0, 0]
        z = scipy.signal.lfilter([1.0], [1.0, -self.transition_coef], shocks)
        return {"z": z}, z + self.observation_sd * noise[1]

    def log_prob(self, latents, x) -> np.ndarray:
        r"""$\log p(z, x)$ for ``latents = {"z": z}``, ``z`` of shape [..., N] (float64).

        A flat prior on $z_1$ contributes 0. Returns an array of shape ``z.shape[:-1]``.

        Raises:
            ValueError: if ``latents`` is not a dict with the one key ``"z"``, or for bad
                shapes or data.
        """
        if not isinstance(latents, dict) or sorted(latents) != ["z"]:
            raise ValueError(f"latents must be a dict with the one key 'z', got {latents!r:.80}")
        return self._log_joint(latents["z"], x)

    def _log_joint(self, z, x) -> np.ndarray:
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        z = np.asarray(z, dtype=np.float64)
        if z.shape[-1:] != x.shape:
            raise ValueError(f"z must have shape [..., {len(x)}], got {z.shape}")

        def normal(value, loc, sd):
            return -0.5 * ((value - loc) / sd) ** 2 - math.log(sd) - 0.5 * _LOG_2PI

        total = normal(x, z, self.observation_sd).sum(-1)
        previous = self.transition_coef * z[..., :-1]
        total = total + normal(z[..., 1:], previous, self.transition_sd).sum(-1)
        if not math.isinf(self.initial_sd):
            total = total + normal(z[..., 0], 0.0, self.initial_sd)
        return total

    def precision(self, x) -> np.ndarray:
        r"""The posterior precision $\Lambda$ of $z$, tridiagonal, [N, N]."""
        n = len(_checks.data(x, ranks=(1,), min_points=2, numpy=True))
        rho, tau = self.transition_coef, 1 / self.transition_sd**2
        diagonal = np.full(n, 1 / self.observation_sd**2)
        diagonal[1:] += tau
        diagonal[:-1] += tau * rho**2
        diagonal[0] += 1 / self.initial_sd**2  # 0 for a flat prior
        off = np.full(n - 1, -rho * tau)
        return np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)

    def linear_term(self, x) -> np.ndarray:
        r"""The linear term $h = x / \sigma_x^2$."""
        return _checks.data(x, ranks=(1,), min_points=2, numpy=True) / self.observation_sd**2

    def optimal_elbo(self, x) -> float:
        """The ELBO at F-VI's optimum, exactly (`mean_field_elbo`)."""
        x = _checks.data(x, ranks=(1,), min_points=2, numpy=True)
        return mean_field_elbo(float(self._log_joint(self.posterior_mean(x), x)),
                               self.precision(x))
