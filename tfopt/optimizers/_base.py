"""The base class of every tfopt optimizer and optimizer wrapper: the Keras base options checked in one place, and
the `skip_nonfinite` option.

A new optimizer subclasses `tfopt.optimizers._base.Optimizer` instead of `keras.optimizers.Optimizer` and passes
the base options on to it unchanged; nothing else is needed.
"""

import keras

from tfopt import _checks
from tfopt.optimizers import _nonfinite


class Optimizer(keras.optimizers.Optimizer):
    """`keras.optimizers.Optimizer` that checks its base options and can skip non-finite steps.

    Args:
        skip_nonfinite: when True, a step whose gradients are not all finite (NaN or inf) is skipped: no weight,
            slot or step counter changes, as Keras's `LossScaleOptimizer` skips overflowing steps; the number of
            skipped steps is `optimizer.skipped_steps` (and in the logs and TensorBoard with
            `tfopt.callbacks.NonFiniteGuard(mode="skip")`). Default False.
        **kwargs: the Keras base options (`learning_rate`, `weight_decay`, `clipnorm`, `clipvalue`,
            `global_clipnorm`, `use_ema`, `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`,
            `gradient_accumulation_steps`, `name`), checked by `tfopt._checks.optimizer_options` and passed on.
    """

    def __init__(self, *args, skip_nonfinite=False, **kwargs):
        skip_nonfinite = _checks.boolean("skip_nonfinite", skip_nonfinite)
        super().__init__(*args, **_checks.optimizer_options(kwargs))
        self.skip_nonfinite = skip_nonfinite
        if skip_nonfinite:
            _nonfinite.install(self, "skip")

    def build(self, var_list):
        super().build(var_list)
        if self.skip_nonfinite:
            _nonfinite.ensure_state(self)

    @property
    def skipped_steps(self):
        """How many steps `skip_nonfinite` skipped (0 without it), as a Python int."""
        if getattr(self, "_nonfinite_state", None) is None:
            return 0
        return _nonfinite.status(self)[0]

    def get_config(self):
        config = super().get_config()
        config["skip_nonfinite"] = self.skip_nonfinite
        return config
