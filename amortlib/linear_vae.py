r"""The linear VAE, solved exactly: probabilistic PCA with a linear Gaussian encoder.

The model (probabilistic PCA, Tipping and Bishop 1999) and the encoder are

.. math::

   z \sim \mathcal N(0, I_k), \quad x \mid z \sim \mathcal N(W z + \mu, \sigma^2 I_d), \qquad
   q_\phi(z \mid x) = \mathcal N\big(V x + b, \operatorname{diag}(s^2)\big),

so that every quantity of variational learning has a closed form: the log marginal
$\log \mathcal N(x; \mu, W W^\top + \sigma^2 I)$, the posterior, the ELBO (no Monte Carlo), the
maximum-likelihood solution from the eigen-decomposition of the data covariance, and the
approximation and amortization gaps of an encoder at a fixed decoder.

- `PPCA`: the model $p_\theta$ with trainable $W, \mu$ and $\log \sigma^2$ (or a fixed $\sigma^2$);
- `LinearEncoder`: $q_\phi$, with a full or a rank-limited matrix $V$;
- `elbo` and `sleep_loss`: the closed-form ELBO per image and the exact pq loss over the model's
  own joint distribution;
- `train`: model and encoder together, on the negative ELBO or by wake-sleep, through
  `amortlib.minimize` (the one compiled loop);
- `ml_solution`, `optimal_diagonal_q` and `gaps`: the exact answers the training is checked
  against.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks
from amortlib.training import History, minimize

tfd = tfp.distributions

__all__ = [
    "Gaps",
    "LinearEncoder",
    "MLSolution",
    "PPCA",
    "elbo",
    "gaps",
    "ml_solution",
    "optimal_diagonal_q",
    "sleep_loss",
    "train",
]

_LOG_2PI = math.log(2 * math.pi)


def _dimension(name: str, value) -> int:
    return _checks.positive_int(name, value)


def _common(module, data_dim, latent_dim, init_scale, seed) -> tuple[float, int]:
    """Check and set the sizes shared by the model and the encoder; return (scale, seed)."""
    module.data_dim = _dimension("data_dim", data_dim)
    module.latent_dim = _dimension("latent_dim", latent_dim)
    return (_checks.positive_scalar("init_scale", init_scale),
            int(_checks.integer_seed(seed)[1]))


def _images(x, data_dim: int, name: str = "x") -> tf.Tensor:
    """Data as a float32 tensor of shape [n, data_dim]."""
    try:
        x = tf.convert_to_tensor(x, dtype_hint=tf.float32)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from None
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype.name}")
    x = tf.cast(x, tf.float32)
    if x.shape.rank != 2 or x.shape[-1] != data_dim:
        raise ValueError(f"{name} must have shape [n, {data_dim}], got {tuple(x.shape)}")
    return x


def _seeded_normal(shape, seed: int, stream: int, scale: float) -> tf.Tensor:
    return scale * tf.random.stateless_normal(shape, seed=[seed, stream])


class PPCA(tf.Module):
    r"""Probabilistic PCA $p_\theta(z, x)$ with trainable parameters $\theta = (W, \mu, \sigma^2)$.

    $z \sim \mathcal N(0, I_k)$ and $x \mid z \sim \mathcal N(W z + \mu, \sigma^2 I_d)$, so that
    $x \sim \mathcal N(\mu, C)$ with $C = W W^\top + \sigma^2 I_d$, and the posterior is
    $\mathcal N\big(M^{-1} W^\top (x - \mu), \sigma^2 M^{-1}\big)$ with
    $M = W^\top W + \sigma^2 I_k$.

    Args:
        data_dim: $d$, the dimension of an observation.
        latent_dim: $k$, the dimension of the latent code.
        noise_variance: a fixed $\sigma^2 > 0$ (not trained), or None to train
            $\log \sigma^2$ from 0.
        init_scale: standard deviation of the initial entries of $W$.
        seed: an integer seed for the initial $W$; $\mu$ starts at zero.

    Raises:
        ValueError: for non-positive sizes, scale or noise variance, a bad seed, or
            ``latent_dim >= data_dim`` (then $W W^\top$ alone can fit any covariance and
            $\sigma^2$ is not identified, as in `ml_solution`).
    """

    def __init__(self, data_dim: int, latent_dim: int, *, noise_variance: float | None = None,
                 init_scale: float = 0.1, seed: int = 0):
        super().__init__(name="ppca")
        init_scale, seed = _common(self, data_dim, latent_dim, init_scale, seed)
        if self.latent_dim >= self.data_dim:
            # As in `ml_solution`: with k >= d the noise variance is not identified.
            raise ValueError(f"latent_dim must be below data_dim={self.data_dim}, "
                             f"got {self.latent_dim}")
        self.weight = tf.Variable(
            _seeded_normal([self.data_dim, self.latent_dim], seed, 0, init_scale), name="weight")
        self.loc = tf.Variable(tf.zeros([self.data_dim]), name="loc")
        if noise_variance is None:
            self.log_noise_variance = tf.Variable(0.0, name="log_noise_variance")
        else:
            noise_variance = _checks.positive_scalar("noise_variance", noise_variance)
            self.log_noise_variance = tf.Variable(math.log(noise_variance), trainable=False,
                                                  name="log_noise_variance")

    @property
    def noise_variance(self) -> tf.Tensor:
        r"""$\sigma^2$."""
        return tf.exp(self.log_noise_variance)

    def params(self) -> tuple[np.ndarray, np.ndarray, float]:
        r"""$(W, \mu, \sigma^2)$ as float64 NumPy values."""
        return (self.weight.numpy().astype(float), self.loc.numpy().astype(float),
                float(np.exp(float(self.log_noise_variance.numpy()))))

    def covariance(self) -> tf.Tensor:
        r"""The marginal covariance $C = W W^\top + \sigma^2 I_d$."""
        return (tf.matmul(self.weight, self.weight, transpose_b=True)
                + self.noise_variance * tf.eye(self.data_dim))

    def marginal(self) -> tfd.MultivariateNormalTriL:
        r"""The exact marginal $p_\theta(x) = \mathcal N(\mu, C)$."""
        return tfd.MultivariateNormalTriL(self.loc, tf.linalg.cholesky(self.covariance()))

    def log_marginal(self, x) -> tf.Tensor:
        r"""$\log p_\theta(x)$ for each row of ``x`` (shape ``[n, d]``), exactly."""
        return self.marginal().log_prob(_images(x, self.data_dim))

    def posterior(self, x) -> tfd.MultivariateNormalTriL:
        r"""The exact posterior $p_\theta(z \mid x)$ for each row of ``x``."""
        x = _images(x, self.data_dim)
        gram = (tf.matmul(self.weight, self.weight, transpose_a=True)
                + self.noise_variance * tf.eye(self.latent_dim))
        mean = tf.linalg.solve(gram, tf.matmul(self.weight, x - self.loc, transpose_a=True,
                                               transpose_b=True))
        cov = self.noise_variance * tf.linalg.inv(gram)
        return tfd.MultivariateNormalTriL(tf.transpose(mean), tf.linalg.cholesky(cov))

    def sample(self, n: int, *, seed) -> tuple[tf.Tensor, tf.Tensor]:
        """``n`` draws ``(z, x)`` from the joint distribution, with a stateless seed."""
        n = _dimension("n", n)
        z_seed, x_seed = tfp.random.split_seed(_checks.seed(seed))
        z = tf.random.stateless_normal([n, self.latent_dim], seed=z_seed)
        noise = tf.random.stateless_normal([n, self.data_dim], seed=x_seed)
        x = (tf.matmul(z, self.weight, transpose_b=True) + self.loc
             + tf.sqrt(self.noise_variance) * noise)
        return z, x


class LinearEncoder(tf.Module):
    r"""The encoder $q_\phi(z \mid x) = \mathcal N\big(V x + b, \operatorname{diag}(s^2)\big)$.

    The scales $s$ are shared by all observations. With ``rank=r`` the $k \times d$ matrix is
    $V = A B$ with $A$ of shape $k \times r$ and $B$ of shape $r \times d$, a constrained
    encoder whose means lie in an $r$-dimensional affine subspace; ``rank=0`` is the constant
    encoder $q_\phi(z \mid x) = \mathcal N(b, \operatorname{diag}(s^2))$.

    Args:
        data_dim: $d$.
        latent_dim: $k$.
        rank: None for a full matrix $V$, or an integer $0 \le r < k$.
        init_scale: standard deviation of the initial entries of $V$ (or of $A$ and $B$).
        seed: an integer seed for the initial weights; $b = 0$ and $s = 1$ at the start.

    Raises:
        ValueError: for non-positive sizes or scale, a rank outside $[0, k)$, or a bad seed.
    """

    def __init__(self, data_dim: int, latent_dim: int, *, rank: int | None = None,
                 init_scale: float = 0.01, seed: int = 0):
        super().__init__(name="linear_encoder")
        init_scale, seed = _common(self, data_dim, latent_dim, init_scale, seed)
        if rank is not None:
            if isinstance(rank, bool) or not isinstance(rank, int | np.integer):
                raise TypeError(f"rank must be an integer or None, got {rank!r}")
            if not 0 <= rank < self.latent_dim:
                raise ValueError(f"rank must be in [0, latent_dim={self.latent_dim}) or None, "
                                 f"got {rank}")
            rank = int(rank)
        self.rank = rank
        if rank is None:
            self.factors = (tf.Variable(_seeded_normal(
                [self.latent_dim, self.data_dim], seed, 1, init_scale), name="matrix"),)
        elif rank > 0:
            self.factors = (
                tf.Variable(_seeded_normal([self.latent_dim, rank], seed, 1, init_scale),
                            name="left"),
                tf.Variable(_seeded_normal([rank, self.data_dim], seed, 2, init_scale),
                            name="right"))
        else:
            self.factors = ()
        self.bias = tf.Variable(tf.zeros([self.latent_dim]), name="bias")
        self.log_scale = tf.Variable(tf.zeros([self.latent_dim]), name="log_scale")

    def matrix(self) -> tf.Tensor:
        """The $k \\times d$ matrix $V$."""
        if self.rank is None:
            return tf.identity(self.factors[0])
        if self.rank == 0:
            return tf.zeros([self.latent_dim, self.data_dim])
        return tf.matmul(self.factors[0], self.factors[1])

    @property
    def scale(self) -> tf.Tensor:
        """The shared standard deviations $s$."""
        return tf.exp(self.log_scale)

    def __call__(self, x) -> tfd.MultivariateNormalDiag:
        r"""$q_\phi(z \mid x)$ for each row of ``x`` (shape ``[n, d]``)."""
        x = _images(x, self.data_dim)
        mean = tf.matmul(x, self.matrix(), transpose_b=True) + self.bias
        return tfd.MultivariateNormalDiag(mean, tf.broadcast_to(self.scale, tf.shape(mean)))


def _elbo(weight, loc, log_var, matrix, bias, log_scale, x):
    """Closed-form ELBO per row of x, from raw parameter tensors."""
    var = tf.exp(log_var)
    mean = tf.matmul(x, matrix, transpose_b=True) + bias
    scale2 = tf.exp(2.0 * log_scale)
    resid = x - loc - tf.matmul(mean, weight, transpose_b=True)
    d = tf.cast(tf.shape(x)[-1], x.dtype)
    spread = tf.reduce_sum(scale2 * tf.reduce_sum(weight**2, axis=0))
    expected_loglik = (-0.5 * d * (_LOG_2PI + log_var)
                       - (tf.reduce_sum(resid**2, axis=-1) + spread) / (2.0 * var))
    kl = 0.5 * tf.reduce_sum(scale2 - 1.0 - 2.0 * log_scale, axis=-1) \
        + 0.5 * tf.reduce_sum(mean**2, axis=-1)
    return expected_loglik - kl


def _mean_elbo(weight, loc, log_var, matrix, bias, log_scale, data_mean, data_cov):
    """Closed-form mean ELBO over a data set given only its mean and (biased) covariance."""
    var = tf.exp(log_var)
    scale2 = tf.exp(2.0 * log_scale)
    d = tf.cast(tf.shape(weight)[0], weight.dtype)
    code_mean = tf.linalg.matvec(matrix, data_mean) + bias
    miss = tf.eye(tf.shape(weight)[0]) - tf.matmul(weight, matrix)
    resid_mean = tf.linalg.matvec(miss, data_mean) - loc - tf.linalg.matvec(weight, bias)
    resid2 = (tf.reduce_sum(tf.matmul(miss, data_cov) * miss) + tf.reduce_sum(resid_mean**2))
    code2 = tf.reduce_sum(tf.matmul(matrix, data_cov) * matrix) + tf.reduce_sum(code_mean**2)
    spread = tf.reduce_sum(scale2 * tf.reduce_sum(weight**2, axis=0))
    return (-0.5 * d * (_LOG_2PI + log_var) - (resid2 + spread) / (2.0 * var)
            - 0.5 * tf.reduce_sum(scale2 - 1.0 - 2.0 * log_scale) - 0.5 * code2)


def _sleep(weight, loc, log_var, matrix, bias, log_scale):
    """Closed-form E_{p(z,x)}[-log q(z|x)], from raw parameter tensors."""
    k = tf.shape(weight)[-1]
    miss = tf.eye(k) - tf.matmul(matrix, weight)
    offset = tf.linalg.matvec(matrix, loc) + bias
    resid2 = (tf.reduce_sum(miss**2, axis=-1) + tf.exp(log_var) * tf.reduce_sum(matrix**2, -1)
              + offset**2)
    return tf.reduce_sum(0.5 * _LOG_2PI + log_scale + resid2 * tf.exp(-2.0 * log_scale) / 2.0)


def _model_tensors(model: PPCA):
    return model.weight, model.loc, model.log_noise_variance


def _encoder_tensors(encoder: LinearEncoder):
    return encoder.matrix(), encoder.bias, encoder.log_scale


def _check_pair(model, encoder) -> None:
    if not isinstance(model, PPCA):
        raise TypeError(f"model must be a PPCA, got {type(model).__name__}")
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"encoder must be a LinearEncoder, got {type(encoder).__name__}")
    if (model.data_dim, model.latent_dim) != (encoder.data_dim, encoder.latent_dim):
        raise ValueError(
            f"encoder has (data_dim, latent_dim) = ({encoder.data_dim}, {encoder.latent_dim}) "
            f"but model has ({model.data_dim}, {model.latent_dim})")


def elbo(model: PPCA, encoder: LinearEncoder, x) -> tf.Tensor:
    r"""The ELBO of each row of ``x``, in closed form (no Monte Carlo).

    With $m = V x + b$ and $D = \operatorname{diag}(s^2)$,

    .. math::

       \mathrm{ELBO}(x) = -\tfrac d2 \log(2\pi\sigma^2)
       - \frac{\lVert x - \mu - W m\rVert^2 + \operatorname{tr}(W^\top W D)}{2\sigma^2}
       - \tfrac12 \sum_j \big(s_j^2 + m_j^2 - 1 - \log s_j^2\big).

    Args:
        model: a `PPCA`.
        encoder: a `LinearEncoder` of the same sizes.
        x: observations, shape ``[n, d]``.

    Returns:
        A tensor of shape ``[n]``.

    Raises:
        TypeError: if model or encoder is of the wrong type.
        ValueError: if their sizes disagree or ``x`` has the wrong shape.
    """
    _check_pair(model, encoder)
    x = _images(x, model.data_dim)
    return _elbo(*_model_tensors(model), *_encoder_tensors(encoder), x)


def sleep_loss(model: PPCA, encoder: LinearEncoder) -> tf.Tensor:
    r"""The pq loss $\mathbb E_{p_\theta(z, x)}[-\log q_\phi(z \mid x)]$, exactly.

    The expectation over the model's own joint distribution, as with infinitely many samples: the
    residual $r = z - V x - b$ with $x = W z + \mu + \varepsilon$ is Gaussian with
    $\mathbb E r_j^2 = \lVert (I - V W)_{j\cdot}\rVert^2 + \sigma^2 \lVert V_{j\cdot}\rVert^2 +
    (V \mu + b)_j^2$, so the loss is $\sum_j \big[\tfrac12 \log 2\pi + \log s_j +
    \mathbb E r_j^2 / (2 s_j^2)\big]$. It does not involve any data.

    Raises:
        TypeError: if model or encoder is of the wrong type.
        ValueError: if their sizes disagree.
    """
    _check_pair(model, encoder)
    return _sleep(*_model_tensors(model), *_encoder_tensors(encoder))


def train(model: PPCA, encoder, x, *, num_steps: int, learning_rate: float,
          objective: str = "elbo", train_model: bool = True, anneal: bool = True,
          trace_fn=None, seed: int = 0, progress: bool = False) -> History:
    r"""Train the encoder, and the model unless ``train_model=False``, with `amortlib.minimize`.

    Every step uses all of ``x`` (the losses are closed forms, so there is no sampling): the
    mean ELBO depends on the data only through their mean and covariance, computed once, so a
    step costs the same for any number of observations.

    - ``objective="elbo"``: minimise $-\frac1n \sum_i \mathrm{ELBO}(x_i)$ over $\theta$ and $\phi$
      together (the VAE).
    - ``objective="wake-sleep"``: the simultaneous variant of wake-sleep, one loss
      $-\frac1n\sum_i \mathrm{ELBO}_{\theta, \bar\phi}(x_i) + \mathrm{sleep}_{\bar\theta,\phi}$,
      with a bar marking a stopped gradient: the wake term moves only $\theta$ (for fixed $q$,
      the ELBO and $\mathbb E_q \log p_\theta(x, z)$ differ by the entropy of $q$, which does not
      depend on $\theta$), and the sleep term, `sleep_loss`, moves only $\phi$.

    With ``train_model=False`` and the ELBO, ``encoder`` may be a list of encoders: they are
    trained in one compiled run on the sum of their losses, and since they share no variables
    and Adam updates each variable on its own gradient, each ends exactly where it would alone.

    Args:
        model: a `PPCA`, updated in place.
        encoder: a `LinearEncoder` (or, see above, a list of them), updated in place.
        x: the training data, shape ``[n, d]``.
        num_steps: number of Adam steps.
        learning_rate: Adam's (initial) learning rate.
        objective: ``"elbo"`` or ``"wake-sleep"``.
        train_model: if False, $\theta$ stays fixed and only the encoder learns.
        anneal: cosine learning-rate decay to 1% (see `amortlib.minimize`).
        trace_fn: optional ``trace_fn() -> {name: scalar}``, recorded after every step.
        seed: passed to `amortlib.minimize` (the losses themselves use no randomness).
        progress: show a progress bar.

    Returns:
        The `History` of the loss (with several encoders, of the sum of their losses).

    Raises:
        TypeError, ValueError: for a bad model, encoder, data or objective.
    """
    _checks.one_of("objective", objective, ("elbo", "wake-sleep"))
    if not isinstance(train_model, bool):
        raise TypeError(f"train_model must be a bool, got {train_model!r}")
    encoders = list(encoder) if isinstance(encoder, list | tuple) else [encoder]
    if not encoders:
        raise ValueError("encoder must be a LinearEncoder or a non-empty list of them")
    if len(encoders) > 1 and (train_model or objective != "elbo"):
        raise ValueError("several encoders train together only with train_model=False and "
                         "objective='elbo'")
    for enc in encoders:
        _check_pair(model, enc)
    if objective == "wake-sleep" and not train_model:
        raise ValueError("objective='wake-sleep' trains the model; use train_model=True")
    x = _images(x, model.data_dim)
    data_mean = tf.reduce_mean(x, axis=0)
    centred = x - data_mean
    data_cov = tf.matmul(centred, centred, transpose_a=True) / tf.cast(tf.shape(x)[0], x.dtype)
    variables = [v for enc in encoders for v in enc.trainable_variables]
    if train_model:
        variables = list(model.trainable_variables) + variables

    def elbo_loss(step_seed):
        del step_seed
        return -tf.add_n([_mean_elbo(*_model_tensors(model), *_encoder_tensors(enc),
                                     data_mean, data_cov) for enc in encoders])

    def wake_sleep_loss(step_seed):
        del step_seed
        theta = _model_tensors(model)
        phi = _encoder_tensors(encoders[0])
        frozen_theta = [tf.stop_gradient(t) for t in theta]
        frozen_phi = [tf.stop_gradient(t) for t in phi]
        wake = -_mean_elbo(*theta, *frozen_phi, data_mean, data_cov)
        return wake + _sleep(*frozen_theta, *phi)

    return minimize(elbo_loss if objective == "elbo" else wake_sleep_loss, variables,
                    num_steps=num_steps, learning_rate=learning_rate, anneal=anneal,
                    trace_fn=trace_fn, seed=seed, progress=progress, name=objective)


@dataclasses.dataclass
class MLSolution:
    r"""The maximum-likelihood probabilistic PCA of a data set (`ml_solution`).

    Attributes:
        loc: $\mu$, the data mean.
        weight: $W = U_k \operatorname{diag}\big(\max(\lambda_j - \sigma^2, 0)\big)^{1/2}$, one
            maximiser (any $W R$ with $R$ orthogonal is another).
        noise_variance: $\sigma^2$: the mean of the $d - k$ discarded eigenvalues, or the fixed
            value given.
        log_likelihood: the maximum of $\frac1n \sum_i \log p(x_i)$.
        eigenvalues: the data covariance's eigenvalues, in decreasing order.
    """

    loc: np.ndarray
    weight: np.ndarray
    noise_variance: float
    log_likelihood: float
    eigenvalues: np.ndarray

    def covariance(self) -> np.ndarray:
        r"""$W W^\top$ (identified, unlike $W$)."""
        return self.weight @ self.weight.T


def ml_solution(x, latent_dim: int, *, noise_variance: float | None = None) -> MLSolution:
    r"""Maximum-likelihood probabilistic PCA from the eigen-decomposition of the data covariance.

    With $S = \frac1n \sum_i (x_i - \bar x)(x_i - \bar x)^\top = U \Lambda U^\top$ (eigenvalues
    $\lambda_1 \ge \dots \ge \lambda_d$), Tipping and Bishop's solution is $\mu = \bar x$,
    $\sigma^2 = \frac{1}{d - k}\sum_{j > k} \lambda_j$ (or the fixed value) and
    $W = U_k \operatorname{diag}(\max(\lambda_j - \sigma^2, 0))^{1/2}$. With $c_j$ the
    eigenvalues of $C$ ($\max(\lambda_j, \sigma^2)$ for $j \le k$, $\sigma^2$ after), the
    maximum mean log likelihood is $-\frac12 \sum_j \big(\log 2\pi + \log c_j +
    \lambda_j / c_j\big)$. Computed in float64.

    Args:
        x: data, shape ``[n, d]`` with $d > k$.
        latent_dim: $k$.
        noise_variance: None to maximise over $\sigma^2$ too, or a fixed $\sigma^2 > 0$.

    Returns:
        An `MLSolution`.

    Raises:
        ValueError: for a bad shape, $k \ge d$, a non-positive noise variance, or
            (with ``noise_variance=None``) discarded eigenvalues that are zero up to round-off,
            $\sigma^2 \le 10^{-12} \lambda_1$.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape [n, d] with n >= 2, got {x.shape}")
    d = x.shape[1]
    k = _dimension("latent_dim", latent_dim)
    if k >= d:
        raise ValueError(f"latent_dim must be below the data dimension {d}, got {k}")
    loc = x.mean(0)
    cov = np.cov(x.T, bias=True)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = np.clip(lam[::-1], 0.0, None), vec[:, ::-1]
    if noise_variance is None:
        var = float(lam[k:].mean())
        # Relative to the largest eigenvalue: round-off leaves ~1e-17 where the exact value is 0.
        if var <= 1e-12 * lam[0]:
            raise ValueError("the discarded eigenvalues are all zero (to round-off): choose a "
                             "smaller latent_dim or fix noise_variance")
    else:
        var = _checks.positive_scalar("noise_variance", noise_variance)
    weight = vec[:, :k] * np.sqrt(np.maximum(lam[:k] - var, 0.0))
    c = np.concatenate([np.maximum(lam[:k], var), np.full(d - k, var)])
    loglik = -0.5 * float(np.sum(_LOG_2PI + np.log(c) + lam / c))
    return MLSolution(loc, weight, var, loglik, lam)


