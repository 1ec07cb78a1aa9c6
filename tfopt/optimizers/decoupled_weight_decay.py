"""Decoupled weight decay not scaled by the learning rate, added to any optimizer (TensorFlow Addons' extension,
Loshchilov and Hutter 2019): `extend_with_decoupled_weight_decay`, and its SGD and Adam instances `SGDW` and
`DecoupledAdamW`."""

import keras
from keras import ops

from tfopt import _checks


def _scalar(value):
    """A scalar tensor (TFA's docs pass `1e-1 * schedule(step)`) as a float; anything else as it is."""
    if ops.is_tensor(value) and len(value.shape) == 0:
        return float(ops.convert_to_numpy(value))
    return value


def _decay_value(weight_decay):
    weight_decay = _scalar(weight_decay)
    if isinstance(weight_decay, keras.optimizers.schedules.LearningRateSchedule) or callable(weight_decay):
        return weight_decay
    return _checks.schedule_or_rate("weight_decay", weight_decay)


class DecoupledWeightDecayExtension:
    """A mixin in front of a `keras.optimizers.Optimizer` that decays the weights by `weight_decay * w` each step,
    before the optimizer's own update, without multiplying by the learning rate.

    Keras 3's `weight_decay` option (and `keras.optimizers.AdamW`) decays by `learning_rate * weight_decay * w`;
    TensorFlow Addons' `DecoupledWeightDecayExtension`, `AdamW` and `SGDW` decay by `weight_decay * w`, which is
    the paper's `eta_t * lambda` with the schedule multiplier `eta_t` folded into `weight_decay`. So a TFA
    `weight_decay` of 1e-4 with a learning rate of 1e-3 equals Keras's `weight_decay=0.1`. To decay along a
    learning-rate schedule, as the paper does, give `weight_decay` a schedule too (it is evaluated at the
    optimizer's step, like the learning rate). With `w` a weight, `g` its gradient and `t` the step:

        w <- w - weight_decay(t) * w             (every variable not excluded)
        w <- base_update(w, g)                   (the wrapped optimizer's step, on the decayed w)

    Exclude variables with `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)` before the first
    step (TFA's `decay_var_list` argument of `minimize` / `apply_gradients` selected them instead).

    Args:
        weight_decay: the decay per step, a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule`
            (called with the step) or a callable of no arguments (called every step, as TFA's
            `weight_decay=lambda: 1e-4 * schedule(step)`); the first argument, as in TFA.
        *args, **kwargs: the wrapped optimizer's arguments (its own `weight_decay` is not taken).
    """

    def __init__(self, weight_decay, *args, **kwargs):
        decay = _decay_value(weight_decay)
        super().__init__(*args, **_checks.optimizer_options(kwargs))
        # The base class decays by `learning_rate * weight_decay`; this extension does its own decay in
        # `update_step` (where `tf.distribute` applies updates per replica), so the base's is switched off.
        self.weight_decay = decay

    def _apply_weight_decay(self, variables):
        return None

    def update_step(self, gradient, variable, learning_rate):
        if self._use_weight_decay(variable):
            decay = self.weight_decay
            if isinstance(decay, keras.optimizers.schedules.LearningRateSchedule):
                decay = decay(self.iterations)
            elif callable(decay):  # TFA's `weight_decay=lambda: ...`, called every step
                decay = decay()
            self.assign_sub(variable, variable * ops.cast(decay, variable.dtype))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        if isinstance(self.weight_decay, keras.optimizers.schedules.LearningRateSchedule):
            config["weight_decay"] = keras.optimizers.schedules.serialize(self.weight_decay)
        elif callable(self.weight_decay):
            config["weight_decay"] = keras.saving.serialize_keras_object(self.weight_decay)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("weight_decay"), dict):
            config["weight_decay"] = keras.saving.deserialize_keras_object(config["weight_decay"],
                                                                           custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)


_EXTENDED = {}


