"""TensorFlow-only: the compatibility fix that makes Keras 3 `model.fit` work under MultiWorkerMirroredStrategy."""

import inspect
import sys

import keras
import tensorflow as tf

# The Keras releases checked by hand: every 3.x up to this one ships both faults (`_maybe_symbolic_build` since it
# appeared, the scalar reduction since 3.0). Later releases are patched only if their source still has the faults.
LAST_CHECKED_KERAS = (3, 15, 1)
_BUILD_FAULT = "distribute_strategy.reduce("
_REDUCE_FAULT = 'strategy.reduce("MEAN", v, axis=0)'
_MARK = "_tfopt_multi_worker_patch"


def _version(text):
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts + [0] * (3 - len(parts)))


def _trainer():
    """Keras's TensorFlow trainer class and its module, found through `keras.Model`'s bases (no `keras.src`)."""
    for cls in keras.Model.__mro__:
        if hasattr(cls, "_maybe_symbolic_build") and cls.__name__ == "TensorFlowTrainer":
            module = sys.modules.get(cls.__module__)
            if module is not None and callable(getattr(module, "reduce_per_replica", None)):
                return cls, module
    return None, None


def _has_fault(function, fault):
    try:
        return fault in inspect.getsource(function)
    except (OSError, TypeError):
        return None  # no source (a frozen install): decide by version


def _in_multi_worker_mode(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def _first_local_value(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _fixed_symbolic_build(original):
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None and _in_multi_worker_mode(strategy):
            # The batch only donates shapes and dtypes to the symbolic build. Keras averages the replicas' batches
            # with `strategy.reduce`, which across workers is a collective on a tuple of PerReplica values and
            # fails; this worker's first replica batch has the same structure and needs no communication.
            for item in iterator:
                data_batch = keras.tree.map_structure(_first_local_value, next(item[-1]))
                break
            iterator = None
        return original(self, iterator=iterator, data_batch=data_batch)

    setattr(_maybe_symbolic_build, _MARK, True)
    return _maybe_symbolic_build


def _fixed_reduce_per_replica(original):
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            # The mean over the replicas is what "mean" means on one worker (`tf.reduce_mean` over the stacked
            # replica values); across workers Keras passes axis=0, which also averages inside each value and fails
            # on the scalar loss and metrics. axis=None is the mean over replicas only.
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    setattr(reduce_per_replica, _MARK, True)
    return reduce_per_replica


def patch_keras_multi_worker():
    """Makes Keras 3 `model.fit` / `evaluate` work under `tf.distribute.MultiWorkerMirroredStrategy`.

    Keras 3 (checked up to 3.15.1) fails there as shipped, on the first batch: its symbolic build averages the
    first input batch across workers with `strategy.reduce` ("Attempt to convert a value (PerReplica...)"), and
    with that fixed, the step's outputs are reduced with `strategy.reduce("MEAN", value, axis=0)`, which fails on
    the scalar loss ("Invalid reduction dimension 0 for input with 0 dimensions")
    (keras-team/keras#20585, tensorflow/tensorflow#72388). This function applies the two smallest fixes:

    - the symbolic build takes this worker's first replica batch (it only needs the batch's shapes and dtypes);
    - the reduction of the step's outputs over replicas uses `axis=None`: the mean across replicas, the same
      result the single-worker branch computes.

    Both act only when the strategy is a MultiWorkerMirroredStrategy in multi-worker mode; every other strategy
    runs Keras's own code. The fix is applied only when needed: on the TensorFlow backend, for Keras 3 releases
    whose trainer still has the faults (read from its source; by version, <= 3.15.1, when no source is
    installed). Calling it again changes nothing. `tfopt.strategies.get_strategy` calls it whenever it returns a
    MultiWorkerMirroredStrategy; call it yourself if you build the strategy without tfopt.

    Returns:
        A list of what was patched now: any of "_maybe_symbolic_build" and "reduce_per_replica" (empty when this
        Keras does not need the fix, or it is already applied).

    References:
        - keras-team/keras#20585, https://github.com/keras-team/keras/issues/20585
        - tensorflow/tensorflow#72388, https://github.com/tensorflow/tensorflow/issues/72388
    """
    version = _version(keras.__version__)
    if keras.backend.backend() != "tensorflow" or version[0] != 3:
        return []
    trainer, module = _trainer()
    if trainer is None:
        return []
    patched = []
    build = trainer._maybe_symbolic_build
    if not getattr(build, _MARK, False) and _needs(build, _BUILD_FAULT, version):
        trainer._maybe_symbolic_build = _fixed_symbolic_build(build)
        patched.append("_maybe_symbolic_build")
    reduce = module.reduce_per_replica
    if not getattr(reduce, _MARK, False) and _needs(reduce, _REDUCE_FAULT, version):
        module.reduce_per_replica = _fixed_reduce_per_replica(reduce)
        patched.append("reduce_per_replica")
    return patched


def _needs(function, fault, version):
    present = _has_fault(function, fault)
    if present is None:
        return version <= LAST_CHECKED_KERAS
    return present
