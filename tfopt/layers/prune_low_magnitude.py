"""PruneLowMagnitude: the layer wrapper that prunes a layer's weights by magnitude while the model trains."""

import uuid

import keras
from keras import ops

from tfopt import _checks
from tfopt.layers import _pruning_masks as masks
from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.pruning_rules import is_prunable, prunable_weights, unsupported_message
from tfopt.layers.pruning_schedule import PruningSchedule

SCOPES = ("layer", "global")
# pruning_scope="global": each pruned weight keeps at least 1% of its weights (or blocks), and at least one.
GLOBAL_MAX_SPARSITY = 0.99

def check_arguments(pruning_schedule, block_size, sparsity_m_by_n, pruning_scope):
    """Validates the pruning arguments; returns them normalised (block_size and sparsity_m_by_n as tuples)."""
    if not isinstance(pruning_schedule, PruningSchedule):
        raise TypeError(
            "Argument `pruning_schedule` must be a tfopt.compression.PruningSchedule (ConstantSparsity, "
            f"PolynomialDecay, ...). Received: pruning_schedule={pruning_schedule!r} of type "
            f"{type(pruning_schedule).__name__}"
        )
    block_size = _pair("block_size", block_size, "a pair of integers >= 1")
    if min(block_size) < 1:
        raise ValueError(f"Argument `block_size` must be a pair of integers >= 1. Received: block_size={block_size!r}")
    if sparsity_m_by_n is not None:
        allowed = "None or a pair (N, M) of integers with 1 <= N < M"
        sparsity_m_by_n = _pair("sparsity_m_by_n", sparsity_m_by_n, allowed)
        n, m = sparsity_m_by_n
        if not 1 <= n < m:
            raise ValueError(f"Argument `sparsity_m_by_n` must be {allowed}. Received: sparsity_m_by_n={(n, m)!r}")
        if block_size != (1, 1):
            raise ValueError(
                "Argument `block_size` must be (1, 1) when `sparsity_m_by_n` is set: N:M and block sparsity are "
                f"two different structures. Received: block_size={block_size!r}, sparsity_m_by_n={(n, m)!r}"
            )
    pruning_scope = _checks.choice("pruning_scope", pruning_scope, SCOPES)
    if pruning_scope == "global" and sparsity_m_by_n is not None:
        raise ValueError(
            "Argument `pruning_scope` must be 'layer' with `sparsity_m_by_n`: an N:M pattern holds in every group, "
            f"there is no threshold to share. Received: pruning_scope='global', sparsity_m_by_n={sparsity_m_by_n!r}"
        )
    return pruning_schedule, block_size, sparsity_m_by_n, pruning_scope


def _pair(name, value, allowed):
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_checks._is_integer(v) for v in value):
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return (int(value[0]), int(value[1]))


class _Refs:
    """Holds references the layer must not track as its own (peer layers, the wrapped layer's variables)."""

    def __init__(self, items):
        self.items = items


# Global scope: the wrappers that share one threshold are linked by a group id saved in each one's config with
# its index; a model built or loaded fills one set of slots, the next load of the same model fills a new set.
_OPEN_GROUPS = {}


def _join_group(wrapper, group):
    slots = _OPEN_GROUPS.get(group["id"])
    if slots is None or slots[group["index"]] is not None:
        slots = [None] * group["size"]
        _OPEN_GROUPS[group["id"]] = slots
    slots[group["index"]] = wrapper
    wrapper._peers = _Refs(slots)
    if all(s is not None for s in slots):
        del _OPEN_GROUPS[group["id"]]


def link_global(wrappers):
    """Makes `wrappers` share one magnitude threshold (they must all have pruning_scope='global')."""
    wrappers = list(wrappers)
    schedules = {repr(w.pruning_schedule.get_config()) + type(w.pruning_schedule).__name__ for w in wrappers}
    if len(schedules) > 1:
        raise ValueError(
            "Argument `pruning_schedule` must be the same for every layer pruned with pruning_scope='global' "
            f"(one threshold, updated at the same steps). Received {len(schedules)} different schedules."
        )
    group_id = uuid.uuid4().hex
    for index, wrapper in enumerate(wrappers):
        wrapper.global_group = {"id": group_id, "index": index, "size": len(wrappers)}
        _join_group(wrapper, wrapper.global_group)


