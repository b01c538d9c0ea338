"""One training loop for every chapter: `minimize` a stochastic loss, or `fit` a network.

`minimize` is the compiled loop for any stochastic scalar loss; `fit` is `minimize` with the loss
of an inference network written for you (a named loss of `amortlib.losses` or any callable with
the losses' signature).

The loop is compiled with `tf.function` and runs many steps per call inside the graph, so a step
costs tens of microseconds rather than the milliseconds of an eager Python loop. Every step calls
the loss with a stateless seed folded from ``seed`` and the step number, so a run is
reproducible: the same arguments give the same history.

The loop never lies about a step. Before it applies a step it checks that the loss and every
gradient are finite and that the loss has not grown to many orders of magnitude above its start
(divergence to huge finite values); after it, that every traced value is finite. On any failure it
stops with a `FloatingPointError` that names the step and says which values the variables hold.

Re-running the same problem does not retrace: the compiled loop is cached for the same loss
function, variables, trace function and optimiser (the seed, the learning rate and the number of
steps are inputs of the compiled loop, not constants in it). `fit` keeps its loss function for
the same model, network, loss, options and data object, so ``fit(model, q_net, ...)`` with
another ``seed`` (after re-initialising ``q_net``'s variables in place, for example) reuses the
compiled loop. A cached loop holds the Python values it read when it was traced: if you change a
model's or a loss's Python attributes in place, build a new object instead.
"""

from __future__ import annotations

import collections
import inspect
import math
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

# The plain text bar, not tqdm.auto: the auto bar needs ipywidgets in Jupyter and, without it,
# warns "IProgress not found" before falling back to this one. The text bar works in every
# front end (terminal, Jupyter, Colab) and is the same bar that the tests run.
from tqdm.std import tqdm

from amortlib import _checks
from amortlib.history import History
from amortlib.losses import LOSSES
from amortlib.optimizers import Adam

__all__ = ["fit", "minimize"]

#: The default of ``divergence_factor``: a loss more than this many times larger in magnitude
#: than at step 0 (or than 1, if that is larger) stops the run.
DIVERGENCE_FACTOR = 1e6

# Status codes of a step, as the compiled loop reports them.
_OK, _LOSS, _GRADIENT, _DIVERGED, _TRACE = 0, 1, 2, 3, 4


