"""PrunableLayer: the protocol by which a custom layer tells the pruning wrapper which of its weights to prune."""

import abc


class PrunableLayer(abc.ABC):
    """Mix into a custom `keras.layers.Layer` to make it prunable by `tfopt.compression.prune_low_magnitude`.

    Implement `get_prunable_weights()` to return the layer's variables to prune (usually kernels, not biases).
    Any layer with a `get_prunable_weights()` method is accepted (inheriting from this class is optional; it
    documents the intent and makes a missing method an error at construction). N:M sparsity groups weights of rank
    >= 2 along axis -2, the input axis of a `(..., in, out)` kernel; block sparsity tiles the last two axes.

    Example:

    >>> import keras
    >>> class Scale(keras.layers.Layer, PrunableLayer):
    ...     def build(self, input_shape):
    ...         self.scale = self.add_weight(shape=(input_shape[-1], 4))
    ...     def call(self, x):
    ...         return x @ self.scale
    ...     def get_prunable_weights(self):
    ...         return [self.scale]
    """

    @abc.abstractmethod
    def get_prunable_weights(self):
        """The `keras.Variable`s of the built layer that pruning masks (a list)."""
