"""What Lookahead, SWA, GradientCentralization and AdaptiveGradientClipping share: wrapping any Keras optimizer.

Modelled on Keras's `LossScaleOptimizer`: the wrapper is itself a `keras.optimizers.Optimizer`; it builds the inner
optimizer on the same variables, lists its own variables and then the inner one's (so `model.save` stores both and
`load_model` restores both), forwards the learning rate, the step count, loss scaling and
`finalize_variable_values` to the inner optimizer, and serializes it in `get_config`.

A wrapper that keeps per-variable state of its own (slow weights, the running average) updates it in its own
`update_step`, reached through the base class's `apply`: that is the path Keras makes correct under
`tf.distribute` strategies and inside JAX's stateless training step.
"""

import keras

from tfopt import _checks
from tfopt.optimizers import _base
from tfopt.optimizers.registry import get  # knows tfopt's names ("radam") as well as Keras's

# Base optimizer options a wrapper does not take: they belong on the inner optimizer.
_INNER_ONLY = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def resolve_optimizer(optimizer):
    """A `keras.optimizers.Optimizer` from an instance, a string identifier or a serialized config."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        # Its options and learning rate too: `Lookahead(Adam(float("nan")))` must not train silently.
        return _checks.optimizer(optimizer)
    if isinstance(optimizer, (str, dict)):

        try:
            resolved = get(optimizer)
        except ValueError:
            raise ValueError(
                "Argument `optimizer` must be a keras.optimizers.Optimizer instance, a string identifier such as "
                f"'adam' or 'radam', or a serialized optimizer config. Received: optimizer={optimizer!r}, which "
                "tfopt.optimizers.get does not know"
            ) from None
        if isinstance(resolved, keras.optimizers.Optimizer):
            return _checks.optimizer(resolved)
    raise TypeError(
        "Argument `optimizer` must be a keras.optimizers.Optimizer instance, a string identifier such as "
        f"'adam', or a serialized optimizer config. Received: optimizer={optimizer!r} of type "
        f"{type(optimizer).__name__}"
    )


class OptimizerWrapper(_base.Optimizer):
    """Base of tfopt's optimizer wrappers; `self.inner_optimizer` does the updates."""

    def __init__(self, optimizer, name=None, **kwargs):
        optimizer = resolve_optimizer(optimizer)
        for key, default in _INNER_ONLY.items():
            if key in kwargs and kwargs.pop(key) != default:
                raise ValueError(
                    f"Argument `{key}` is not taken by {type(self).__name__}: set it on the wrapped optimizer "
                    f"instead, e.g. keras.optimizers.Adam({key}=...)."
                )
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.inner_optimizer = optimizer

    def build(self, var_list):
        if self.built:
            return
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        super().build(var_list)

    def _build_if_needed(self, trainable_variables):
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    f"{type(self).__name__} must be built before `apply` is called without "
                    "`trainable_variables`: call `optimizer.build(trainable_variables)` first."
                )
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))

    def _trained_variables(self, trainable_variables):
        return list(trainable_variables) if trainable_variables is not None else self._trainable_variables

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Forwarded to the inner optimizer, which applies the weight decay."""
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def _wrapper_config(self):
        """The wrapper's own arguments; `get_config` adds the name and the serialized inner optimizer."""
        return {}

    def get_config(self):
        # The base options all belong to the inner optimizer, so only the name (and `skip_nonfinite`, which guards
        # the whole wrapped step) comes from the base config.
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "skip_nonfinite": self.skip_nonfinite,
            **self._wrapper_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"), custom_objects=custom_objects)
        return cls(optimizer, **config)
