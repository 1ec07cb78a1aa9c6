"""Reading the layer graph of a Sequential or functional model from its public config: the one reader shared by
BatchNorm folding, quantization, channel pruning (`_channel_graph`) and the rebuilding of models from configs.

`check_model` is the one "Sequential or functional, and built?" check; `layer_calls` gives each layer's inputs per
call and its consumers; `topology` orders single-call layers after their inputs; `output_refs` / `set_output_refs`
read and write a functional config's outputs (stored as one `[name, node, tensor]` or a list of them);
`from_config` rebuilds a model of the same kind from an edited config, and `clone_with_wrappers` clones one
with some layers wrapped (clustering, QAT).
"""

import keras

DEFAULT_ADVICE = "Build it with the functional API (keras.Model(inputs, outputs)) instead."


def is_graph_model(model):
    """Whether `model` is Sequential or functional: a model whose layer graph its config describes."""
    return isinstance(model, keras.Sequential) or isinstance(model, keras.Function)


def check_model(model, argument="model", *, built=True, advice=DEFAULT_ADVICE):
    """TypeError unless `model` is a keras.Model; ValueError unless it is Sequential or functional (a subclassed
    model's layer graph cannot be read or rebuilt: `advice` says what to do instead) and, when `built`, built."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `{argument}` must be a keras.Model. Received: {argument}={model!r} of type "
                        f"{type(model).__name__}")
    if not is_graph_model(model):
        raise ValueError(
            f"Argument `{argument}` must be a Sequential or functional keras.Model; {model.name!r} is a subclassed "
            f"model ({type(model).__name__}), whose layer graph cannot be read or rebuilt. {advice}"
        )
    if built and (not model.built or not model.inputs):
        raise ValueError(f"Argument `{argument}` must be built (called on an input). Received: unbuilt {model.name!r}")


def tensor_refs(node):
    """The serialized tensors (dicts with a `keras_history` of `[layer_name, node_index, tensor_index]`) anywhere
    inside a serialized call."""
    if isinstance(node, dict):
        if "keras_history" in node:
            yield node
        for value in node.values():
            yield from tensor_refs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from tensor_refs(value)


def entry_name(entry):
    """The name of a layer entry of a functional model's config."""
    return entry.get("name") or entry["config"]["name"]


def layer_calls(model):
    """`(inbound, consumers)`: for each layer name, the names of the layers it reads from (one entry per call,
    in order) and of the layers that read it. Model inputs appear as their InputLayer's name."""
    config = model.get_config()
    inbound = {}
    if isinstance(model, keras.Sequential):
        previous = None
        for entry in config["layers"]:
            name = entry["config"]["name"]
            inbound[name] = [] if previous is None else [[previous]]
            previous = name
        if model.layers and model.layers[0].name in inbound and not inbound[model.layers[0].name]:
            inbound[model.layers[0].name] = [[]]
    else:
        for entry in config["layers"]:
            inbound[entry["name"]] = [
                [ref["keras_history"][0] for ref in tensor_refs(node)] for node in entry.get("inbound_nodes", [])
            ]
    consumers = {name: [] for name in inbound}
    for name, calls in inbound.items():
        for call in calls:
            for source in call:
                consumers.setdefault(source, []).append(name)
    return inbound, consumers


def topology(model):
    """`[(layer, [input layer names])]` in an order where every layer follows its inputs; InputLayers have [].

    Raises a ValueError for a layer called more than once (shared) or with several outputs.
    """
    config = model.get_config()
    if isinstance(model, keras.Sequential):
        if len(model.inputs) != 1:
            raise ValueError(f"Argument `model`: Sequential model {model.name!r} must have one input.")
        order = [(SequentialInput(model.inputs[0].shape), [])]
        for layer in model.layers:
            order.append((layer, [order[-1][0].name]))
        return order
    inbound = {}
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes", [])
        name = entry_name(entry)
        if len(nodes) > 1:
            raise ValueError(f"Argument `model`: layer {name!r} is called {len(nodes)} times (a shared layer); "
                             "channel pruning needs every layer called once.")
        refs = [ref["keras_history"] for node in nodes for ref in tensor_refs(node)]
        for ref in refs:
            if ref[1] != 0 or ref[2] != 0:
                raise ValueError(f"Argument `model`: layer {name!r} reads output {ref[2]} of call {ref[1]} of "
                                 f"{ref[0]!r}; channel pruning needs layers with one call and one output.")
        inbound[name] = [ref[0] for ref in refs]
    done, order, pending = set(), [], list(inbound)
    while pending:
        progressed = False
        for name in list(pending):
            if all(source in done for source in inbound[name]):
                order.append((model.get_layer(name), inbound[name]))
                done.add(name)
                pending.remove(name)
                progressed = True
        if not progressed:
            raise ValueError(f"Argument `model`: cannot order the layers {pending} (a cycle?).")
    return order


class SequentialInput:
    """Stands for a Sequential model's input in the layer order (Sequential.layers leaves the InputLayer out)."""

    name = "__input__"

    def __init__(self, shape):
        self.output = keras.KerasTensor(shape)


def output_refs(config):
    """`(refs, single)`: a functional config's outputs as a list of `[layer_name, node, tensor]`, and whether the
    config stores one output unwrapped."""
    outputs = config["output_layers"]
    single = bool(outputs) and isinstance(outputs[0], str)
    return [list(ref) for ref in ([outputs] if single else outputs)], single


def set_output_refs(config, refs, single):
    """Writes `refs` back as the config's outputs, in the form `output_refs` read."""
    config["output_layers"] = refs[0] if single else refs


def output_names(model):
    """The names of the layers whose outputs are the model's outputs."""
    if isinstance(model, keras.Sequential):
        return [model.layers[-1].name]
    return [ref[0] for ref in output_refs(model.get_config())[0]]


def from_config(model, config):
    """A new model of `model`'s kind (Sequential or functional) from an edited copy of its config."""
    if isinstance(model, keras.Sequential):
        return keras.Sequential.from_config(config)
    return keras.Model.from_config(config)


def clone_with_wrappers(model, should_wrap, make_wrapper):
    """Clones `model`, replacing each layer for which `should_wrap(layer)` holds by `make_wrapper(layer, fresh)`.

    `fresh` is a new copy of the layer, built and holding the original's weights; every other layer of the clone
    receives its original's weights too, so the clone computes what `model` computes until it trains.
    """
    wrapped = set()

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if not should_wrap(layer):
            return fresh
        build_config = layer.get_build_config()
        if build_config:
            fresh.build_from_config(build_config)
        fresh.set_weights(layer.get_weights())
        wrapper = make_wrapper(layer, fresh)
        wrapped.add(id(wrapper))
        return wrapper

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if id(layer) not in wrapped and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy
