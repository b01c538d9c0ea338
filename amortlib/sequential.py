r"""Models beyond simple hierarchical ones, with everything that can be computed exactly.

Notation of Margossian and Blei: global latent $\theta$, local latents $z_n$, observations
$x_n$, $n = 1, \dots, N$. Two sequential models live here:

- `SawTimeSeries`: $p(\theta) \prod_n p(z_n \mid x_{n-1})\, p(x_n \mid z_n, \theta)$, a time
  series whose latents hang between consecutive observations like the teeth of a saw;
- `GaussianHMM`: $\prod_n p(z_n \mid z_{n-1})\, p(x_n \mid z_n)$, a hidden Markov model with
  Gaussian transitions and emissions.

Both are linear-Gaussian, so for fixed data the log joint is a quadratic in the latents
$u$ (for the saw $u = (\theta, z_1, \dots, z_N)$, for the HMM $u = z$):

.. math::

    \log p(u, x) = c(x) - \tfrac12 u^\top \Lambda u + h^\top u,

with $\Lambda$ the posterior *precision* and $h$ the *linear term*: the posterior is
$\mathcal N(\Lambda^{-1} h, \Lambda^{-1})$. For a Gaussian target, the best fully factorized
(mean-field) Gaussian $q(u) = \prod_i \mathcal N(u_i; m_i, v_i)$ — the optimum of F-VI — is
known exactly: $m = \Lambda^{-1} h$ (the exact posterior means) and $v_i = 1 / \Lambda_{ii}$.
The functions `mean_field_optimum`, `mean_field_kl` and `constrained_mean_field_optimum` work
on any such $(\Lambda, h)$; the last one gives the exact optimum when the means are tied to a
linear function of features, which is A-VI with an affine inference function or with any
function of a discrete input.

Exact computations use NumPy in float64 with dense matrices, which is fine for $N$ up to a
few thousand. `SawTimeSeries` is an `amortlib.hierarchical.HierarchicalModel` (its
``log_joint`` is TensorFlow), so `amortlib.gap` trains F-VI and A-VI on it;
`GaussianHMM.log_joint` is NumPy, for exact checks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.signal
import tensorflow as tf

from amortlib import _checks
from amortlib.hierarchical import HierarchicalModel

__all__ = [
    "MeanField",
    "GaussianLatents",
    "SawTimeSeries",
    "GaussianHMM",
    "mean_field_optimum",
    "mean_field_kl",
    "mean_field_elbo",
    "constrained_mean_field_optimum",
    "tridiagonal",
    "is_positive_definite",
    "paper_hmm_matrix",
]

_LOG_2PI = math.log(2 * math.pi)


class MeanField(NamedTuple):
    r"""A fully factorized Gaussian $\prod_i \mathcal N(u_i;\ m_i, v_i)$: means and variances."""

    means: np.ndarray
    variances: np.ndarray


# ---------------------------------------------------------------------------------------------
# Gaussian targets in information form


def _information_form(precision, linear) -> tuple[np.ndarray, np.ndarray]:
    precision = np.asarray(precision, dtype=np.float64)
    linear = np.asarray(linear, dtype=np.float64)
    if precision.ndim != 2 or precision.shape[0] != precision.shape[1]:
        raise ValueError(f"precision must be a square matrix, got shape {precision.shape}")
    if linear.shape != precision.shape[:1]:
        raise ValueError(
            f"linear must have shape {precision.shape[:1]} to match precision, got {linear.shape}"
        )
    if not (np.all(np.isfinite(precision)) and np.all(np.isfinite(linear))):
        raise ValueError("precision and linear must be finite")
    if not np.allclose(precision, precision.T):
        raise ValueError("precision must be symmetric")
    if not is_positive_definite(precision):
        raise ValueError(
            "precision must be positive definite: otherwise there is no Gaussian posterior and "
            "no optimum (the ELBO is unbounded above along an eigenvector with eigenvalue <= 0)"
        )
    return precision, linear


def is_positive_definite(matrix) -> bool:
    """Whether a symmetric matrix is positive definite (its Cholesky factorization exists)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def tridiagonal(size: int, diagonal: float, off_diagonal: float) -> np.ndarray:
    r"""The ``size`` x ``size`` symmetric tridiagonal Toeplitz matrix.

    Its eigenvalues are $d + 2 o \cos(k\pi / (N + 1))$, $k = 1, \dots, N$, for diagonal $d$
    and off-diagonal $o$.

    Example:
        >>> tridiagonal(3, 3.0, -2.0)
        array([[ 3., -2.,  0.],
               [-2.,  3., -2.],
               [ 0., -2.,  3.]])
    """
    size = _checks.positive_int("size", size)
    diagonal = _checks.finite_scalar("diagonal", diagonal)
    off_diagonal = _checks.finite_scalar("off_diagonal", off_diagonal)
    off = np.full(size - 1, off_diagonal)
    return np.diag(np.full(size, diagonal)) + np.diag(off, 1) + np.diag(off, -1)


