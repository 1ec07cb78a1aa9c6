"""TensorFlow only: the guard's conditional update under a `tf.distribute` strategy.

A strategy whose replicas update through `merge_call` (MirroredStrategy in a graph) cannot run a `merge_call`
inside a conditional taken in a replica context, so, as Keras's `LossScaleOptimizer` does, the choice is made
once in the cross-replica context: every replica computed the same decision from the all-reduced gradients, the
first replica's is taken, and the chosen branch runs on every replica. Without a strategy (or with one that needs
no `merge_call`) it is a plain conditional.
"""

import contextlib

import keras


def conditional_update(update, apply, skip, grads):
    """Runs `apply(grads)` where the scalar bool `update` holds and `skip(grads)` where it does not."""
    import tensorflow as tf  # this module runs on the TensorFlow backend only

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


def variable_scope(optimizer):
    """The scope the guard's state variable is made in: the optimizer's strategy's, so that it is mirrored like
    the optimizer's own variables."""
    strategy = getattr(optimizer, "_distribution_strategy", None)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