def _all_finite(tensors) -> tf.Tensor:
    """True if every entry of every tensor (gradients may be `tf.IndexedSlices`) is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(t.values if isinstance(t, tf.IndexedSlices) else t))
              for t in tensors if t is not None]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


class _Runner:
    """The compiled loop of one (loss_fn, variables, trace_fn, optimiser), reusable across runs."""

    def __init__(self, loss_fn, variables, trace_fn, optimizer, name):
        self.keep = (loss_fn, variables, trace_fn, optimizer)  # the cache key's ids stay valid
        self.optimizer = optimizer
        optimizer.build(variables)
        self.trace_names = list(trace_fn()) if trace_fn is not None else []
        self.start_loss = tf.Variable(0.0, trainable=False)
        self.factor = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
        trace_names = self.trace_names

        def evaluate(step_seed):
            with tf.GradientTape() as tape:
                value = tf.cast(loss_fn(step_seed), tf.float32)
            if value.shape.rank != 0:
                raise ValueError(f"loss_fn must return a scalar, got shape {value.shape}")
            gradients = tape.gradient(value, variables)
            if all(g is None for g in gradients):
                raise ValueError(f"the {name} does not depend on any of the variables "
                                 "(no gradient reaches them)")
            return value, gradients

        def status_of(step, value, gradients):
            self.start_loss.assign(tf.where(tf.equal(step, 0), tf.abs(value), self.start_loss))
            limit = self.factor * tf.maximum(self.start_loss, 1.0)
            return tf.where(
                ~tf.math.is_finite(value), _LOSS,
                tf.where(~_all_finite(gradients), _GRADIENT,
                         tf.where(tf.abs(value) > limit, _DIVERGED, _OK)))

        masked = callable(getattr(optimizer, "apply_masked", None))

        def update(step, gradients, ok):
            # Apply the step only if it passed its checks. An optimiser with ``apply_masked``
            # (the default Adam) does it without a branch in the graph: a cheaper trace and
            # graph set-up. Any other optimiser's ``apply`` runs inside a `tf.cond`.
            if masked:
                optimizer.apply_masked(step, gradients, ok)
                return
            def apply():
                optimizer.apply(step, gradients)
                return tf.constant(True)
            tf.cond(ok, apply, lambda: tf.constant(False))

        def traced_values():
            traced = trace_fn()
            if sorted(traced) != sorted(trace_names):
                raise ValueError(f"trace_fn must return the same names at every step, "
                                 f"{trace_names}; got {list(traced)}")
            values = [tf.cast(tf.convert_to_tensor(traced[n]), tf.float32) for n in trace_names]
            for n, v in zip(trace_names, values):
                if not v.shape.is_fully_defined():
                    raise ValueError(f"trace_fn's value {n!r} must have a fixed shape, got "
                                     f"{v.shape}")
            return values, _all_finite(values)

        spec = [tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32)]

        # The loop is a plain `tf.while_loop` (no autograph, no branch in its body): tracing and
        # the graph set-up of the first call cost less than autograph's version with `break`.
        # A step that fails its checks is recorded, leaves the variables unchanged and ends the
        # loop through its condition.
        @tf.function(input_signature=spec, autograph=False)
        def run_steps(base_seed, start, count):
            losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
            traces = [tf.TensorArray(tf.float32, size=0, dynamic_size=True) for _ in trace_names]

            def body(i, status, losses, *traces):
                step = start + i
                step_seed = tf.random.experimental.stateless_fold_in(base_seed, step)
                value, gradients = evaluate(step_seed)
                losses = losses.write(i, value)
                status = status_of(step, value, gradients)
                ok = tf.equal(status, _OK)
                update(step, gradients, ok)
                if trace_names:
                    values, finite = traced_values()
                    traces = [t.write(i, v) for t, v in zip(traces, values)]
                    status = tf.where(ok & ~finite, _TRACE, status)
                return (i + 1, status, losses, *traces)

            def condition(i, status, *_):
                return (i < count) & tf.equal(status, _OK)

            _, status, losses, *traces = tf.while_loop(
                condition, body, (tf.constant(0), tf.constant(_OK), losses, *traces))
            return losses.stack(), [t.stack() for t in traces], status

        self.run_steps = run_steps
        self.traced = False

    def trace(self) -> float:
        """Trace the compiled loop once; return the seconds it took (zero if already traced)."""
        if self.traced:
            return 0.0
        begin = time.perf_counter()
        self.run_steps.get_concrete_function()
        self.traced = True
        return time.perf_counter() - begin


_RUNNERS: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 16


def _cached(cache, key, make):
    """LRU lookup: the entry for ``key``, made by ``make()`` if absent."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = make()
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def minimize(
    loss_fn: Callable[[tf.Tensor], tf.Tensor],
    variables,
    *,
    num_steps: int,
    learning_rate: float | None = None,
    anneal: bool = True,
    optimizer=None,
    trace_fn: Callable[[], dict] | None = None,
    seed: int = 0,
    progress: bool = True,
    name: str = "loss",
    divergence_factor: float | None = DIVERGENCE_FACTOR,
) -> History:
    r"""Minimise a stochastic scalar ``loss_fn(seed)`` over ``variables``, compiled.

    The general loop under `fit`: use it directly when the loss is not an inference network's,
    for example the exact ELBO of a fixed data set. Step $t$ calls ``loss_fn`` with a stateless
    seed folded from ``seed`` and $t$, so a run is reproducible.

    Before each update the loop checks the loss and the gradients: if the loss or any gradient
    is NaN or infinite, or the loss's magnitude exceeds ``divergence_factor`` times
    $\max(|L_0|, 1)$ with $L_0$ the loss at step 0, it stops with a `FloatingPointError` and the
    variables keep the values they had before that step. After each update it checks that every
    value of ``trace_fn`` is finite.

    Calling `minimize` again with the same ``loss_fn``, ``variables`` and ``trace_fn`` objects
    (and the same optimiser object, or the default optimiser with the same ``anneal``) reuses the
    compiled loop: another ``seed``, ``num_steps`` or ``learning_rate`` does not retrace.

    Args:
        loss_fn: ``loss_fn(step_seed) -> scalar tensor``, traceable by `tf.function`.
        variables: the trainable `tf.Variable`\ s to train (a non-empty sequence).
        num_steps: number of optimisation steps.
        learning_rate: Adam's (initial) learning rate, > 0, for the default optimiser; leave it
            None when passing ``optimizer``.
        anneal: for the default optimiser, a cosine decay of the rate to 1% at the last step
            (True) or a constant rate (False).
        optimizer: an optimiser with ``build``, ``reset`` and ``apply`` (see
            `amortlib.optimizers.Adam`); default ``Adam(learning_rate, anneal=anneal)``.
        trace_fn: optional ``trace_fn() -> {name: tensor}``, recorded after every step (a
            scalar, or a tensor of fixed shape, e.g. one value per observation).
        seed: an integer seed.
        progress: show a progress bar.
        name: what the progress bar and error messages call the loss.
        divergence_factor: how many times its start (or 1) the loss's magnitude may grow before
            the run counts as diverged; None turns the check off.

    Returns:
        A `amortlib.history.History`.

    Raises:
        ValueError: for a non-positive size or learning rate, no variables, both or neither of
            ``learning_rate`` and ``optimizer``, or a loss that reaches none of the variables.
        TypeError: if ``variables`` holds something that is not a trainable `tf.Variable`, or
            ``loss_fn`` or ``trace_fn`` is not callable.
        FloatingPointError: if the loss or a gradient becomes NaN or infinite or the loss
            diverges (the variables keep their values from before that step), or a traced value
            becomes NaN or infinite (the variables hold their values after that step); the
            message names the step.
    """
    num_steps = _checks.positive_int("num_steps", num_steps)
    base_seed = _checks.integer_seed(seed)
    variables = _checks.trainable_list(variables)
    _checks.callable_("loss_fn", loss_fn)
    if trace_fn is not None:
        _checks.callable_("trace_fn", trace_fn)
    progress = _checks.boolean("progress", progress)
    if divergence_factor is not None:
        divergence_factor = _checks.positive_scalar("divergence_factor", divergence_factor)
        if divergence_factor <= 1:
            raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    if optimizer is None:
        if learning_rate is None:
            raise ValueError("learning_rate is required with the default optimizer")
        default = Adam(learning_rate, anneal=anneal)
        optimizer_key = ("Adam", default.anneal)
    else:
        if learning_rate is not None:
            raise ValueError("pass learning_rate to the optimizer, not to minimize, when you "
                             "pass an optimizer")
        for method in ("build", "reset", "apply"):
            if not callable(getattr(optimizer, method, None)):
                raise TypeError(f"optimizer must have a {method}() method (see Adam), got "
                                f"{type(optimizer).__name__}")
        optimizer_key = ("object", id(optimizer))
    key = (id(loss_fn), tuple(id(v) for v in variables), id(trace_fn), optimizer_key, name)
    runner = _cached(_RUNNERS, key, lambda: _Runner(
        loss_fn, variables, trace_fn, optimizer if optimizer is not None else default, name))
    if optimizer is None:
        runner.optimizer.learning_rate = default.learning_rate
    runner.optimizer.reset(num_steps)
    runner.factor.assign(np.inf if divergence_factor is None else divergence_factor)

    start_time = time.perf_counter()
    trace_seconds = runner.trace()
    chunk = max(1, math.ceil(num_steps / 25))
    loss_chunks, elapsed_chunks, chunk_ends, chunk_seconds = [], [], [], []
    trace_chunks = {name_: [] for name_ in runner.trace_names}
    with tqdm(total=num_steps, desc=name, disable=not progress, leave=False) as bar:
        for start in range(0, num_steps, chunk):
            count = min(chunk, num_steps - start)
            chunk_start = time.perf_counter()
            losses, traces, status = runner.run_steps(base_seed, tf.constant(start),
                                                      tf.constant(count))
            losses, status = losses.numpy(), int(status)
            if status != _OK:
                _raise(status, name, start + len(losses) - 1, num_steps, losses[-1],
                       float(runner.start_loss.numpy()), divergence_factor,
                       {n: t.numpy() for n, t in zip(runner.trace_names, traces)})
            now = time.perf_counter()
            before = elapsed_chunks[-1][-1] if elapsed_chunks else 0.0
            loss_chunks.append(losses)
            elapsed_chunks.append(
                before + (now - start_time - before) * np.arange(1, count + 1) / count)
            chunk_ends.append(start + count)
            chunk_seconds.append(now - chunk_start)
            for name_, values in zip(runner.trace_names, traces):
                trace_chunks[name_].append(values.numpy())
            bar.update(count)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return History(
        loss=np.concatenate(loss_chunks),
        trace={name_: np.concatenate(parts) for name_, parts in trace_chunks.items()},
        elapsed=np.concatenate(elapsed_chunks),
        trace_seconds=trace_seconds,
        chunk_ends=np.array(chunk_ends, np.int64),
        chunk_seconds=np.array(chunk_seconds, np.float64),
    )