def optimal_diagonal_q(model: PPCA, x) -> tfd.MultivariateNormalDiag:
    r"""The best diagonal Gaussian for each row of ``x`` separately (F-VI), in closed form.

    For a Gaussian posterior with mean $m^*$ and precision $P = M / \sigma^2$, the reverse KL
    from $\mathcal N(m, \operatorname{diag}(s^2))$ is
    $\tfrac12\big[\sum_j (P_{jj} s_j^2 - \log s_j^2) + (m - m^*)^\top P (m - m^*) - k
    + \log\det P^{-1}\big]$, minimised by $m = m^*$ and $s_j^2 = 1 / P_{jj}$.
    """
    post = model.posterior(x)
    gram = (tf.matmul(model.weight, model.weight, transpose_a=True)
            + model.noise_variance * tf.eye(model.latent_dim))
    scale = tf.sqrt(model.noise_variance / tf.linalg.diag_part(gram))
    return tfd.MultivariateNormalDiag(post.mean(), tf.broadcast_to(scale, post.mean().shape))


@dataclasses.dataclass
class Gaps:
    r"""The two gaps of `gaps`, in nats per observation.

    $\log p(x) - \mathrm{ELBO} = $ approximation gap $+$ amortization gap at the best encoder of
    the class.

    Attributes:
        approximation: $\log p(x) - \mathrm{ELBO}$ of the best diagonal Gaussian per observation.
        amortization: how much lower the best encoder's mean ELBO is than that.
    """

    approximation: float
    amortization: float

    @property
    def total(self) -> float:
        """The sum of the two gaps, $\\log p(x) - \\mathrm{ELBO}$ at the best encoder."""
        return self.approximation + self.amortization


