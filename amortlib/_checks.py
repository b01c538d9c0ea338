"""Argument checks at the library's boundary.

Every public function validates what a reader passes in and raises a `ValueError` that names the
argument, so that a mistake never surfaces as an opaque error deep inside TensorFlow.
Checks on tensor *values* (finiteness) run only eagerly: inside a compiled training step the
data come from the model and are trusted.
"""

from __future__ import annotations

import collections
import hashlib
import math
import numbers

import numpy as np
import tensorflow as tf

DTYPE = tf.float32


def finite_scalar(name: str, value) -> float:
    """Return `value` as a Python float, or raise if it is not a finite real number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def positive_scalar(name: str, value) -> float:
    """Return `value` as a Python float, or raise if it is not finite and > 0."""
    number = finite_scalar(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be positive, got {number}")
    return number


def positive_int(name: str, value) -> int:
    """Return `value` as an int, or raise if it is not a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def seed(value, name: str = "seed"):
    """Turn an integer seed into a stateless seed (a shape-[2] int32 tensor); refuse None.

    The library's one seed policy: every public function that draws random numbers takes
    ``seed``, an integer in $[0, 2^{31})$ or a stateless seed tensor (from
    `tfp.random.split_seed` or `tf.random.experimental.stateless_fold_in`), and gives the same
    draws for the same seed. ``None`` is refused with a `ValueError` naming the argument, as
    the training loop refuses it: a draw from global random state (TensorFlow's or NumPy's)
    would make a chapter's numbers depend on what ran before it. Sub-seeds come from the seed
    by `tfp.random.split_seed` or `stateless_fold_in`, never by adding to the integer (which
    overflows past $2^{31}$ and can collide with another seed); the MLPs inside the networks of
    `amortlib.networks` and the head of `amortlib.sets.DeepSets` get theirs by ``split_seed``.

    TFP treats a plain integer seed as the seed of a *stateful* generator, whose draws depend on
    how many random ops ran before; a stateless seed makes every call reproducible.

    Raises:
        ValueError: for None, a non-integer or an integer outside $[0, 2^{31})$.
    """
    if value is None:
        raise ValueError(f"{name} must be an integer or a stateless seed tensor, got None "
                         "(every random draw in amortlib takes an explicit seed)")
    if isinstance(value, tf.Tensor | tf.Variable):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        raise ValueError(
            f"{name} must be an integer or a stateless seed tensor; got {value!r}")
    if not 0 <= value < 2**31:
        raise ValueError(f"{name} must be in [0, 2**31), got {value}")
    return tf.constant([0, int(value)], dtype=tf.int32)


def one_of(name: str, value, choices) -> str:
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def _real_tensor(name: str, value) -> tf.Tensor:
    """``value`` as a tensor of real numbers (floating or integer), or a `ValueError`."""
    if not isinstance(value, tf.Tensor | tf.Variable) and np.iscomplexobj(value):
        raise ValueError(f"{name} must be real numbers, got complex {value!r:.80}")
    try:
        tensor = tf.convert_to_tensor(value, dtype_hint=DTYPE)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r:.80}") from None
    if not (tensor.dtype.is_floating or tensor.dtype.is_integer):
        raise ValueError(f"{name} must be numeric, got a tensor of {tensor.dtype.name}")
    return tensor


def observations(y, name: str = "y") -> tf.Tensor:
    """Convert scalar observations to a float tensor of shape [] or [batch_size].

    Raises:
        ValueError: if `y` is not numeric, has more than one dimension, or (when run eagerly)
            holds a NaN or an infinity.
    """
    y = _real_tensor(name, y)
    if y.dtype != DTYPE:
        y = tf.cast(y, DTYPE)
    if y.shape.rank is not None and y.shape.rank > 1:
        raise ValueError(
            f"{name} must be a scalar or a 1-D batch of scalar observations, "
            f"got shape {tuple(y.shape)}"
        )
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(y))):
        raise ValueError(f"{name} must be finite, got {y.numpy()}")
    return y


def probability_vector(name: str, value, *, atol: float = 1e-6) -> np.ndarray:
    """Return `value` as a 1-D float64 array of probabilities, or raise.

    Raises:
        ValueError: unless `value` is a non-empty 1-D sequence of finite, non-negative numbers
            that sum to one (within `atol`).
    """
    probs = real_vector(name, value)
    if np.any(probs < 0):
        raise ValueError(f"{name} must be non-negative, got {probs.tolist()}")
    if abs(probs.sum() - 1.0) > atol:
        raise ValueError(f"{name} must sum to one, got sum {probs.sum():.6g}")
    return probs


