"""Tests of amortlib.particles against exact sums and closed forms, at settings the chapter
does not use (another mixture, another observation, other logits and particle numbers)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from amortlib import GaussianUnknownMean, LinearGaussian, OpenUniverseMixture, networks
from amortlib import particles as pt

MODEL = pt.IntegratedMixture(probs=(0.3, 0.7), locs=(-1.0, 2.0), scales=(1.0, 0.5), sigma=1.0)
Y = 0.4
LOG_JOINT = MODEL.log_joint(Y)
LOGIT = 1.3


def _enumerated(log_joint, logit, k):
    """Moments by summing over all 2**k particle configurations, particle by particle."""
    a0, a1 = log_joint
    s = special.expit(logit)
    log_w = {0: a0 - np.log(1 - s), 1: a1 - np.log(s)}
    grads = {"wake-phi": [], "iwae": [], "vimco": []}
    probs, bounds = [], []
    for config in itertools.product((0, 1), repeat=k):
        z = np.array(config)
        lw = np.array([log_w[c] for c in config])
        prob = np.prod(np.where(z == 1, s, 1 - s))
        log_z = special.logsumexp(lw) - np.log(k)
        w_bar = np.exp(lw - special.logsumexp(lw))
        score = z - s  # d/d logit of log q(z_k)
        direct = np.sum(w_bar * score)  # minus d log Z / d logit, particles fixed
        grads["wake-phi"].append(-direct)
        grads["iwae"].append(direct - log_z * score.sum())
        if k >= 2:
            factors = []
            for i in range(k):
                others = np.delete(lw, i)
                replaced = np.append(others, others.mean())
                factors.append(log_z - (special.logsumexp(replaced) - np.log(k)))
            grads["vimco"].append(direct - np.sum(np.array(factors) * score))
        probs.append(prob)
        bounds.append(log_z)
    probs = np.array(probs)
    out = {"bound": probs @ np.array(bounds)}
    for name, g in grads.items():
        if g:
            g = np.array(g)
            mean = probs @ g
            out[name] = (mean, np.sqrt(probs @ (g - mean) ** 2))
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_binary_moments_match_enumeration_of_all_particle_configurations(k):
    m = pt.binary_moments(LOG_JOINT, LOGIT, k)
    ref = _enumerated(LOG_JOINT, LOGIT, k)
    assert np.isclose(m.iwae_bound, ref["bound"], rtol=1e-12)
    for name in ["wake-phi", "iwae"] + (["vimco"] if k >= 2 else []):
        assert np.isclose(m.mean[name], ref[name][0], rtol=1e-10, atol=1e-14), name
        assert np.isclose(m.stddev[name], ref[name][1], rtol=1e-10), name
    if k == 1:
        assert np.isnan(m.mean["vimco"])
        assert abs(m.mean["wake-phi"]) < 1e-15


def test_binary_moments_limits_and_large_k():
    p1 = special.expit(LOG_JOINT[1] - LOG_JOINT[0])
    m = pt.binary_moments(LOG_JOINT, LOGIT, 3000)
    assert np.isclose(m.log_evidence, np.logaddexp(*LOG_JOINT))
    assert 0 < m.log_evidence - m.iwae_bound < 1e-3
    assert np.isclose(m.pq_gradient, special.expit(LOGIT) - p1)
    assert abs(m.mean["wake-phi"] - m.pq_gradient) < 1e-3
    assert all(np.isfinite(v) for v in m.stddev.values())
    # q = the posterior: every weight equals p(y), the bound is exact at K = 1.
    exact = pt.binary_moments(LOG_JOINT, LOG_JOINT[1] - LOG_JOINT[0], 1)
    assert np.isclose(exact.iwae_bound, exact.log_evidence, rtol=1e-12)


def test_binary_moments_bad_input():
    with pytest.raises(ValueError, match="log_joint"):
        pt.binary_moments([0.0, 1.0, 2.0], 0.0, 2)
    with pytest.raises(ValueError, match="logit"):
        pt.binary_moments([0.0, 1.0], np.inf, 2)
    with pytest.raises(ValueError, match="num_particles"):
        pt.binary_moments([0.0, 1.0], 0.0, 0)


@pytest.mark.parametrize("k", [3, 7])
def test_losses_gradients_match_exact_moments(k):
    copies = 4000
    y = tf.fill([copies], np.float32(Y))
    m = pt.binary_moments(LOG_JOINT, LOGIT, k)
    for name, loss in [("wake-phi", pt.wake_phi_loss), ("iwae", pt.iwae_loss),
                       ("vimco", pt.vimco_loss)]:
        q_net = pt.ConstantCategorical(np.tile([0.0, LOGIT], (copies, 1)))
        with tf.GradientTape() as tape:
            value = loss(MODEL, q_net, None, y, seed=11, num_particles=k)
        g = copies * tape.gradient(value, q_net.logits)[:, 1].numpy()
        se = m.stddev[name] / np.sqrt(copies)
        assert abs(g.mean() - m.mean[name]) < 4 * se, name
        assert abs(g.std() / m.stddev[name] - 1) < 0.1, name


def test_value_of_each_loss_at_the_exact_posterior_is_minus_log_evidence(model):
    """q = the posterior: every weight is p(y), so -log Z-hat = -log p(y) for any K."""
    a, b, c = model.optimal_params()
    q_net = LinearGaussian(a, b, c)
    y = tf.constant([-1.0, 0.5, 2.0])
    expected = -np.mean(model.evidence().log_prob(y).numpy())
    for loss in [pt.iwae_loss, pt.vimco_loss, pt.rws_loss]:
        value = loss(model, q_net, None, y, seed=3, num_particles=5)
        assert np.isclose(float(value), expected, atol=1e-4)
    # The wake-phi loss is then -E_p[log p(x | y)], the posterior's entropy, estimated.
    entropy = 0.5 * np.log(2 * np.pi * np.e * c**2)
    value = pt.wake_phi_loss(model, q_net, None, tf.fill([2000], 0.3), seed=4, num_particles=5)
    assert np.isclose(float(value), entropy, atol=0.05)


def test_iwae_bound_increases_with_k_on_a_gaussian():
    model = GaussianUnknownMean(1.0, 2.0, 0.7)
    q_net = LinearGaussian(0.2, 0.0, 0.5)  # a poor q
    y = tf.fill([20000], 1.5)
    bounds = [-float(pt.iwae_loss(model, q_net, None, y, seed=k, num_particles=k))
              for k in (1, 4, 32)]
    log_py = float(model.evidence().log_prob(1.5))
    assert bounds[0] < bounds[1] < bounds[2] < log_py


def test_rws_gradients_are_wake_theta_and_wake_phi():
    model = pt.OpenUniverseTrainableMean(mean_1=1.0)
    q_net = networks.OpenUniverseNetwork((0.5, 0.5), hidden=(4,), seed=2)
    y = tf.constant([-4.0, 0.3, 2.0, 6.0])
    theta, phi = list(model.trainable_variables), list(q_net.trainable_variables)

    def grads(loss, variables):
        with tf.GradientTape() as tape:
            value = loss(model, q_net, None, y, seed=5, num_particles=4)
        return value, tape.gradient(value, variables)

    value, g_rws = grads(pt.rws_loss, theta + phi)
    iwae_value, g_iwae = grads(pt.iwae_loss, theta)
    _, g_wake = grads(pt.wake_phi_loss, phi)
    assert np.isclose(float(value), float(iwae_value), rtol=1e-6)
    assert np.isclose(float(g_rws[0]), float(g_iwae[0]), rtol=1e-5)  # wake-theta
    for a, b in zip(g_rws[1:], g_wake):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-7)
    _, g_wake_theta = grads(pt.wake_phi_loss, theta)
    assert g_wake_theta[0] is None  # no gradient reaches the model
    vimco_value, _ = grads(pt.vimco_loss, theta)
    assert np.isclose(float(vimco_value), float(iwae_value), rtol=1e-6)


def test_trainable_mean_model_matches_the_fixed_model():
    model = pt.OpenUniverseTrainableMean(mean_1=-0.7, locs=(-4.0, 3.0))
    fixed = OpenUniverseMixture(loc_single=-0.7, locs=(-4.0, 3.0))
    latents, y = fixed.sample(50, seed=1)
    assert np.allclose(model.log_prob(latents, y), fixed.log_prob(latents, y), atol=1e-5)
    model.mean_1.assign(0.25)
    current = model.at_current_value()
    assert current.loc_single == 0.25 and current.locs.tolist() == [-4.0, 3.0]
    with pytest.raises(TypeError, match="mean_1"):
        pt.OpenUniverseTrainableMean(loc_single=0.0)
    with pytest.raises(ValueError, match="mean_1"):
        pt.OpenUniverseTrainableMean(mean_1=np.nan)


def test_integrated_mixture_is_the_explicit_mixture_with_x_summed_out():
    y = np.array([-3.0, 0.4, 5.0])
    post = MODEL.posterior(y).probs_parameter().numpy()
    joint = MODEL.log_joint(y)
    assert np.allclose(post, special.softmax(joint, axis=-1), atol=1e-6)
    assert np.allclose(MODEL.evidence().log_prob(y), special.logsumexp(joint, axis=-1),
                       atol=1e-5)
    z, y_draw = MODEL.sample(5, seed=0)
    assert np.allclose(MODEL.log_prob(z, y_draw),
                       np.take_along_axis(MODEL.log_joint(y_draw.numpy()),
                                          z.numpy()[:, None], 1)[:, 0], atol=1e-5)


def test_bad_arguments_are_named():
    q_net = pt.ConstantCategorical([0.0, 0.0])
    y = tf.constant([0.0, 1.0])
    with pytest.raises(ValueError, match="num_particles"):
        pt.iwae_loss(MODEL, q_net, None, y, seed=0, num_particles=0)
    with pytest.raises(ValueError, match="num_particles"):
        pt.vimco_loss(MODEL, q_net, None, y, seed=0, num_particles=1)
    with pytest.raises(ValueError, match="seed"):
        pt.wake_phi_loss(MODEL, q_net, None, y, seed=None, num_particles=2)
    with pytest.raises(ValueError, match="observations"):
        pt.rws_loss(MODEL, q_net, None, [[0.0]], seed=0, num_particles=2)
    with pytest.raises(ValueError, match="logits"):
        pt.ConstantCategorical([[[0.0]]])


@pytest.mark.parametrize("logit", [-800.0, -60.0, 40.0, 800.0])
def test_binary_moments_finite_at_large_logits(logit):
    # expit rounds to 0 below -745 and to 1 above 36.7; log-sigmoids keep every term finite.
    m = pt.binary_moments(LOG_JOINT, logit, 5)
    assert all(np.isfinite(v) for v in (*m.mean.values(), *m.stddev.values(), m.iwae_bound))
    s = special.expit(logit)
    p1 = special.expit(LOG_JOINT[1] - LOG_JOINT[0])
    assert np.isclose(m.pq_gradient, s - p1, rtol=1e-12)
    # q puts all its mass on one value: every particle takes it, the weights are all equal,
    # w1 = 1 or 0 exactly, and log Z = log p(c, y) - log q(c) with log q(c) = 0 (to 1e-16).
    c = 1 if logit > 0 else 0
    assert np.isclose(m.iwae_bound, LOG_JOINT[c], atol=1e-12)
    assert np.isclose(m.mean["wake-phi"], s - c, atol=1e-12)
    assert m.stddev["wake-phi"] < 1e-12


def test_vimco_leave_one_out_is_stable_and_matches_the_direct_sum():
    # Log weights with a dominant particle, ties and a spread of 80 nats (float32 range).
    log_w = tf.constant([[3.0, -40.0, 0.0], [3.0, 40.0, 0.1], [-1.0, 0.0, 0.1],
                         [2.0, -39.0, -0.2]])
    got = pt._log_sum_exp_but_one(log_w).numpy()
    w = log_w.numpy().astype(np.float64)
    ref = np.array([[special.logsumexp(np.delete(w[:, b], k)) for b in range(3)]
                    for k in range(4)])
    assert np.allclose(got, ref, rtol=1e-6, atol=1e-5)


def test_trainable_mean_log_prob_is_the_joint_on_particles():
    model = pt.OpenUniverseTrainableMean(mean_1=0.6, k_probs=(0.3, 0.7), probs=(0.2, 0.8),
                                         locs=(-2.0, 1.5), scale=0.7, sigma=1.3)
    q_net = networks.OpenUniverseNetwork((0.2, 0.8), hidden=(4,), seed=3)
    y = tf.constant([-1.0, 0.5, 2.0])
    latents = q_net(y).sample(7, seed=(4, 5))
    direct = model.log_prob(latents, y)
    assert direct.shape == (7, 3)
    assert np.allclose(direct, model.joint.log_prob(dict(latents, y=y)), atol=1e-5)
