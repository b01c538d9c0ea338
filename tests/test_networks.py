import numpy as np
import pytest

from amortlib import LinearGaussian


def test_call_returns_the_stated_gaussian():
    q = LinearGaussian(a=0.3, b=-1.0, c=2.0)
    dist = q([0.0, 1.0, 10.0])
    np.testing.assert_allclose(dist.mean(), [-1.0, -0.7, 2.0], rtol=1e-6)
    np.testing.assert_allclose(dist.stddev(), [2.0, 2.0, 2.0], rtol=1e-6)
    assert q.params() == pytest.approx((0.3, -1.0, 2.0))
    assert len(q.trainable_variables) == 3


@pytest.mark.parametrize("kwargs, name",
                         [(dict(c=0.0), "c"), (dict(c=-1.0), "c"), (dict(a=np.nan), "a")])
def test_bad_initial_values(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must"):
        LinearGaussian(**kwargs)


@pytest.mark.parametrize("y, match", [(np.ones((2, 3)), "shape"), ([np.inf], "finite")])
def test_bad_observations(y, match):
    with pytest.raises(ValueError, match=match):
        LinearGaussian()(y)


def _draws(cls, logits, n, seed):
    from amortlib.networks import FiniteDiscrete
    if cls is FiniteDiscrete:
        return cls((1.0, 2.0), logits=logits).sample(n, seed=seed).numpy() - 1.0
    return cls(logits=logits).sample(n, seed=seed).numpy()


@pytest.mark.parametrize("name", ["Categorical", "FiniteDiscrete"])
def test_categorical_draws_independent_across_rows(name):
    # tfd.Categorical fails both checks: exact copies across rows, batch-mean variance x1.5.
    from amortlib import networks
    cls, logits = getattr(networks, name), np.zeros([500, 2], np.float32)
    # replicate (seed) x (row, draw), coded +-1
    x = np.stack([_draws(cls, logits, 8, (s, 1)).T.ravel() for s in range(300)]) * 2.0 - 1.0
    corr = x.T @ x / 300
    np.fill_diagonal(corr, 0.0)
    assert np.abs(corr).max() < 0.45  # independence: sd 0.058, max of 8e6 about 0.33
    ratio = x.mean(1).var(ddof=1) / (1.0 / 4000)  # Var(+-1) = 1
    assert abs(ratio - 1.0) < 3.5 * np.sqrt(2.0 / 299)


@pytest.mark.parametrize("name", ["Categorical", "FiniteDiscrete"])
def test_categorical_draw_frequencies(name):
    from amortlib import networks
    if name == "Categorical":
        logits = np.log([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]).astype(np.float32)
    else:
        logits = np.log([[0.1, 0.9], [0.6, 0.4]]).astype(np.float32)
    probs = np.exp(logits)
    n = 40_000
    d = _draws(getattr(networks, name), logits, n, (7, 8))
    for k in range(probs.shape[1]):
        freq = (d == k).mean(0)
        se = np.sqrt(probs[:, k] * (1 - probs[:, k]) / n)
        np.testing.assert_array_less(np.abs(freq - probs[:, k]), 5 * se)


def test_categorical_seeds_are_deterministic():
    from amortlib.networks import Categorical
    logits = np.zeros([50, 3], np.float32)
    a = Categorical(logits=logits).sample(4, seed=(1, 2)).numpy()
    b = Categorical(logits=logits).sample(4, seed=(1, 2)).numpy()
    c = Categorical(logits=logits).sample(4, seed=(1, 3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert a.dtype == np.int32 and a.shape == (4, 50)


def test_mlp_options_relu_he_zero_output():
    import tensorflow as tf

    from amortlib.networks import MLP

    glorot = MLP(3, (5,), 2, seed=4)
    he = MLP(3, (5,), 2, activation="relu", initialiser="he", zero_output=True, seed=4)
    # the same uniform draw, scaled: Glorot's range sqrt(6 / (3 + 5)), He's sqrt(6 / 3)
    np.testing.assert_allclose(he.weights[0].numpy() * np.sqrt(6 / 8) / np.sqrt(2.0),
                               glorot.weights[0].numpy(), rtol=1e-5)
    assert np.all(np.abs(he.weights[0].numpy()) <= np.sqrt(2.0))
    np.testing.assert_array_equal(he.weights[1].numpy(), 0.0)
    assert not np.all(glorot.weights[1].numpy() == 0.0)
    # zero output layer: the network starts as its output bias, whatever the input
    np.testing.assert_array_equal(he(tf.random.normal([4, 3])).numpy(), 0.0)
    # ReLU hidden layer against a NumPy forward pass
    he.weights[1].assign(np.ones([5, 2], np.float32))
    u = np.array([[0.3, -1.0, 2.0]], np.float32)
    hidden = np.maximum(u @ he.weights[0].numpy(), 0.0)
    np.testing.assert_allclose(he(u).numpy(), hidden @ np.ones([5, 2]), rtol=1e-5)


def _first_weights(q_net):
    """The first-layer weights of each MLP of a Part I network, in construction order."""
    from amortlib.networks import MLP

    return [m.weights[0].numpy() for m in vars(q_net).values() if isinstance(m, MLP)]


def test_sub_seeds_are_split_distinct_deterministic_and_never_overflow():
    from amortlib.networks import _sub_seeds

    for seed in (0, 7, 2**31 - 1):  # the largest valid seed: nothing is added to it
        seeds = np.array([s.numpy() for s in _sub_seeds(seed, 5)])
        assert seeds.shape == (5, 2)
        assert len({tuple(s) for s in seeds}) == 5
        again = np.array([s.numpy() for s in _sub_seeds(seed, 5)])
        np.testing.assert_array_equal(seeds, again)
    # A stateless seed tensor is accepted and split the same way as the integer it encodes.
    import tensorflow as tf
    np.testing.assert_array_equal(_sub_seeds(tf.constant([0, 7]), 2)[1].numpy(),
                                  _sub_seeds(7, 2)[1].numpy())


@pytest.mark.parametrize("seed, shown", [(2**31, "2147483648"), (-1, "-1"), (None, "None"),
                                         (1.5, "1.5"), ("3", "'3'")])
@pytest.mark.parametrize("name", ["MLPGaussian", "CategoricalGaussian", "OpenUniverseNetwork"])
def test_bad_network_seed_names_the_value_passed(name, seed, shown):
    from amortlib import networks

    with pytest.raises(ValueError, match=rf"seed .*{shown}"):
        getattr(networks, name)(hidden=(4,), seed=seed)


@pytest.mark.parametrize("name, count", [("MLPGaussian", 2), ("CategoricalGaussian", 3),
                                         ("OpenUniverseNetwork", 5)])
def test_network_mlps_start_from_different_weights(name, count):
    from amortlib import networks

    for seed in (0, 2**31 - 1):
        q_net = getattr(networks, name)(hidden=(6,), seed=seed)
        first = _first_weights(q_net)
        assert len(first) == count
        # Same-shaped layers of different MLPs differ, entry by entry.
        for i in range(count):
            for j in range(i):
                if first[i].shape == first[j].shape:
                    assert np.all(first[i] != first[j])
        # Deterministic in the seed, different across seeds.
        same = _first_weights(getattr(networks, name)(hidden=(6,), seed=seed))
        for a, b in zip(first, same):
            np.testing.assert_array_equal(a, b)
    other = _first_weights(getattr(networks, name)(hidden=(6,), seed=1))
    assert not np.array_equal(other[0], _first_weights(getattr(networks, name)(
        hidden=(6,), seed=0))[0])
