r"""Gaussian targets in information form, and their best fully factorized approximations.

A Gaussian target over latents $u \in \mathbb R^D$ given data $x$ (the posterior of a
linear-Gaussian model such as `amortlib.sequential.SawTimeSeries` or
`amortlib.sequential.GaussianHMM`) has a log joint that is a quadratic in $u$:

.. math::

    \log p(u, x) = c(x) - \tfrac12 u^\top \Lambda u + h^\top u,

with $\Lambda$ the posterior *precision* and $h$ the *linear term*: the posterior is
$\mathcal N(\Lambda^{-1} h, \Lambda^{-1})$. For such a target, the best fully factorized
(mean-field) Gaussian $q(u) = \prod_i \mathcal N(u_i; m_i, v_i)$ — the optimum of F-VI — is
known exactly: $m = \Lambda^{-1} h$ (the exact posterior means) and $v_i = 1 / \Lambda_{ii}$.
The functions `mean_field_optimum`, `mean_field_kl` and `mean_field_elbo` work on any such
$(\Lambda, h)$; `constrained_mean_field_optimum` gives the exact optimum when the means are tied
to a linear function of features, which is A-VI with an affine inference function or with any
function of a discrete input. `GaussianLatents` gives a model with such a log joint its exact
posterior and F-VI optimum.

Everything is NumPy in float64 with dense matrices, which is fine for $D$ up to a few thousand.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.linalg

from amortlib import _checks

__all__ = [
    "GaussianLatents",
    "MeanField",
    "constrained_mean_field_optimum",
    "is_positive_definite",
    "mean_field_elbo",
    "mean_field_kl",
    "mean_field_optimum",
    "paper_hmm_matrix",
    "tridiagonal",
]


class MeanField(NamedTuple):
    r"""A fully factorized Gaussian $\prod_i \mathcal N(u_i;\ m_i, v_i)$: means and variances."""

    means: np.ndarray
    variances: np.ndarray


def _information_form(precision, linear) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The checked precision and linear term, and the precision's lower Cholesky factor."""
    precision, factor = _checks.precision_and_factor(precision)
    try:
        linear = np.asarray(linear, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"linear must be a vector of real numbers, got {linear!r:.80}") from None
    if linear.shape != precision.shape[:1]:
        raise ValueError(
            f"linear must have shape {precision.shape[:1]} to match precision, got {linear.shape}"
        )
    if not np.all(np.isfinite(linear)):
        raise ValueError("linear must be finite")
    return precision, linear, factor


def _solve(factor, linear) -> np.ndarray:
    r"""$\Lambda^{-1} h$ from the Cholesky factor $L$ of $\Lambda = L L^\top$."""
    return scipy.linalg.cho_solve((factor, True), linear, check_finite=False)


def is_positive_definite(matrix) -> bool:
    """Whether ``matrix`` is a finite, symmetric, positive definite matrix.

    False, not an error, for anything else: a NaN or an infinity, a non-square or non-symmetric
    matrix (whose Cholesky factorization NumPy would compute from one triangle alone), or a
    matrix with an eigenvalue <= 0.

    Example:
        >>> is_positive_definite([[2.0, 1.0], [1.0, 2.0]]), is_positive_definite([[1.0, 3.0],
        ...                                                                     [0.0, 1.0]])
        (True, False)
    """
    try:
        _checks.precision(matrix, "matrix")
    except ValueError:
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
    is ``sequential.GaussianHMM(transition_coef=1.0).precision(x)`` (diagonal 3, last entry 2,
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
    precision, linear, factor = _information_form(precision, linear)
    return MeanField(_solve(factor, linear), 1.0 / np.diag(precision))


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
    precision, linear, factor = _information_form(precision, linear)
    means = np.asarray(q.means, dtype=np.float64)
    variances = np.asarray(q.variances, dtype=np.float64)
    if means.shape != linear.shape or variances.shape != linear.shape:
        raise ValueError(f"q must have means and variances of shape {linear.shape}")
    if not np.all(np.isfinite(means)):
        raise ValueError("q.means must be finite")
    if not np.all((variances > 0) & np.isfinite(variances)):
        raise ValueError("q.variances must be positive and finite")
    error = means - _solve(factor, linear)
    logdet = 2 * np.sum(np.log(np.diag(factor)))
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
        precision: $\Lambda$, [D, D], symmetric positive definite.
        variances: the $v_i$, [D], positive and finite; default $1/\Lambda_{ii}$.

    Example:
        >>> round(mean_field_elbo(0.0, [[1.0]]), 4)  # log p(m, x) + log(2 pi) / 2
        0.9189
    """
    log_joint_at_means = _checks.finite_scalar("log_joint_at_means", log_joint_at_means)
    diagonal = np.diag(_checks.precision(precision))
    variances = 1 / diagonal if variances is None else np.asarray(variances, dtype=np.float64)
    if (variances.shape != diagonal.shape or not np.all(variances > 0)
            or not np.all(np.isfinite(variances))):
        raise ValueError(f"variances must be positive and finite, of shape {diagonal.shape}")
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
    precision, linear, _ = _information_form(precision, linear)
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

        The latents are in the order of ``precision``: for
        `amortlib.sequential.SawTimeSeries` $\theta$ first, then $z_1, \dots, z_N$.
        """
        return mean_field_optimum(self.precision(x), self.linear_term(x))
