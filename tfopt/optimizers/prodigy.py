"""Prodigy: Adam that estimates its own learning rate (Mishchenko and Defazio 2023)."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


class _Copy:
    """An initializer returning the current value of a variable (w0 for the distance estimate)."""

    def __init__(self, variable):
        self.variable = variable

    def __call__(self, shape, dtype=None):
        # A copy: on JAX the value is the variable's own buffer, which the train step donates.
        return ops.copy(ops.cast(ops.convert_to_tensor(self.variable), dtype or self.variable.dtype))


@keras.saving.register_keras_serializable(package="tfopt")
class Prodigy(_base.Optimizer):
    """Prodigy: learning-rate-free Adam. Leave `learning_rate` at 1.0; the optimizer finds the step size.

    Prodigy runs Adam with step size `d * learning_rate`, where `d` estimates the distance from the initial
    weights to a solution. `d` starts tiny (`d0`) and grows, never shrinks, as the running correlation between
    gradients and the distance travelled from the start shows that larger steps are safe; within a few hundred
    steps it reaches a good Adam learning rate. Use it when you do not want to tune the learning rate, with a
    schedule (cosine decay works well) as the multiplier `learning_rate`, and `d_coef` (0.5 or 2) as the knob if
    training is too slow or unstable. `safeguard_warmup=True` is recommended with a warmup schedule.

    The estimate of `d` is global: its numerator and denominator are sums over every variable. Keras calls
    `update_step` one variable at a time, so this class overrides `_backend_update_step` to make two passes over
    all variables per step, both through Keras's own per-variable (and, on TensorFlow, tf.distribute-aware)
    machinery: the first updates `s` and accumulates the sums (reading g, w, w0, s), the second computes the new
    `d` (on the first variable it meets), updates the moments and moves every variable (reading g, m, v, w) — 48
    bytes of memory traffic per float32 weight, the fewest two passes allow. `w0` is captured when the optimizer
    is built, which `fit` does right before the first step. Under tf.distribute the gradients are all-reduced once
    per pass, that is twice per step.

    With `g` the gradient of `w`, `k` the step (0 first), `lr` the learning rate, `b1`, `b2` the betas,
    `b3 = beta_3` (default `sqrt(b2)`), `w0` the weights when the optimizer is built, sums running over all variables,
    and `bc = sqrt(1 - b2^(k+1)) / (1 - b1^(k+1))` if `use_bias_correction` else 1 (the authors' reference
    `Prodigy.step`):

        dlr      = d lr bc
        r        <- b3 r + (d / d0) dlr <g, w0 - w>                       (summed over all variables)
        m        <- b1 m + d (1 - b1) g
        v        <- b2 v + d^2 (1 - b2) g^2
        s        <- b3 s + (d / d0) dlr g      ((d / d0) d g with safeguard_warmup)
        d_hat    = d_coef r / sum |s|
        d_max    <- max(d_max, d_hat);  d <- max(d, d_hat) on the first step that moves d
        d        <- min(d_max, d growth_rate)
        w        <- w - weight_decay dlr w                                  (decoupled decay)
        w        <- w - dlr m / (sqrt(v) + d epsilon)

    `dlr` uses `d` before its update and the denominator `d` after it, as the reference does. A step whose
    `sum |s|` is 0 (every gradient so far zero) or whose learning rate is 0 leaves `d` and the weights unchanged.
    The weight decay is Prodigy's own (scaled by `dlr`, applied after the estimate), not the Keras base class's;
    `exclude_from_weight_decay` works as usual. The reference's coupled decay (`decouple=False`) and its
    `slice_p` memory saving are not offered.

    Args:
        learning_rate: a multiplier of the estimated step size: a number > 0, a
            `keras.optimizers.schedules.LearningRateSchedule` or a callable. Default 1.0.
        beta_1: decay of the gradient average, in [0, 1). Default 0.9.
        beta_2: decay of the squared-gradient average, in [0, 1). Default 0.999.
        beta_3: decay of the running sums `r` and `s` that estimate `d`, in [0, 1), or None for `sqrt(beta_2)`.
            Default None.
        epsilon: added to the denominator (times `d`), a number >= 0. Default 1e-8.
        d0: the initial estimate of `d`, a number > 0. Default 1e-6; rarely needs changing.
        d_coef: multiplies the estimate, a number > 0. Default 1.0; the preferred knob (0.5 to 2).
        growth_rate: the largest factor by which `d` may grow per step, a number >= 1 or inf. Default inf;
            1.02 gives a warmup effect.
        weight_decay: decoupled weight decay, None or a number >= 0. Default None.
        use_bias_correction: bool, Adam's bias correction in `dlr`. Default False.
        safeguard_warmup: bool, leave `lr` out of the `s` update, for warmup schedules. Default False.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`, `gradient_accumulation_steps`,
            `name`), passed to `keras.optimizers.Optimizer` untouched.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(Prodigy(), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)
    >>> float(model.optimizer.d) > 1e-6
    True

    References:
        - Mishchenko and Defazio, 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
          https://arxiv.org/abs/2306.06101
        - The authors' implementation: https://github.com/konstmish/prodigy
    """

    def __init__(
        self,
        learning_rate=1.0,
        beta_1=0.9,
        beta_2=0.999,
        beta_3=None,
        epsilon=1e-8,
        d0=1e-6,
        d_coef=1.0,
        growth_rate=math.inf,
        weight_decay=None,
        use_bias_correction=False,
        safeguard_warmup=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=_checks.learning_rate(learning_rate, positive=True),
            weight_decay=_checks.weight_decay(weight_decay),
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1 = _checks.number("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.beta_3 = None if beta_3 is None else _checks.number("beta_3", beta_3, 0.0, 1.0, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.d0 = _checks.number("d0", d0, low=0.0, low_open=True)
        self.d_coef = _checks.number("d_coef", d_coef, low=0.0, low_open=True)
        self.growth_rate = _checks.number("growth_rate", growth_rate, low=1.0, allow_inf=True)
        self.use_bias_correction = _checks.boolean("use_bias_correction", use_bias_correction)
        self.safeguard_warmup = _checks.boolean("safeguard_warmup", safeguard_warmup)
        self._pass = "estimate"
        self._first_index = 0

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities, self._sums = self.add_optimizer_variables(
            var_list, ["momentum", "velocity", "s"])
        # w0, the weights the distance is measured from, is captured when the optimizer is built (right before the
        # first step under `fit`), so that no step has to write it again.
        self._initial_values = [
            self.add_variable_from_reference(variable, "initial_value", initializer=_Copy(variable))
            for variable in var_list
        ]

        # The global sums and d are float32, or float64 for a float64 model (mixed-precision models keep float32
        # variables, so they get float32).
        self._scalar_dtype = "float64" if any(v.dtype == "float64" for v in var_list) else "float32"

        def scalar(name, value):
            return self.add_variable((), initializer=keras.initializers.Constant(value), dtype=self._scalar_dtype,
                                     name=name)

        self._d = scalar("d", self.d0)
        self._d_max = scalar("d_max", self.d0)
        self._d_step = scalar("d_step", self.d0)
        self._d_numerator = scalar("d_numerator", 0.0)
        self._numerator_sum = scalar("numerator_sum", 0.0)
        self._denominator_sum = scalar("denominator_sum", 0.0)
        self._dlr = scalar("dlr", 0.0)

    @property
    def d(self):
        """The current estimate of `d`; the step size is `d * learning_rate` (times `bc`)."""
        return self._d

    def _apply_weight_decay(self, variables):
        # Prodigy's decay is scaled by d * lr and taken after the estimate (second pass of `update_step`).
        return

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self._first_index = self._get_variable_index(trainable_variables[0])
        self._pass = "estimate"
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        self._pass = "step"
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        self._pass = "estimate"

    def update_step(self, gradient, variable, learning_rate):
        gradient = _common.dense_gradient(gradient, variable)
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, self._scalar_dtype)
        if self._pass == "estimate":
            self._estimate(gradient, variable, index, lr)
        else:
            if index == self._first_index:
                self._update_d(lr)
            self._step(gradient, variable, index, lr)

    def _beta_3(self):
        return math.sqrt(self.beta_2) if self.beta_3 is None else self.beta_3

    def _estimate(self, gradient, variable, index, lr):
        """First pass: `s`, and this variable's terms of the global sums."""
        dtype, scalar_dtype = variable.dtype, self._scalar_dtype
        s = ops.convert_to_tensor(self._sums[index])
        active = lr > 0.0
        d = ops.convert_to_tensor(self._d)
        dlr = d * lr * self._bias_correction()
        d_ratio = d / self.d0

        correlation = ops.cast(
            ops.sum(gradient * (ops.convert_to_tensor(self._initial_values[index]) - variable)), scalar_dtype)
        scale = ops.cast(d_ratio * (d if self.safeguard_warmup else dlr), dtype)
        new_s = ops.where(active, ops.cast(self._beta_3(), dtype) * s + scale * gradient, s)
        self.assign(self._sums[index], new_s)
        zero = ops.zeros((), scalar_dtype)
        self.assign_add(self._numerator_sum, ops.where(active, d_ratio * dlr * correlation, zero))
        self.assign_add(self._denominator_sum, ops.where(active, ops.cast(ops.sum(ops.abs(new_s)), scalar_dtype), zero))

    def _bias_correction(self):
        if not self.use_bias_correction:
            return 1.0
        t = self.iterations + 1
        dtype = self._scalar_dtype
        return ops.sqrt(_common.one_minus_power(self.beta_2, t, dtype)) / _common.one_minus_power(self.beta_1, t, dtype)

    def _update_d(self, lr):
        """Between the passes, once per step: the new `d` from the global sums, and the step's `dlr`."""
        d, d_max, d_numerator, numerator_sum, denominator = (
            ops.convert_to_tensor(scalar)
            for scalar in (self._d, self._d_max, self._d_numerator, self._numerator_sum, self._denominator_sum))
        moves = denominator > 0.0
        numerator = self._beta_3() * d_numerator + numerator_sum
        d_hat = self.d_coef * numerator / ops.where(moves, denominator, ops.ones_like(denominator))
        new_d = ops.where(ops.equal(d, ops.cast(self.d0, self._scalar_dtype)), ops.maximum(d, d_hat), d)
        new_d_max = ops.maximum(d_max, d_hat)
        new_d = ops.minimum(new_d_max, new_d * self.growth_rate)
        self.assign(self._dlr, ops.where(moves, d * lr * self._bias_correction(), ops.zeros_like(d)))
        self.assign(self._d_step, d)
        self.assign(self._d, ops.where(moves, new_d, d))
        self.assign(self._d_max, ops.where(moves, new_d_max, d_max))
        self.assign(self._d_numerator, ops.where(moves, numerator, d_numerator))
        self.assign(self._numerator_sum, ops.zeros_like(d))
        self.assign(self._denominator_sum, ops.zeros_like(d))

    def _step(self, gradient, variable, index, lr):
        """Second pass: the moments with the step's `d`, decay, and the Adam step with the new `d`."""
        dtype = variable.dtype
        m, v = (ops.convert_to_tensor(slot[index]) for slot in (self._momentums, self._velocities))
        active = lr > 0.0
        d = ops.cast(self._d_step, dtype)
        b1, one_minus_b1 = ops.cast(self.beta_1, dtype), ops.cast(1.0 - self.beta_1, dtype)
        b2, one_minus_b2 = ops.cast(self.beta_2, dtype), ops.cast(1.0 - self.beta_2, dtype)
        new_m = ops.where(active, b1 * m + d * one_minus_b1 * gradient, m)
        new_v = ops.where(active, b2 * v + ops.square(d) * one_minus_b2 * ops.square(gradient), v)
        self.assign(self._momentums[index], new_m)
        self.assign(self._velocities[index], new_v)
        dlr = ops.cast(self._dlr, dtype)
        updated = ops.convert_to_tensor(variable)
        if self.weight_decay and self._use_weight_decay(variable):
            updated = updated - ops.cast(self.weight_decay, dtype) * dlr * updated
        denominator = ops.sqrt(new_v) + ops.cast(self._d, dtype) * ops.cast(self.epsilon, dtype)
        self.assign(variable, updated - dlr * new_m / denominator)

    def get_config(self):
        config = super().get_config()
        config.update({
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "beta_3": self.beta_3,
            "epsilon": self.epsilon,
            "d0": self.d0,
            "d_coef": self.d_coef,
            "growth_rate": self.growth_rate,
            "use_bias_correction": self.use_bias_correction,
            "safeguard_warmup": self.safeguard_warmup,
        })
        return config