def paper_hmm_matrix(size: int) -> np.ndarray:
    r"""The matrix $\Psi$ that Margossian and Blei's HMM script solves (their Figure 8).

    Their script (``hmm_counter_example.R``) simulates $z_1 \sim \mathcal N(0, 1)$,
    $z_n \sim \mathcal N(z_{n-1}, 1)$, $x_n \sim \mathcal N(z_n, 1)$, whose posterior precision
    is ``GaussianHMM(transition_coef=1.0).precision(x)`` (diagonal 3, last entry 2,
    off-diagonal $-1$). It then computes the "optimal means" as $-2 \Psi^{-1} x$ with this
    $\Psi$: $\Psi_{11} = 1$, every other diagonal entry 3, off-diagonal $-2$. $\Psi$ is not that
    precision, and it is indefinite for every ``size`` >= 2 (at 2 its eigenvalues are
    $2 \pm \sqrt 5$).

    Example:
        >>> paper_hmm_matrix(3)
        array([[ 1., -2.,  0.],
               [-2.,  3., -2.],
               [ 0., -2.,  3.]])
    """
    matrix = tridiagonal(size, 3.0, -2.0)
    matrix[0, 0] = 1.0
    return matrix


def mean_field_optimum(precision, linear) -> MeanField:
    r"""The best fully factorized Gaussian for a target $\mathcal N(\Lambda^{-1} h, \Lambda^{-1})$.

    Minimising $\mathrm{KL}(q \,\|\, p)$ over $q = \prod_i \mathcal N(m_i, v_i)$ gives

    .. math::

        m = \Lambda^{-1} h \quad (\text{the exact posterior means}),\qquad
        v_i = 1 / \Lambda_{ii} \le (\Lambda^{-1})_{ii}.

    Args:
        precision: the posterior precision $\Lambda$, symmetric positive definite, [D, D].
        linear: the linear term $h$, [D].

    Returns:
        A `MeanField`.

    Raises:
        ValueError: if the shapes do not match or ``precision`` is not symmetric positive
            definite.

    Example:
        >>> q = mean_field_optimum([[2.0, 1.0], [1.0, 2.0]], [3.0, 3.0])
        >>> q.means, q.variances
        (array([1., 1.]), array([0.5, 0.5]))
    """
    precision, linear = _information_form(precision, linear)
    return MeanField(np.linalg.solve(precision, linear), 1.0 / np.diag(precision))


def mean_field_kl(precision, linear, q: MeanField) -> float:
    r"""$\mathrm{KL}(q \,\|\, p)$ for a fully factorized Gaussian $q$ and a Gaussian $p$.

    The target is $p = \mathcal N(\Lambda^{-1} h, \Lambda^{-1})$, in information form.

    .. math::

        \mathrm{KL} = \tfrac12 \Big[\textstyle\sum_i \Lambda_{ii} v_i - D - \sum_i \log v_i
        - \log\det\Lambda + (m - \mu)^\top \Lambda (m - \mu)\Big],\quad \mu = \Lambda^{-1} h.

    Since the ELBO is $\log p(x) - \mathrm{KL}(q \,\|\, p(\cdot \mid x))$, differences of this
    KL between two $q$'s are exact differences of their ELBOs: the amortization gap.

    Example:
        >>> q = mean_field_optimum([[2.0, 1.0], [1.0, 2.0]], [3.0, 3.0])
        >>> round(mean_field_kl([[2.0, 1.0], [1.0, 2.0]], [3.0, 3.0], q), 4)  # log(4/3) / 2
        0.1438
    """
    precision, linear = _information_form(precision, linear)
    means = np.asarray(q.means, dtype=np.float64)
    variances = np.asarray(q.variances, dtype=np.float64)
    if means.shape != linear.shape or variances.shape != linear.shape:
        raise ValueError(f"q must have means and variances of shape {linear.shape}")
    if not np.all(variances > 0):
        raise ValueError("q.variances must be positive")
    error = means - np.linalg.solve(precision, linear)
    _, logdet = np.linalg.slogdet(precision)
    trace = np.sum(np.diag(precision) * variances)
    return 0.5 * float(
        trace - len(linear) - np.sum(np.log(variances)) - logdet + error @ precision @ error
    )


