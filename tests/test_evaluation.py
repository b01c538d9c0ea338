import numpy as np
import pytest
import tensorflow_probability as tfp

from amortlib import LinearGaussian, forward_kl, kl_divergence, reverse_kl

tfd = tfp.distributions


def gaussian_kl(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) by the textbook formula."""
    return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_kl_of_the_posterior_with_itself_is_zero(model):
    a, b, c = model.optimal_params()
    y = [-3.0, 0.0, 2.5]
    np.testing.assert_allclose(forward_kl(model, LinearGaussian(a, b, c), y), 0.0, atol=1e-6)
    np.testing.assert_allclose(reverse_kl(model, LinearGaussian(a, b, c), y), 0.0, atol=1e-6)


def test_kls_match_the_gaussian_formula(model):
    a, b, c = model.optimal_params()
    net = LinearGaussian(a=0.2, b=1.0, c=1.7)
    y = np.array([-3.0, 0.0, 2.5])
    m_p, m_q = a * y + b, 0.2 * y + 1.0
    np.testing.assert_allclose(forward_kl(model, net, y), gaussian_kl(m_p, c, m_q, 1.7), rtol=1e-4)
    np.testing.assert_allclose(reverse_kl(model, net, y), gaussian_kl(m_q, 1.7, m_p, c), rtol=1e-4)


def test_quadrature_matches_closed_form():
    """A distribution with no registered KL (a one-component mixture) forces quadrature."""

    def as_mixture(loc, scale):
        return tfd.MixtureSameFamily(tfd.Categorical(logits=[[0.0]] * len(loc)),
                                     tfd.Normal([[v] for v in loc], [[v] for v in scale]))

    p, q = as_mixture([0.0, 3.0], [1.0, 0.5]), as_mixture([1.0, -2.0], [2.0, 3.0])
    expected = gaussian_kl(np.array([0.0, 3.0]), np.array([1.0, 0.5]),
                           np.array([1.0, -2.0]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(kl_divergence(p, q), expected, rtol=1e-4)


@pytest.mark.parametrize("num_points", [2, 100, 0])
def test_quadrature_rejects_bad_grid(num_points):
    mix = tfd.MixtureSameFamily(tfd.Categorical(logits=[0.0]), tfd.Normal([0.0], [1.0]))
    with pytest.raises(ValueError, match="num_points"):
        kl_divergence(mix, mix, num_points=num_points)
