"""optimizer_from_hp: each choice builds its optimizer with the sampled hyperparameters; only the chosen
optimizer's settings are active; schedules and wrappers; each bad input's message."""

import keras
import keras_tuner
import pytest

from tfopt.optimizers import AdaBelief, Lookahead, RAdam, ScheduleFreeAdamW
from tfopt.schedules import OneCycle
from tfopt.tuning import optimizer_from_hp

pytestmark = pytest.mark.backend_agnostic


def lr(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def chosen(name, choices, **values):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("optimizer", name)
    for key, value in values.items():
        hp.Fixed(key, value)
    return hp, optimizer_from_hp(hp, choices=choices)


def test_the_first_trial_is_the_first_choice_at_its_default_learning_rate():
    hp = keras_tuner.HyperParameters()
    optimizer = optimizer_from_hp(hp, choices=["adam", "sgd"])
    assert type(optimizer) is keras.optimizers.Adam
    assert lr(optimizer) == pytest.approx(1e-3)
    assert hp.values == {"optimizer": "adam", "adam/learning_rate": 1e-3, "adam/beta_1": 0.9}


@pytest.mark.parametrize(
    "name, cls, values, attribute",
    [
        ("sgd", keras.optimizers.SGD, {"sgd/learning_rate": 0.03, "sgd/momentum": 0.5, "sgd/nesterov": True},
         {"momentum": 0.5, "nesterov": True}),
        ("adamw", keras.optimizers.AdamW, {"adamw/learning_rate": 0.002, "adamw/weight_decay": 0.01},
         {"weight_decay": 0.01}),
        ("radam", RAdam, {"radam/learning_rate": 0.004, "radam/beta_1": 0.85}, {"beta_1": 0.85}),
        ("adabelief", AdaBelief, {"adabelief/learning_rate": 0.0005, "adabelief/weight_decay": 0.001},
         {"weight_decay": 0.001}),
        ("schedule_free_adamw", ScheduleFreeAdamW, {"schedule_free_adamw/learning_rate": 0.01,
                                                    "schedule_free_adamw/weight_decay": 0.0001},
         {"weight_decay": 0.0001}),
    ],
)
def test_the_chosen_optimizer_gets_the_sampled_values(name, cls, values, attribute):
    _, optimizer = chosen(name, ["adam", name], **values)
    assert type(optimizer) is cls
    assert lr(optimizer) == pytest.approx(values[f"{name}/learning_rate"], rel=1e-6)
    for key, value in attribute.items():
        assert getattr(optimizer, key) == pytest.approx(value)


def test_only_the_chosen_optimizers_settings_are_active():
    hp, _ = chosen("sgd", ["adam", "sgd"])
    optimizer_from_hp(hp, choices=["adam", "sgd"])
    active = {item.name for item in hp.space if hp.is_active(item)}
    assert active == {"optimizer", "sgd/learning_rate", "sgd/momentum", "sgd/nesterov"}


def test_learning_rates_are_searched_on_a_log_scale_in_each_optimizers_range():
    hp = keras_tuner.HyperParameters()
    optimizer_from_hp(hp, choices=["sgd", "lion", "adagrad"])
    for name in ("sgd", "lion", "adagrad"):
        hp.values["optimizer"] = name
        optimizer_from_hp(hp, choices=["sgd", "lion", "adagrad"])
    ranges = {item.name: (item.min_value, item.max_value, item.sampling) for item in hp.space
              if item.name.endswith("learning_rate")}
    assert ranges["sgd/learning_rate"] == (1e-3, 0.3, "log")
    assert ranges["lion/learning_rate"] == (1e-5, 1e-3, "log")
    # An optimizer without a listed space: a decade either side of its default (Adagrad: 1e-3).
    assert ranges["adagrad/learning_rate"][0] == pytest.approx(1e-4)
    assert ranges["adagrad/learning_rate"][1] == pytest.approx(1e-2)


def test_a_schedule_turns_the_sampled_rate_into_the_peak():
    hp = keras_tuner.HyperParameters()
    optimizer = optimizer_from_hp(hp, choices=["adam"], schedule=lambda peak: OneCycle(peak, 100))
    schedule = optimizer._learning_rate
    assert isinstance(schedule, OneCycle) and schedule.max_learning_rate == pytest.approx(1e-3)


def test_wrappers_are_switched_on_by_a_boolean():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("lookahead", True)
    hp.Fixed("lookahead/sync_period", 4)
    optimizer = optimizer_from_hp(hp, choices=["radam"], wrappers=["lookahead"])
    assert type(optimizer) is Lookahead and optimizer.sync_period == 4
    assert type(optimizer.inner_optimizer) is RAdam
    hp = keras_tuner.HyperParameters()
    assert type(optimizer_from_hp(hp, choices=["radam"], wrappers=["lookahead"])) is RAdam


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"choices": ["adam", "adamm"]}, ValueError,
         "Argument `choices` must hold names of tfopt or Keras optimizers (e.g. 'adam', 'sgd', 'radam', "
         "'schedule_free_adamw'). Received: choices[1]='adamm'"),
        ({"choices": []}, ValueError, "Argument `choices` must name at least one choice: an empty search has nothing "
                                      "to try. Received: choices=[]"),
        ({"choices": "adam"}, TypeError, "Argument `choices` must be a list or tuple of names"),
        ({"choices": ["lookahead"]}, ValueError, "'lookahead' wraps another optimizer: pass it in `wrappers`"),
        ({"choices": ["adam", "adam"]}, ValueError, "Argument `choices` must not repeat a name"),
        ({"wrappers": ["swa"]}, ValueError, "Argument `wrappers` must hold names among 'lookahead', "
                                            "'gradient_centralization', 'adaptive_gradient_clipping'. "
                                            "Received: wrappers[0]='swa'"),
        ({"schedule": 0.1}, TypeError, "Argument `schedule` must be None or a callable"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        optimizer_from_hp(keras_tuner.HyperParameters(), **kwargs)
    assert message in str(raised.value)


def test_hp_must_be_hyperparameters():
    with pytest.raises(TypeError, match="Argument `hp` must be a keras_tuner.HyperParameters. Received: hp={}"):
        optimizer_from_hp({})