def _raise(status, name, step, num_steps, loss, start_loss, factor, traces):
    """The `FloatingPointError` for a step that failed its check."""
    at = f"at step {step} (of {num_steps})"
    kept = ("training stopped and the variables keep their values from before that step. "
            "Try a smaller learning_rate or check the model and network.")
    if status == _LOSS:
        raise FloatingPointError(f"the {name} became {loss} {at}; {kept}")
    if status == _GRADIENT:
        raise FloatingPointError(f"a gradient of the {name} became NaN or infinite {at} (the "
                                 f"{name} was {loss:.6g}); {kept}")
    if status == _DIVERGED:
        raise FloatingPointError(
            f"the {name} diverged {at}: {loss:.6g}, more than {factor:g} times "
            f"max(|loss at step 0|, 1) = {max(start_loss, 1.0):.6g}; {kept}")
    bad = [n for n, values in traces.items() if not np.all(np.isfinite(values[-1]))]
    raise FloatingPointError(
        f"the traced value {', '.join(map(repr, bad))} became {traces[bad[0]][-1]} after step "
        f"{step} (of {num_steps}); training stopped and the variables hold their values after "
        "that step.")


_FIT_LOSSES: collections.OrderedDict = collections.OrderedDict()


def fit(
    model,
    q_net: tf.Module,
    loss,
    *,
    num_steps: int = 2000,
    batch_size: int = 1000,
    learning_rate: float | None = 0.05,
    anneal: bool = True,
    optimizer=None,
    trace_fn: Callable[[tf.Module], dict] | None = None,
    data=None,
    train_model: bool = False,
    seed: int = 0,
    progress: bool = True,
    divergence_factor: float | None = DIVERGENCE_FACTOR,
    **loss_options,
) -> History:
    r"""Train ``q_net`` (and with ``train_model`` the model) on a loss, by `minimize`.

    At each step the loop takes ``batch_size`` pairs $(x, y)$, fresh draws from ``model`` or a
    minibatch of the fixed ``data``, evaluates
    ``loss(model, q_net, latents, observations, seed=..., **loss_options)`` and takes one
    optimiser step on the network's trainable variables.

    Args:
        model: the generative model (see `amortlib.models`).
        q_net: the inference network to train, a `tf.Module`, updated in place.
        loss: ``"qp"`` (`amortlib.losses.qp_loss`: negative ELBO, reverse KL), ``"pq"``
            (`amortlib.losses.pq_loss`: inference compilation, forward KL) or a callable with
            their signature ``(model, q_net, latents, observations, *, seed, **options)``.
        num_steps: number of optimisation steps.
        batch_size: model draws (or data rows) per step.
        learning_rate: Adam's (initial) learning rate, > 0; None with ``optimizer``.
        anneal: if True the learning rate follows a cosine from ``learning_rate`` down to 1% of it
            at the last step, which removes most of the final jitter of stochastic gradients;
            if False it stays constant.
        optimizer: an optimiser for `minimize` (see `amortlib.optimizers.Adam`); default Adam.
        trace_fn: optional ``trace_fn(q_net) -> {name: scalar}``, recorded after every step.
        data: optional fixed data set instead of fresh model draws: a pair ``(latents, y)`` (for
            example ``model.sample(n, seed)``), or observations alone (an array whose first axis
            indexes data points), which only a loss that ignores the latents (``"qp"``) can use.
            Each step uses ``batch_size`` of the $n$ rows, drawn without replacement; with
            ``batch_size >= n`` every step uses all of them (full-batch epochs). A model with
            global latents (``model.global_latents``, for example a
            `amortlib.hierarchical.HierarchicalModel`) needs ``data`` and ``batch_size >= n``:
            its latents couple all the rows, so a minibatch would be another model. As no
            data are drawn, its loss gets each step's whole seed.
        train_model: also train ``model.trainable_variables`` (a model that is a `tf.Module`
            with trainable variables, for example a decoder), jointly with the network.
        seed: an integer seed. The random draws are a deterministic function of it, but two
            runs with the same seed are not bit-identical: their losses can differ in the last
            bits of float32 after a few steps (source not identified; it persists with
            `tf.config.experimental.enable_op_determinism()`), and noisy gradients, such as
            the score-function estimator's, amplify the difference.
        progress: show a progress bar.
        divergence_factor: see `minimize`.
        **loss_options: keyword options of the loss, for example ``sample_size``, ``estimator``
            and ``baseline`` of `amortlib.losses.qp_loss`. An option that the loss does not
            take is an error.

    Returns:
        A `amortlib.history.History` of the loss and of the traced values.

    Raises:
        ValueError: for an unknown loss name, an option the loss does not take, a
            non-positive size or learning rate, a network without trainable variables, bad
            ``data``, a model with global latents without ``data`` or with ``batch_size``
            below its size, or ``train_model`` with a model that has no trainable variables.
        TypeError: for a loss that is neither a name nor a callable, or ``train_model`` with a
            model that is not a `tf.Module`.
        FloatingPointError: see `minimize`.

    Example:
        >>> from amortlib import GaussianUnknownMean, LinearGaussian, fit
        >>> q_net = LinearGaussian()
        >>> history = fit(GaussianUnknownMean(), q_net, "pq", progress=False)
        >>> [round(v, 2) for v in q_net.params()]
        [0.5, 0.0, 0.71]
    """
    loss_fn_, loss_name = _loss_callable(loss)
    _check_options(loss_fn_, loss_name, loss_options)
    batch_size = _checks.positive_int("batch_size", batch_size)
    train_model = _checks.boolean("train_model", train_model)
    if trace_fn is not None:
        _checks.callable_("trace_fn", trace_fn)
    if not isinstance(q_net, tf.Module):
        raise TypeError(f"q_net must be a tf.Module, got {type(q_net).__name__}")
    if not q_net.trainable_variables:
        raise ValueError("q_net has no trainable variables")
    variables = list(q_net.trainable_variables)
    if train_model:
        if not isinstance(model, tf.Module):
            raise TypeError("train_model=True needs a model that is a tf.Module with trainable "
                            f"variables; model is a {type(model).__name__}")
        if not model.trainable_variables:
            raise ValueError("train_model=True but model has no trainable variables")
        seen = {id(v) for v in variables}
        variables += [v for v in model.trainable_variables if id(v) not in seen]
    fixed = None if data is None else _fixed_data(data, loss_name)
    whole = _whole_data_set(model, fixed, batch_size)

    def make():
        def loss_fn(step_seed):
            if whole:  # global latents: every step takes all the data and draws none
                return loss_fn_(model, q_net, *fixed, seed=step_seed, **loss_options)
            data_seed, q_seed = tfp.random.split_seed(step_seed)
            if fixed is None:
                latents, y = model.sample(batch_size, seed=data_seed)
            else:
                latents, y = _minibatch(fixed, batch_size, data_seed)
            return loss_fn_(model, q_net, latents, y, seed=q_seed, **loss_options)

        traced = None if trace_fn is None else (lambda: trace_fn(q_net))
        return (model, q_net, loss_fn_, data, trace_fn), loss_fn, traced

    try:
        options_key = tuple(sorted(loss_options.items()))
        hash(options_key)
    except TypeError:  # an unhashable option: no reuse
        _, loss_fn, traced = make()
    else:
        key = (id(model), id(q_net), id(loss_fn_), options_key, batch_size, id(data),
               train_model, id(trace_fn))
        _, loss_fn, traced = _cached(_FIT_LOSSES, key, make)

    return minimize(
        loss_fn,
        variables,
        num_steps=num_steps,
        learning_rate=learning_rate if optimizer is None else None,
        anneal=anneal,
        optimizer=optimizer,
        trace_fn=traced,
        seed=seed,
        progress=progress,
        name=f"{loss_name} loss",
        divergence_factor=divergence_factor,
    )


