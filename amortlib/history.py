"""What a training run records: `History`, and the running mean that smooths its losses."""

from __future__ import annotations

import dataclasses

import numpy as np

from amortlib import _checks

__all__ = ["History", "running_mean"]


@dataclasses.dataclass
class History:
    """What `amortlib.training.minimize` and `amortlib.training.fit` record.

    Attributes:
        loss: the loss at every step, shape ``[num_steps]``.
        trace: for each name returned by ``trace_fn``, its value after every step.
        elapsed: wall time in seconds since the start of the run at the end of every step,
            tracing included. It is measured once per compiled chunk of steps and spread
            evenly over the steps of the chunk.
        trace_seconds: the time spent tracing the compiled loop before the first step (zero when
            a cached loop was reused).
        chunk_ends: the 1-based step at the end of every compiled chunk.
        chunk_seconds: the wall time of every chunk (the first includes graph optimisation).
    """

    loss: np.ndarray
    trace: dict[str, np.ndarray]
    elapsed: np.ndarray
    trace_seconds: float = 0.0
    chunk_ends: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, np.int64))
    chunk_seconds: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, np.float64))

    @property
    def num_steps(self) -> int:
        """Number of steps taken."""
        return len(self.loss)

    @property
    def seconds(self) -> float:
        """Wall time of the whole run, tracing included."""
        return float(self.elapsed[-1])

    @property
    def seconds_per_step(self) -> float:
        """Steady-state wall time of one step, the median over the chunks after the first.

        Each chunk's time is divided by its number of steps; the median resists a burst of other
        work on the machine during a few chunks. With a single chunk, that chunk's time per step
        (which then includes graph optimisation).

        Raises:
            ValueError: for a `History` built by hand without chunk times.
        """
        ends = np.asarray(self.chunk_ends)
        if ends.size == 0:
            raise ValueError("this History has no chunk times (it was not made by minimize)")
        if ends.size == 1:
            return float(self.chunk_seconds[0] / ends[0])
        return float(np.median(np.asarray(self.chunk_seconds[1:]) / np.diff(ends)))

    @property
    def first_chunk_seconds(self) -> float:
        """Wall time up to the end of the first chunk, tracing included (the start-up cost).

        Raises:
            ValueError: for a `History` built by hand without chunk times.
        """
        if np.asarray(self.chunk_ends).size == 0:
            raise ValueError("this History has no chunk times (it was not made by minimize)")
        return float(self.trace_seconds + self.chunk_seconds[0])


def running_mean(values, window: int = 50) -> np.ndarray:
    """Trailing running mean over ``window`` steps (shorter at the start).

    The value at 0-based step $t$ averages steps $\\max(0, t - w + 1), \\dots, t$.

    Args:
        values: a 1-D sequence of numbers, for example ``history.loss``.
        window: the window $w$, a positive integer.

    Returns:
        A float64 array of the same length.

    Example:
        >>> running_mean([1.0, 3.0, 5.0], window=2)
        array([1., 2., 4.])
    """
    window = _checks.positive_int("window", window)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    steps = np.arange(1, len(values) + 1)
    start = np.maximum(steps - window, 0)
    return (cumulative[steps] - cumulative[start]) / (steps - start)
