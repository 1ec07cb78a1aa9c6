"""UpdatePruningStep: tfmot's callback name, for pruned models; writes the masks into the stored weights."""

import keras

from tfopt.compression.prune import collect_wrappers


@keras.saving.register_keras_serializable(package="tfopt")
class UpdatePruningStep(keras.callbacks.Callback):
    """Keeps the stored weights of a pruned model exactly sparse at every epoch end and at the end of training.

    tfopt's `PruneLowMagnitude` needs no callback to follow the training step: each wrapper counts its training
    batches in its own `pruning_step` and updates its masks inside the training step, so forgetting this callback
    cannot make pruning silently stop (as it could with tfmot, which therefore raises without it). What the
    wrappers cannot do inside a compiled JAX step is overwrite a trainable weight; they compute with `weight * mask`
    instead, so the pruned weights are zero in every forward pass, while the stored variables may keep the value
    a weight had when it was pruned (or what momentum, weight decay or an EMA overwrite made of it). This callback
    writes `weight * mask` into the stored weights after every epoch and after training (after Keras's EMA
    overwrite with `use_ema=True`), so `model.get_weights()`, checkpoints (`ModelCheckpoint`, `BackupAndRestore`)
    and the saved model hold the zeros. `tfopt.compression.strip_pruning` does the same for the final model.

    At the start of training it also checks that the model has pruning wrappers, raising a ValueError otherwise
    (the callback was given to the wrong model).

    Example:

    >>> import numpy as np
    >>> from tfopt.compression import ConstantSparsity, prune_low_magnitude
    >>> model = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)]),
    ...                             ConstantSparsity(0.5, begin_step=1, frequency=1))
    >>> model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    >>> _ = model.fit(np.ones((8, 4)), np.ones((8, 4)), epochs=2, verbose=0, callbacks=[UpdatePruningStep()])
    >>> int(np.count_nonzero(model.layers[0].layer.kernel.numpy()))
    8
    """

    def __init__(self):
        super().__init__()
        self._wrappers = []

    def on_train_begin(self, logs=None):

        self._wrappers = collect_wrappers(self.model)
        if not self._wrappers:
            raise ValueError(
                f"UpdatePruningStep was given to model {self.model.name!r}, which has no pruning wrappers: prune it "
                "first with tfopt.compression.prune_low_magnitude."
            )

    def _apply_masks(self):
        for wrapper in self._wrappers:
            if wrapper.built:
                wrapper.apply_masks()

    def on_epoch_end(self, epoch, logs=None):
        self._apply_masks()

    def on_train_end(self, logs=None):
        self._apply_masks()

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
