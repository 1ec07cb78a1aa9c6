"""Checks shared by the search-space helpers: the `hp` argument and a `choices` argument."""

import keras_tuner


def check_hp(hp):
    if not isinstance(hp, keras_tuner.HyperParameters):
        raise TypeError(f"Argument `hp` must be a keras_tuner.HyperParameters. Received: hp={hp!r} of type "
                        f"{type(hp).__name__}")
    return hp


def check_choices(name, choices, known=None):
    """`choices` as a tuple of distinct non-empty strings (each in `known`, when given); an empty search is an
    error."""
    if isinstance(choices, str) or not isinstance(choices, (list, tuple)):
        raise TypeError(f"Argument `{name}` must be a list or tuple of names. Received: {name}={choices!r} of type "
                        f"{type(choices).__name__}")
    if not choices:
        raise ValueError(f"Argument `{name}` must name at least one choice: an empty search has nothing to try. "
                         f"Received: {name}={choices!r}")
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or not choice:
            raise TypeError(f"Argument `{name}` must hold non-empty strings. Received: {name}[{i}]={choice!r}")
        if known is not None and choice not in known:
            listed = ", ".join(repr(k) for k in known)
            raise ValueError(f"Argument `{name}` must hold names among {listed}. Received: {name}[{i}]={choice!r}")
    if len(set(choices)) != len(choices):
        raise ValueError(f"Argument `{name}` must not repeat a name. Received: {name}={choices!r}")
    return tuple(choices)
