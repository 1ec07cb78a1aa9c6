"""`tfopt.optimizers.get`: names, class names, registered names, config dicts and instances, tfopt's and Keras's."""

import importlib

import keras
import pytest

from tfopt import optimizers
from tfopt.optimizers import get

from .conformance import check_docstring_examples

pytestmark = pytest.mark.backend_agnostic

NAMES = {
    "radam": optimizers.RAdam,
    "adabelief": optimizers.AdaBelief,
    "yogi": optimizers.Yogi,
    "adan": optimizers.Adan,
    "lars": optimizers.LARS,
    "prodigy": optimizers.Prodigy,
    "schedule_free_sgd": optimizers.ScheduleFreeSGD,
    "schedule_free_adamw": optimizers.ScheduleFreeAdamW,
}
WRAPPERS = {
    "lookahead": optimizers.Lookahead,
    "swa": optimizers.SWA,
    "gradient_centralization": optimizers.GradientCentralization,
    "adaptive_gradient_clipping": optimizers.AdaptiveGradientClipping,
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_name_gives_the_default_optimizer(name):
    optimizer = get(name)
    assert type(optimizer) is NAMES[name]
    assert optimizer.get_config() | {"name": None} == NAMES[name]().get_config() | {"name": None}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_class_name_and_registered_name_in_any_case(name):
    class_name = NAMES[name].__name__
    for identifier in (class_name, class_name.upper(), f"tfopt>{class_name}", name.upper()):
        assert type(get(identifier)) is NAMES[name]


def test_keras_names_still_work():
    assert type(get("adam")) is keras.optimizers.Adam
    assert type(get("SGD")) is keras.optimizers.SGD


def test_instance_is_returned_unchanged():
    optimizer = optimizers.Yogi(learning_rate=0.1)
    assert get(optimizer) is optimizer
    adam = keras.optimizers.Adam()
    assert get(adam) is adam


def test_hand_written_config_dict():
    optimizer = get({"class_name": "prodigy", "config": {"d_coef": 0.5, "growth_rate": 1.02}})
    assert type(optimizer) is optimizers.Prodigy
    assert (optimizer.d_coef, optimizer.growth_rate) == (0.5, 1.02)
    adam = get({"class_name": "Adam", "config": {"learning_rate": 0.1}})
    assert type(adam) is keras.optimizers.Adam


@pytest.mark.parametrize("name", sorted(NAMES))
def test_serialized_optimizer_round_trips(name):
    optimizer = NAMES[name](learning_rate=0.5, clipnorm=1.0)
    rebuilt = get(keras.optimizers.serialize(optimizer))
    assert type(rebuilt) is NAMES[name]
    assert rebuilt.get_config() == optimizer.get_config()


def test_schedule_in_config_dict_is_deserialized():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    optimizer = optimizers.RAdam(learning_rate=schedule)
    rebuilt = get(keras.optimizers.serialize(optimizer))
    assert rebuilt.get_config() == optimizer.get_config()
    assert rebuilt.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_from_dict_with_its_inner_optimizer(name):
    wrapper = get({"class_name": name, "config": {"optimizer": "radam"}})
    assert type(wrapper) is WRAPPERS[name]
    rebuilt = get(keras.optimizers.serialize(wrapper))
    assert type(rebuilt) is WRAPPERS[name]
    assert rebuilt.get_config()["optimizer"]["registered_name"] == "tfopt>RAdam"


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_name_alone_is_rejected_with_a_hint(name):
    with pytest.raises(ValueError, match=f"Argument `identifier` must name .*'class_name': '{name}'.*"
                                         f"Received: identifier='{name}'"):
        get(name)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Argument `identifier` must be .*'radam'.*Received: identifier='nadamw'"):
        get("nadamw")


def test_unknown_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `identifier` must be .*Received: identifier=3 of type int"):
        get(3)


def test_docstring_examples_run():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.registry"))
