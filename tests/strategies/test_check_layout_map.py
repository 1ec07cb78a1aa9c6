"""check_layout_map: the silent misses of keras.distribution.LayoutMap become one ValueError listing every fault (in
this process, any backend: a DeviceMesh of device names needs no devices)."""

import warnings

import keras
import pytest

from tfopt.strategies.auto_layout_map import auto_layout_map
from tfopt.strategies.check_layout_map import check_layout_map

pytestmark = pytest.mark.backend_agnostic

MESH = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], [f"cpu:{i}" for i in range(8)])


def build():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="up"), keras.layers.Dense(10, name="out")])


@pytest.fixture(scope="module")
def model():
    return build()


def layout_map(entries):
    built = keras.distribution.LayoutMap(MESH)
    for key, axes in entries.items():
        built[key] = axes
    return built


def test_a_key_that_matches_no_variable_is_named(model):
    # "up/kernel" must match the whole path, "sequential_1/up/kernel": Keras would replicate every variable.
    with pytest.raises(ValueError) as error:
        check_layout_map(layout_map({"up/kernel": (None, "model")}), model)
    assert str(error.value) == (
        f"Argument `layout_map` does not fit the model's variables (4 variables, e.g. '{model.name}/up/kernel'): "
        "patterns that match no variable: ['up/kernel']")


def test_a_variable_two_patterns_match_is_named(model):
    with pytest.raises(ValueError, match=rf"variable '{model.name}/up/kernel' is matched by several patterns: "
                                         r"\['\.\*/up/kernel', '\.\*kernel'\]"):
        check_layout_map(layout_map({".*/up/kernel": (None, "model"), ".*kernel": (None, None)}), model)


def test_an_indivisible_split_is_named(model):
    with pytest.raises(ValueError, match=rf"variable '{model.name}/out/kernel': dimension 1 \(10\) is not divisible "
                                         r"by the 'model' axis \(4\)$"):
        check_layout_map(layout_map({".*/out/kernel": (None, "model")}), model)


def test_a_layout_of_the_wrong_rank_is_named(model):
    with pytest.raises(ValueError, match=rf"variable '{model.name}/up/bias' of shape \(16,\) has a layout of rank 2"):
        check_layout_map(layout_map({".*/up/bias": (None, "model")}), model)


def test_every_fault_is_listed_at_once(model):
    with pytest.raises(ValueError) as error:
        check_layout_map(layout_map({"up/kernel": (None, "model"), ".*/out/kernel": ("batch", "model"),
                                     ".*bias": ("model",)}), model)
    message = str(error.value)
    assert "patterns that match no variable: ['up/kernel']" in message
    assert f"'{model.name}/out/kernel': dimension 1 (10)" in message
    assert f"'{model.name}/out/bias': dimension 0 (10)" in message
    assert message.count("; ") == 2


def test_a_fitting_map_returns_which_key_lays_out_each_variable(model):
    assert check_layout_map(layout_map({".*/up/kernel": (None, "model"), f"{model.name}/up/bias": ("model",)}),
                            model) == {f"{model.name}/up/kernel": ".*/up/kernel",
                                       f"{model.name}/up/bias": f"{model.name}/up/bias"}


def test_an_automatic_map_fits_a_rebuild_with_other_auto_names():
    unnamed = lambda: keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(8)])  # noqa: E731
    reference, rebuilt = unnamed(), unnamed()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = auto_layout_map(reference, MESH)
    assert {v.path for v in reference.weights} != {v.path for v in rebuilt.weights}
    paths = [v.path for v in rebuilt.weights]
    assert check_layout_map(auto, rebuilt) == dict(zip(paths[:3], list(auto)))
    # The same keys as plain regexes miss every variable of the rebuild.
    with pytest.raises(ValueError, match="patterns that match no variable"):
        check_layout_map(layout_map({k: tuple(auto[k].axes) for k in auto}), rebuilt)


def test_bad_arguments_name_themselves(model):
    with pytest.raises(TypeError, match=r"^Argument `layout_map` must be a keras.distribution.LayoutMap. Received: "
                                        r"layout_map=\{\} of type dict$"):
        check_layout_map({}, model)
    with pytest.raises(TypeError, match=r"^Argument `model` must be a built keras.Model. Received: model=None"):
        check_layout_map(layout_map({}), None)