@keras.saving.register_keras_serializable(package="tfopt")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Prunes the wrapped layer's weights by magnitude during training, following a `PruningSchedule`.

    Use `tfopt.compression.prune_low_magnitude` to wrap a whole model (or a layer); this class is what it puts
    around each prunable layer. The wrapper keeps one non-trainable mask per pruned weight and computes the
    layer's output with `weight * mask`, so the pruned weights are exactly zero in every forward pass and get a
    zero gradient. `tfopt.compression.strip_pruning` then gives the plain layer with the zeros in place.

    The step, without a callback: the wrapper counts its training calls in a non-trainable `pruning_step` (1 at
    the first training batch, as tfmot's step), and at each step where the schedule says so recomputes the masks
    inside the compiled training step (`keras.ops.cond`); like Dropout, it trains only when called with
    `training=True` (`fit` does; a subclassed model must accept `training` in `call` and pass it on). So pruning
    follows the training batches exactly on every backend, also with `steps_per_execution > 1`, under
    `tf.distribute.MirroredStrategy` (every replica computes the same mask from the same mirrored weights; the
    pruning variables are synchronised on read from the first replica) and after a resume (the step and masks are
    saved with the model). `tfopt.callbacks.UpdatePruningStep` is optional: it also writes `weight * mask` into the
    stored weights at the end of every epoch and of training (after an optimizer's EMA overwrite), so that
    checkpoints hold the zeros too.

    Masks, at step t with should_prune(t) and target sparsity s(t) from the schedule:

        score    = |w * mask|                              (unstructured), or the mean of |w * mask| per block
        T        = the k-th largest score, k = max(round(n (1 - s(t))), 1) over the layer's n scores
                   (over every wrapped layer's scores with pruning_scope="global", then lowered for a weight
                   to its own k_min-th largest score, k_min = max(round(0.01 n_w), 1) of its n_w scores: global
                   pruning never removes more than 99% of a weight, so no layer is emptied)
        mask     = score >= T
        N:M      : keep the N largest |w * mask| in every M consecutive weights along the input-channel axis

    Pruned weights stay pruned (their score is 0). With N:M the schedule only says when the pattern is
    recomputed; its sparsity is 1 - N/M.

    Args:
        layer: the layer to prune: Dense, EinsumDense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D,
            SeparableConv1D/2D, Embedding, or a layer with `get_prunable_weights()` (`tfopt.layers.PrunableLayer`).
        pruning_schedule: a `PruningSchedule`. Default `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        block_size: `(rows, cols)` blocks over the last two axes of each weight, pruned whole. Default (1, 1).
        sparsity_m_by_n: `(N, M)`: at most N non-zeros in every M consecutive weights along the input-channel
            axis (2:4 is `(2, 4)`), or None (default).
        pruning_scope: "layer" (default): a threshold per weight; "global": one threshold across every layer
            wrapped in the same `prune_low_magnitude` call, with a floor: each weight keeps at least 1% of its
            weights (and at least one), so the total sparsity can end slightly below the schedule's.
        global_group: set by `prune_low_magnitude` for pruning_scope="global" and saved in the config so a loaded
            model relinks its layers; leave it None.
        **kwargs: base layer arguments (`name`, ...).

    References:
        Zhu & Gupta, "To prune, or not to prune", 2017, https://arxiv.org/abs/1710.01878;
        Mishra et al., "Accelerating Sparse Deep Neural Networks" (2:4), 2021, https://arxiv.org/abs/2104.08378
    """

    def __init__(self, layer, pruning_schedule=None, block_size=(1, 1), sparsity_m_by_n=None, pruning_scope="layer",
                 global_group=None, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"Argument `layer` must be a keras.layers.Layer. Received: layer={layer!r} of type "
                            f"{type(layer).__name__}")
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(f"Argument `layer` must not be pruned twice. Received: layer={layer.name!r}, already "
                             "a PruneLowMagnitude")
        if not is_prunable(layer):
            raise ValueError(unsupported_message(layer))
        if pruning_schedule is None:
            pruning_schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
        (self_schedule, block_size, sparsity_m_by_n, pruning_scope) = check_arguments(
            pruning_schedule, block_size, sparsity_m_by_n, pruning_scope)
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        super().__init__(layer, **kwargs)
        # A first layer given `input_shape` (Keras 2 style) still gives its Sequential model an input.
        if getattr(layer, "_input_shape_arg", None) is not None:
            self._input_shape_arg = layer._input_shape_arg
        self.pruning_schedule = self_schedule
        self.block_size = block_size
        self.sparsity_m_by_n = sparsity_m_by_n
        self.pruning_scope = pruning_scope
        self.global_group = None
        self._peers = None
        if global_group is not None and pruning_scope == "global":
            self.global_group = dict(global_group)
            _join_group(self, self.global_group)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        found = prunable_weights(self.layer)
        for variable, axis in found:
            where = f"layer {self.layer.name!r} weight {variable.name!r}"
            if self.block_size != (1, 1):
                masks.check_block_divides(self.block_size, variable.shape, where)
            if self.sparsity_m_by_n is not None:
                masks.check_n_m_divides(self.sparsity_m_by_n, variable.shape, axis, where)
        self._pruned_refs = _Refs([variable for variable, _ in found])
        self._n_m_axes = [axis for _, axis in found]
        # Synchronised on read, taken from the first replica: under MirroredStrategy each replica updates its own
        # copy inside the training step (no cross-replica call inside a cond), and all copies are equal.
        state = {"trainable": False, "synchronization": "on_read", "aggregation": "only_first_replica"}
        self.pruning_step = keras.Variable(keras.initializers.Zeros(), shape=(), dtype="int32", name="pruning_step",
                                           **state)
        self.masks = [
            keras.Variable(keras.initializers.Ones(), shape=v.shape, dtype=v.dtype, name=f"{v.name}_mask", **state)
            for v in self._pruned
        ]
        self.thresholds = [
            keras.Variable(keras.initializers.Zeros(), shape=(), dtype="float32", name=f"{v.name}_threshold",
                           **state) for v in self._pruned
        ]
        self.built = True

    @property
    def _pruned(self):
        return self._pruned_refs.items

    @property
    def pruned_weights(self):
        """The wrapped layer's variables that are masked."""
        return list(self._pruned)

    def masked_weights(self):
        """`weight * mask` for each pruned weight (tensors)."""
        return [v.value * ops.cast(m.value, v.dtype) for v, m in zip(self._pruned, self.masks)]

    def _scores(self):
        return [masks.scores(w, self.block_size) for w in self.masked_weights()]

    def _peer_list(self):
        if self.pruning_scope != "global" or self._peers is None:
            return [self]
        peers = self._peers.items
        missing = sum(p is None for p in peers)
        if missing:
            raise ValueError(
                f"Layer {self.name!r} prunes with pruning_scope='global' in a group of {len(peers)} layers, "
                f"but {missing} of them are not in this model: load or clone the whole pruned model."
            )
        for peer in peers:
            if not peer.built:
                raise ValueError(f"Layer {peer.name!r} of the global pruning group is not built yet.")
        return peers

    def _new_masks(self, sparsity):
        if self.sparsity_m_by_n is not None:
            n, m = self.sparsity_m_by_n
            pairs = [masks.n_m_mask(w, n, m, axis, mask.dtype)
                     for w, axis, mask in zip(self.masked_weights(), self._n_m_axes, self.masks)]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        own = self._scores()
        if self.pruning_scope == "global":
            everyone = [score for peer in self._peer_list() for score in (own if peer is self else peer._scores())]
            shared = masks.threshold(everyone, sparsity)
            # The floor: a weight never loses more than GLOBAL_MAX_SPARSITY of its scores to the shared threshold,
            # so a small layer is never emptied (a layer without weights cuts the network).
            thresholds = [ops.minimum(shared, masks.threshold([score], GLOBAL_MAX_SPARSITY)) for score in own]
        else:
            thresholds = [masks.threshold([score], sparsity) for score in own]
        new = [
            ops.cast(masks.expand(ops.greater_equal(score, t), self.block_size, w.shape), mask.dtype)
            for score, t, w, mask in zip(own, thresholds, self._pruned, self.masks)
        ]
        return new, thresholds

    def _update_masks(self):
        step = self.pruning_step.value + 1
        self.pruning_step.assign(step)
        should_prune, sparsity = self.pruning_schedule(step)
        old = ([m.value for m in self.masks], [t.value for t in self.thresholds])
        # Computed functionally and assigned after the cond, so that JAX's traced state never leaves a branch.
        new_masks, new_thresholds = ops.cond(
            should_prune,
            lambda: tuple(list(x) for x in self._new_masks(sparsity)),
            lambda: old,
        )
        for variable, value in zip(self.masks, new_masks):
            variable.assign(value)
        for variable, value in zip(self.thresholds, new_thresholds):
            variable.assign(ops.cast(value, "float32"))

    def call(self, inputs, training=None, **kwargs):
        if training is True:
            self._update_masks()
        substitutes = {id(v): w for v, w in zip(self._pruned, self.masked_weights())}
        mapping = [(v, substitutes.get(id(v), v.value)) for v in self.layer.variables]
        if training is not None:
            kwargs["training"] = training
        # The wrapped layer runs with `weight * mask` in place of its weights (the weights themselves keep their
        # values); what it changes in its other state and the losses it adds are carried out of the scope.
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            outputs = self.layer(inputs, **kwargs)
        for variable, value in mapping:
            new = scope.get_current_value(variable)
            if id(variable) not in substitutes and new is not None and new is not value:
                variable.assign(new)
        for loss in scope.losses:
            self.add_loss(loss)
        return outputs

    def apply_masks(self):
        """Writes `weight * mask` into the stored weights (outside training: eager)."""
        for variable, value in zip(self._pruned, self.masked_weights()):
            variable.assign(value)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("training", None)
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "pruning_schedule": keras.saving.serialize_keras_object(self.pruning_schedule),
            "block_size": list(self.block_size),
            "sparsity_m_by_n": None if self.sparsity_m_by_n is None else list(self.sparsity_m_by_n),
            "pruning_scope": self.pruning_scope,
            "global_group": None if self.global_group is None else dict(self.global_group),
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"], custom_objects=custom_objects)
        config["pruning_schedule"] = keras.saving.deserialize_keras_object(
            config["pruning_schedule"], custom_objects=custom_objects)
        return cls(**config)
