"""describe_strategy, per_replica_batch_size, linear_scaling_rule, distribute_dataset, auto_mixed_precision and
configure_devices on this (CPU) machine."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfopt.strategies import (
    auto_mixed_precision,
    configure_devices,
    describe_strategy,
    distribute_dataset,
    linear_scaling_rule,
    per_replica_batch_size,
)
from tfopt.strategies.auto_mixed_precision import choose_policy


def test_describe_one_device_as_dict_and_summary():
    description = describe_strategy(tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert dict(description) == {
        "kind": "one_device", "class": "OneDeviceStrategy", "replicas": 1, "num_workers": 1,
        "devices": ["/job:localhost/replica:0/task:0/device:CPU:0"], "task_type": None, "task_index": None,
    }
    assert str(description) == ("strategy: one_device (OneDeviceStrategy), 1 replica; "
                                "devices: /job:localhost/replica:0/task:0/device:CPU:0")


def test_describe_the_default_strategy_and_reject_others():
    assert describe_strategy()["kind"] == "default"
    with pytest.raises(TypeError, match="Argument `strategy` must be a tf.distribute.Strategy or None. Received: "
                                        "strategy='mirrored' of type str"):
        describe_strategy("mirrored")


def test_per_replica_batch_is_the_global_batch_over_the_replicas():
    assert per_replica_batch_size(256, 4) == 64
    assert per_replica_batch_size(32, tf.distribute.OneDeviceStrategy("/cpu:0")) == 32


def test_a_global_batch_not_divisible_by_the_replicas_is_refused_with_the_nearest_multiples():
    with pytest.raises(ValueError) as raised:
        per_replica_batch_size(100, 8)
    assert str(raised.value) == ("Argument `global_batch_size` must be divisible by the 8 replicas (e.g. 96 or 104). "
                                 "Received: global_batch_size=100")
    with pytest.raises(ValueError, match="Argument `global_batch_size` must be an integer >= 1"):
        per_replica_batch_size(0, 2)


@pytest.mark.backend_agnostic
def test_linear_scaling_rule_matches_goyal_et_al():
    eta, batch, base, warmup = 0.1, 8192, 256, 500
    schedule = linear_scaling_rule(eta, batch, base_batch_size=base, warmup_steps=warmup)
    k = batch / base
    for t in range(0, 2000, 37):
        expected = eta + (k * eta - eta) * t / warmup if t < warmup else k * eta
        assert float(keras.ops.convert_to_numpy(schedule(t))) == pytest.approx(expected, rel=1e-6)
    assert float(keras.ops.convert_to_numpy(linear_scaling_rule(0.1, 512)(0))) == pytest.approx(0.2)
    config = keras.optimizers.schedules.serialize(schedule)
    assert float(keras.ops.convert_to_numpy(keras.optimizers.schedules.deserialize(config)(100))) == pytest.approx(
        float(keras.ops.convert_to_numpy(schedule(100))))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("argument, value", [("base_learning_rate", 0.0), ("global_batch_size", 0),
                                             ("base_batch_size", -1), ("warmup_steps", -1)])
def test_linear_scaling_rule_checks_its_arguments(argument, value):
    kwargs = {"base_learning_rate": 0.1, "global_batch_size": 512, argument: value}
    with pytest.raises(ValueError) as raised:
        linear_scaling_rule(**kwargs)
    assert f"Argument `{argument}` must be" in str(raised.value) and f"Received: {argument}={value!r}" in str(
        raised.value)


def test_distribute_dataset_feeds_fit():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    x = np.arange(64, dtype="float32").reshape(32, 2) / 64
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(8)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
    losses = model.fit(distribute_dataset(data, strategy), epochs=3, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_distribute_dataset_refuses_a_static_batch_not_divisible_and_bad_arguments():
    class TwoReplicas(tf.distribute.OneDeviceStrategy):
        num_replicas_in_sync = 2

    data = tf.data.Dataset.range(12).batch(3, drop_remainder=True)
    with pytest.raises(ValueError, match="global batch size divisible by the 2 replicas. Received: a dataset with "
                                         "batch size 3"):
        distribute_dataset(data, TwoReplicas("/cpu:0"))
    with pytest.raises(TypeError, match="Argument `dataset` must be a tf.data.Dataset"):
        distribute_dataset(np.zeros(3))
    with pytest.raises(ValueError, match="Argument `shard_policy` must be one of 'auto', 'data', 'file', 'off'"):
        distribute_dataset(data, shard_policy="files")


@pytest.mark.parametrize(
    "tpu, capabilities, policy",
    [(True, [(8, 0)], "mixed_bfloat16"), (False, [(8, 0), (7, 0)], "mixed_float16"),
     (False, [(6, 1)], "float32"), (False, [(8, 0), (6, 0)], "float32"), (False, [], "float32")],
)
def test_mixed_precision_policy_by_hardware(tpu, capabilities, policy):
    assert choose_policy(tpu=tpu, gpu_capabilities=capabilities) == policy


def test_auto_mixed_precision_on_cpu_is_float32_and_sets_it():
    previous = keras.mixed_precision.global_policy()
    try:
        assert auto_mixed_precision() == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    with pytest.raises(TypeError, match="Argument `apply` must be a bool. Received: apply=1"):
        auto_mixed_precision(apply=1)


def test_configure_devices_after_start_accepts_the_same_settings_and_explains_others():
    tf.constant(1.0)  # TensorFlow is initialised from here on
    cpus = len(tf.config.list_logical_devices("CPU"))
    assert configure_devices(logical_cpus=cpus) == {
        "gpus": [], "memory_growth": True, "cpus": [d.name for d in tf.config.list_logical_devices("CPU")]}
    with pytest.raises(RuntimeError) as raised:
        configure_devices(logical_cpus=cpus + 1)
    assert str(raised.value).startswith("configure_devices() was called after TensorFlow initialised its devices")
    assert f"{cpus} logical CPU device(s), asked {cpus + 1}" in str(raised.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"visible_gpus": [0]}, "Argument `visible_gpus` must be a list of no GPU indices (this machine has no GPU). "
                            "Received: visible_gpus=[0]"),
    ({"logical_cpus": 0}, "Argument `logical_cpus` must be an integer >= 1 or None. Received: logical_cpus=0"),
])
def test_configure_devices_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError) as raised:
        configure_devices(**kwargs)
    assert str(raised.value) == message