def gaps(model: PPCA, x, *, rank: int | None = None) -> Gaps:
    r"""The exact approximation and amortization gaps of a linear encoder at a fixed decoder.

    The approximation gap is the same for every $x$:
    $\tfrac12\big(\sum_j \log P_{jj} - \log\det P\big) \ge 0$ (Hadamard's inequality), zero
    exactly when $W^\top W$ is diagonal. An encoder $V x + b$ with shared scales reaches the best
    scales, and its mean error $e = (V - A)(x - \bar x)$, where $A = M^{-1} W^\top$ maps $x$ to
    the posterior mean, costs $\tfrac12 e^\top P e$. So the amortization gap of a class is
    $\min_V \tfrac12 \operatorname{tr}\big(L^\top (V - A) S (V - A)^\top L\big)$ with
    $P = L L^\top$ and $S$ the data covariance: zero for a full $V$, and for $V$ of rank at most
    $r$ the sum of all but the $r$ largest eigenvalues of $\tfrac12 L^\top A S A^\top L$
    (Eckart and Young). Computed in float64.

    Args:
        model: a `PPCA` (the fixed decoder).
        x: data, shape ``[n, d]``.
        rank: None for a full-rank encoder, or $0 \le r < k$.

    Returns:
        `Gaps`, per observation.

    Raises:
        TypeError, ValueError: for a bad model, data or rank.
    """
    if not isinstance(model, PPCA):
        raise TypeError(f"model must be a PPCA, got {type(model).__name__}")
    x = np.asarray(_images(x, model.data_dim).numpy(), dtype=float)
    k = model.latent_dim
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int | np.integer)
                             or not 0 <= rank < k):
        raise ValueError(f"rank must be None or an integer in [0, {k}), got {rank!r}")
    weight, _, var = model.params()
    gram = weight.T @ weight + var * np.eye(k)
    precision = gram / var
    approximation = 0.5 * float(np.sum(np.log(np.diag(precision)))
                                - np.linalg.slogdet(precision)[1])
    if rank is None:
        return Gaps(approximation, 0.0)
    to_mean = np.linalg.solve(gram, weight.T)
    chol = np.linalg.cholesky(precision)
    inner = chol.T @ to_mean @ np.cov(x.T, bias=True) @ to_mean.T @ chol
    eig = np.sort(np.linalg.eigvalsh(0.5 * (inner + inner.T)))[::-1]
    return Gaps(approximation, float(np.sum(eig[rank:])) / 2)
