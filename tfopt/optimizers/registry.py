"""`get`: an optimizer from a name, a config dict or an instance, knowing tfopt's optimizers and Keras's."""

import importlib

import keras

# Name -> (module, class). Modules are imported on first use, so a name resolves as soon as its file exists.
_OPTIMIZERS = {
    "radam": ("tfopt.optimizers.radam", "RAdam"),
    "adabelief": ("tfopt.optimizers.adabelief", "AdaBelief"),
    "yogi": ("tfopt.optimizers.yogi", "Yogi"),
    "adan": ("tfopt.optimizers.adan", "Adan"),
    "lars": ("tfopt.optimizers.lars", "LARS"),
    "prodigy": ("tfopt.optimizers.prodigy", "Prodigy"),
    "schedule_free_sgd": ("tfopt.optimizers.schedule_free_sgd", "ScheduleFreeSGD"),
    "schedule_free_adamw": ("tfopt.optimizers.schedule_free_adamw", "ScheduleFreeAdamW"),
    "lazy_adam": ("tfopt.optimizers.lazy_adam", "LazyAdam"),
    "novograd": ("tfopt.optimizers.novograd", "NovoGrad"),
    "cocob": ("tfopt.optimizers.cocob", "COCOB"),
    "proximal_adagrad": ("tfopt.optimizers.proximal_adagrad", "ProximalAdagrad"),
    "lookahead": ("tfopt.optimizers.lookahead", "Lookahead"),
    "swa": ("tfopt.optimizers.swa", "SWA"),
    "gradient_centralization": ("tfopt.optimizers.gradient_centralization", "GradientCentralization"),
    "adaptive_gradient_clipping": ("tfopt.optimizers.adaptive_gradient_clipping", "AdaptiveGradientClipping"),
}
# Wrappers take the optimizer they wrap as their first argument, so they have no default instance.
_WRAPPERS = {"lookahead", "swa", "gradient_centralization", "adaptive_gradient_clipping"}


def _tfopt_name(name):
    """The registry key for `name`: a key itself, a class name, or a registered name "tfopt>Class" (any case);
    None when `name` is not one of tfopt's."""
    key = name.lower()
    if key.startswith("tfopt>"):
        key = key[len("tfopt>"):]
    if key in _OPTIMIZERS:
        return key
    for candidate, (_, class_name) in _OPTIMIZERS.items():
        if class_name.lower() == key:
            return candidate
    return None


def _class(key):
    module, class_name = _OPTIMIZERS[key]
    return getattr(importlib.import_module(module), class_name)


def get(identifier):
    """An optimizer instance from `identifier`, like `keras.optimizers.get` but also knowing tfopt's optimizers.

    Args:
        identifier: one of
            - an optimizer instance: returned as is;
            - a name: a tfopt name (`"radam"`, `"adabelief"`, `"yogi"`, `"adan"`, `"lars"`, `"prodigy"`,
              `"schedule_free_sgd"`, `"schedule_free_adamw"`, `"lazy_adam"`, `"novograd"`, `"cocob"`,
              `"proximal_adagrad"`), a tfopt class name (`"RAdam"`) or registered name
              (`"tfopt>RAdam"`), or any name `keras.optimizers.get` knows (`"adam"`, `"sgd"`, ...); the optimizer
              with its default arguments. The wrappers (`"lookahead"`, `"swa"`, `"gradient_centralization"`,
              `"adaptive_gradient_clipping"`) need the optimizer they wrap, so they come from a dict;
            - a config dict `{"class_name": name, "config": {...}}` with any of those names (as
              `keras.optimizers.serialize` writes it, or by hand: `{"class_name": "lookahead", "config":
              {"optimizer": "adam"}}`).

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: the name or dict names no optimizer, or names a wrapper without its optimizer.
        TypeError: `identifier` is none of the above.

    Example:

    >>> get("radam").__class__.__name__
    'RAdam'
    >>> get({"class_name": "prodigy", "config": {"d_coef": 0.5}}).d_coef
    0.5
    >>> get("adam").__class__.__name__
    'Adam'
    """
    if isinstance(identifier, keras.optimizers.Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = _tfopt_name(identifier)
        if key is None:
            return _keras_get(identifier)
        if key in _WRAPPERS:
            raise ValueError(
                f"Argument `identifier` must name an optimizer that can be built with no arguments; {key!r} wraps "
                f"another optimizer, so pass a dict such as {{'class_name': {key!r}, 'config': {{'optimizer': "
                f"'adam'}}}}. Received: identifier={identifier!r}")
        return _class(key)()
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        key = _tfopt_name(class_name) if isinstance(class_name, str) else None
        if key is None:
            return _keras_get(identifier)
        config = dict(identifier.get("config", {}))
        if key in _WRAPPERS and isinstance(config.get("optimizer"), (str, dict)):
            # The inner optimizer may be named the tfopt way ("radam"); the wrapper reads it back from its config.
            config["optimizer"] = keras.optimizers.serialize(get(config["optimizer"]))
        return _class(key).from_config(config)
    raise TypeError("Argument `identifier` must be an optimizer, a name or a config dict. "
                    f"Received: identifier={identifier!r} of type {type(identifier).__name__}")


def _keras_get(identifier):
    try:
        return keras.optimizers.get(identifier)
    except ValueError as error:
        names = ", ".join(repr(name) for name in _OPTIMIZERS)
        raise ValueError(f"Argument `identifier` must be an optimizer, a config dict or the name of a tfopt "
                         f"optimizer ({names}) or of a Keras one. Received: identifier={identifier!r}") from error
