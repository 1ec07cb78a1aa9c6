"""get_strategy: the "auto" decision, each bad input's message (never a hang), Mirrored over two logical CPUs against
OneDevice, and every tfopt object inside strategy.scope() with fit, save, load and resume (TensorFlow only)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfopt.strategies import describe_strategy, get_strategy
from tfopt.strategies._cluster import read_tf_config
from tfopt.strategies.get_strategy import auto_choice

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_worker(tmp_path, *args, name):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    env.pop("TF_CONFIG", None)
    result = subprocess.run([sys.executable, os.path.join(HERE, "worker.py"), *args[:1], str(tmp_path), *args[1:]],
                            env=env, capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / name) as f:
        return json.load(f)


@pytest.mark.parametrize(
    "detected, expected",
    [
        ({"tpu": True, "num_workers": 4, "num_gpus": 8}, "tpu"),
        ({"tpu": False, "num_workers": 2, "num_gpus": 8}, "multi_worker_mirrored"),
        ({"tpu": False, "num_workers": 1, "num_gpus": 2}, "mirrored"),
        ({"tpu": False, "num_workers": 1, "num_gpus": 1}, "one_device"),
        ({"tpu": False, "num_workers": 1, "num_gpus": 0}, "one_device"),
        ({"tpu": False, "num_workers": 1, "num_gpus": 0, "num_devices": 2}, "mirrored"),
        ({"tpu": False, "num_workers": 1, "num_gpus": 4, "num_devices": 1}, "one_device"),
    ],
)
def test_auto_picks_tpu_then_cluster_then_gpus_then_one_device(detected, expected):
    assert auto_choice(**detected) == expected


def test_auto_on_this_cpu_machine_is_one_device_on_the_cpu(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    description = describe_strategy(get_strategy())
    assert description["kind"] == "one_device" and description["replicas"] == 1
    assert description["devices"][0].endswith("CPU:0")


def test_a_single_task_tf_config_is_not_a_cluster(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    monkeypatch.delenv("TPU_NAME", raising=False)
    assert describe_strategy(get_strategy())["kind"] == "one_device"


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as raised:
        get_strategy("mirror")
    assert str(raised.value) == ("Argument `name` must be one of 'auto', 'one_device', 'mirrored', "
                                 "'multi_worker_mirrored', 'tpu'. Received: name='mirror'")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "TF_CONFIG must be a JSON object with keys `cluster` and `task`; it is not valid JSON"),
        ("[1, 2]", "TF_CONFIG must be a JSON object with keys `cluster` and `task`. Received: TF_CONFIG='[1, 2]'"),
        ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG key `cluster` must be an object of jobs"),
        ('{"cluster": {"workers": ["a:1"]}, "task": {"type": "worker", "index": 0}}',
         "TF_CONFIG key `cluster` must name jobs among 'chief', 'worker', 'ps', 'evaluator'. Received: job 'workers'"),
        ('{"cluster": {"worker": "a:1,b:2"}, "task": {"type": "worker", "index": 0}}',
         "TF_CONFIG key `cluster.worker` must be a non-empty list of \"host:port\" addresses. "
         "Received: cluster.worker='a:1,b:2'"),
        ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
         "TF_CONFIG key `cluster.worker` must be a non-empty list of \"host:port\" addresses"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}}', "TF_CONFIG key `task` must be an object"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
         "TF_CONFIG key `task.type` must be a job of the cluster ('worker'). Received: task.type='chief'"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
         "TF_CONFIG key `task.index` must be an integer in [0, 1] (cluster.worker has 2). Received: task.index=2"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker"}}',
         "TF_CONFIG key `task.index` must be an integer in [0, 1] (cluster.worker has 2). Received: task.index=None"),
    ],
)
def test_malformed_tf_config_names_the_key(monkeypatch, text, message):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ValueError) as raised:
        get_strategy()
    assert message in str(raised.value)


def test_tf_config_is_read_into_cluster_and_task():
    config = read_tf_config(json.dumps({"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:2"]},
                                        "task": {"type": "worker", "index": 1}}))
    assert config["num_workers"] == 3 and config["task_type"] == "worker" and config["task_index"] == 1
    assert read_tf_config("") is None and read_tf_config("  ") is None


def test_tpu_without_a_tpu_is_a_clear_error_at_once(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError) as raised:
        get_strategy("tpu")
    assert "Argument `tpu` must name a TPU for name='tpu'" in str(raised.value)
    assert "Received: tpu=None" in str(raised.value)


def test_tpu_that_does_not_resolve_names_it(monkeypatch):
    # No TPU and no network here: the resolver fails at once; the error names the TPU asked for.
    with pytest.raises(ValueError, match="Argument `tpu`: the TPU 'no-such-tpu' did not resolve"):
        get_strategy("tpu", tpu="no-such-tpu")


def test_auto_ignores_a_tpu_that_does_not_resolve(monkeypatch):
    monkeypatch.setenv("TPU_NAME", "no-such-tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.warns(UserWarning, match="the TPU 'no-such-tpu' did not resolve"):
        strategy = get_strategy()
    assert describe_strategy(strategy)["kind"] == "one_device"


def test_mirrored_with_devices_that_do_not_exist_lists_the_real_ones():
    with pytest.raises(ValueError) as raised:
        get_strategy("mirrored", devices=["/gpu:0", "/gpu:1"])
    message = str(raised.value)
    assert message.startswith("Argument `devices` must name devices of this machine (/device:CPU:0")
    assert message.endswith("Received: devices=['/gpu:0', '/gpu:1']; not found: /gpu:0, /gpu:1")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "mirrored", "devices": []}, TypeError, "Argument `devices` must be a device name or a non-empty"),
        ({"name": "mirrored", "devices": 3}, TypeError, "Received: devices=3"),
        ({"name": "one_device", "devices": ["/cpu:0", "/cpu:0"]}, ValueError,
         "Argument `devices` must name one device for name='one_device'. Received: devices=['/cpu:0', '/cpu:0']"),
        ({"name": "mirrored", "communication": "ring"}, ValueError,
         "Argument `communication` must be one of 'auto', 'nccl', 'hierarchical_copy', 'reduce_to_one' for "
         "name='mirrored'. Received: communication='ring'"),
        ({"name": "one_device", "communication": "nccl"}, ValueError,
         "Argument `communication` must be one of 'auto' for name='one_device'. Received: communication='nccl'"),
        ({"connect_timeout": 0}, ValueError,
         "Argument `connect_timeout` must be a finite number > 0 or None. Received: connect_timeout=0"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error) as raised:
        get_strategy(**kwargs)
    assert message in str(raised.value)


def test_explicit_names_build_their_strategy_on_this_machine():
    assert describe_strategy(get_strategy("one_device", devices="/cpu:0"))["kind"] == "one_device"
    mirrored = get_strategy("mirrored", communication="reduce_to_one")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == 1


def test_mirrored_over_two_cpus_matches_one_device_for_the_same_global_batch(tmp_path):
    result = run_worker(tmp_path, "mirrored", name="mirrored.json")
    mirrored, single = result["mirrored"], result["one_device"]
    assert mirrored["description"]["replicas"] == 2 and single["description"]["replicas"] == 1
    assert mirrored["losses"][-1] < mirrored["losses"][0]
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-5)
    for a, b in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _names():
    sys.path.insert(0, ROOT)
    from tests.strategies.worker import tfopt_objects

    return list(tfopt_objects())


NAMES = _names()


@pytest.fixture(scope="module")
def scope_all(tmp_path_factory):
    return run_worker(tmp_path_factory.mktemp("scope_all"), "scope_all", ",".join(NAMES), name="scope_all.json")


@pytest.mark.parametrize("name", NAMES)
def test_every_tfopt_object_trains_saves_and_resumes_under_mirrored_strategy(scope_all, name):
    result = scope_all[name]
    assert "error" not in result, result.get("error")
    assert result["replicas"] == 2
    assert np.isfinite(result["losses"]).all() and result["losses"][-1] < result["losses"][0]
    assert result["same_optimizer_state"]
    np.testing.assert_allclose(result["resumed"], result["losses"][1:], rtol=1e-5)
    assert result["max_weight_difference"] < 1e-4
