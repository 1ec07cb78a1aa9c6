"""GradientNormMonitor: the global and per-layer gradient norms of a model's loss, in the epoch logs and in
TensorBoard.

The gradients come from `tfopt.callbacks._gradients` (backend-specific: TensorFlow, JAX or PyTorch); the norms are
NumPy. The TensorBoard part writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it
works under any Keras backend.
"""

import math

import keras
import numpy as np

from tfopt import _checks
from tfopt.callbacks import _gradients, _optimizer
from tfopt.callbacks._summary_writer import SummaryWriterCallback

PREFIX = "gradient_norm"


@keras.saving.register_keras_serializable(package="tfopt")
class GradientNormMonitor(SummaryWriterCallback):
    """Records the gradient norm of the model's loss, over all weights and layer by layer.

    Use it to see exploding or vanishing gradients, which layer dominates the update, or whether a clipping
    threshold (`clipnorm`, `global_clipnorm`, `AdaptiveGradientClipping`) ever acts. Keras 3 callbacks cannot see
    the gradients `fit` computes (they stay inside the compiled train step), so this callback holds one batch
    `data = (x, y[, sample_weight])` and, when it logs, differentiates the compiled loss (plus the model's
    regularization `losses`) on that batch at the weights' current values. The cost is one forward and backward
    pass per logged point; the values are those of a fixed batch, so successive points compare like with like.
    The model must compute its loss from `(x, y)` alone, as compiled models do (a `keras.distillation.Distiller`
    trained on cached teacher outputs does not). Under a `tf.distribute` strategy with several replicas each
    replica differentiates the batch and the first one's result is used (the values equal one device's).

    With g_v the gradient for trainable variable v and L(l) the trainable variables of top-level layer l (a
    wrapper counts with the layer it wraps):

        global:      ||g|| = sqrt(sum_v ||g_v||_2^2)
        per layer:   ||g_l|| = sqrt(sum_{v in L(l)} ||g_v||_2^2)

    At the end of every epoch "gradient_norm" (global) goes into the epoch logs (so into `History`); with
    `log_dir`, the scalars `gradient_norm/global` and `gradient_norm/<layer name>` are written to an event file
    in `log_dir/gradients` at the optimizer step, at each epoch end or every `update_freq` optimizer steps.
    `history` keeps every logged point as `(step, {tag: value})`.

    Args:
        data: the batch to differentiate on: a tuple `(x, y)` or `(x, y, sample_weight)` of arrays (keep it
            small: a few dozen examples).
        log_dir: directory for the TensorBoard event file, or None (default) for the epoch logs only.
        update_freq: "epoch" (default), or an integer >= 1: also write every this many optimizer steps (each
            point costs a forward and backward pass; on JAX it also copies the training state back).
        training: run the forward pass in training mode (dropout active, BatchNormalization on batch
            statistics), as the train step does. Default False: inference mode, so a point depends only on the
            weights.
    """

    subdir = "gradients"

    def __init__(self, data, log_dir=None, update_freq="epoch", training=False):
        super().__init__(log_dir, update_freq, optional_log_dir=True)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise TypeError(
                "Argument `data` must be a tuple (x, y) or (x, y, sample_weight) holding one batch. Received: "
                f"data of type {type(data).__name__}" + (f" with {len(data)} items" if isinstance(data, (tuple, list))
                                                          else "")
            )
        _checks.boolean("training", training)
        self.data = tuple(data)
        self.training = training
        self.history = []

    def gradient_norms(self):
        """The norms at the current weights: a dict tag -> float (`gradient_norm/global` and one per layer)."""
        x, y = self.data[0], self.data[1]
        sample_weight = self.data[2] if len(self.data) == 3 else None
        _, grads = _gradients.loss_gradients(self.model, x, y, sample_weight, training=self.training)
        squares = {id(v): float(np.sum(np.square(g, dtype=np.float64)))
                   for v, g in zip(self.model.trainable_variables, grads)}
        values = {f"{PREFIX}/global": math.sqrt(sum(squares.values()))}
        for layer in self.model.layers:
            variables = layer.trainable_variables
            if variables:
                values[f"{PREFIX}/{layer.name}"] = math.sqrt(sum(squares.get(id(v), 0.0) for v in variables))
        return values

    def on_train_begin(self, logs=None):
        self.history = []
        super().on_train_begin(logs)

    def record(self):
        step = _optimizer.iterations(self.model.optimizer)
        if self.history and self.history[-1][0] == step:
            return self.history[-1][1]
        values = self.gradient_norms()
        self.history.append((step, values))

        def write(tf, step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value, step=step)

        self.summarize(write, step)
        return values

    def on_epoch_end(self, epoch, logs=None):
        values = self.record()
        if logs is not None:
            logs[PREFIX] = values[f"{PREFIX}/global"]

    def get_config(self):
        # The batch is data, not configuration: a restored callback needs it passed again.
        return {"log_dir": self.log_dir, "update_freq": self.update_freq, "training": self.training}
