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
