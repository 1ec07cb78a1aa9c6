"""optimizer_from_hp: a Keras Tuner search space over Keras's and tfopt's optimizers and their hyperparameters."""

import keras

from tfopt.optimizers import registry
from tfopt.tuning import _hp

# Class name -> (learning-rate range searched on a log scale, the key hyperparameters as
# `f(hp, prefix) -> kwargs`). An optimizer not listed is searched over its learning rate only, a decade either
# side of its default.
_SPACES = {
    "Adam": ((1e-4, 1e-2), lambda hp, p: {"beta_1": hp.Float(f"{p}beta_1", 0.8, 0.95, default=0.9)}),
    "AdamW": ((1e-4, 1e-2), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-5, 1e-1,
                                                                       sampling="log", default=1e-3)}),
    "SGD": ((1e-3, 3e-1), lambda hp, p: {"momentum": hp.Float(f"{p}momentum", 0.0, 0.95, default=0.9),
                                         "nesterov": hp.Boolean(f"{p}nesterov")}),
    "RMSprop": ((1e-4, 1e-2), lambda hp, p: {"rho": hp.Float(f"{p}rho", 0.8, 0.99, default=0.9)}),
    "Lion": ((1e-5, 1e-3), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-4, 1.0,
                                                                      sampling="log", default=1e-2)}),
    "RAdam": ((1e-4, 1e-2), lambda hp, p: {"beta_1": hp.Float(f"{p}beta_1", 0.8, 0.95, default=0.9)}),
    "AdaBelief": ((1e-4, 1e-2), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-5, 1e-1,
                                                                           sampling="log", default=1e-3)}),
    "Yogi": ((1e-3, 1e-1), lambda hp, p: {"beta_1": hp.Float(f"{p}beta_1", 0.8, 0.95, default=0.9)}),
    "Adan": ((1e-4, 1e-2), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-4, 1e-1,
                                                                      sampling="log", default=1e-2)}),
    "LARS": ((1e-2, 3.0), lambda hp, p: {"momentum": hp.Float(f"{p}momentum", 0.8, 0.95, default=0.9),
                                         "trust_coefficient": hp.Float(f"{p}trust_coefficient", 1e-3, 1e-1,
                                                                       sampling="log", default=1e-2)}),
    "Prodigy": ((0.3, 3.0), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-4, 1e-1,
                                                                       sampling="log", default=1e-2)}),
    "ScheduleFreeSGD": ((1e-2, 3.0), lambda hp, p: {"beta_1": hp.Float(f"{p}beta_1", 0.8, 0.95, default=0.9)}),
    "ScheduleFreeAdamW": ((3e-4, 3e-2), lambda hp, p: {"weight_decay": hp.Float(f"{p}weight_decay", 1e-5, 1e-1,
                                                                                   sampling="log", default=1e-3)}),
}
# Wrapper name -> its key hyperparameters; each is switched on and off by a Boolean of the wrapper's name.
_WRAPPERS = {
    "lookahead": lambda hp, p: {"sync_period": hp.Int(f"{p}sync_period", 3, 10, default=6),
                                "slow_step_size": hp.Float(f"{p}slow_step_size", 0.3, 0.8, default=0.5)},
    "gradient_centralization": lambda hp, p: {},
    "adaptive_gradient_clipping": lambda hp, p: {"clipping": hp.Float(f"{p}clipping", 1e-3, 1e-1, sampling="log",
                                                                      default=1e-2)},
}
DEFAULT_CHOICES = ("adam", "adamw", "sgd", "radam", "adabelief", "lion", "schedule_free_adamw")


def _resolve(choices):
    """name -> optimizer class, for each choice; an unknown name or a wrapper is a ValueError naming it."""
    classes = {}
    for i, name in enumerate(choices):
        if registry._tfopt_name(name) in registry._WRAPPERS:
            raise ValueError(f"Argument `choices` must name optimizers; {name!r} wraps another optimizer: pass it in "
                             f"`wrappers` instead. Received: choices[{i}]={name!r}")
        try:
            classes[name] = type(registry.get(name))
        except ValueError:
            raise ValueError(f"Argument `choices` must hold names of tfopt or Keras optimizers (e.g. 'adam', 'sgd', "
                             f"'radam', 'schedule_free_adamw'). Received: choices[{i}]={name!r}") from None
    return classes


