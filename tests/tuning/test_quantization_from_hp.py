"""quantization_from_hp: QAT on or off, its moving-average decay applied by quantize_model; bad input."""

import keras
import keras_tuner
import pytest

from tfopt.compression import quantize_model
from tfopt.tuning import quantization_from_hp

pytestmark = pytest.mark.backend_agnostic


def test_off_by_default_on_when_chosen_with_its_decay():
    hp = keras_tuner.HyperParameters()
    assert quantization_from_hp(hp) is None
    hp.values["quantization"] = True
    hp.Fixed("quantization/ema_decay", 0.999)
    arguments = quantization_from_hp(hp)
    assert arguments == {"ema_decay": 0.999, "preserve_sparsity": "auto"}
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    model = quantize_model(base, **arguments)
    assert model.get_layer("quant_d").ema_decay == 0.999


def test_not_optional_always_quantizes_and_searches_the_decay():
    hp = keras_tuner.HyperParameters()
    assert quantization_from_hp(hp, optional=False, ema_decays=(0.9, 0.99)) == {"ema_decay": 0.9,
                                                                               "preserve_sparsity": "auto"}
    assert [item.name for item in hp.space] == ["quantization/ema_decay"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"ema_decays": ()}, ValueError, "Argument `ema_decays` must be a non-empty list of numbers in [0, 1)"),
        ({"ema_decays": (0.9, 1.0)}, ValueError,
         "Argument `ema_decays[1]` must be a number in [0, 1). Received: ema_decays[1]=1.0"),
        ({"ema_decays": (0.9, "0.5")}, TypeError,
         "Argument `ema_decays[1]` must be a number in [0, 1). Received: ema_decays[1]='0.5' of type str"),
        ({"optional": "yes"}, TypeError, "Argument `optional` must be a bool"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        quantization_from_hp(keras_tuner.HyperParameters(), **kwargs)
    assert message in str(raised.value)