def _loss_callable(loss):
    """The loss function and its name, from a name of `LOSSES` or a callable."""
    if isinstance(loss, str):
        _checks.one_of("loss", loss, tuple(LOSSES))
        return LOSSES[loss], loss
    if not callable(loss):
        raise TypeError(f"loss must be one of {', '.join(map(repr, LOSSES))} or a callable "
                        f"(model, q_net, latents, observations, *, seed); got {loss!r}")
    return loss, getattr(loss, "__name__", "custom")


def _check_options(loss, loss_name, options):
    """Refuse options that ``loss`` does not take (its keyword-only parameters, except seed)."""
    parameters = inspect.signature(loss).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - {"seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) or "no options"
        raise ValueError(f"{', '.join(unknown)} is not an option of the {loss_name!r} loss "
                         f"(it takes {takes})")


def _fixed_data(data, loss_name):
    """Check a fixed data set: a pair ``(latents, y)`` or observations alone (latents None)."""
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(f"data must be a pair (latents, y) or observations, got a tuple "
                             f"of {len(data)}")
        latents, y = data
    else:
        if isinstance(data, list) and data and np.ndim(data[0]) > 0:
            raise ValueError("data must be a tuple (latents, y) or observations; a list of "
                             "arrays is ambiguous: pass the pair as a tuple")
        if loss_name == "pq":
            raise ValueError("data must be a pair (latents, y) for the 'pq' loss, which needs "
                             "the latents; got observations alone")
        latents, y = None, data
    y = _checks.data_rows("data y" if latents is not None else "data", y)
    if latents is not None:
        latents = tf.nest.map_structure(tf.convert_to_tensor, latents)
        for part in tf.nest.flatten(latents):
            if part.shape.rank == 0 or part.shape[0] != y.shape[0]:
                raise ValueError(f"data latents must have {y.shape[0]} rows, one per y; "
                                 f"got shape {tuple(part.shape)}")
    return latents, y


def _whole_data_set(model, fixed, batch_size: int) -> bool:
    """True for a model with global latents (they couple all data points), refused without all
    of them; False for a model without."""
    shared = list(getattr(model, "global_latents", ()) or ())
    if not shared:
        return False
    if fixed is None:
        raise ValueError(f"model ({type(model).__name__}) has global latents {shared}, shared "
                         "by all data points: pass its data set as data=x")
    num_points = int(fixed[1].shape[0])
    if batch_size < num_points:
        raise ValueError(f"batch_size must be at least the number of data points, {num_points}, "
                         f"for model ({type(model).__name__}), whose global latents {shared} "
                         f"couple all of them; got {batch_size}")
    return True


def _minibatch(data, batch_size: int, seed):
    """``batch_size`` rows of ``data`` without replacement (all of them if it has no more)."""
    latents, y = data
    if batch_size >= y.shape[0]:
        return latents, y
    index = tf.argsort(tf.random.stateless_uniform(tf.shape(y)[:1], seed))[:batch_size]
    pick = lambda v: tf.gather(v, index)  # noqa: E731
    return tf.nest.map_structure(pick, latents) if latents is not None else None, pick(y)
