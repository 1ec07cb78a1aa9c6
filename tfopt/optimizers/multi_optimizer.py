"""MultiOptimizer: one optimizer per group of layers or variables (discriminative fine-tuning), each with its own
learning rate, schedule and state."""

import keras

from tfopt.optimizers import _base
from tfopt.optimizers._wrapper import _INNER_ONLY, resolve_optimizer


def _group_variables(target):
    """The variables a pair's target names: a layer (or model), a variable, or a list of them."""
    if isinstance(target, (list, tuple)):
        return [v for item in target for v in _group_variables(item)]
    if isinstance(target, keras.layers.Layer):
        return list(target.trainable_variables)
    if isinstance(target, keras.Variable):
        return [target]
    raise TypeError("Argument `optimizers_and_layers` must pair each optimizer with a keras layer, a keras.Variable "
                    f"or a list of them. Received: a target {target!r} of type {type(target).__name__}")


def _local_path(path):
    return "/".join(path.split("/")[-2:])


@keras.saving.register_keras_serializable(package="tfopt")
class MultiOptimizer(_base.Optimizer):
    """Trains each group of variables with its own optimizer: a different algorithm, learning rate or schedule
    per layer group.

    For discriminative fine-tuning (a small learning rate for a pretrained backbone, a larger one for the new
    head), for a different algorithm per part of a model (Adam for embeddings, SGD for the rest), or to freeze
    a group softly with a near-zero rate. Each optimizer keeps its own slots and its own step count, so its
    schedule runs on the steps its group was updated; `model.save` stores every optimizer's state and
    `keras.models.load_model` resumes each where it was. It replaces TensorFlow Addons'
    `tfa.optimizers.MultiOptimizer` (same first argument).

    Groups are given either as `(optimizer, layers)` pairs, in which a layer (or model) stands for its trainable
    variables, or as `optimizers` and an `assign(variable)` function that returns, for each trainable variable,
    one of `optimizers` (or its index). Every trainable variable the model trains must belong to exactly one
    group. Saved once built, the groups are kept as the group of each trainable variable in the model's order,
    which `load_model` rebuilds the optimizer on (saved before, as the variables' paths).

    Args:
        optimizers_and_layers: a list of `(optimizer, target)` pairs; `target` is a layer, a model, a
            `keras.Variable` or a list of them; `optimizer` an instance, a name ("adam") or a config.
        optimizers: with `assign`, instead of the pairs: a list of optimizers.
        assign: a function from a variable to one of `optimizers` or its index.
        name: optional name.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    >>> optimizer = MultiOptimizer([(keras.optimizers.Adam(1e-4), model.layers[0]),
    ...                             (keras.optimizers.Adam(1e-2), model.layers[1])])
    >>> model.compile(optimizer, loss="mse")
    >>> import numpy as np
    >>> history = model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=1, verbose=0)
    >>> [int(o.iterations) for o in optimizer.optimizers]
    [1, 1]

    References:
        - Howard and Ruder, 2018, "Universal Language Model Fine-tuning for Text Classification" (discriminative
          fine-tuning), https://arxiv.org/abs/1801.06146
    """

    def __init__(self, optimizers_and_layers=None, optimizers=None, assign=None, name=None, *, variable_groups=None,
                 variable_paths=None, **kwargs):
        for key, default in _INNER_ONLY.items():
            if key in kwargs and kwargs.pop(key) != default:
                raise ValueError(f"Argument `{key}` is not taken by MultiOptimizer: set it on each group's "
                                 f"optimizer instead, e.g. keras.optimizers.Adam({key}=...).")
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self._targets = None
        self._assign = None
        self._paths = None
        self._positions = None
        if optimizers_and_layers is not None:
            if optimizers is not None or assign is not None:
                raise ValueError("Argument `optimizers_and_layers` must be given alone, without `optimizers` and "
                                 f"`assign`. Received: optimizers={optimizers!r}, assign={assign!r}")
            if not isinstance(optimizers_and_layers, (list, tuple)) or not optimizers_and_layers or not all(
                    isinstance(p, (list, tuple)) and len(p) == 2 for p in optimizers_and_layers):
                raise TypeError("Argument `optimizers_and_layers` must be a non-empty list of (optimizer, layers) "
                                f"pairs. Received: optimizers_and_layers={optimizers_and_layers!r}")
            self.optimizers = [resolve_optimizer(o) for o, _ in optimizers_and_layers]
            self._targets = [t for _, t in optimizers_and_layers]
        elif optimizers is not None:
            if not isinstance(optimizers, (list, tuple)) or not optimizers:
                raise TypeError(f"Argument `optimizers` must be a non-empty list. Received: optimizers={optimizers!r}")
            self.optimizers = [resolve_optimizer(o) for o in optimizers]
            if variable_groups is not None:
                self._positions = [int(g) for g in variable_groups]
            elif variable_paths is not None:
                self._paths = [list(p) for p in variable_paths]
            elif callable(assign):
                self._assign = assign
            else:
                raise TypeError("Argument `assign` must be a function from a variable to one of `optimizers` or its "
                                f"index. Received: assign={assign!r}")
        else:
            raise ValueError("MultiOptimizer needs `optimizers_and_layers`, or `optimizers` and `assign`. "
                             "Received neither.")
        self._group_of = None

    def _group_index(self, variable, position):
        if self._targets is not None:
            return [g for g, members in enumerate(self._members) if self._var_key(variable) in members]
        if self._positions is not None:
            return [self._positions[position]] if position < len(self._positions) else []
        if self._paths is not None:  # saved before it was built: matched without the enclosing models' scopes
            return [g for g, paths in enumerate(self._paths) if _local_path(variable.path) in map(_local_path, paths)]
        chosen = self._assign(variable)
        if isinstance(chosen, int) and 0 <= chosen < len(self.optimizers):
            return [chosen]
        for g, optimizer in enumerate(self.optimizers):
            if chosen is optimizer:
                return [g]
        raise ValueError(f"Argument `assign` must return one of `optimizers` or an index below {len(self.optimizers)}"
                         f". Received: {chosen!r} for variable {variable.path!r}")

    def build(self, var_list):
        if self.built:
            return
        if self._targets is not None:
            self._members = [{self._var_key(v) for v in _group_variables(t)} for t in self._targets]
        if self._positions is not None and len(self._positions) != len(var_list):
            raise ValueError(f"MultiOptimizer was saved for {len(self._positions)} trainable variables. Received: "
                             f"{len(var_list)} variables")
        groups = [[] for _ in self.optimizers]
        self._group_of = {}
        for position, variable in enumerate(var_list):
            found = self._group_index(variable, position)
            if len(found) != 1:
                raise ValueError(f"Every trainable variable must belong to exactly one MultiOptimizer group. "
                                 f"Received: variable {variable.path!r} in {len(found)} groups")
            groups[found[0]].append(variable)
            self._group_of[self._var_key(variable)] = found[0]
        for optimizer, variables in zip(self.optimizers, groups):
            if not optimizer.built:
                optimizer.build(variables)
        self._positions = [self._group_of[self._var_key(v)] for v in var_list]
        self._targets = None
        self._assign = None
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + [v for optimizer in self.optimizers for v in optimizer.variables]

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            if trainable_variables is None:
                raise ValueError("MultiOptimizer must be built before `apply` is called without "
                                 "`trainable_variables`: call `optimizer.build(trainable_variables)` first.")
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        variables = list(trainable_variables) if trainable_variables is not None else self._trainable_variables
        grouped = [([], []) for _ in self.optimizers]
        for gradient, variable in zip(grads, variables):
            group = grouped[self._group_of[self._var_key(variable)]]
            group[0].append(gradient)
            group[1].append(variable)
        for optimizer, (group_grads, group_variables) in zip(self.optimizers, grouped):
            if group_variables:
                optimizer.apply(group_grads, group_variables)
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list):
        for optimizer in self.optimizers:
            optimizer.finalize_variable_values(
                [v for v in var_list if self._group_of.get(self._var_key(v)) == self.optimizers.index(optimizer)])

    def get_config(self):
        config = {"name": self.name, "optimizers": [keras.saving.serialize_keras_object(o) for o in self.optimizers]}
        if self._positions is not None:  # built: the group of each trainable variable, in the model's order
            config["variable_groups"] = list(self._positions)
        elif self._targets is not None:
            config["variable_paths"] = [[v.path for v in _group_variables(t)] for t in self._targets]
        elif self._paths is not None:
            config["variable_paths"] = self._paths
        else:
            raise ValueError("A MultiOptimizer given `assign` can be serialized once built (its groups are then "
                             "stored per variable): call `optimizer.build(model.trainable_variables)` first.")
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizers = [keras.saving.deserialize_keras_object(o, custom_objects=custom_objects)
                      for o in config.pop("optimizers")]
        return cls(optimizers=optimizers, **config)
