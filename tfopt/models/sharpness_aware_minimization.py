"""SharpnessAwareMinimization: SAM and ASAM, a two-pass training step around any model and any optimizer."""

import keras
from keras import ops

from tfopt import _checks

_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="tfopt")
class SharpnessAwareMinimization(keras.Model):
    """Wraps a model so that `fit` minimizes the worst loss in a small ball around the weights (SAM / ASAM).

    Each training step takes two forward/backward passes: the first finds the gradient `g` at the weights `w`
    and the direction `e` in which the loss rises fastest within radius `rho`; the second takes the gradient at
    `w + e`, and the compiled optimizer applies that gradient to `w` (the weights never stay perturbed). The
    result lands in flatter minima, which generalize better, at about twice the step cost. Use it when the model
    over-fits or generalizes worse than its training accuracy suggests (small data, heavy models, label noise);
    the paper's default `rho=0.05` suits SGD and Adam alike. `adaptive=True` is ASAM, whose ball is scaled by
    each weight's magnitude so the result does not depend on how the weights are scaled; it wants a larger `rho`
    (the ASAM paper uses 0.5 to 2.0 with SGD).

    With `g = grad L(w)` over all trainable weights at once:

        SAM:   e = rho * g / ||g||_2
        ASAM:  T = |w| + eta  (elementwise),   e = rho * T^2 g / ||T g||_2
        step:  w <- optimizer_update(w, grad L(w + e))

    Any optimizer works (Keras's, tfopt's, and wrappers such as `tfopt.optimizers.Lookahead`): SAM only changes
    the gradient it is given. Losses, metrics and BatchNormalization statistics come from the first pass, at `w`;
    the second pass changes no state but the weights' update. Under a `tf.distribute` strategy each replica
    perturbs with its own gradient (the paper's "m-sharpness", m = the per-replica batch) and the optimizer
    averages the second-pass gradients across replicas as usual.

    The wrapper is what you `compile` and `fit`; `model` is what you deploy (`sam.model.save(...)`). Saving the
    wrapper saves the inner model inside it, with the optimizer state, so training can resume from it.
    TensorFlow and JAX backends.

    Args:
        model: the `keras.Model` to train.
        rho: radius of the neighbourhood, a number > 0. Default 0.05.
        adaptive: ASAM's scale-invariant neighbourhood when True. Default False.
        eta: ASAM's offset in `T = |w| + eta`, a number >= 0 (used only when `adaptive=True`). Default 0.01.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> sam = SharpnessAwareMinimization(inner, rho=0.05)
    >>> sam.compile(keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> _ = sam.fit(np.ones((8, 4)), np.zeros(8), epochs=1, verbose=0)
    >>> sam.model is inner
    True

    References:
        - Foret, Kleiner, Mobahi and Neyshabur, 2021, "Sharpness-Aware Minimization for Efficiently Improving
          Generalization", https://arxiv.org/abs/2010.01412
        - Kwon, Kim, Park and Choi, 2021, "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
          Learning of Deep Neural Networks", https://arxiv.org/abs/2102.11600
    """

    def __init__(self, model, rho=0.05, adaptive=False, eta=0.01, name=None, **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(f"Argument `model` must be a keras.Model. Received: model of type {type(model).__name__}")
        rho = _checks.finite_number("rho", rho, positive=True)
        _checks.boolean("adaptive", adaptive)
        eta = _checks.finite_number("eta", eta)
        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            raise ValueError(
                "SharpnessAwareMinimization trains on the 'tensorflow' and 'jax' backends. Received: "
                f"backend={backend!r}"
            )
        super().__init__(name=name or f"sam_{model.name}", **kwargs)
        self.model = model
        self.rho = rho
        self.adaptive = adaptive
        self.eta = eta
        if model.built:
            self.built = True

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def perturbation(self, weights, gradients):
        """`e` for each weight: the step to the worst point of the `rho`-ball, given the first-pass gradients."""
        if self.adaptive:
            scales = [ops.abs(w) + self.eta for w in weights]
            scaled = [s * g for s, g in zip(scales, gradients)]
            norm = ops.sqrt(sum(ops.sum(ops.square(t)) for t in scaled))
            return [self.rho * s * t / (norm + _EPSILON) for s, t in zip(scales, scaled)]
        norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in gradients))
        return [self.rho * g / (norm + _EPSILON) for g in gradients]

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        from tfopt import _tensorflow

        return _tensorflow.sam_train_step(self, *args)

    def _loss_metric(self):
        """The "loss" metric of the logs (its value is the first pass's loss)."""
        return next(m for m in self.metrics if m.name == "loss")

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, aux), gradients = grad_fn(
            trainable, non_trainable, metrics_variables, x, y, sample_weight,
            training=True, optimizer_variables=optimizer_variables,
        )
        loss, y_pred, non_trainable, metrics_variables = aux
        perturbed = [w + e for w, e in zip(trainable, self.perturbation(trainable, gradients))]
        # The second pass's state updates (BatchNorm statistics, seeds, loss trackers) are dropped.
        _, sharp_gradients = grad_fn(
            perturbed, non_trainable, metrics_variables, x, y, sample_weight,
            training=True, optimizer_variables=optimizer_variables,
        )
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, sharp_gradients, trainable
        )
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._loss_metric().update_state(loss, sample_weight=_first(x).shape[0])
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_variables = [
            v.value if scope.get_current_value(v) is None else scope.get_current_value(v)
            for v in self.metrics_variables
        ]
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "rho": self.rho,
                "adaptive": self.adaptive,
                "eta": self.eta,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


def _first(x):
    return next(t for t in keras.tree.flatten(x) if t is not None)
