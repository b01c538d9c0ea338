"""The mixture models, their networks, the discrete estimators and the exact divergences."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from amortlib import GaussianUnknownMean, evaluation, losses, models, networks

tfd = tfp.distributions
Y = np.array([-20.0, -3.5, 0.0, 1.7, 12.0], dtype=np.float32)


def simpson(values, x):
    w = np.ones(len(x))
    w[1:-1:2], w[2:-1:2] = 4, 2
    return (x[1] - x[0]) / 3 * np.tensordot(w, values, axes=1)


def exact(model):
    """A "network" that returns the exact posterior."""
    return lambda y: model.posterior(y)


ALL_MODELS = [
    models.GaussianMixturePrior(),
    models.GaussianMixturePrior([0.2, 0.3, 0.5], [-3.0, 0.0, 4.0], [0.5, 1.0, 2.0], 1.5),
    models.GaussianMixtureExplicit(),
    models.GaussianMixtureExplicit([0.7, 0.3], [1.0, -2.0], [0.5, 2.0], 0.8),
    models.OpenUniverseMixture(),
    models.OpenUniverseMixture([0.3, 0.7], 1.0, [0.2, 0.5, 0.3], [-4.0, 0.0, 6.0], 1.5, 0.7),
]


def configurations(model):
    support = model.discrete_support
    return losses.discrete_configurations(support) if support else [{}]


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_posterior_is_bayes_rule(model):
    """log p(latents | y) = log p(latents, y) - log p(y) for every discrete value, on an x grid."""
    x = np.linspace(-8, 8, 33).astype(np.float32)[:, None]
    for config in configurations(model):
        latents = dict(config, x=x) if config else x
        lhs = model.posterior(Y).log_prob(latents)
        rhs = model.log_prob(latents, Y) - model.evidence().log_prob(Y)
        np.testing.assert_allclose(lhs, rhs, atol=3e-4)


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_evidence_integrates_the_joint(model):
    """p(y) = sum over discrete values of the integral over x of p(latents, y)."""
    x = np.linspace(-40, 40, 40001)
    total = 0.0
    for config in configurations(model):
        grid = x[:, None].astype(np.float32)
        latents = dict(config, x=grid) if config else grid
        total += simpson(np.exp(model.log_prob(latents, Y).numpy().astype(np.float64)), x)
    np.testing.assert_allclose(total, np.exp(model.evidence().log_prob(Y)), rtol=1e-4)


def test_mixture_posterior_against_the_textbook_formula():
    model = models.GaussianMixturePrior([0.5, 0.5], [-5.0, 5.0], [1.0, 1.0], 10.0)
    weights, components = model.component_posterior(Y)
    w = 0.5 * stats.norm.pdf(Y[:, None], [-5.0, 5.0], np.sqrt(101.0))
    np.testing.assert_allclose(weights.probs_parameter(), w / w.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(components.loc, ([-5.0, 5.0] + Y[:, None] / 100) / 1.01, rtol=1e-5)
    np.testing.assert_allclose(components.scale, np.sqrt(1 / 1.01), rtol=1e-6)


def test_open_universe_k_posterior_closed_form():
    """p(k=1|y) = 0.5 N(y;0,2) / (0.5 N(y;0,2) + 0.25 N(y;-5,2) + 0.25 N(y;5,2))."""
    y = np.linspace(-7, 7, 5)
    one = 0.5 * stats.norm.pdf(y, 0, np.sqrt(2))
    two = 0.25 * (stats.norm.pdf(y, -5, np.sqrt(2)) + stats.norm.pdf(y, 5, np.sqrt(2)))
    got = models.OpenUniverseMixture().k_posterior(y).probs_parameter().numpy()[:, 0]
    np.testing.assert_allclose(got, one / (one + two), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, [0.0000, 0.1410, 0.9981, 0.1410, 0.0000], atol=5e-5)


def test_open_universe_draws():
    """k = 1 half the time; then x ~ N(0, 1) whatever the padding z is."""
    n = 100_000
    latents, y = models.OpenUniverseMixture().sample(n, seed=3)
    k, z, x = (latents[name].numpy() for name in ("k", "z", "x"))
    assert abs(np.mean(k == 1) - 0.5) < 5 * np.sqrt(0.25 / n)
    ones = x[k == 1]
    assert abs(ones.mean()) < 5 / np.sqrt(len(ones)) and abs(ones.std() - 1) < 0.02
    twos = x[(k == 2) & (z == 1)]
    assert abs(twos.mean() - 5) < 5 / np.sqrt(len(twos))
    assert y.shape == (n,)


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if m.discrete_support], ids=repr)
@pytest.mark.parametrize("estimator", ["enumerate", "reinforce"])
def test_qp_loss_at_the_posterior_is_minus_log_evidence(model, estimator):
    """With q = p(.|y) each term log q - log p(latents, y) is -log p(y), exactly."""
    value = losses.qp_loss(model, exact(model), None, Y, estimator=estimator, sample_size=3,
                           seed=0)
    np.testing.assert_allclose(float(value), -np.mean(model.evidence().log_prob(Y)), rtol=1e-5)


def small_net(model, seed=0):
    if isinstance(model, models.OpenUniverseMixture):
        return networks.OpenUniverseNetwork(model.probs, hidden=(4,), input_scale=4.0, seed=seed)
    return networks.CategoricalGaussian(model.num_components, hidden=(4,), input_scale=4.0,
                                        seed=seed)


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if m.discrete_support], ids=repr)
def test_discrete_estimators_agree_with_the_exact_reverse_kl(model):
    """E[qp loss] = KL(q || p) - log p(y): both estimators, against enumeration + quadrature."""
    net = small_net(model)
    y = Y[1:4]
    expected = np.mean(evaluation.reverse_kl(model, net, y) - model.evidence().log_prob(y))
    n = 20_000
    for estimator in ["enumerate", "reinforce"]:
        terms = [float(losses.qp_loss(model, net, None, y, estimator=estimator,
                                      sample_size=n, seed=s))
                 for s in range(8)]
        # Independent estimates: five standard errors of their mean (plus float32 round-off).
        se = np.std(terms, ddof=1) / np.sqrt(len(terms))
        assert abs(np.mean(terms) - expected) < 5 * se + 1e-3, (estimator, terms, expected)


@pytest.mark.parametrize("drop", [False, True], ids=["full", "drop_zero_mean_term"])
def test_reinforce_gradient_is_unbiased(drop):
    """The score-function gradient averages to the enumerated one (within 5 standard errors),
    also with the zero-mean term of the gradient of f dropped."""
    model = models.GaussianMixtureExplicit([0.7, 0.3], [1.0, -2.0], [0.5, 2.0], 0.8)
    net = small_net(model)
    y = tf.constant(Y[1:4])
    variables = net.logits_net.trainable_variables

    def loss_fn(estimator, **kw):
        return lambda s: losses.qp_loss(model, net, None, y, estimator=estimator, seed=s, **kw)

    enum = evaluation.gradient_samples(loss_fn("enumerate", sample_size=50), variables,
                                       num_samples=50, seed=1)
    for baseline in [True, False]:
        score = evaluation.gradient_samples(
            loss_fn("reinforce", sample_size=50, baseline=baseline, drop_zero_mean_term=drop),
            variables, num_samples=400, seed=2)
        for e, s in zip(enum, score):
            se = np.sqrt(s.var(0) / len(s) + e.var(0) / len(e)) + 1e-6
            assert np.all(np.abs(s.mean(0) - e.mean(0)) < 5 * se)


def test_dropping_the_zero_mean_term_keeps_the_value_and_changes_the_gradient():
    """Same value; the gradients differ by exactly the mean of the discrete score."""
    model = models.OpenUniverseMixture(k_probs=(0.3, 0.7), probs=(0.6, 0.4))
    net = small_net(model)
    y = tf.constant(Y[1:4])
    variables = net.trainable_variables
    values, grads = [], []
    for drop in [False, True]:
        with tf.GradientTape() as tape:
            values.append(losses.qp_loss(model, net, None, y, estimator="reinforce",
                                         sample_size=3,
                                         drop_zero_mean_term=drop, seed=4))
        grads.append(tape.gradient(values[-1], variables))
    from amortlib import _checks
    with tf.GradientTape() as tape:  # the same draws: the same seed and sample shape
        _, parts = losses._draw(net(y), _checks.seed(4), sample_shape=[3])
        mean_score = tf.reduce_mean(parts["k"] + parts["z"])
    expected = tape.gradient(mean_score, variables)
    np.testing.assert_allclose(float(values[0]), float(values[1]), rtol=1e-6)
    for full, dropped, term in zip(*grads, expected):
        if term is None:  # a variable that log q(k, z | y) does not depend on
            np.testing.assert_allclose(full, dropped, atol=1e-5)
        else:
            np.testing.assert_allclose(full - dropped, term, atol=1e-5)
    assert any(term is not None and np.abs(term).max() > 1e-3 for term in expected)


@pytest.mark.parametrize("sample_size", [2, 5])
def test_reinforce_baseline_leaves_each_draw_out(sample_size):
    """The gradient is mean(grad f + (f - b) grad log q(c | y)) with b_s the mean of f over the
    OTHER draws, (sum f - f_s) / (S - 1), computed here in NumPy. A baseline that includes the
    draw itself, sum f / S, is correlated with its draw (biased) and fails this check."""
    model = models.GaussianMixtureExplicit([0.7, 0.3], [1.0, -2.0], [0.5, 2.0], 0.8)
    net = small_net(model)
    y = tf.constant(Y[1:4])
    variables = net.logits_net.trainable_variables
    with tf.GradientTape() as tape:
        value = losses.qp_loss(model, net, None, y, estimator="reinforce",
                               sample_size=sample_size, seed=5)
    got = tape.gradient(value, variables)
    from amortlib import _checks
    with tf.GradientTape() as tape:  # the same draws: the same seed and sample shape
        draws, parts = losses._draw(net(y), _checks.seed(5), sample_shape=[sample_size])
        f = tf.add_n(list(parts.values())) - model.log_prob(draws, y)
        log_q_c = parts[next(iter(model.discrete_support))]
        f_np = f.numpy().astype(np.float64)
        leave_one_out = (f_np.sum(0, keepdims=True) - f_np) / (sample_size - 1)
        weight = tf.constant(f_np - leave_one_out, tf.float32)
        expected = tape.gradient(tf.reduce_mean(f + weight * log_q_c), variables)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
    with tf.GradientTape() as tape:  # the biased variant differs measurably
        draws, parts = losses._draw(net(y), _checks.seed(5), sample_shape=[sample_size])
        f = tf.add_n(list(parts.values())) - model.log_prob(draws, y)
        log_q_c = parts[next(iter(model.discrete_support))]
        weight = tf.constant(f_np - f_np.mean(0, keepdims=True), tf.float32)
        biased = tape.gradient(tf.reduce_mean(f + weight * log_q_c), variables)
    assert max(np.abs(b - e).max() for b, e in zip(biased, expected)) > 1e-3


def test_open_universe_z_posterior_is_the_closed_form():
    """p(z | y, k = 2) is proportional to pi_z N(y; mu_z, s^2 + sigma^2), in NumPy/SciPy."""
    import scipy.stats

    model = models.OpenUniverseMixture(k_probs=(0.4, 0.6), loc_single=0.5,
                                       probs=(0.2, 0.5, 0.3), locs=(-3.0, 1.0, 4.0), scale=0.7,
                                       sigma=1.3)
    y = np.array([-4.0, -1.0, 0.5, 2.0, 6.0])
    weights = model.probs * scipy.stats.norm.pdf(
        y[:, None], np.array(model.locs), np.sqrt(0.7**2 + 1.3**2))
    expected = weights / weights.sum(1, keepdims=True)
    got = model.z_posterior(y).probs_parameter().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_drop_zero_mean_term_must_be_a_bool():
    model = models.GaussianMixtureExplicit()
    with pytest.raises(TypeError, match="drop_zero_mean_term"):
        losses.qp_loss(model, small_net(model), None, Y, estimator="reinforce", sample_size=2,
                       drop_zero_mean_term="yes", seed=0)


def test_baseline_reduces_the_variance():
    model = models.GaussianMixtureExplicit()
    net = networks.CategoricalGaussian(2, hidden=(8,), input_scale=11.0, seed=0)
    y = model.sample(200, seed=0)[1]
    variances = {}
    for baseline in [True, False]:
        grads = evaluation.gradient_samples(
            lambda s, baseline=baseline: losses.qp_loss(
                model, net, None, y, estimator="reinforce", sample_size=2, baseline=baseline,
                seed=s),
            net.logits_net.trainable_variables, num_samples=100, seed=1)
        variances[baseline] = sum(g.var(0).sum() for g in grads)
    assert variances[True] < variances[False]


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if m.discrete_support], ids=repr)
def test_pq_loss_on_dict_latents(model):
    latents, y = model.sample(7, seed=1)
    net = small_net(model)
    np.testing.assert_allclose(float(losses.pq_loss(model, net, latents, y)),
                               -np.mean(net(y).log_prob(latents)), rtol=1e-6)


def test_enumerated_kl_against_the_chain_rule():
    """KL of joints = KL of the categoricals + sum_z p(z) KL of the Gaussians (closed forms)."""
    model = models.GaussianMixtureExplicit([0.7, 0.3], [1.0, -2.0], [0.5, 2.0], 0.8)
    net = small_net(model, seed=3)
    pz, px = model.component_posterior(Y)
    qz = net.z_given_y(Y)
    every = np.array([[0, 1]] * len(Y))
    qx = net.x_given_yz(Y[:, None], every)
    expected = tfd.kl_divergence(pz, qz) + tf.reduce_sum(
        pz.probs_parameter() * tfd.kl_divergence(px, qx), -1)
    np.testing.assert_allclose(evaluation.forward_kl(model, net, Y), expected, rtol=1e-4)
    reverse = tfd.kl_divergence(qz, pz) + tf.reduce_sum(
        qz.probs_parameter() * tfd.kl_divergence(qx, px), -1)
    np.testing.assert_allclose(evaluation.reverse_kl(model, net, Y), reverse, rtol=1e-4)


def test_open_universe_kl_is_the_unpadded_kl():
    """On the padded space the KL equals the KL over (k=1, x) and (k=2, z, x) alone."""
    model = models.OpenUniverseMixture()
    net = small_net(model, seed=2)
    y = Y[1:4]
    p, q = model.posterior(y), net(y)
    x = np.linspace(-30, 30, 20001)
    grid = x[:, None].astype(np.float32)
    total = 0.0
    for k, zs in [(1.0, [0]), (2.0, [0, 1])]:
        for z in zs:
            value = dict(k=tf.constant(k), z=tf.constant(z), x=grid)
            # Unpadded densities: for k = 1 drop the padding factor pi_z = 1/2 of both.
            drop = np.log(0.5) if k == 1.0 else 0.0
            lp = p.log_prob(value).numpy().astype(np.float64) - drop
            lq = q.log_prob(value).numpy().astype(np.float64) - drop
            total += simpson(np.exp(lp) * (lp - lq), x)
    np.testing.assert_allclose(evaluation.forward_kl(model, net, y), total, rtol=1e-4)


def test_network_marginals_sum_the_joint():
    x = np.linspace(-8, 8, 17).astype(np.float32)[:, None]
    for model in [ALL_MODELS[3], ALL_MODELS[5]]:
        net = small_net(model, seed=4)
        joint = net(Y)
        terms = [joint.log_prob(dict(c, x=x)) for c in configurations(model)]
        np.testing.assert_allclose(net.marginal(Y).log_prob(x),
                                   tf.reduce_logsumexp(tf.stack(terms), 0), atol=2e-5)


def test_mlp_gaussian_outputs():
    net = networks.MLPGaussian(hidden=(8, 8), input_scale=10.0, seed=1)
    dist = net([0.0, 5.0, -3.0])
    np.testing.assert_allclose(dist.mean(), net.loc([0.0, 5.0, -3.0]), rtol=1e-6)
    np.testing.assert_allclose(dist.variance(), net.variance([0.0, 5.0, -3.0]), rtol=1e-5)
    again = networks.MLPGaussian(hidden=(8, 8), input_scale=10.0, seed=1)
    np.testing.assert_array_equal(again([1.0]).mean(), net([1.0]).mean())


def test_total_variation_and_kl_of_categoricals():
    p, q = tfd.Categorical(probs=[0.2, 0.8]), tfd.Categorical(probs=[0.5, 0.5])
    assert float(evaluation.total_variation(p, q)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="outcomes"):
        evaluation.total_variation(p, tfd.Categorical(probs=[0.2, 0.3, 0.5]))


def test_importance_resampling_approaches_the_posterior():
    model = GaussianUnknownMean(0.0, 1.0, 1.0)
    x, ess = evaluation.importance_resample(model, 1.0, 200_000, seed=0)
    assert 0 < ess <= 200_000
    # Posterior N(0.5, 0.5); resampled draws are dependent, so allow 5 SEs at the ESS.
    assert abs(float(tf.reduce_mean(x)) - 0.5) < 5 * np.sqrt(0.5 / ess)
    latents, _ = evaluation.importance_resample(models.GaussianMixtureExplicit(), 30.0, 20_000,
                                                seed=1)
    frequency = np.mean(latents["z"].numpy() == 1)
    z_post = models.GaussianMixtureExplicit().component_posterior([30.0])[0]
    p1 = float(z_post.probs_parameter()[0, 1])
    assert abs(frequency - p1) < 0.03


# ---- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(probs=[0.5, 0.6]), "probs must sum to one"),
        (dict(probs=[1.2, -0.2]), "probs must be non-negative"),
        (dict(locs=[0.0, 1.0, 2.0]), "locs must have one entry per component"),
        (dict(scales=[1.0]), "scales must have one entry per component"),
        (dict(scales=[1.0, -1.0]), "scales must be positive"),
        (dict(sigma=0.0), "sigma must be positive"),
        (dict(probs=[[0.5, 0.5]]), "probs must be a non-empty 1-D"),
        (dict(locs=[0.0, np.nan]), "locs must be finite"),
    ],
)
@pytest.mark.parametrize("cls", [models.GaussianMixturePrior, models.GaussianMixtureExplicit])
def test_bad_mixture_parameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k_probs=[0.5, 0.4]), "k_probs must sum to one"),
        (dict(k_probs=[0.2, 0.3, 0.5]), "k_probs must have two entries"),
        (dict(probs=[0.5, 0.5], locs=[1.0]), "locs must have one entry per component"),
        (dict(scale=-1.0), "scale must be positive"),
        (dict(loc_single=np.inf), "loc_single must be finite"),
    ],
)
def test_bad_open_universe_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.OpenUniverseMixture(**kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: networks.MLPGaussian(hidden=4), "hidden must be a sequence"),
        (lambda: networks.MLPGaussian(hidden=(0,)), "hidden must be a positive integer"),
        (lambda: networks.MLPGaussian(input_scale=-1.0), "input_scale must be positive"),
        (lambda: networks.CategoricalGaussian(0), "num_components must be a positive integer"),
        (lambda: networks.OpenUniverseNetwork((0.3, 0.3)), "padding_probs must sum to one"),
        (lambda: networks.MLP(1, (4,), 1, seed=None), "seed must be an integer"),
    ],
)
def test_bad_network_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_observations_for_mixtures():
    with pytest.raises(ValueError, match="y must"):
        models.GaussianMixturePrior().posterior(np.ones((2, 2)))
    with pytest.raises(ValueError, match="y must be finite"):
        models.OpenUniverseMixture().k_posterior([np.nan])


def test_bad_estimator_arguments():
    model = models.GaussianMixtureExplicit()
    net = small_net(model)
    with pytest.raises(ValueError, match="estimator must be one of"):
        losses.qp_loss(model, net, None, Y, estimator="gumbel", seed=0)
    with pytest.raises(ValueError, match="sample_size must be at least 2"):
        losses.qp_loss(model, net, None, Y, estimator="reinforce", sample_size=1, seed=0)
    with pytest.raises(ValueError, match="reparameterised"):
        losses.qp_loss(model, net, None, Y, seed=0)
    with pytest.raises(ValueError, match="discrete latents"):
        losses.qp_loss(GaussianUnknownMean(), networks.LinearGaussian(), None, Y,
                       estimator="enumerate", seed=0)


def test_bad_evaluation_arguments():
    model = models.GaussianMixtureExplicit()
    with pytest.raises(ValueError, match="num_samples"):
        evaluation.gradient_samples(lambda s: tf.constant(0.0), [tf.Variable(1.0)], num_samples=0)
    with pytest.raises(ValueError, match="variables must not be empty"):
        evaluation.gradient_samples(lambda s: tf.constant(0.0), [], num_samples=2)
    with pytest.raises(ValueError, match="single observation"):
        evaluation.importance_resample(model, [1.0, 2.0], 10)
    with pytest.raises(ValueError, match="one scalar continuous latent"):
        evaluation.kl_divergence(model.posterior(Y), model.posterior(Y), support={"w": (0,)})


def test_open_universe_padding_shifts_the_pq_loss_by_rho1_entropy_of_pi():
    """E_p[-log p~(k, z, x | y)] - E_p[-log p(k, [z], x | y)] = -rho_1 E_pi[log pi_z]."""
    rho, pi = (0.3, 0.7), np.array([0.6, 0.4])
    model = models.OpenUniverseMixture(k_probs=rho, probs=pi, locs=(-2.0, 3.0), sigma=0.7)
    latents, y = model.sample(100_000, seed=3)
    padded = -model.posterior(y).log_prob(latents).numpy()
    k, z, x, y = (np.asarray(latents["k"]), np.asarray(latents["z"]),
                  np.asarray(latents["x"], float), np.asarray(y, float))
    # The unpadded posterior in closed form: three structures, conjugate Gaussians.
    v, prec = 1.0 + 0.49, 1.0 + 1 / 0.49
    weights = np.stack([rho[0] * stats.norm.pdf(y, 0.0, np.sqrt(v)),
                        rho[1] * pi[0] * stats.norm.pdf(y, -2.0, np.sqrt(v)),
                        rho[1] * pi[1] * stats.norm.pdf(y, 3.0, np.sqrt(v))])
    weights /= weights.sum(0)
    which = np.where(k == 1, 0, 1 + z)
    prior_mean = np.array([0.0, -2.0, 3.0])[which]
    log_post = (np.log(weights[which, np.arange(len(y))])
                + stats.norm.logpdf(x, (prior_mean + y / 0.49) / prec, 1 / np.sqrt(prec)))
    shift = padded + log_post
    np.testing.assert_allclose(shift, np.where(k == 1, -np.log(pi[z]), 0.0), atol=2e-3)
    expected = -rho[0] * np.sum(pi * np.log(pi))
    assert abs(shift.mean() - expected) < 5 * shift.std() / np.sqrt(len(shift))
