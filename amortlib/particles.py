r"""Many-particle losses: the IWAE bound, reweighted wake-sleep and VIMCO, with an exact analysis.

Each loss draws $K$ particles $c_1, \dots, c_K \sim q_\phi(\cdot \mid y)$ per observation and
uses the importance weights $w_k = p_\theta(c_k, y) / q_\phi(c_k \mid y)$:

- `iwae_loss`: the negative IWAE bound {cite:p}`burda2016importance`,
  $-\log \hat Z$ with $\hat Z = \frac1K \sum_k w_k$; continuous latents are differentiated
  through their draws, discrete ones by the score function without a baseline;
- `vimco_loss`: the same value, with the score of each discrete particle multiplied by
  $\log \hat Z - \log \hat Z_{-k}$, VIMCO's leave-one-out baseline {cite:p}`mnih2016variational`;
- `wake_phi_loss`: the wake-phi loss of reweighted wake-sleep {cite:p}`le2019revisiting`,
  $-\sum_k \bar w_k \log q_\phi(c_k \mid y)$ with normalised weights $\bar w_k$ held fixed: the
  pq loss's $-\mathbb E_{p(c \mid y)}[\log q_\phi(c \mid y)]$ estimated by self-normalised
  importance sampling on the observed $y$;
- `rws_loss`: wake-theta and wake-phi in one surrogate, to train a model parameter and the
  network together with one optimiser.

All take the book's loss signature ``(model, q_net, latents, observations, *, seed,
num_particles)``; ``latents`` is ignored (only observations are used). `binary_moments` computes
the exact mean and standard deviation of each gradient with respect to the logit of a
Bernoulli $q$, for one observation of a model with a binary latent, as a finite binomial sum.
`OpenUniverseTrainableMean` is `amortlib.models.OpenUniverseMixture` with the mean of its single
component (``mean_1``) a trainable variable, as in the authors' code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special, stats

from amortlib import _checks, networks
from amortlib.models import LatentVariableModel, OpenUniverseMixture

tfd = tfp.distributions

__all__ = [
    "iwae_loss",
    "vimco_loss",
    "wake_phi_loss",
    "rws_loss",
    "BinaryMoments",
    "binary_moments",
    "IntegratedMixture",
    "ConstantCategorical",
    "OpenUniverseTrainableMean",
]


# --------------------------------------------------------------------------- particles and weights

def _particles(model, q_net, observations, seed, num_particles, *, stop_draws: bool):
    """Draw ``num_particles`` per observation and return log weights and log q parts.

    Returns ``(log_w, log_q, log_q_discrete, num_particles)``, the first three of shape
    ``[num_particles, batch]``; ``log_q_discrete`` is the log density of the discrete latents
    (zero if there are none).
    """
    num_particles = _checks.positive_int("num_particles", num_particles)
    seed = _checks.seed(seed)
    y = _checks.observations(observations, name="observations")
    q = q_net(y)
    if hasattr(q, "sample_distributions"):  # a joint distribution over named latents
        dists, draws = q.sample_distributions(num_particles, seed=seed)
        if stop_draws:
            draws = {name: tf.stop_gradient(v) for name, v in draws.items()}
        parts = {name: dists[name].log_prob(draws[name]) for name in draws}
        log_q = tf.add_n(list(parts.values()))
        discrete = [parts[name] for name in parts
                    if dists[name].reparameterization_type
                    != tfd.FULLY_REPARAMETERIZED]
        log_q_discrete = tf.add_n(discrete) if discrete else tf.zeros_like(log_q)
        latents = draws
    else:
        latents = q.sample(num_particles, seed=seed)
        if stop_draws:
            latents = tf.stop_gradient(latents)
        log_q = q.log_prob(latents)
        reparameterized = q.reparameterization_type == tfd.FULLY_REPARAMETERIZED
        log_q_discrete = tf.zeros_like(log_q) if reparameterized else log_q
    log_w = model.log_prob(latents, y) - log_q
    return log_w, log_q, log_q_discrete, num_particles


def _log_mean_exp(log_w):
    """$\\log \\frac1K \\sum_k e^{\\ell_k}$ over the particle axis 0."""
    num = tf.cast(tf.shape(log_w)[0], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(num)


def _log_sum_exp_but_one(log_w):
    r"""$\log \sum_{j \ne k} e^{\ell_j}$ for every $k$, along axis 0, in $O(K)$ and stably.

    With $m_1$ the largest entry, the sum without particle $k$ is
    $e^{m_1}(\sum_j e^{\ell_j - m_1} - e^{\ell_k - m_1})$, which keeps the largest term (so at
    least $e^{m_1}$) unless $k$ is the largest; for that one the sum of the others is taken
    directly relative to the second largest entry $m_2$. No difference of nearly equal numbers.
    """
    log_w = tf.stop_gradient(log_w)
    top = tf.math.top_k(tf.transpose(log_w), k=2).values  # [B, 2]
    m1, m2 = tf.transpose(top)[0], tf.transpose(top)[1]
    first = tf.one_hot(tf.argmax(log_w, axis=0), tf.shape(log_w)[0], axis=0,
                       on_value=True, off_value=False, dtype=tf.bool)  # [K, B]
    rest = tf.reduce_sum(tf.exp(log_w - m1), axis=0) - tf.exp(log_w - m1)
    rest = m1 + tf.math.log(tf.where(first, 1.0, rest))
    without_first = tf.reduce_sum(tf.where(first, 0.0, tf.exp(log_w - m2)), axis=0)
    return tf.where(first, m2 + tf.math.log(without_first), rest)


def _score(log_q_discrete):
    """Zero in value, with the gradient of ``log_q_discrete`` (the score)."""
    return log_q_discrete - tf.stop_gradient(log_q_discrete)


def iwae_loss(model, q_net, latents, observations, *, seed, num_particles: int) -> tf.Tensor:
    r"""The negative IWAE bound, averaged over observations, with the plain score function.

    For each observation, $\hat Z = \frac1K \sum_{k=1}^K p_\theta(c_k, y) / q_\phi(c_k \mid y)$
    with $c_k \sim q_\phi(\cdot \mid y)$, and the loss is $-\log \hat Z$. Since
    $\mathbb E[\hat Z] = p_\theta(y)$, Jensen's inequality gives
    $\mathbb E[\log \hat Z] \le \log p_\theta(y)$, a bound that tightens as $K$ grows
    {cite:p}`burda2016importance`. At $K = 1$ it is the ELBO, and the loss is the qp loss.

    Gradient: with respect to $\theta$ and to the reparameterised latents, through
    $\log \hat Z$; for discrete latents, the score-function term
    $\log \hat Z \sum_k \nabla_\phi \log q_\phi(c_k \mid y)$ is added without any baseline
    (as in the authors' code of {cite:t}`le2019revisiting`). The value is the plain estimate.

    Args:
        model: a model with ``log_prob(latents, y)`` (see `amortlib.models`).
        q_net: an inference network; ``q_net(y)`` returns a distribution over the latents.
        latents: ignored (the particles come from ``q_net``); pass the model's draws or None.
        observations: observations $y$, shape ``[batch_size]``.
        seed: an integer or a stateless seed (None is an error).
        num_particles: $K$, particles per observation.

    Returns:
        A scalar tensor, an estimate of $-\mathbb E_{p(y)}[\text{IWAE bound}]$.

    Raises:
        ValueError: for a bad ``num_particles``, seed or observations.
    """
    del latents
    log_w, _, log_q_discrete, _ = _particles(model, q_net, observations, seed,
                                             num_particles, stop_draws=False)
    log_z = _log_mean_exp(log_w)
    score = tf.reduce_sum(_score(log_q_discrete), axis=0)
    return -tf.reduce_mean(log_z + tf.stop_gradient(log_z) * score)


def vimco_loss(model, q_net, latents, observations, *, seed, num_particles: int) -> tf.Tensor:
    r"""The negative IWAE bound with VIMCO's leave-one-out baselines for discrete latents.

    The value and the pathwise part of the gradient are those of `iwae_loss`. The score of
    particle $k$ is multiplied by $\log \hat Z - \log \hat Z_{-k}$ instead of $\log \hat Z$,
    where $\hat Z_{-k}$ is $\hat Z$ with $\log w_k$ replaced by the mean of the other particles'
    log weights {cite:p}`mnih2016variational`. $\hat Z_{-k}$ does not depend on $c_k$, so the
    gradient stays unbiased.

    Args:
        model, q_net, latents, observations, seed: as for `iwae_loss`.
        num_particles: $K \ge 2$.

    Returns:
        A scalar tensor, the same estimate as `iwae_loss` gives with the same seed.

    Raises:
        ValueError: if ``num_particles`` < 2, or for a bad seed or observations.
    """
    del latents
    if _checks.positive_int("num_particles", num_particles) < 2:
        raise ValueError(f"num_particles must be at least 2 for VIMCO's leave-one-out "
                         f"baseline, got {num_particles}")
    log_w, _, log_q_discrete, num = _particles(model, q_net, observations, seed,
                                               num_particles, stop_draws=False)
    log_z = _log_mean_exp(log_w)
    others = (tf.reduce_sum(log_w, 0, keepdims=True) - log_w) / (num - 1)  # [K, B]
    log_z_minus = tf.reduce_logsumexp(
        tf.stack([_log_sum_exp_but_one(log_w), others]), axis=0) - tf.math.log(float(num))
    factor = tf.stop_gradient(log_z[tf.newaxis, :] - log_z_minus)
    return -tf.reduce_mean(log_z + tf.reduce_sum(factor * _score(log_q_discrete), axis=0))


def wake_phi_loss(model, q_net, latents, observations, *, seed,
                  num_particles: int) -> tf.Tensor:
    r"""The wake-phi loss of reweighted wake-sleep: the pq loss on real observations.

    The pq loss at one observation is $-\mathbb E_{p(c \mid y)}[\log q_\phi(c \mid y)]$, an
    expectation under the posterior, which cannot be sampled. Self-normalised importance
    sampling with $q_\phi$ itself as the proposal estimates it as

    .. math::
        -\sum_{k=1}^K \bar w_k \log q_\phi(c_k \mid y), \qquad
        \bar w_k = \frac{w_k}{\sum_j w_j}, \quad c_k \sim q_\phi(\cdot \mid y),

    with the particles and the weights held fixed when differentiating
    {cite:p}`bornschein2015reweighted,le2019revisiting`. It is biased for finite $K$ (at
    $K = 1$, $\bar w_1 = 1$ and its gradient has mean zero) and consistent as $K \to \infty$.
    No gradient reaches the model's parameters.

    Args:
        model, q_net, latents, observations, seed, num_particles: as for `iwae_loss`.

    Returns:
        A scalar tensor, the estimate averaged over observations.

    Raises:
        ValueError: for a bad ``num_particles``, seed or observations.
    """
    del latents
    log_w, log_q, _, _ = _particles(model, q_net, observations, seed, num_particles,
                                    stop_draws=True)
    weights = tf.stop_gradient(tf.nn.softmax(log_w, axis=0))
    return -tf.reduce_mean(tf.reduce_sum(weights * log_q, axis=0))


def rws_loss(model, q_net, latents, observations, *, seed, num_particles: int) -> tf.Tensor:
    r"""Reweighted wake-sleep as one surrogate: wake-theta for the model, wake-phi for $q$.

    The value is the negative IWAE bound estimate. The gradient with respect to the model's
    parameters is the wake-theta gradient, $-\nabla_\theta \log \hat Z$ with the particles and
    $q$ held fixed; the gradient with respect to the network's is that of `wake_phi_loss` on
    the same particles. So one optimiser over both sets of variables (`amortlib.minimize`)
    runs both phases of {cite:t}`le2019revisiting` at once.

    Args:
        model, q_net, latents, observations, seed, num_particles: as for `iwae_loss`.

    Returns:
        A scalar tensor, an estimate of $-\mathbb E_{p(y)}[\text{IWAE bound}]$.

    Raises:
        ValueError: for a bad ``num_particles``, seed or observations.
    """
    del latents
    log_w, log_q, _, _ = _particles(model, q_net, observations, seed, num_particles,
                                    stop_draws=True)
    log_w_theta = log_w + log_q - tf.stop_gradient(log_q)  # no gradient to phi
    wake_theta = -tf.reduce_mean(_log_mean_exp(log_w_theta))
    weights = tf.stop_gradient(tf.nn.softmax(log_w, axis=0))
    wake_phi = -tf.reduce_mean(tf.reduce_sum(weights * log_q, axis=0))
    return wake_theta + wake_phi - tf.stop_gradient(wake_phi)


# ------------------------------------------------------------------ exact binary-latent analysis

class BinaryMoments(NamedTuple):
    r"""Exact moments of the $K$-particle estimators for a binary latent (see `binary_moments`).

    Attributes:
        iwae_bound: $\mathbb E[\log \hat Z]$.
        log_evidence: $\log p(y)$.
        pq_gradient: $\partial_\eta \mathrm{KL}(p(\cdot \mid y) \,\|\, q_\eta)
            = \sigma(\eta) - p(z = 1 \mid y)$, the limit of the wake-phi gradient.
        mean: the mean gradient of each loss with respect to the logit $\eta$, keyed
            ``"wake-phi"``, ``"iwae"`` and ``"vimco"`` (``nan`` for VIMCO at $K = 1$).
        stddev: their standard deviations, with the same keys.
    """

    iwae_bound: float
    log_evidence: float
    pq_gradient: float
    mean: dict
    stddev: dict

    @property
    def snr(self) -> dict:
        """Signal-to-noise ratio $|\\text{mean}| / \\text{stddev}$ of each gradient."""
        return {k: abs(self.mean[k]) / self.stddev[k] for k in self.mean}


def binary_moments(log_joint, logit: float, num_particles: int) -> BinaryMoments:
    r"""Exact means and standard deviations of the gradients of the $K$-particle losses.

    One observation $y$ of a model with a binary latent $z$, given by its log joint
    $a_z = \log p(z, y)$, and $q(z = 1) = \sigma(\eta)$. The $K$ particles enter every estimator
    only through the number $n \sim \mathrm{Binomial}(K, \sigma(\eta))$ of those equal to one:
    with $\ell_z = a_z - \log q(z)$,

    .. math::
        \hat Z(n) = \tfrac1K\big(n e^{\ell_1} + (K - n) e^{\ell_0}\big), \qquad
        \bar w_1(n) = \frac{n e^{\ell_1}}{K \hat Z(n)},

    and, since $\partial_\eta \log q(z) = z - \sigma(\eta)$, the gradients of the losses are

    - wake-phi: $\sigma(\eta) - \bar w_1(n)$;
    - IWAE (score function, no baseline):
      $\bar w_1(n) - \sigma(\eta) - \log \hat Z(n)\,(n - K \sigma(\eta))$;
    - VIMCO: the same with $\log \hat Z(n)$ replaced, for each particle, by
      $\log \hat Z(n) - \log \hat Z_{-k}(n)$, which depends on $n$ and on $z_k$ only.

    Means and variances are then sums over $n = 0, \dots, K$ with binomial weights, computed in
    log space (``scipy.stats.binom.logpmf``), exact up to rounding for any $K$.

    Args:
        log_joint: $(\log p(z = 0, y), \log p(z = 1, y))$.
        logit: $\eta$, the logit of $q(z = 1)$.
        num_particles: $K \ge 1$.

    Returns:
        A `BinaryMoments`.

    Raises:
        ValueError: if ``log_joint`` does not have two finite entries, ``logit`` is not finite
            or ``num_particles`` is not a positive integer.

    Example:
        >>> m = binary_moments([np.log(0.3), np.log(0.1)], 0.0, 1)
        >>> round(m.mean["wake-phi"], 12), round(m.iwae_bound, 4)  # ELBO at K = 1
        (0.0, -1.0601)
    """
    a0, a1 = _checks.real_vector("log_joint", log_joint, size=2)
    eta = _checks.finite_scalar("logit", logit)
    num = _checks.positive_int("num_particles", num_particles)
    s = special.expit(eta)
    # log q(1) and log q(0) as log-sigmoids: finite even where expit rounds to 0 or 1.
    l1, l0 = a1 + np.logaddexp(0.0, -eta), a0 + np.logaddexp(0.0, eta)
    n = np.arange(num + 1, dtype=np.float64)
    pmf = np.exp(stats.binom.logpmf(n, num, s))
    with np.errstate(divide="ignore"):
        log_n, log_rest = np.log(n), np.log(num - n)
        log_z = np.logaddexp(log_n + l1, log_rest + l0) - np.log(num)
        w1 = np.exp(log_n + l1 - np.log(num) - log_z)
        grads = {"wake-phi": s - w1,
                 "iwae": (w1 - s) - log_z * (n - num * s)}
        if num >= 2:
            # Leave-one-out: particle k's log weight replaced by the others' mean.
            mean1 = ((n - 1) * l1 + (num - n) * l0) / (num - 1)
            mean0 = (n * l1 + (num - n - 1) * l0) / (num - 1)
            z1 = np.logaddexp.reduce(
                [np.log(np.maximum(n - 1, 0)) + l1, log_rest + l0, mean1], axis=0)
            z0 = np.logaddexp.reduce(
                [log_n + l1, np.log(np.maximum(num - n - 1, 0)) + l0, mean0], axis=0)
            z1, z0 = z1 - np.log(num), z0 - np.log(num)
            score = (np.where(n > 0, n * (1 - s) * (log_z - z1), 0.0)
                     - np.where(n < num, (num - n) * s * (log_z - z0), 0.0))
            grads["vimco"] = (w1 - s) - score
    mean, stddev = {}, {}
    for name, g in grads.items():
        mean[name] = float(pmf @ g)
        stddev[name] = float(np.sqrt(pmf @ (g - mean[name]) ** 2))
    if num < 2:
        mean["vimco"] = stddev["vimco"] = float("nan")
    p1 = special.expit(a1 - a0)
    return BinaryMoments(iwae_bound=float(pmf @ log_z), log_evidence=float(np.logaddexp(a0, a1)),
                         pq_gradient=float(s - p1), mean=mean, stddev=stddev)


# ------------------------------------------------------------------------------------- models

class IntegratedMixture(LatentVariableModel):
    r"""A Gaussian mixture with its mean integrated out: latent $z$ only.

    $z \sim \mathrm{Categorical}(\pi)$ and $y \mid z \sim \mathcal N(\mu_z, s_z^2 + \sigma^2)$,
    which is `amortlib.models.GaussianMixtureExplicit` with $x$ summed out: its $p(z, y)$ is
    $\pi_z \mathcal N(y;\ \mu_z, s_z^2 + \sigma^2)$ and its posterior $p(z \mid y)$ that model's.

    Args:
        probs, locs, scales, sigma: as for `amortlib.models.GaussianMixtureExplicit`
            (Le's constants by default).

    Raises:
        ValueError: for weights that are not probabilities, sequences of different lengths, or
            scales that are not positive.

    Example:
        >>> model = IntegratedMixture()
        >>> model.posterior([0.0]).probs_parameter().numpy()
        array([[0.5, 0.5]], dtype=float32)
    """

    def __init__(self, probs=(0.5, 0.5), locs=(-5.0, 5.0), scales=(1.0, 1.0),
                 sigma: float = 10.0):
        self.probs = _checks.probability_vector("probs", probs)
        self.locs = _checks.real_vector("locs", locs, size=len(self.probs))
        self.scales = _checks.real_vector("scales", scales, size=len(self.probs),
                                          positive=True)
        self.sigma = _checks.positive_scalar("sigma", sigma)
        self.discrete_support = {"z": tuple(range(len(self.probs)))}
        locs_t = tf.constant(self.locs, _checks.DTYPE)
        sds_t = tf.constant(np.sqrt(self.scales**2 + self.sigma**2), _checks.DTYPE)
        self.joint = tfd.JointDistributionNamed(dict(
            z=tfd.Categorical(probs=tf.constant(self.probs, _checks.DTYPE)),
            y=lambda z: tfd.Normal(tf.gather(locs_t, z), tf.gather(sds_t, z)),
        ))

    def log_joint(self, y) -> np.ndarray:
        r"""$\log p(z, y)$ for every $z$, shape ``[..., K]`` (float64, computed with scipy)."""
        y = np.asarray(y, dtype=np.float64)[..., np.newaxis]
        sds = np.sqrt(self.scales**2 + self.sigma**2)
        return np.log(self.probs) + stats.norm.logpdf(y, self.locs, sds)

    def posterior(self, y) -> tfd.Categorical:
        r"""The exact $p(z \mid y)$, batched over ``y``."""
        y = _checks.observations(y)
        return tfd.Categorical(logits=tf.constant(self.log_joint(y.numpy()), _checks.DTYPE))

    def evidence(self) -> tfd.MixtureSameFamily:
        r"""$p(y) = \sum_z \pi_z \mathcal N(y;\ \mu_z, s_z^2 + \sigma^2)$."""
        return tfd.MixtureSameFamily(
            tfd.Categorical(probs=tf.constant(self.probs, _checks.DTYPE)),
            tfd.Normal(tf.constant(self.locs, _checks.DTYPE),
                       tf.constant(np.sqrt(self.scales**2 + self.sigma**2), _checks.DTYPE)))


class ConstantCategorical(tf.Module):
    r"""$q(z \mid y) = \mathrm{Categorical}(\mathrm{softmax}(\ell))$, not depending on $y$.

    The smallest inference network: trainable logits $\ell$ and nothing else, for studying
    gradient estimators at one observation. With logits of shape ``[batch, K]``, row $b$ is
    used for observation $b$: the gradient of a loss averaged over a batch of copies of one
    observation then holds one independent gradient sample per row (divided by the batch size).

    Args:
        logits: initial logits, shape ``[K]`` (shared by all observations) or ``[batch, K]``.
        name: name of the module.

    Raises:
        ValueError: if ``logits`` is not a 1-D or 2-D array of finite numbers.

    Example:
        >>> q_net = ConstantCategorical([0.0, 1.0])
        >>> q_net([2.0, 3.0]).probs_parameter().shape
        TensorShape([2, 2])
    """

    def __init__(self, logits, name: str | None = None):
        super().__init__(name=name)
        values = np.asarray(logits, dtype=np.float64)
        if values.ndim not in (1, 2) or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"logits must be a non-empty 1-D or 2-D array of finite numbers, "
                             f"got shape {values.shape}")
        self.logits = tf.Variable(values, dtype=_checks.DTYPE, name="logits")

    def __call__(self, y) -> networks.Categorical:
        r"""Return $q(z \mid y)$, batched over ``y``."""
        y = _checks.observations(y)
        shape = tf.concat([tf.shape(y), tf.shape(self.logits)[-1:]], 0)
        return networks.Categorical(logits=tf.broadcast_to(self.logits, shape))


class OpenUniverseTrainableMean(LatentVariableModel):
    r"""The open-universe mixture with a trainable mean of its single component, ``mean_1``.

    The joint is that of `amortlib.models.OpenUniverseMixture` (padded latents $(k, z, x)$),
    with $x \sim \mathcal N(\mathrm{mean}_1, s^2)$ when $k = 1$ and ``mean_1`` a `tf.Variable`.
    The authors' code learns this parameter (true value 0, initialised at 2) together with the
    inference network. `at_current_value` returns the fixed model at the current ``mean_1``,
    with its exact posterior and evidence.

    Args:
        mean_1: the initial value of ``mean_1``.
        **kwargs: the other arguments of `amortlib.models.OpenUniverseMixture`
            (``loc_single`` excluded).

    Raises:
        ValueError: as `amortlib.models.OpenUniverseMixture`, or for a non-finite ``mean_1``.

    Example:
        >>> model = OpenUniverseTrainableMean(mean_1=2.0)
        >>> [v.name for v in model.trainable_variables]
        ['mean_1:0']
    """

    def __init__(self, mean_1: float = 2.0, **kwargs):
        if "loc_single" in kwargs:
            raise TypeError("pass mean_1, not loc_single")
        self._template = OpenUniverseMixture(
            loc_single=_checks.finite_scalar("mean_1", mean_1), **kwargs)
        self.mean_1 = tf.Variable(float(mean_1), dtype=_checks.DTYPE, name="mean_1")
        self.discrete_support = self._template.discrete_support
        t = self._template
        locs = tf.constant(t.locs, _checks.DTYPE)
        num = len(t.probs)
        self.joint = tfd.JointDistributionNamed(dict(
            k=tfd.FiniteDiscrete(t.K_VALUES, probs=tf.constant(t.k_probs, _checks.DTYPE)),
            z=tfd.Categorical(probs=tf.constant(t.probs, _checks.DTYPE)),
            x=lambda k, z: tfd.Normal(
                tf.where(k == 1.0, self.mean_1,
                         tf.reduce_sum(tf.one_hot(z, num) * locs, -1)), t.scale),
            y=lambda x: tfd.Normal(x, t.sigma),
        ))

    def log_prob(self, latents, y) -> tf.Tensor:
        r"""$\log p(k, z, x, y)$, written out term by term (the joint's value, fewer operations).

        $\log \rho_k + \log \pi_z + \log \mathcal N(x;\ \mu, s^2)
        + \log \mathcal N(y;\ x, \sigma^2)$, with $\mu = \mathrm{mean}_1$ if $k = 1$ and
        $\mu_z$ otherwise: the same number as ``self.joint.log_prob``, with a much smaller graph
        to trace (which is most of the cost of compiling a training loop).

        Args:
            latents: a dict with ``"k"``, ``"z"`` and ``"x"``, broadcasting against ``y``.
            y: the observations.

        Returns:
            The log joint density, float32.
        """
        t = self._template
        k, z, x = latents["k"], latents["z"], latents["x"]
        log_rho = tf.constant(np.log(t.k_probs), _checks.DTYPE)
        log_pi = tf.constant(np.log(t.probs), _checks.DTYPE)
        single = tf.equal(k, 1.0)
        loc = tf.where(single, self.mean_1, tf.gather(tf.constant(t.locs, _checks.DTYPE), z))
        y = tf.cast(y, _checks.DTYPE)
        return (tf.where(single, log_rho[0], log_rho[1]) + tf.gather(log_pi, z)
                + tfd.Normal(loc, t.scale).log_prob(x) + tfd.Normal(x, t.sigma).log_prob(y))

    @property
    def trainable_variables(self) -> tuple[tf.Variable, ...]:
        """``(mean_1,)``."""
        return (self.mean_1,)

    def at_current_value(self) -> OpenUniverseMixture:
        """The fixed `OpenUniverseMixture` at the current ``mean_1`` (exact posterior, evidence)."""
        t = self._template
        return OpenUniverseMixture(k_probs=t.k_probs, loc_single=float(self.mean_1.numpy()),
                                   probs=t.probs, locs=t.locs, scale=t.scale, sigma=t.sigma)
