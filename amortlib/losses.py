r"""The two ways to train an inference network, written once for any model and network.

Both losses average a divergence over observations drawn from the model, $y \sim p(y)$:

- the **qp loss** (variational inference, reverse KL) is the negative ELBO,

  .. math::
      \mathcal L_{qp}(\phi) = \mathbb E_{p(y)}\Big[\mathbb E_{q_\phi(x \mid y)}
      \big[\log q_\phi(x \mid y) - \log p(x, y)\big]\Big]
      = \mathbb E_{p(y)}\big[\mathrm{KL}(q_\phi(\cdot \mid y) \,\|\, p(\cdot \mid y))
        - \log p(y)\big];

- the **pq loss** (inference compilation, forward KL) is the negative log density of the
  network at the model's own latents,

  .. math::
      \mathcal L_{pq}(\phi) = \mathbb E_{p(x, y)}\big[-\log q_\phi(x \mid y)\big]
      = \mathbb E_{p(y)}\big[\mathrm{KL}(p(\cdot \mid y) \,\|\, q_\phi(\cdot \mid y))\big]
      + \mathbb E_{p(y)}\big[\mathrm H(p(\cdot \mid y))\big].

The ELBO itself is computed in one place, `elbo_draws` (one estimate per draw from $q$): the qp
loss is minus its mean, and Part II's estimates (`amortlib.gap`) and refinement steps
(`amortlib.refinement`) use it too.

With discrete latents the pq loss is unchanged (it never differentiates through a draw), while
the qp loss needs one of the discrete estimators of `qp_loss`: enumeration or the score function.
"""

from __future__ import annotations

import itertools

import tensorflow as tf
import tensorflow_probability as tfp

from amortlib import _checks

__all__ = [
    "elbo_draws",
    "qp_loss",
    "pq_loss",
    "enumerated_qp_loss",
    "score_function_qp_loss",
    "discrete_configurations",
    "LOSSES",
    "ESTIMATORS",
]


def elbo_draws(model, q_net, observations, *, seed, sample_size: int = 1,
               exact_entropy: bool = False) -> tf.Tensor:
    r"""Single-draw estimates of the ELBO: the one place where amortlib computes it.

    For ``sample_size`` reparameterised draws $x^{(s)} \sim q_\phi(\cdot \mid y)$ it returns

    .. math::
        \log p(x^{(s)}, y) - \log q_\phi(x^{(s)} \mid y)
        \quad\text{or, with } \texttt{exact\_entropy},\quad
        \log p(x^{(s)}, y) + \mathrm H\big(q_\phi(\cdot \mid y)\big),

    each an unbiased estimate of $\mathrm{ELBO}(q_\phi(\cdot \mid y))$. The plain form needs
    nothing of $q$ but draws and densities (Part I); with the entropy in closed form only
    $\log p$ carries Monte Carlo noise (what Part II's mean-field Gaussians use). Neither is
    less noisy everywhere: far from the posterior the closed form usually is, while near it
    $\log p - \log q$ is almost constant and the plain form is (Roeder et al., 2017,
    "sticking the landing"). `qp_loss` is minus their mean; `amortlib.gap` and
    `amortlib.refinement` estimate ELBOs and their gradients with it.

    Args:
        model: a model with ``log_prob(latents, observations)`` (see `amortlib.models`, or
            `amortlib.hierarchical` for a data set with global latents).
        q_net: an inference network; ``q_net(observations)`` returns a fully reparameterised
            distribution over the model's latents (see `qp_loss`).
        observations: the observations $y$, not empty.
        seed: an integer or a stateless seed (a shape-[2] int tensor) for the draws from $q$.
        sample_size: draws from $q$, a positive integer.
        exact_entropy: use $q$'s entropy in closed form (``q.entropy()`` must exist) instead
            of $-\log q_\phi(x^{(s)} \mid y)$.

    Returns:
        A tensor of shape ``[sample_size, *batch]``, where ``batch`` is the batch shape of
        ``q_net(observations)``: one entry per observation for the networks of Part I, none
        for a `amortlib.families.VariationalPosterior`, whose draw covers the whole data set.

    Raises:
        TypeError: if ``exact_entropy`` is not a bool.
        ValueError: for no or a bad seed, empty observations, a bad ``sample_size``, a
            distribution that cannot be reparameterised, or a ``q_net`` that does not fit
            ``model``.

    Example:
        >>> from amortlib import GaussianUnknownMean, LinearGaussian
        >>> model, q_net = GaussianUnknownMean(), LinearGaussian()
        >>> elbo_draws(model, q_net, [0.0, 1.0, 2.0], sample_size=5, seed=0).shape
        TensorShape([5, 3])
    """
    seed = _checks.seed(seed)
    y = _non_empty("observations", observations)
    sample_size = _checks.positive_int("sample_size", sample_size)
    exact_entropy = _flag("exact_entropy", exact_entropy)
    q = q_net(y)
    _checks.model_and_network(model, q_net, q)
    _reparameterized(q)
    x = q.sample(sample_size, seed=seed)
    log_q = -q.entropy() if exact_entropy else q.log_prob(x)
    return model.log_prob(x, y) - log_q


