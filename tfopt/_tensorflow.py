"""TensorFlow-only pieces of backend-agnostic objects, imported by them only when the backend is TensorFlow.

The modules in tfopt/models, tfopt/layers, tfopt/optimizers and tfopt/schedules never import TensorFlow; where a
Keras 3 object needs a TensorFlow-specific step (a `tf.GradientTape`, the `tf.distribute` replica count), the step
lives here and the object calls it on the TensorFlow backend.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops


def replicas_in_sync():
    """Replicas in sync under the current `tf.distribute` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def sam_train_step(sam, data):
    """`SharpnessAwareMinimization.train_step` on TensorFlow: two gradient tapes, one optimizer step.

    The second pass runs the model at `w + e` through a `keras.StatelessScope`, so no variable is assigned between
    the passes (which keeps every replica's mirrored weights untouched under `tf.distribute`).
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    variables = sam.trainable_variables
    with tf.GradientTape() as tape:
        y_pred = sam(x, training=True)
        loss = sam.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        scaled_loss = sam.optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled_loss, variables)
    values = [v.value for v in variables]
    gradients = [ops.zeros_like(w) if g is None else g for w, g in zip(values, gradients)]
    perturbed = [w + e for w, e in zip(values, sam.perturbation(values, gradients))]
    with tf.GradientTape() as tape:
        tape.watch(perturbed)
        with keras.StatelessScope(state_mapping=list(zip(variables, perturbed))):
            sharp_pred = sam(x, training=True)
            sharp_loss = sam.compute_loss(x=x, y=y, y_pred=sharp_pred, sample_weight=sample_weight, training=True)
        sharp_loss = sam.optimizer.scale_loss(sharp_loss)
    sharp_gradients = tape.gradient(sharp_loss, perturbed)
    sam.optimizer.apply_gradients(zip(sharp_gradients, variables))
    # The compiled loss is divided by the number of replicas (so summed gradients average); the log is not.
    first = next(t for t in keras.tree.flatten(x) if t is not None)
    sam._loss_metric().update_state(loss * replicas_in_sync(), sample_weight=tf.shape(first)[0])
    return sam.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def fake_quant(x, minimum, maximum, num_bits=8, narrow_range=False):
    """TensorFlow's `FakeQuantWithMinMaxVars` (per tensor) or its per-channel form (last axis) for `[min, max]`.

    The same rounding as `tfopt.layers.quantizers.fake_quant_affine`; as a FakeQuant op in the graph, it is what
    `tf.lite.TFLiteConverter` reads as an int8 tensor's range, so a QAT model traced at inference converts to a
    full-integer file whichever way it is converted (`export_tflite` or `TFLiteConverter.from_keras_model`).
    """
    minimum = ops.minimum(ops.convert_to_tensor(minimum, "float32"), 0.0)
    maximum = ops.maximum(ops.convert_to_tensor(maximum, "float32"), 0.0)
    if len(minimum.shape):
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            x, minimum, maximum, num_bits=num_bits, narrow_range=narrow_range)
    return tf.quantization.fake_quant_with_min_max_vars(x, minimum, maximum, num_bits=num_bits,
                                                        narrow_range=narrow_range)


def unique_rows(gradient):
    """`(indices, values)` of a `tf.IndexedSlices` gradient with repeated indices summed (each row once), as
    TensorFlow's optimizers see a sparse gradient (an `Embedding` lookup repeats a row once per occurrence)."""
    indices, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(indices)[0])
    return indices, values


def rows(values, indices, variable):
    """`values` for the rows `indices` of `variable`, as a `tf.IndexedSlices` that the optimizer's `assign*`
    writes with a scatter (only those rows are read and written)."""
    return tf.IndexedSlices(values, indices, dense_shape=tf.shape(variable))


def conditional_update(update, apply, skip, grads):
    """The non-finite guard's conditional update: `apply(grads)` where the scalar bool `update` holds, `skip(grads)`
    where it does not.

    A strategy whose replicas update through `merge_call` (MirroredStrategy in a graph) cannot run a `merge_call`
    inside a conditional taken in a replica context, so, as Keras's `LossScaleOptimizer` does, the choice is made
    once in the cross-replica context: every replica computed the same decision from the all-reduced gradients,
    the first replica's is taken, and the chosen branch runs on every replica. Without a strategy (or with one that
    needs no `merge_call`) it is a plain conditional.
    """

    def branch(function):
        def run():
            function(grads)
            return tf.constant(0)

        return run

    if not tf.distribute.has_strategy() or tf.__internal__.distribute.strategy_supports_no_merge_call():
        keras.ops.cond(update, branch(apply), branch(skip))
        return

    def cross_replica(distribution, update, grads):
        decision = distribution.experimental_local_results(update)[0]

        def each(function):
            def run():
                distribution.extended.call_for_each_replica(function, args=(grads,))
                return tf.constant(0)

            return run

        def record():
            # Once, in the cross-replica context, on the first replica's (all-reduced, so common) gradients.
            skip([None if g is None else distribution.experimental_local_results(g)[0] for g in grads])
            return tf.constant(0)

        tf.cond(decision, each(apply), record)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(update, grads))


def optimizer_variable_scope(optimizer):
    """The scope the guard's state variable is made in: the optimizer's strategy's, so that it is mirrored like
    the optimizer's own variables."""
    strategy = getattr(optimizer, "_distribution_strategy", None)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