def optimizer_from_hp(hp, choices=DEFAULT_CHOICES, schedule=None, wrappers=()):
    """A `keras.optimizers.Optimizer` chosen by Keras Tuner: which optimizer, its learning rate, its key settings.

    Use it inside a hypermodel's `build(hp)` to search optimizers the way one searches layer sizes. It declares

        optimizer                    Choice(choices)
        <name>/learning_rate         Float on a log scale, the range that suits that optimizer
        <name>/<setting>             the optimizer's key hyperparameters (Adam: beta_1; AdamW, Lion, AdaBelief,
                                     Adan, ScheduleFreeAdamW: weight_decay; SGD: momentum, nesterov;
                                     RMSprop: rho; LARS: momentum, trust_coefficient; ...)
        <wrapper>                    Boolean, for each name in `wrappers`, and its settings when on
                                     (lookahead: sync_period, slow_step_size; adaptive_gradient_clipping:
                                     clipping)

    each optimizer's settings active only when it is chosen (Keras Tuner's conditional scopes), and returns the
    optimizer built with them. Any optimizer `tfopt.optimizers.get` knows may be named (tfopt's and Keras's);
    those without a listed space are searched over their learning rate only, within a decade of their default.

    Args:
        hp: the `keras_tuner.HyperParameters` of the trial.
        choices: names of the optimizers to choose from, as `tfopt.optimizers.get` takes them. Default
            ("adam", "adamw", "sgd", "radam", "adabelief", "lion", "schedule_free_adamw").
        schedule: None (default: a constant learning rate), or a callable `schedule(peak) -> learning rate` that
            turns the sampled learning rate into a schedule, e.g.
            `lambda peak: schedule_from_hp(hp, total_steps, peak)`.
        wrappers: names among "lookahead", "gradient_centralization", "adaptive_gradient_clipping" whose use is
            searched too. Default ().

    Returns:
        A `keras.optimizers.Optimizer`.

    Example:

    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> optimizer = optimizer_from_hp(hp, choices=["radam", "sgd"])
    >>> type(optimizer).__name__, hp.get("optimizer")
    ('RAdam', 'radam')
    """
    _hp.check_hp(hp)
    classes = _resolve(_hp.check_choices("choices", choices))
    wrappers = _hp.check_choices("wrappers", wrappers, tuple(_WRAPPERS)) if wrappers else ()
    if schedule is not None and not callable(schedule):
        raise TypeError(f"Argument `schedule` must be None or a callable `schedule(peak) -> learning rate`. "
                        f"Received: schedule={schedule!r}")
    name = hp.Choice("optimizer", list(classes))
    cls = classes[name]
    with hp.conditional_scope("optimizer", [name]):
        low, high, settings = _space(cls)
        peak = hp.Float(f"{name}/learning_rate", low, high, sampling="log", default=_default_rate(cls, low, high))
        kwargs = settings(hp, f"{name}/")
    optimizer = cls(learning_rate=peak if schedule is None else schedule(peak), **kwargs)
    for wrapper in wrappers:
        if hp.Boolean(wrapper):
            with hp.conditional_scope(wrapper, [True]):
                settings = _WRAPPERS[wrapper](hp, f"{wrapper}/")
            optimizer = registry._class(wrapper)(optimizer, **settings)
    return optimizer


def _default_rate(cls, low, high):
    """The optimizer's own default learning rate when the range holds it, else the range's geometric middle: the
    value of the first trial (Keras Tuner starts from the defaults)."""
    try:
        rate = float(keras.ops.convert_to_numpy(cls().learning_rate))
    except (TypeError, ValueError):
        rate = 0.0
    # The variable holds float32: 0.001 reads back as 0.0010000000474974513.
    rate = float(f"{rate:.6g}")
    return rate if low <= rate <= high else float(f"{(low * high) ** 0.5:.6g}")


def _space(cls):
    if cls.__name__ in _SPACES:
        (low, high), settings = _SPACES[cls.__name__]
        return low, high, settings
    default = float(keras.ops.convert_to_numpy(cls().learning_rate))
    return default / 10, default * 10, lambda hp, p: {}
