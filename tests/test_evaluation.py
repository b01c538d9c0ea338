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


@pytest.mark.parametrize("num_points", [2, 100, 0, 3.0])
def test_quadrature_rejects_bad_grid(num_points):
    mix = tfd.MixtureSameFamily(tfd.Categorical(logits=[0.0]), tfd.Normal([0.0], [1.0]))
    with pytest.raises(ValueError, match="num_points"):
        kl_divergence(mix, mix, num_points=num_points)


def one_component(loc, scale):
    """A one-component mixture: no KL is registered for it, so `kl_divergence` uses quadrature."""
    return tfd.MixtureSameFamily(tfd.Categorical(logits=[[0.0]] * len(loc)),
                                 tfd.Normal([[v] for v in loc], [[v] for v in scale]))


@pytest.mark.parametrize("scale", [1e-2, 1e-3])
def test_automatic_grid_resolves_a_narrow_q(scale):
    """A q 1,000 times narrower than p: the grid's step follows q, and both KLs are exact."""
    p, q = one_component([0.0, 2.0], [10.0, 1.0]), one_component([0.3, 2.5], [scale, scale])
    forward = gaussian_kl(np.array([0.0, 2.0]), np.array([10.0, 1.0]), np.array([0.3, 2.5]), scale)
    reverse = gaussian_kl(np.array([0.3, 2.5]), scale, np.array([0.0, 2.0]), np.array([10.0, 1.0]))
    np.testing.assert_allclose(kl_divergence(p, q), forward, rtol=1e-5)
    np.testing.assert_allclose(kl_divergence(q, p), reverse, rtol=1e-5)
    # A fixed grid of 4,001 points steps over q: the reason the grid is chosen per call.
    assert abs(kl_divergence(q, p, num_points=4001)[0] / reverse[0] - 1) > 0.5


def test_automatic_grid_matches_a_fine_fixed_grid():
    """On a bimodal posterior (the book's mixture), as accurate as 40,001 points."""
    p = tfd.MixtureSameFamily(tfd.Categorical(logits=[[0.0, 0.0], [0.0, -3.0]]),
                              tfd.Normal([[-5.0, 5.0], [-5.0, 5.0]], [[1.0, 1.0], [0.5, 2.0]]))
    for q in [tfd.Normal([0.0, 1.0], [5.0, 3.0]), tfd.Normal([5.0, -5.0], [1.0, 0.5])]:
        for a, b in [(p, q), (q, p)]:
            np.testing.assert_allclose(kl_divergence(a, b),
                                       kl_divergence(a, b, num_points=40001), rtol=2e-6)


def test_automatic_grid_refines_until_simpson_agrees(monkeypatch):
    """Started too coarse, the grid doubles until the error estimate is within tolerance."""
    from amortlib import evaluation

    p, q = one_component([0.0], [1.0]), one_component([1.0], [2.0])
    sizes = []
    integrate = evaluation._integrate

    def recording(*args):
        sizes.append(args[4])
        return integrate(*args)

    monkeypatch.setattr(evaluation, "_automatic_size", lambda *args: 9)
    monkeypatch.setattr(evaluation, "_integrate", recording)
    np.testing.assert_allclose(kl_divergence(p, q), gaussian_kl(0.0, 1.0, 1.0, 2.0), rtol=1e-5)
    assert len(sizes) > 1 and all(b == 2 * a - 1 for a, b in zip(sizes, sizes[1:]))


def test_chunked_grid_gives_the_same_kl(monkeypatch):
    from amortlib import evaluation

    p, q = one_component([0.0, 3.0], [1.0, 0.5]), one_component([1.0, -2.0], [2.0, 3.0])
    whole = kl_divergence(p, q)
    monkeypatch.setattr(evaluation, "_CHUNK", 1000)
    np.testing.assert_allclose(kl_divergence(p, q), whole, rtol=1e-12)


def test_automatic_grid_refuses_scales_too_different():
    p, q = one_component([0.0], [100.0]), one_component([0.0], [1e-4])
    with pytest.raises(ValueError, match="num_points"):
        kl_divergence(q, p)


def test_automatic_grid_covers_a_light_far_component():
    """A component of weight 0.001 at 1000 lies far outside 12 sd of the mixture's mean."""
    p = tfd.MixtureSameFamily(tfd.Categorical(probs=np.array([0.999, 0.001])),
                              tfd.Normal(np.array([0.0, 1000.0]), np.array([1.0, 1.0])))
    q = tfd.MixtureSameFamily(tfd.Categorical(probs=np.array([1.0])),
                              tfd.Normal(np.array([0.0]), np.array([1.0])))
    # KL(p || N(0, 1)) = 0.999 log 0.999 + 0.001 (log 0.001 + 1000^2 / 2), up to e^-250000.
    # In float64: in float32, log q near -5e5 alone is rounded by about 0.03.
    exact = 0.999 * np.log(0.999) + 0.001 * (np.log(0.001) + 1000.0**2 / 2)
    assert float(kl_divergence(p, q)) == pytest.approx(exact, rel=1e-6)


def test_automatic_grid_sees_the_components_of_a_mixture():
    """tfd.Mixture's narrow component sets the step, as MixtureSameFamily's do."""
    p = tfd.Mixture(tfd.Categorical(probs=[0.99, 0.01]),
                    [tfd.Normal(0.0, 1.0), tfd.Normal(3.0, 1e-4)])
    # Up to the narrow component's overlap with the wide one (density ratio 1e-2 e^-4.5 / 1e4),
    # KL = 0.99 log 0.99 + 0.01 (log 0.01 - H(N(3, 1e-8)) + log(2 pi)/2 + 9/2 + 1e-8/2).
    narrow = 0.5 * np.log(2 * np.pi * np.e * 1e-8)
    exact = (0.99 * np.log(0.99)
             + 0.01 * (np.log(0.01) - narrow + 0.5 * np.log(2 * np.pi) + 4.5 + 0.5e-8))
    assert float(kl_divergence(p, one_component([0.0], [1.0]))) == pytest.approx(exact, rel=1e-3)


@pytest.mark.parametrize("df", [3.0, 5.0])
def test_automatic_grid_refuses_heavy_tails(df):
    """12 sd of a Student t miss more of its mass than the quadrature may drop."""
    with pytest.raises(ValueError, match="mass"):
        kl_divergence(tfd.StudentT(df, 0.0, 1.0), one_component([0.0], [1.0]))