def mean_field_elbo(log_joint_at_means: float, precision, variances=None) -> float:
    r"""The ELBO of a fully factorized Gaussian $q$ for a Gaussian target, exactly.

    The log joint is quadratic in the latents, so its expectation under
    $q = \prod_i \mathcal N(m_i, v_i)$ is its value at the means minus a variance term:

    .. math::

        \mathrm{ELBO}(q) = \log p(m, x) - \tfrac12 \textstyle\sum_i \Lambda_{ii} v_i
        + \tfrac12 \sum_i \log(2\pi e\, v_i).

    At F-VI's optimum ($m$ the posterior mean, $v_i = 1/\Lambda_{ii}$, the default) this is
    $\log p(m, x) + \tfrac D2 \log 2\pi - \tfrac12 \sum_i \log \Lambda_{ii}$.

    Args:
        log_joint_at_means: $\log p(m, x)$.
        precision: $\Lambda$, [D, D].
        variances: the $v_i$, [D], positive; default $1/\Lambda_{ii}$.

    Example:
        >>> round(mean_field_elbo(0.0, [[1.0]]), 4)  # log p(m, x) + log(2 pi) / 2
        0.9189
    """
    log_joint_at_means = _checks.finite_scalar("log_joint_at_means", log_joint_at_means)
    diagonal = np.diag(np.asarray(precision, dtype=np.float64))
    if not np.all(diagonal > 0):
        raise ValueError("precision must have a positive diagonal")
    variances = 1 / diagonal if variances is None else np.asarray(variances, dtype=np.float64)
    if variances.shape != diagonal.shape or not np.all(variances > 0):
        raise ValueError(f"variances must be positive, of shape {diagonal.shape}")
    return log_joint_at_means + 0.5 * float(
        np.sum(np.log(2 * math.pi * math.e * variances) - diagonal * variances)
    )


def constrained_mean_field_optimum(precision, linear, features, variance_groups) -> MeanField:
    r"""The best fully factorized Gaussian whose means are linear in given features.

    The means are restricted to $m = F \beta$ for a feature matrix $F$ ([D, P]) and free
    coefficients $\beta$, and the variances to be equal within each group. The expected log
    joint separates into a mean part and a variance part, so the optimum is exact:
    generalized least squares for the means and a harmonic mean per group for the variances,

    .. math::

        \beta = (F^\top \Lambda F)^{-1} F^\top h, \qquad
        v_g = |g| \Big/ \textstyle\sum_{i \in g} \Lambda_{ii}.

    This is A-VI's optimum for an *affine* inference function (features: an intercept and
    the inputs) and for *any* function of a discrete input (features: indicators of the
    input's values); free parameters for some latents are columns with a single one.

    Args:
        precision: $\Lambda$, [D, D], symmetric positive definite.
        linear: $h$, [D].
        features: $F$, [D, P], of full column rank.
        variance_groups: integer group label of each latent, [D].

    Returns:
        A `MeanField`; compare it with `mean_field_optimum` through `mean_field_kl`.

    Example:
        >>> # Tie both means of a 2-d target: m_1 = m_2 = beta.
        >>> q = constrained_mean_field_optimum([[2.0, 1.0], [1.0, 2.0]], [3.0, 3.0],
        ...                                    [[1.0], [1.0]], [0, 0])
        >>> q.means  # the target's means are both 1 already
        array([1., 1.])
    """
    precision, linear = _information_form(precision, linear)
    features = np.asarray(features, dtype=np.float64)
    groups = np.asarray(variance_groups)
    if features.ndim != 2 or features.shape[0] != len(linear):
        raise ValueError(f"features must have shape [{len(linear)}, P], got {features.shape}")
    if np.linalg.matrix_rank(features) < features.shape[1]:
        raise ValueError("features must have full column rank")
    if groups.shape != linear.shape or not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"variance_groups must be integer labels of shape {linear.shape}")
    gram = features.T @ precision @ features
    means = features @ np.linalg.solve(gram, features.T @ linear)
    diagonal = np.diag(precision)
    _, index = np.unique(groups, return_inverse=True)
    sizes = np.bincount(index)
    variances = (sizes / np.bincount(index, weights=diagonal))[index]
    return MeanField(means, variances)


