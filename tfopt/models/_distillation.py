"""Helpers shared by the distillation objects: what a model's outputs are, and the keys of cached data."""

import keras

# The keys of the input dict that `cache_teacher_outputs` builds and `CachedDistiller` reads.
INPUTS_KEY = "inputs"
TEACHER_KEY = "teacher_outputs"


def ends_in_probabilities(model):
    """Whether a model's (last) output layer applies softmax, looking through wrappers that keep a `.layer`."""
    layer = model.layers[-1] if getattr(model, "layers", None) else model
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    while hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer):
        layer = layer.layer
    if isinstance(layer, keras.layers.Softmax):
        return True
    return getattr(layer, "activation", None) is keras.activations.softmax


def replicas_in_sync():
    """Replicas in sync under the current `tf.distribute` strategy (1 on other backends or without one).

    Keras divides its compiled losses by this number so that the gradients summed across replicas average;
    `keras.distillation.Distiller` (3.15) does not for its distillation terms, so tfopt's distillation losses do.
    """
    if keras.backend.backend() != "tensorflow":
        return 1
    from tfopt import _tensorflow

    return _tensorflow.replicas_in_sync()


@keras.saving.register_keras_serializable(package="tfopt")
class StudentLoss(keras.losses.Loss):
    """A Keras loss named by a string, as a `keras.losses.Loss` (which Keras scales under a distribution strategy;
    the Distiller calls a bare loss function unscaled)."""

    def __init__(self, identifier, name=None, **kwargs):
        super().__init__(name=name or identifier, **kwargs)
        self.identifier = identifier
        self.function = keras.losses.get(identifier)

    def call(self, y_true, y_pred):
        return self.function(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "identifier": self.identifier}


def as_loss_instance(loss):
    """`loss` as a `keras.losses.Loss` when it is a string that names a loss function, else unchanged."""
    if isinstance(loss, str) and not isinstance(keras.losses.get(loss), keras.losses.Loss):
        return StudentLoss(loss)
    return loss
