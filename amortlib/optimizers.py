"""The optimiser of `amortlib.training.minimize`: `Adam`, and the protocol any other follows."""

from __future__ import annotations

import math

import tensorflow as tf

from amortlib import _checks

__all__ = ["Adam"]


class Adam:
    r"""Adam with Keras's defaults, one fused kernel per variable: the loop's default optimiser.

    The update of `tf_keras.optimizers.Adam` (beta1 0.9, beta2 0.999, epsilon 1e-7; with
    ``anneal``, its `CosineDecay` schedule down to 1% of the rate), applied by TensorFlow's
    `ResourceApplyAdam` kernel: in a compiled step, one operation per variable instead of the
    dozen of the Keras optimizer. At 0-based step $t$ of $T$, with gradient $g$, rate $\eta_t$
    and $m, v$ starting at zero:

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        w \leftarrow w - \eta_t \frac{\sqrt{1 - \beta_2^{t+1}}}{1 - \beta_1^{t+1}}
        \frac{m}{\sqrt{v} + \epsilon}.

    Any object with the same three methods can be passed to `amortlib.training.minimize` as
    ``optimizer``:
    ``build(variables)`` (create the state, once, eagerly), ``reset(num_steps)`` (start a run:
    zero the state, set the schedule; eagerly, before every run) and ``apply(step, gradients)``
    (in the compiled loop; ``gradients[i]`` is None for a variable without a gradient). The loop
    calls ``apply`` inside a `tf.cond`, so that a step that fails its checks changes nothing; an
    optimiser may also define ``apply_masked(step, gradients, active)``, as `Adam` does, which
    the loop calls instead, without the branch (cheaper to trace and to set up).

    Args:
        learning_rate: the (initial) learning rate, > 0.
        anneal: if True the rate follows a cosine from ``learning_rate`` down to 1% of it at the
            last step; if False it stays constant.
    """

    beta1, beta2, epsilon = 0.9, 0.999, 1e-7

    def __init__(self, learning_rate: float, *, anneal: bool = True):
        self.learning_rate = _checks.positive_scalar("learning_rate", learning_rate)
        self.anneal = _checks.boolean("anneal", anneal)
        self.variables = None

    def build(self, variables) -> None:
        """Create Adam's moments for ``variables`` (zero) and the schedule's variables."""
        self.variables = list(variables)
        self.moments = [(tf.Variable(tf.zeros_like(w), trainable=False),
                         tf.Variable(tf.zeros_like(w), trainable=False)) for w in self.variables]
        self._rate = tf.Variable(self.learning_rate, dtype=tf.float32, trainable=False)
        self._num_steps = tf.Variable(1.0, dtype=tf.float32, trainable=False)

    def reset(self, num_steps: int) -> None:
        """Start a run of ``num_steps`` steps: zero the moments, set the rate and the schedule."""
        for m, v in self.moments:
            m.assign(tf.zeros_like(m))
            v.assign(tf.zeros_like(v))
        self._rate.assign(self.learning_rate)
        self._num_steps.assign(float(num_steps))

    def rate(self, step) -> tf.Tensor:
        """The rate at 0-based ``step``: constant, or a cosine from the base rate to 1% of it."""
        if not self.anneal:
            return tf.convert_to_tensor(self._rate)
        done = tf.minimum(tf.cast(step, tf.float32), self._num_steps) / self._num_steps
        return self._rate * (0.01 + 0.99 * 0.5 * (1.0 + tf.cos(math.pi * done)))

    def apply(self, step, gradients) -> None:
        """One update of every variable that has a gradient (variables without one are skipped)."""
        self._apply(step, gradients, None)

    def apply_masked(self, step, gradients, active) -> None:
        """`apply` if the boolean tensor ``active`` is true; else leave the variables unchanged.

        No branch in the graph: with ``active`` false every gradient counts as zero and the rate
        as zero, so each variable keeps its value exactly (its moments decay, which does not
        matter to `amortlib.training.minimize`: it stops the run, and the next run calls
        `reset`). With ``active`` true the update is `apply`'s, bit for bit.
        """
        self._apply(step, gradients, active)

    def _apply(self, step, gradients, active) -> None:
        constants = {}  # per dtype, built once per step

        def constants_for(dtype):
            if dtype not in constants:
                t = tf.cast(step + 1, dtype)
                beta1, beta2 = tf.constant(self.beta1, dtype), tf.constant(self.beta2, dtype)
                lr = tf.cast(self.rate(step), dtype)
                if active is not None:
                    lr = tf.where(active, lr, tf.zeros_like(lr))
                constants[dtype] = dict(
                    beta1_power=beta1**t, beta2_power=beta2**t, beta1=beta1, beta2=beta2,
                    lr=lr, epsilon=tf.constant(self.epsilon, dtype))
            return constants[dtype]

        for w, g, (m, v) in zip(self.variables, gradients, self.moments):
            if g is not None:
                g = tf.convert_to_tensor(g, w.dtype)
                if active is not None:
                    g = tf.where(active, g, tf.zeros_like(g))
                tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle, grad=g,
                                             **constants_for(w.dtype))
