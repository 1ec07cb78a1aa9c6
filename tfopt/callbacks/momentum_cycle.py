"""MomentumCycle: the inverse momentum cycle of the one-cycle policy (SGD `momentum`, Adam-family `beta_1`)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.callbacks import _optimizer
from tfopt.schedules.one_cycle import one_cycle_phases, one_cycle_value

ANNEAL_STRATEGIES = ("cos", "linear")


class _TracedHyperparameter:
    """Stands in for a float hyperparameter inside one traced update step.

    Keras optimizers read `momentum` / `beta_1` as Python floats while the train step is traced, so a new float
    assigned later never reaches a compiled `fit`. During the update this object takes the float's place: the
    optimizer's arithmetic and `ops.cast` see `value` (a tensor computed from the optimizer's step inside the
    traced graph), while comparisons (SGD's `if self.momentum != 0`, which decides whether momentum slots are
    used) see the configured float, as they did when the optimizer was built.
    """

    def __init__(self, value, configured):
        self.value = value
        self.configured = configured

    def __tf_tensor__(self, dtype=None, name=None):
        import tensorflow as tf

        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)

    def __jax_array__(self):
        return self.value

    def __eq__(self, other):
        return self.configured == other

    def __ne__(self, other):
        return self.configured != other

    def __lt__(self, other):
        return self.configured < other

    def __le__(self, other):
        return self.configured <= other

    def __gt__(self, other):
        return self.configured > other

    def __ge__(self, other):
        return self.configured >= other

    __hash__ = None

    def __add__(self, other):
        return ops.add(self.value, other)

    def __radd__(self, other):
        return ops.add(other, self.value)

    def __sub__(self, other):
        return ops.subtract(self.value, other)

    def __rsub__(self, other):
        return ops.subtract(other, self.value)

    def __mul__(self, other):
        return ops.multiply(self.value, other)

    def __rmul__(self, other):
        return ops.multiply(other, self.value)

    def __truediv__(self, other):
        return ops.divide(self.value, other)

    def __rtruediv__(self, other):
        return ops.divide(other, self.value)

    def __neg__(self):
        return ops.negative(self.value)


@keras.saving.register_keras_serializable(package="tfopt")
class MomentumCycle(keras.callbacks.Callback):
    """Cycles the optimizer's momentum inversely to a one-cycle learning rate, as PyTorch's OneCycleLR does.

    Use it together with a one-cycle learning-rate schedule (`tfopt.schedules.OneCycle` with the same
    `total_steps`, `pct_start`, `anneal_strategy` and `three_phase`): while the rate rises the momentum falls
    from `max_momentum` to `base_momentum`, and while the rate anneals the momentum climbs back, which Smith
    found keeps the effective step size steady and lets the large rates regularise. The values equal
    PyTorch's `OneCycleLR(..., cycle_momentum=True, base_momentum, max_momentum)`: SGD's `momentum`, or the
    first moment decay `beta_1` of Adam, AdamW, Adamax and Lion. RMSprop's `momentum` is cycled too. SGD and
    RMSprop must be created with `momentum > 0` so that they keep momentum slots; Nadam is refused, because
    its `beta_1` also drives a running product that Keras updates outside the update step.

    The momentum is computed from the optimizer's `iterations` inside the compiled train step (Keras reads
    these hyperparameters as Python floats when it traces the step, so assigning floats from a callback would
    have no effect): at the start of `fit` the callback gives the optimizer an update step that uses
    `momentum_at(iterations)` and rebuilds the train function; at the end of `fit` it removes it and rebuilds
    again, leaving the optimizer's configured float as it was. The schedule is a pure function of the step, so
    a resumed run continues the cycle where it stopped. The epoch logs get the momentum of the next step as
    "momentum".

    With `t` the optimizer step (0 for the first update), `T = total_steps`, `p = pct_start`,
    `m_max = max_momentum`, `m_base = base_momentum`, the phases (start `s`, end `e`, from `a` to `b`) are

        three_phase=False:  [0, p*T - 1]: m_max -> m_base;   [p*T - 1, T - 1]: m_base -> m_max
        three_phase=True:   [0, p*T - 1]: m_max -> m_base;   [p*T - 1, 2*p*T - 2]: m_base -> m_max;
                            [2*p*T - 2, T - 1]: m_max -> m_max

    Step `t` belongs to the first phase with `t <= e` (the last phase takes the rest), `x = (t - s) / (e - s)`:

        "cos":     m(t) = b + (a - b) * (1 + cos(pi * x)) / 2
        "linear":  m(t) = a + (b - a) * x

    From step `T - 1` on the momentum stays at the last phase's end value (PyTorch raises an error past `T`).
    A phase of zero length (`p*T = 1`) gives its start value at its single step, where PyTorch divides by zero.

    Args:
        base_momentum: the lowest momentum, reached when the learning rate peaks, in [0, 1). Defaults to 0.85.
        max_momentum: the highest momentum, at the start and the end, in [0, 1) and >= `base_momentum`.
            Defaults to 0.95.
        total_steps: `T`, the number of optimizer steps in the cycle, an integer >= 1. Required.
        pct_start: `p`, the fraction of the steps spent lowering the momentum, in [0, 1]. Defaults to 0.3.
        anneal_strategy: "cos" (default) or "linear".
        three_phase: the three-phase shape of PyTorch (momentum back at `max_momentum` after `2*p*T - 2`
            steps, then constant). Defaults to False.

    Example:

    >>> cycle = MomentumCycle(base_momentum=0.8, max_momentum=0.9, total_steps=10, pct_start=0.5,
    ...                       anneal_strategy="linear")
    >>> [round(float(cycle.momentum_at(t)), 4) for t in (0, 2, 4, 9)]
    [0.9, 0.85, 0.8, 0.9]

    References:
        Smith and Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates",
        2017. https://arxiv.org/abs/1708.07120
        Smith, "A disciplined approach to neural network hyper-parameters: Part 1", 2018.
        https://arxiv.org/abs/1803.09820
    """

    def __init__(
        self,
        base_momentum=0.85,
        max_momentum=0.95,
        total_steps=None,
        pct_start=0.3,
        anneal_strategy="cos",
        three_phase=False,
    ):
        super().__init__()
        self.base_momentum = _checks.number("base_momentum", base_momentum, 0, 1, high_open=True)
        self.max_momentum = _checks.number("max_momentum", max_momentum, 0, 1, high_open=True)
        if self.base_momentum > self.max_momentum:
            raise ValueError(
                "Argument `base_momentum` must be <= `max_momentum`. Received: "
                f"base_momentum={base_momentum!r}, max_momentum={max_momentum!r}"
            )
        self.total_steps = _checks.integer("total_steps", total_steps, 1)
        self.pct_start = _checks.number("pct_start", pct_start, 0, 1)
        self.anneal_strategy = _checks.choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
        _checks.boolean("three_phase", three_phase)
        self.three_phase = three_phase
        self._installed = None

    def momentum_at(self, step):
        """The momentum (or beta_1) for optimizer step `step` (an int or an integer tensor), as float32."""
        # The learning rate's one-cycle curve mirrored: from max_momentum down to base_momentum and back.
        phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase,
                                  self.max_momentum, self.base_momentum, self.max_momentum)
        t = ops.minimum(ops.cast(step, "float32"), float(self.total_steps - 1))
        return ops.cast(one_cycle_value(t, phases, self.anneal_strategy), "float32")

    def _hyperparameter(self, optimizer):
        """The name of the attribute to cycle: "beta_1" or "momentum"."""
        name = type(optimizer).__name__
        if isinstance(optimizer, keras.optimizers.Nadam):
            raise ValueError(
                "MomentumCycle cannot cycle Nadam's `beta_1`: Nadam also folds it into a running momentum-cache "
                "product outside the update step. Use Adam, AdamW, Adamax, Lion or SGD with momentum."
            )
        for attribute in ("beta_1", "momentum"):
            value = getattr(optimizer, attribute, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if attribute == "momentum" and value <= 0:
                    raise ValueError(
                        f"MomentumCycle needs {name} to be created with `momentum` > 0, so that it keeps momentum "
                        f"slots. Received: momentum={value!r}"
                    )
                return attribute
        raise ValueError(
            f"MomentumCycle needs an optimizer with a float `momentum` (SGD, RMSprop) or `beta_1` (Adam, AdamW, "
            f"Adamax, Lion) hyperparameter. Received: {name}, which has neither."
        )

    def on_train_begin(self, logs=None):
        optimizer = _optimizer.unwrap(self.model.optimizer)
        attribute = self._hyperparameter(optimizer)
        configured = getattr(optimizer, attribute)
        class_update_step = type(optimizer).update_step

        def cycled_update_step(gradient, variable, learning_rate):
            setattr(optimizer, attribute, _TracedHyperparameter(self.momentum_at(optimizer.iterations), configured))
            try:
                return class_update_step(optimizer, gradient, variable, learning_rate)
            finally:
                setattr(optimizer, attribute, configured)

        optimizer.update_step = cycled_update_step
        self._installed = optimizer
        # A train function traced by an earlier `fit` would still call the class's update step.
        self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            step = _optimizer.iterations(self.model.optimizer)
            logs["momentum"] = float(ops.convert_to_numpy(self.momentum_at(step)))

    def on_train_end(self, logs=None):
        if self._installed is not None:
            del self._installed.update_step
            self._installed = None
            self.model.make_train_function(force=True)

    def get_config(self):
        return {
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