def _flag(name, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _reparameterized(q) -> None:
    parts = getattr(q, "model", None)
    if (isinstance(q, tfp.distributions.JointDistributionNamed) and isinstance(parts, dict)
            and all(isinstance(p, tfp.distributions.Distribution) for p in parts.values())):
        # Independent parts: ask each. The joint's own reparameterization_type traces its
        # model in a throw-away graph, a tenth of a second per call in eager evaluation.
        kinds = [part.reparameterization_type for part in parts.values()]
    else:
        kinds = tf.nest.flatten(q.reparameterization_type)
    if any(kind != tfp.distributions.FULLY_REPARAMETERIZED for kind in kinds):
        raise ValueError(
            "q_net must return a fully reparameterised distribution for the reparameterised "
            f"qp loss; {type(q).__name__} is not (for discrete latents use "
            "estimator='enumerate' or 'reinforce')"
        )


def qp_loss(model, q_net, latents, observations, *, seed, sample_size: int = 1,
            estimator: str = "reparameterize", baseline: bool = True,
            drop_zero_mean_term: bool = False, exact_entropy: bool = False) -> tf.Tensor:
    r"""Monte Carlo estimate of the qp loss (negative ELBO) on a batch of observations.

    Averages $f = \log q_\phi(\text{latents} \mid y) - \log p(\text{latents}, y)$ over
    ``sample_size`` draws from $q$ per observation and over observations. How the gradient
    reaches $\phi$ through the *sampling* depends on ``estimator``:

    - ``"reparameterize"``: all latents continuous; the draws are differentiable functions of
      $\phi$ (the default, and the only choice for continuous-only $q$). The loss is minus the
      mean of `elbo_draws`;
    - ``"enumerate"``: sum over every value $c$ of the discrete latents
      (``model.discrete_support``),
      $\sum_c q_\phi(c \mid y)\, \mathbb E_{q_\phi(x \mid y, c)}[f]$, with the continuous
      latents reparameterised; exact in the discrete part, at the cost of one pass per value;
    - ``"reinforce"``: draw the discrete latents too and add the score-function term
      $(f - b)\, \nabla_\phi \log q_\phi(c \mid y)$, where the baseline $b$ is the mean
      of $f$ over the *other* draws for the same $y$ (leave-one-out, so the gradient stays
      unbiased) or zero if ``baseline`` is False. The returned value is still the plain
      estimate of the loss; only its gradient carries the extra term. Since $f$ itself
      contains $\log q_\phi(c \mid y)$, its own gradient adds $\nabla_\phi \log
      q_\phi(c \mid y)$ once more, so the score is multiplied by $1 + f - b$;
      ``drop_zero_mean_term`` removes that extra term, whose expectation is zero.

    Args:
        model: a model with ``log_prob(latents, y)``; for the discrete estimators, also
            ``discrete_support`` (see `amortlib.models`).
        q_net: an inference network; ``q_net(y)`` returns a distribution over the latents (a
            `tfd.JointDistributionNamed` with the model's latent names when there are several).
        latents: the latents drawn with ``observations``, or None: the qp loss does not use
            them (it draws its own from $q$); the argument makes its signature that of every
            loss, ``(model, q_net, latents, observations, *, seed)``.
        observations: the observations $y$, shape ``[batch_size]``, not empty.
        seed: an integer or a stateless seed (a shape-[2] int tensor) for the draws from $q$.
        sample_size: draws from $q$ per observation (per discrete value when enumerating).
        estimator: ``"reparameterize"``, ``"enumerate"`` or ``"reinforce"``.
        baseline: for ``"reinforce"``, use the leave-one-out baseline (needs ``sample_size >= 2``).
        drop_zero_mean_term: for ``"reinforce"``, stop the gradient of the
            $\log q_\phi(c \mid y)$ inside $f$, so that the score is multiplied by $f - b$
            instead of $1 + f - b$. The gradient stays unbiased, since
            $\mathbb E_q[\nabla_\phi \log q_\phi(c \mid y)] = 0$; the value is unchanged.
            Ignored by the other estimators, whose gradients have no such term.
        exact_entropy: for ``"reparameterize"``, replace $\log q_\phi$ by minus $q$'s entropy
            in closed form (see `elbo_draws`): the same expectation, another noise. Part II's
            variational posteriors are trained with it.

    Returns:
        A scalar tensor. When $q_\phi(\cdot \mid y) = p(\cdot \mid y)$ every term equals
        $-\log p(y)$ exactly.

    Raises:
        TypeError: if ``baseline``, ``drop_zero_mean_term`` or ``exact_entropy`` is not a bool.
        ValueError: for no or a bad seed, empty observations, an unknown estimator, a bad
            ``sample_size``, a continuous-only estimator
            with a distribution that cannot be reparameterised, a discrete estimator with a
            model that has no discrete latents or with ``exact_entropy``, or a ``q_net`` that
            does not fit ``model`` (other latents or another number of components).

    Example:
        >>> from amortlib import models, networks
        >>> model = models.GaussianMixtureExplicit()
        >>> q_net = networks.CategoricalGaussian(2, hidden=(8,), input_scale=10.0)
        >>> loss = qp_loss(model, q_net, None, [0.0, 3.0], estimator="enumerate", seed=0)
    """
    seed = _checks.seed(seed)
    y = _non_empty("observations", observations)
    _checks.one_of("estimator", estimator, ESTIMATORS)
    sample_size = _checks.positive_int("sample_size", sample_size)
    for name, flag in [("baseline", baseline), ("drop_zero_mean_term", drop_zero_mean_term),
                       ("exact_entropy", exact_entropy)]:
        _flag(name, flag)
    if estimator == "reparameterize":
        return -tf.reduce_mean(elbo_draws(model, q_net, y, seed=seed, sample_size=sample_size,
                                          exact_entropy=exact_entropy))
    if exact_entropy:
        raise ValueError(f"exact_entropy is an option of the reparameterised estimator only, "
                         f"not of estimator={estimator!r}")
    q = q_net(y)
    _checks.model_and_network(model, q_net, q)
    return _discrete_qp_loss(model, q, y, sample_size, estimator, baseline,
                             drop_zero_mean_term, seed)


def _discrete_qp_loss(model, q, y, sample_size, estimator, baseline, drop_zero_mean_term,
                      seed):
    support = dict(getattr(model, "discrete_support", {}) or {})
    if not support:
        raise ValueError(f"estimator={estimator!r} needs a model with discrete latents "
                         "(a non-empty model.discrete_support)")
    if estimator == "enumerate":
        return enumerated_qp_loss(model, q, y, support, sample_size=sample_size, seed=seed)
    if baseline and sample_size < 2:
        raise ValueError("sample_size must be at least 2 for REINFORCE with the leave-one-out "
                         f"baseline, got {sample_size}")
    return score_function_qp_loss(model, q, y, support, sample_size=sample_size,
                                  baseline=baseline, drop_zero_mean_term=drop_zero_mean_term,
                                  seed=seed)


def score_function_qp_loss(model, q, y, support, *, sample_size: int, baseline: bool = True,
                           drop_zero_mean_term: bool = False, seed) -> tf.Tensor:
    r"""The qp loss with a score-function (REINFORCE) gradient for the discrete latents.

    Draws all latents from ``q`` (the continuous ones reparameterised given the discrete ones
    $c$) and returns a *surrogate* whose value is the Monte Carlo estimate of the loss and whose
    gradient is the unbiased estimate
    $\nabla_\phi f + (f - b)\, \nabla_\phi \log q_\phi(c \mid y)$, with
    $f = \log q_\phi - \log p$ and $b$ the leave-one-out mean of $f$ over the other draws for
    the same $y$ (or $b = 0$ without ``baseline``). Because $f$ contains
    $\log q_\phi(c \mid y)$, $\nabla_\phi f$ contributes one more
    $\nabla_\phi \log q_\phi(c \mid y)$, a term of expectation zero; with
    ``drop_zero_mean_term`` it is left out. Called by `qp_loss`, which checks arguments.

    Args:
        model: the model; ``q``: the distribution ``q_net(y)``; ``y``: observations.
        support: ``{name: values}`` of the discrete latents (only the names are used).
        sample_size: draws per observation, >= 2 with the baseline.
        baseline: subtract the leave-one-out baseline.
        drop_zero_mean_term: stop the gradient of $\log q_\phi(c \mid y)$ inside $f$.
        seed: an integer or a stateless seed (required).
    """
    draws, parts = _draw(q, _checks.seed(seed), sample_shape=[sample_size])
    f = tf.add_n(list(parts.values())) - model.log_prob(draws, y)  # [sample_size, batch]
    log_q_discrete = tf.add_n([parts[name] for name in support])
    b = (tf.reduce_sum(f, 0, keepdims=True) - f) / (sample_size - 1) if baseline else 0.0
    score = log_q_discrete - tf.stop_gradient(log_q_discrete)  # zero, with the score's gradient
    pathwise = f - score if drop_zero_mean_term else f  # same value either way
    return tf.reduce_mean(pathwise + tf.stop_gradient(f - b) * score)


def discrete_configurations(support) -> list[dict]:
    """Every joint value of the discrete latents, as a list of dicts ``{name: value}``.

    Args:
        support: ``{name: values}``, for example ``model.discrete_support``.

    Returns:
        The Cartesian product of the values; its length is the product of the support sizes,
        which is what makes enumeration expensive when there are many discrete latents.

    Example:
        >>> discrete_configurations({"k": (1.0, 2.0), "z": (0, 1)})[:2]
        [{'k': 1.0, 'z': 0}, {'k': 1.0, 'z': 1}]
    """
    names = list(support)
    return [dict(zip(names, values)) for values in itertools.product(*support.values())]


def enumerated_qp_loss(model, q, y, support, *, seed, sample_size: int = 1) -> tf.Tensor:
    r"""The qp loss with the discrete latents summed out exactly.

    .. math::
        \mathcal L_{qp} = \frac1B \sum_{b} \sum_{c} q_\phi(c \mid y_b)\,
        \mathbb E_{q_\phi(x \mid y_b, c)}\big[\log q_\phi(c, x \mid y_b) - \log p(c, x, y_b)\big],

    one pass per joint value $c$ of the discrete latents (see `discrete_configurations`), with
    ``sample_size`` reparameterised draws of the continuous latents in each. The weights
    $q_\phi(c \mid y)$ carry the gradient for the discrete part. Called by `qp_loss`.

    Args:
        model: the model; ``q``: the distribution ``q_net(y)``; ``y``: observations.
        support: ``{name: values}`` of the discrete latents.
        sample_size: draws of the continuous latents per observation and value.
        seed: an integer or a stateless seed (required).
    """
    configs = discrete_configurations(support)
    seeds = tfp.random.split_seed(_checks.seed(seed), n=len(configs))
    shape = tf.stack([sample_size, tf.size(y)])
    total = 0.0
    for config, config_seed in zip(configs, seeds):
        pinned = {name: tf.fill(shape, tf.constant(value)) for name, value in config.items()}
        draws, parts = _draw(q, config_seed, value=pinned)  # continuous latents given c
        weight = tf.exp(tf.add_n([parts[name] for name in support]))  # q(c | y)
        f = tf.add_n(list(parts.values())) - model.log_prob(draws, y)
        total += tf.reduce_mean(weight * f, axis=0)  # mean over the continuous draws
    return tf.reduce_mean(total)


def _draw(q, seed, sample_shape=(), value=None):
    """Draw from a joint ``q`` (some parts pinned to ``value``) and log-density of each part.

    One pass through ``q``'s conditionals serves both, where ``sample`` then ``log_prob_parts``
    would run every network twice.
    """
    dists, draws = q.sample_distributions(sample_shape, seed=seed, value=value)
    parts = {name: dists[name].log_prob(draws[name]) for name in draws}
    return draws, parts


def pq_loss(model, q_net, latents, observations, *, seed=None) -> tf.Tensor:
    r"""The pq loss (inference compilation) on a batch of model draws ``(latents, y)``.

    Averages $-\log q_\phi(\text{latents} \mid y)$; the draws must come from $p(\text{latents}, y)$.
    No reparameterisation is needed: the gradient flows only through $q$'s density.

    Args:
        model: the model the draws come from. The pq loss does not evaluate it; the argument
            makes its signature that of every loss, ``(model, q_net, latents, observations, *,
            seed)``.
        q_net: an inference network.
        latents: latents drawn from the model together with ``observations`` (required).
        observations: the observations $y$, shape ``[batch_size]``, not empty.
        seed: unused (the loss draws nothing); accepted so that every loss has one signature.

    Returns:
        A scalar tensor, an unbiased estimate of
        $\mathbb E_{p(y)}[\mathrm{KL}(p \,\|\, q)] + \mathbb E_{p(y)}[\mathrm H(p(\cdot \mid y))]$.

    Raises:
        ValueError: if ``latents`` is None, ``observations`` is empty, or ``q_net`` does not
            fit ``model`` (other latents or another number of components).
    """
    if latents is None:
        raise ValueError("latents must be the model's draws for the pq loss, got None")
    y = _non_empty("observations", observations)
    q = q_net(y)
    _checks.model_and_network(model, q_net, q)
    return -tf.reduce_mean(q.log_prob(latents))


def _non_empty(name, observations) -> tf.Tensor:
    """``observations`` as a tensor, refused if it has no entries (a mean over none is NaN)."""
    y = tf.convert_to_tensor(observations, dtype_hint=_checks.DTYPE)
    if y.shape.num_elements() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(y.shape)}")
    return y


#: The losses by name, as `amortlib.training.fit` accepts them.
LOSSES = {"qp": qp_loss, "pq": pq_loss}

#: How `qp_loss` gets gradients through the draws from $q$ (see its docstring).
ESTIMATORS = ("reparameterize", "enumerate", "reinforce")
