"""AdaptiveGradientClipping: clip each output unit's gradient relative to its weights' norm (Brock et al. 2021)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _common
from tfopt.optimizers._wrapper import OptimizerWrapper


def unitwise_norm(x):
    """The L2 norm of `x` per output unit: over all axes but the last for rank > 1, over everything otherwise."""
    if len(x.shape) <= 1:
        return ops.sqrt(ops.sum(ops.square(x)))
    return ops.sqrt(ops.sum(ops.square(x), axis=tuple(range(len(x.shape) - 1))))


@keras.saving.register_keras_serializable(package="tfopt")
class AdaptiveGradientClipping(OptimizerWrapper):
    """Wraps any optimizer and clips each unit's gradient to a fraction of that unit's weight norm first.

    Adaptive gradient clipping (AGC) bounds the ratio of gradient norm to weight norm per output unit, so no
    step can change a unit's weights by more than a fraction `clipping` of their size. It is what lets
    normalizer-free networks (NFNets) train at large batch sizes and learning rates without BatchNormalization,
    and it is a safer default than a global `clipnorm` because the threshold follows each layer's scale. Use it
    with large batches, strong augmentation or no normalization layers; NFNets use `clipping=0.01` at batch size
    4096 and larger values (0.02-0.16) at smaller batches, and leave the final classifier layer unclipped (wrap
    the optimizer of a model without it, or accept the small effect).

    With `W_i` and `G_i` the weights and gradient of output unit `i` (a slice along the last axis of a kernel, the
    whole tensor for biases and other rank-0/1 variables) and `||.||` the Frobenius norm:

        max_i = clipping * max(||W_i||, eps)
        G_i  <- G_i * max_i / ||G_i||     if ||G_i|| > max_i,   else G_i unchanged

    then the inner optimizer steps with the clipped gradient. Under `tf.distribute` the norms are taken of the
    gradient summed over replicas (each replica's share is scaled by the factor computed from the sum), so the
    result does not depend on the number of replicas. Sparse (embedding) gradients are made dense. If the inner
    optimizer has a `loss_scale_factor`, the threshold is scaled with it.

    Args:
        optimizer: the inner optimizer: a `keras.optimizers.Optimizer`, or a string identifier or config that
            `keras.optimizers.get` resolves ("sgd", "adam", ...).
        clipping: the largest allowed ratio of unit gradient norm to unit weight norm, a number > 0.
            Default 0.01.
        eps: the smallest weight norm used, so that units starting at zero (biases) can move, a number >= 0.
            Default 1e-3.
        name: optional name.

    Example:

    >>> optimizer = AdaptiveGradientClipping(keras.optimizers.SGD(1.0), clipping=0.1)
    >>> bias = keras.Variable([3.0, 4.0])  # norm 5, so gradients are clipped to norm 0.5
    >>> optimizer.apply([keras.ops.convert_to_tensor([30.0, 0.0])], [bias])
    >>> keras.ops.convert_to_numpy(bias).tolist()
    [2.5, 4.0]

    References:
        - Brock, De, Smith and Simonyan, 2021, "High-Performance Large-Scale Image Recognition Without
          Normalization", https://arxiv.org/abs/2102.06171
    """

    def __init__(self, optimizer, clipping=0.01, eps=1e-3, name=None, **kwargs):
        clipping = _checks.number("clipping", clipping, 0.0, low_open=True)
        eps = _checks.number("eps", eps, 0.0)
        super().__init__(optimizer, name=name, **kwargs)
        self.clipping = clipping
        self.eps = eps

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # Per variable, the factor each unit's gradient is multiplied by in the current step.
        self._factors = [
            self.add_variable(shape=tuple(v.shape[-1:]) if len(v.shape) > 1 else (), dtype=v.dtype,
                              initializer="ones", name="agc_factor")
            for v in var_list
        ]

    def apply(self, grads, trainable_variables=None):
        self._build_if_needed(trainable_variables)
        # The base class's update path hands `update_step` the gradients summed over replicas: it computes the
        # clipping factors there, and each replica scales its own share by them.
        super().apply(grads, trainable_variables)
        variables = self._trained_variables(trainable_variables)
        scaled = [
            None if g is None else _common.dense_gradient(g, v) * self._factors[self._get_variable_index(v)].value
            for g, v in zip(grads, variables)
        ]
        self.inner_optimizer.apply(scaled, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        gradient = _common.dense_gradient(gradient, variable)
        weights = ops.convert_to_tensor(variable)
        threshold = self.clipping
        if self.inner_optimizer.loss_scale_factor is not None:
            threshold = threshold * self.inner_optimizer.loss_scale_factor
        max_norm = threshold * ops.maximum(unitwise_norm(weights), self.eps)
        grad_norm = unitwise_norm(gradient)
        factor = ops.where(grad_norm > max_norm, max_norm / ops.maximum(grad_norm, 1e-6), 1.0)
        self.assign(self._factors[self._get_variable_index(variable)], factor)

    def _wrapper_config(self):
        return {"clipping": self.clipping, "eps": self.eps}