def _observations(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"{name} must be a 1-D array of at least 2 observations, got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x


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


class GaussianLatents:
    r"""Mixin for models whose log joint is quadratic in the latents, given the data.

    Subclasses define ``precision(x)`` ($\Lambda$) and ``linear_term(x)`` ($h$); the posterior
    is then $\mathcal N(\Lambda^{-1} h, \Lambda^{-1})$ and F-VI's optimum is exact.
    """

    def precision(self, x) -> np.ndarray:
        """The posterior precision $\\Lambda$ given data ``x``."""
        raise NotImplementedError

    def linear_term(self, x) -> np.ndarray:
        """The linear term $h$ given data ``x``."""
        raise NotImplementedError

    def posterior_mean(self, x) -> np.ndarray:
        r"""The exact posterior mean $\Lambda^{-1} h$ of the latents."""
        return np.linalg.solve(self.precision(x), self.linear_term(x))

    def posterior_covariance(self, x) -> np.ndarray:
        r"""The exact posterior covariance $\Lambda^{-1}$ of the latents."""
        return np.linalg.inv(self.precision(x))

    def fvi_optimum(self, x) -> MeanField:
        r"""F-VI's optimum: the posterior means and the variances $1/\Lambda_{ii}$.

        The latents are in the order of ``precision``: for `SawTimeSeries` $\theta$ first, then
        $z_1, \dots, z_N$.
        """
        return mean_field_optimum(self.precision(x), self.linear_term(x))


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
        >>> theta, z, x = model.sample(5, theta=1.0, seed=0)
        >>> z.shape, x.shape
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
        """Draw ``(theta, z, x)`` with shapes ``[1]``, ``[num_points, 1]`` and ``[num_points]``.

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
        return as_tensor([theta]), as_tensor(z[:, None]), as_tensor(x)

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

    def log_joint(self, theta, z, x) -> tf.Tensor:
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
        return self._log_joint(theta[..., 0], z[..., 0], x)

    def _log_joint(self, theta, z, x):
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
        x = _observations(x)
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
        x = _observations(x)
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
        at_means = self._log_joint(theta_mean[None], z_mean[None], x)[0]
        curvature_theta, curvature_z = self._curvatures(int(x.shape[0]))
        return at_means - 0.5 * (curvature_theta * theta_sd**2
                                 + curvature_z * tf.reduce_sum(z_sd**2))

    def optimal_elbo(self, x) -> float:
        """The ELBO at F-VI's optimum, exactly (`mean_field_elbo`)."""
        x = _observations(x)
        mean = self.posterior_mean(x)
        at_mean = self.log_joint(
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
        x = _observations(x)
        theta_mean = _checks.finite_scalar("theta_mean", theta_mean)
        theta_sd = _checks.positive_scalar("theta_sd", theta_sd)
        z_mean = np.asarray(z_mean, dtype=np.float64).reshape(-1)
        z_sd = np.asarray(z_sd, dtype=np.float64).reshape(-1)
        if z_mean.shape != x.shape or z_sd.shape != x.shape:
            raise ValueError(f"z_mean and z_sd must have shape {x.shape}")
        at_means = self.log_joint(
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
        `constrained_mean_field_optimum`.
        """
        x = _observations(x)
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

    def sample(self, num_points: int, seed=None):
        """Draw ``(z, x)``, each of shape ``[num_points]`` (float64 NumPy arrays).

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
        return z, z + self.observation_sd * noise[1]

    def log_joint(self, z, x) -> np.ndarray:
        r"""$\log p(z, x)$ for ``z`` of shape [..., N] (float64; a flat prior contributes 0)."""
        x = _observations(x)
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
        n = len(_observations(x))
        rho, tau = self.transition_coef, 1 / self.transition_sd**2
        diagonal = np.full(n, 1 / self.observation_sd**2)
        diagonal[1:] += tau
        diagonal[:-1] += tau * rho**2
        diagonal[0] += 1 / self.initial_sd**2  # 0 for a flat prior
        off = np.full(n - 1, -rho * tau)
        return np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)

    def linear_term(self, x) -> np.ndarray:
        r"""The linear term $h = x / \sigma_x^2$."""
        return _observations(x) / self.observation_sd**2

    def optimal_elbo(self, x) -> float:
        """The ELBO at F-VI's optimum, exactly (`mean_field_elbo`)."""
        x = _observations(x)
        return mean_field_elbo(float(self.log_joint(self.posterior_mean(x), x)), self.precision(x))