def real_vector(name: str, value, *, size: int | None = None, positive: bool = False) -> np.ndarray:
    """Return `value` as a 1-D float64 array of finite numbers (> 0 if `positive`), or raise.

    Args:
        name: the argument's name, for the error message.
        value: a sequence of numbers.
        size: the required length (for example the number of mixture components), or None.
        positive: require every entry to be > 0 (scales).
    """
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}") from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {values.shape}")
    if size is not None and values.size != size:
        raise ValueError(
            f"{name} must have one entry per component ({size}), got {values.size}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    if positive and np.any(values <= 0):
        raise ValueError(f"{name} must be positive, got {values.tolist()}")
    return values


def integer_seed(value, name: str = "seed"):
    """Like `seed`, but require a Python or NumPy integer (for functions documented to take one)."""
    if value is None or isinstance(value, tf.Tensor | tf.Variable):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return seed(value, name)


def trainable_list(variables, name: str = "variables") -> list:
    """Return ``variables`` as a list of trainable `tf.Variable`, or raise.

    Raises:
        TypeError: if ``variables`` is not a sequence, or an entry is not a `tf.Variable` (a
            tensor or a number cannot be trained) or is not trainable.
        ValueError: if it is empty.
    """
    if isinstance(variables, tf.Variable):
        variables = [variables]
    try:
        variables = list(variables)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of tf.Variable, got "
                        f"{type(variables).__name__}") from None
    if not variables:
        raise ValueError(f"{name} must not be empty")
    for i, v in enumerate(variables):
        if not isinstance(v, tf.Variable):
            raise TypeError(f"{name}[{i}] must be a tf.Variable (a {type(v).__name__} cannot be "
                            "trained)")
        if not v.trainable:
            raise TypeError(f"{name}[{i}] ({v.name}) is not trainable")
    return variables


def boolean(name: str, value) -> bool:
    """Return ``value`` if it is a bool, or raise a `TypeError` naming the argument."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def callable_(name: str, value):
    """Return ``value`` if it is callable, or raise a `TypeError` naming the argument."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")
    return value


def data_rows(name: str, value) -> tf.Tensor:
    """A non-empty float tensor whose first axis indexes data points; finite and real.

    Raises:
        ValueError: if ``value`` is not real numbers (complex numbers are refused, not cut to
            their real part), is a scalar or empty, or holds a NaN or an infinity.
    """
    if isinstance(value, tf.Tensor):
        dtype = value.dtype
    else:
        try:
            dtype = tf.as_dtype(np.asarray(value).dtype)
        except TypeError:
            dtype = None
    if dtype is None or not (dtype.is_floating or dtype.is_integer or dtype == tf.bool):
        raise ValueError(f"{name} must be real numbers, got {value!r:.80}")
    try:
        value = tf.cast(tf.convert_to_tensor(value), DTYPE)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be real numbers, got {value!r:.80}") from None
    if value.shape.rank == 0 or value.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one data point, got shape "
                         f"{tuple(value.shape)}")
    if not bool(tf.reduce_all(tf.math.is_finite(value))):
        raise ValueError(f"{name} must be finite (it holds a NaN or an infinity)")
    return value


def finite_values(name: str, value):
    """Return ``value`` unchanged; refuse complex numbers and, when run eagerly, a NaN or an
    infinity (any shape)."""
    if not isinstance(value, tf.Tensor | tf.Variable) and np.iscomplexobj(value):
        raise ValueError(f"{name} must be real, got complex {value!r:.80}")
    tensor = tf.convert_to_tensor(value, dtype_hint=DTYPE)
    if tensor.dtype.is_complex:
        raise ValueError(f"{name} must be real, got a tensor of {tensor.dtype.name}")
    if (tf.executing_eagerly() and tensor.dtype.is_floating
            and not bool(tf.reduce_all(tf.math.is_finite(tensor)))):
        raise ValueError(f"{name} must be finite (it holds a NaN or an infinity)")
    return value


