"""StructuredPruning: removes whole channels gradually inside `fit`, on a pruning schedule, for channel pruning."""

import keras

from tfopt import _checks
from tfopt.compression import _channel_graph, _channel_surgery
from tfopt.compression.prune_channels import choose_channels, group_amounts, kept_count
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.pruning_schedule import PruningSchedule

_CRITERIA = ("l1", "l2", "bn_gamma")


@keras.saving.register_keras_serializable(package="tfopt")
class StructuredPruning(keras.callbacks.Callback):
    """Gradual channel pruning: zeroes whole channels of the model being trained, on a `PruningSchedule`.

    One-shot `prune_channels` removes many channels at once and relies on fine-tuning to recover; pruning a few
    channels at a time while training (Zhu & Gupta's gradual schedule, applied to channels as in soft/hard filter
    pruning) lets the network adapt as it narrows. At each step where the schedule says so, the channels of every
    prunable group (see `tfopt.compression.prune_channels`: coupled layers, outputs kept) are scored with
    `criterion` and the lowest-scoring fraction `s(t)` is *masked*: the weights that make them (kernel columns,
    biases, DepthwiseConv filters, BatchNormalization gamma and beta) are set to zero, and set to zero again after
    every training batch, so every forward pass sees them dead and training adapts around them. A masked channel
    scores 0 and stays masked. After `fit`, `tfopt.compression.remove_dead_channels(model)` removes them and returns
    the small dense model, with the same predictions (for activations that map 0 to 0, such as relu).

    It reuses the pruning schedules of `prune_low_magnitude` (`PolynomialDecay`, `ConstantSparsity`, any
    `PruningSchedule`): at training step t (1 at the first batch, counted from the optimizer's iterations, so a
    resumed run continues the schedule)

        should_prune(t), s(t) = schedule(t)
        kept channels of a group of n = n - floor(s(t) n), the highest  sum_l s_l[c] / mean(s_l)  (see
        `prune_channels`)

    Without a schedule it prunes gradually from 0 to `target` over the first 70% of the training steps (cubic
    `PolynomialDecay`, 20 mask updates), so the rest fine-tunes the final architecture.

    The masks are written between batches: this works on every backend (under JAX the callback syncs the training
    state at each batch end, which costs about one weight copy per batch). With `steps_per_execution=k` Keras calls
    callbacks once per k steps, so the masks are updated and re-applied once per k steps (the masked weights may
    move slightly inside those k steps, and are zero again after them). The model must be Sequential or
    functional, with the layers `prune_channels` follows.

    Example:

    >>> import numpy as np
    >>> from tfopt.compression import remove_dead_channels
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> _ = model.fit(np.ones((64, 4)), np.ones((64, 1)), epochs=2, verbose=0, callbacks=[StructuredPruning(0.5)])
    >>> remove_dead_channels(model).layers[0].units
    4

    Args:
        target: the final fraction of channels removed from every prunable group, in [0, 1). Default 0.5. Must be
            None or the schedule's final sparsity when `schedule` is given.
        schedule: a `tfopt.compression.PruningSchedule` whose sparsity is the fraction of channels, or None
            (default: gradual over the first 70% of `fit`'s steps).
        criterion: "l1" (default), "l2" or "bn_gamma" (see `tfopt.compression.channel_importance`).
        min_channels: the fewest channels a group keeps. Default 1.
        round_to: keep a multiple of this many channels, or None.
        skip: names of layers to leave unpruned (see `prune_channels`).

    References:
        Zhu & Gupta, "To prune, or not to prune", 2017, https://arxiv.org/abs/1710.01878;
        He et al., "Soft Filter Pruning for Accelerating Deep CNNs", 2018, https://arxiv.org/abs/1808.06866
    """

    def __init__(self, target=0.5, schedule=None, criterion="l1", min_channels=1, round_to=None, skip=()):
        super().__init__()

        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise TypeError("Argument `schedule` must be a tfopt.compression.PruningSchedule (PolynomialDecay, "
                            f"ConstantSparsity, ...) or None. Received: schedule={schedule!r} of type "
                            f"{type(schedule).__name__}")
        if target is None and schedule is None:
            raise ValueError("Argument `target` must be a number in [0, 1) when no `schedule` is given. "
                             "Received: target=None")
        if target is not None:
            target = _checks.number("target", target, 0.0, 1.0, high_open=True)
            final = _final_sparsity(schedule)
            if final is not None and abs(final - target) > 1e-9:
                raise ValueError(f"Argument `target` must be None or the schedule's final sparsity ({final}). "
                                 f"Received: target={target}")
        self.target = target
        self.schedule = schedule
        self.criterion = _checks.choice("criterion", criterion, _CRITERIA)
        self.min_channels = _checks.integer("min_channels", min_channels, 1)
        self.round_to = None if round_to is None else _checks.integer("round_to", round_to, 1)
        if isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
            raise TypeError(f"Argument `skip` must be a list of layer names. Received: skip={skip!r}")
        self.skip = tuple(skip)
        self._graph = None
        self._masks = []
        self._active_schedule = None
        self.step = 0  # the last training step done
        self._epoch_start = 0
        self.sparsity = 0.0

    def on_train_begin(self, logs=None):

        self._graph = _channel_graph.ChannelGraph(self.model, self.skip)
        schedule = self.schedule
        if schedule is None:
            steps = (self.params or {}).get("steps")
            epochs = (self.params or {}).get("epochs") or 1
            if not steps:
                raise ValueError("StructuredPruning without a `schedule` needs the number of steps per epoch, which "
                                 "fit does not know for this data (a dataset of unknown length): pass `schedule=` "
                                 "(e.g. PolynomialDecay(0, 0.5, begin_step=0, end_step=..., frequency=...)).")
            schedule = PolynomialDecay.over_steps(self.target, int(steps) * int(epochs))
        self._active_schedule = schedule
        final = self.target if self.target is not None else _final_sparsity(schedule)
        if final is not None:  # fail before training, not at the last mask update
            for root, amount in group_amounts(self._graph, final).items():
                kept_count(self._graph.size[root], amount, self.min_channels, self.round_to,
                           self._graph.group_layers(root))
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) if self.model.optimizer else 0
        self._epoch_start = self.step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.step

    def on_train_batch_begin(self, batch, logs=None):
        # With steps_per_execution = k, Keras calls this once per k steps (batch = index of the first): the masks
        # follow the last step of those k at which the schedule prunes.
        first = self._epoch_start + int(batch) + 1
        k = max(1, int(getattr(self.model, "steps_per_execution", 1) or 1))
        sparsity = None
        for step in range(first, first + k):
            should_prune, value = self._active_schedule(step)
            if bool(keras.ops.convert_to_numpy(should_prune)):
                sparsity = value
        if sparsity is None:
            return

        self._sync()
        self.sparsity = float(keras.ops.convert_to_numpy(sparsity))
        keep = choose_channels(self._graph, group_amounts(self._graph, self.sparsity), self.criterion,
                               self.min_channels, self.round_to)
        self._masks = _channel_surgery.channel_masks(self._graph, keep)
        self._apply()

    def on_train_batch_end(self, batch, logs=None):
        self.step = self._epoch_start + int(batch) + 1
        if self._masks:
            self._sync()
            self._apply()

    def on_train_end(self, logs=None):
        if self._masks:
            self._sync()
            self._apply()

    def _sync(self):
        sync = getattr(self.model, "jax_state_sync", None)
        if callable(sync):  # JAX: write the training state into the variables (the next step reads them back)
            sync()

    def _apply(self):
        for variable, mask in self._masks:
            variable.assign(keras.ops.multiply(variable.value, keras.ops.cast(mask, variable.dtype)))

    def get_config(self):
        return {
            "target": self.target,
            "schedule": None if self.schedule is None else keras.saving.serialize_keras_object(self.schedule),
            "criterion": self.criterion,
            "min_channels": self.min_channels,
            "round_to": self.round_to,
            "skip": list(self.skip),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("schedule") is not None:
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def _final_sparsity(schedule):
    if schedule is None:
        return None
    config = schedule.get_config()
    for key in ("final_sparsity", "target_sparsity"):
        if key in config:
            return float(config[key])
    return None


