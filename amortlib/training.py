"""One training loop for every chapter: `fit` an inference network with a named loss.

The loop is compiled with `tf.function` and runs many steps per call inside the graph, so a step
costs tens of microseconds rather than the milliseconds of an eager Python loop. Every step draws
fresh data from the model with a stateless seed folded from ``seed`` and the step number, so a run
is reproducible: the same arguments give the same history.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tqdm.auto import tqdm

from amortlib import _checks
from amortlib.losses import LOSSES, pq_loss, qp_loss

__all__ = ["History", "fit"]


@dataclasses.dataclass
class History:
    """What `fit` records.

    Attributes:
        loss: the loss at every step, shape ``[num_steps]``.
        trace: for each name returned by ``trace_fn``, its value after every step.
        seconds: wall time of the whole run, compilation included.
    """

    loss: np.ndarray
    trace: dict[str, np.ndarray]
    seconds: float

    @property
    def num_steps(self) -> int:
        """Number of steps taken."""
        return len(self.loss)


def fit(
    model,
    q_net: tf.Module,
    loss: str,
    *,
    num_steps: int = 2000,
    batch_size: int = 1000,
    learning_rate: float = 0.05,
    anneal: bool = True,
    sample_size: int = 1,
    trace_fn: Callable[[tf.Module], dict] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> History:
    r"""Train ``q_net`` by Adam on the qp or pq loss, with fresh model draws at every step.

    At each step the loop draws ``batch_size`` pairs $(x, y) \sim p(x, y)$ from ``model``, evaluates
    the loss (the qp loss uses only $y$; the pq loss uses both) and takes one Adam step on the
    network's trainable variables.

    Args:
        model: the generative model (see `amortlib.models`).
        q_net: the inference network to train, updated in place.
        loss: ``"qp"`` (negative ELBO, reverse KL) or ``"pq"`` (inference compilation, forward KL).
        num_steps: number of optimisation steps.
        batch_size: model draws per step.
        learning_rate: Adam's (initial) learning rate, > 0.
        anneal: if True the learning rate follows a cosine from ``learning_rate`` down to 1% of it
            at the last step, which removes most of the final jitter of stochastic gradients;
            if False it stays constant.
        sample_size: samples from $q$ per observation for the qp loss.
        trace_fn: optional ``trace_fn(q_net) -> {name: scalar}``, recorded after every step.
        seed: an integer seed; the run is a deterministic function of it.
        progress: show a progress bar.

    Returns:
        A `History` of the loss and of the traced values.

    Raises:
        ValueError: for an unknown loss name or a non-positive size or learning rate.
        FloatingPointError: if the loss becomes NaN or infinite; the message names the step, and
            the network keeps the parameters it had before that step.

    Example:
        >>> from amortlib import GaussianUnknownMean, LinearGaussian, fit
        >>> q_net = LinearGaussian()
        >>> history = fit(GaussianUnknownMean(), q_net, "pq", num_steps=3000, progress=False)
        >>> [round(v, 2) for v in q_net.params()]
        [0.5, 0.0, 0.71]
    """
    _checks.one_of("loss", loss, LOSSES)
    num_steps = _checks.positive_int("num_steps", num_steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    sample_size = _checks.positive_int("sample_size", sample_size)
    learning_rate = _checks.positive_scalar("learning_rate", learning_rate)
    if seed is None or isinstance(seed, tf.Tensor):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    base_seed = _checks.seed(seed)
    variables = q_net.trainable_variables
    if not variables:
        raise ValueError("q_net has no trainable variables")

    if anneal:
        learning_rate = tf_keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=num_steps, alpha=0.01
        )
    optimizer = tf_keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)
    trace_names = list(trace_fn(q_net)) if trace_fn is not None else []

    def loss_at(step):
        data_seed, q_seed = tfp.random.split_seed(
            tf.random.experimental.stateless_fold_in(base_seed, step)
        )
        latents, y = model.sample(batch_size, seed=data_seed)
        if loss == "qp":
            return qp_loss(model, q_net, y, sample_size=sample_size, seed=q_seed)
        return pq_loss(q_net, latents, y)

    @tf.function(autograph=True)
    def run_steps(start, count):
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        traces = [tf.TensorArray(tf.float32, size=0, dynamic_size=True) for _ in trace_names]
        for i in tf.range(count):
            with tf.GradientTape() as tape:
                value = loss_at(start + i)
            losses = losses.write(i, value)
            if not tf.math.is_finite(value):
                break  # leave the parameters as they were before this step
            gradients = tape.gradient(value, variables)
            optimizer.apply_gradients(zip(gradients, variables))
            if trace_names:
                traced = trace_fn(q_net)
                traces = [
                    t.write(i, tf.cast(tf.convert_to_tensor(traced[n]), tf.float32))
                    for t, n in zip(traces, trace_names)
                ]
        return losses.stack(), [t.stack() for t in traces]

    chunk = max(1, math.ceil(num_steps / 25))
    loss_chunks, trace_chunks = [], {name: [] for name in trace_names}
    start_time = time.perf_counter()
    with tqdm(total=num_steps, desc=f"{loss} loss", disable=not progress, leave=False) as bar:
        for start in range(0, num_steps, chunk):
            count = min(chunk, num_steps - start)
            losses, traces = run_steps(tf.constant(start), tf.constant(count))
            losses = losses.numpy()
            loss_chunks.append(losses)
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                step = start + int(bad[0])
                raise FloatingPointError(
                    f"the {loss} loss became {losses[bad[0]]} at step {step} (of {num_steps}); "
                    "training stopped and q_net keeps its parameters from before that step. "
                    "Try a smaller learning_rate or check the model and network."
                )
            for name, values in zip(trace_names, traces):
                trace_chunks[name].append(values.numpy())
            bar.update(count)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start_time
    return History(
        loss=np.concatenate(loss_chunks),
        trace={name: np.concatenate(parts) for name, parts in trace_chunks.items()},
        seconds=seconds,
    )