def model_and_network(model, q_net, q) -> None:
    """Refuse an inference network whose distribution ``q`` does not fit ``model``.

    Compares the latent names (a joint ``q`` must have exactly the model's latents; a single
    distribution needs a model with one latent) and, where both define it, the number of
    mixture components.

    Raises:
        ValueError: naming both the model and the network.
    """
    model_k, net_k = getattr(model, "num_components", None), getattr(q_net, "num_components", None)
    if model_k is not None and net_k is not None and model_k != net_k:
        raise ValueError(f"q_net ({type(q_net).__name__}) has {net_k} components but model "
                         f"({type(model).__name__}) has {model_k}")
    names = getattr(model, "latent_names", None)
    if names is None:
        return
    q_model = getattr(q, "model", None)
    q_names = tuple(q_model) if isinstance(q_model, dict) else None
    if (q_names is None and len(names) != 1) or (
            q_names is not None and sorted(q_names) != sorted(names)):
        raise ValueError(
            f"q_net ({type(q_net).__name__}) gives a distribution over "
            f"{list(q_names) if q_names else 'one latent'} but model ({type(model).__name__}) "
            f"has the latents {list(names)}")


_SHAPES = {1: "[N]", 2: "[N, D]"}


def data(value, name: str = "x", *, ranks: tuple[int, ...] = (1, 2), min_points: int = 1,
         numpy: bool = False):
    """Data of Part II's models: real, finite, of rank in ``ranks``, with enough data points.

    The first axis indexes the data points $x_1, \\dots, x_N$. The TensorFlow models and the
    variational families take a float32 tensor; the exact NumPy algebra (``numpy=True``) takes a
    float64 array, converted directly so that no float32 rounding enters exact computations.

    Args:
        value: the data.
        name: the argument's name, for the error message.
        ranks: the allowed numbers of axes (1: ``[N]``, 2: ``[N, D]``).
        min_points: the least $N$.
        numpy: return a float64 NumPy array instead of a float32 tensor.

    Raises:
        ValueError: if ``value`` is not real numbers (complex numbers are refused, not cut to
            their real part), has another rank or fewer than ``min_points`` points, or (when
            run eagerly) holds a NaN or an infinity.
    """
    tensor = _real_tensor(name, value)
    if tensor.shape.rank not in ranks or tensor.shape[0] < min_points:
        shapes = " or ".join(_SHAPES[r] for r in ranks)
        raise ValueError(f"{name} must have shape {shapes} with N >= {min_points}, got "
                         f"{tuple(tensor.shape)}")
    if numpy:
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite (it holds a NaN or an infinity)")
        return array
    tensor = tf.cast(tensor, DTYPE)
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(tensor))):
        raise ValueError(f"{name} must be finite (it holds a NaN or an infinity)")
    return tensor


#: Cholesky factors of the last few precision matrices that passed `precision`, by content
#: (a digest of shape and bytes): checking the same matrix again, as a chapter does once per
#: function it passes the matrix to, costs a hash instead of a factorization. A pure memo: the
#: results are the same with or without it.
_FACTORS: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()
_MAX_FACTORS = 4


def precision(value, name: str = "precision") -> np.ndarray:
    """A precision matrix as a float64 array: square, finite, symmetric, positive definite.

    Raises:
        ValueError: naming the argument, for each of these properties that fails (an indefinite
            precision has no Gaussian and no optimum: the ELBO is unbounded above along an
            eigenvector with eigenvalue <= 0).
    """
    return precision_and_factor(value, name)[0]


def precision_and_factor(value, name: str = "precision") -> tuple[np.ndarray, np.ndarray]:
    """`precision`'s checks; returns the matrix and its lower Cholesky factor $L$ ($L L^T$)."""
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a matrix of real numbers, got {value!r:.80}") from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be finite (it holds a NaN or an infinity)")
    key = hashlib.blake2b(np.ascontiguousarray(matrix).tobytes(), digest_size=20,
                          person=str(matrix.shape).encode()[:16]).digest()
    if key in _FACTORS:
        _FACTORS.move_to_end(key)
        return matrix, _FACTORS[key].view()  # a view of a read-only array stays read-only
    # np.allclose(matrix, matrix.T) for finite values, without its checks for infinities
    if not np.all(np.abs(matrix - matrix.T) <= 1e-8 + 1e-5 * np.abs(matrix.T)):
        raise ValueError(f"{name} must be symmetric")
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be positive definite: otherwise there is no Gaussian posterior and no "
            "optimum (the ELBO is unbounded above along an eigenvector with eigenvalue <= 0)"
        ) from None
    factor.flags.writeable = False
    _FACTORS[key] = factor
    while len(_FACTORS) > _MAX_FACTORS:
        _FACTORS.popitem(last=False)
    return matrix, factor.view()