def extend_with_decoupled_weight_decay(base_optimizer):
    """A subclass of the optimizer class `base_optimizer` with `DecoupledWeightDecayExtension` in front: its
    first argument is `weight_decay` (decay not scaled by the learning rate), the others are the base's.

    The class is made once per base class and registered for `keras.models.load_model` as
    `"tfopt>{Base}WithDecoupledWeightDecay"`; in a new process, call this function again before loading a model
    saved with it.

    Args:
        base_optimizer: a subclass of `keras.optimizers.Optimizer` (the class, not an instance).

    Example:

    >>> AdamWithDecay = extend_with_decoupled_weight_decay(keras.optimizers.Adam)
    >>> optimizer = AdamWithDecay(weight_decay=1e-4, learning_rate=1e-3)
    >>> w = keras.Variable([1.0])
    >>> optimizer.apply([keras.ops.zeros((1,))], [w])
    >>> round(float(w[0]), 6)
    0.9999
    """
    if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, keras.optimizers.Optimizer)):
        raise TypeError("Argument `base_optimizer` must be a subclass of keras.optimizers.Optimizer (the class). "
                        f"Received: base_optimizer={base_optimizer!r}")
    if issubclass(base_optimizer, DecoupledWeightDecayExtension):
        return base_optimizer
    if base_optimizer not in _EXTENDED:
        name = f"{base_optimizer.__name__}WithDecoupledWeightDecay"
        extended = type(name, (DecoupledWeightDecayExtension, base_optimizer),
                        {"__doc__": f"`{base_optimizer.__name__}` with `DecoupledWeightDecayExtension`."})
        _EXTENDED[base_optimizer] = keras.saving.register_keras_serializable(package="tfopt")(extended)
    return _EXTENDED[base_optimizer]


@keras.saving.register_keras_serializable(package="tfopt")
class SGDW(DecoupledWeightDecayExtension, keras.optimizers.SGD):
    """SGD (with optional momentum / Nesterov) and decoupled weight decay not scaled by the learning rate.

    TensorFlow Addons' `SGDW`: each step `w <- w - weight_decay * w`, then Keras's SGD step
    (`m <- momentum m - lr g; w <- w + m`, or `w <- w - lr g` without momentum). See
    `DecoupledWeightDecayExtension` for the convention and its relation to Keras's `weight_decay`.

    Args:
        weight_decay: the decay per step, a number >= 0 or a `LearningRateSchedule`.
        learning_rate: as Keras's SGD. Default 0.001 (TFA's).
        momentum: a number >= 0. Default 0.0.
        nesterov: whether to use Nesterov momentum. Default False.
        **kwargs: the base optimizer options, as Keras's SGD.

    References:
        - Loshchilov and Hutter, 2019, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101
    """

    def __init__(self, weight_decay, learning_rate=0.001, momentum=0.0, nesterov=False, name="SGDW", **kwargs):
        super().__init__(weight_decay, learning_rate=_checks.learning_rate(_scalar(learning_rate)), momentum=momentum,
                         nesterov=_checks.boolean("nesterov", nesterov), name=name, **kwargs)


@keras.saving.register_keras_serializable(package="tfopt")
class DecoupledAdamW(DecoupledWeightDecayExtension, keras.optimizers.Adam):
    """Adam with decoupled weight decay not scaled by the learning rate: TensorFlow Addons' `AdamW`.

    Each step `w <- w - weight_decay * w`, then Keras's Adam step. Keras's own `keras.optimizers.AdamW` decays by
    `learning_rate * weight_decay * w` instead (PyTorch's convention): use this class to keep the numbers of a
    TFA `AdamW` run. See `DecoupledWeightDecayExtension`.

    Args:
        weight_decay: the decay per step, a number >= 0 or a `LearningRateSchedule`.
        learning_rate, beta_1, beta_2, epsilon, amsgrad: as Keras's Adam (defaults 0.001, 0.9, 0.999, 1e-7,
            False, TFA's too).
        **kwargs: the base optimizer options, as Keras's Adam.

    References:
        - Loshchilov and Hutter, 2019, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101
    """

    def __init__(self, weight_decay, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name="DecoupledAdamW", **kwargs):
        super().__init__(weight_decay, learning_rate=_checks.learning_rate(_scalar(learning_rate)),
                         beta_1=_checks.number("beta_1", beta_1, 0.0, 1.0, high_open=True),
                         beta_2=_checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True),
                         epsilon=_checks.number("epsilon", epsilon, low=0.0),
                         amsgrad=_checks.boolean("amsgrad", amsgrad), name=name, **kwargs)
