"""Run by test_mirrored_strategy.py in a fresh Python (TensorFlow only): logical devices must be set before
TensorFlow starts. Trains under MirroredStrategy over 2 logical CPUs and under one device; writes JSON to argv[1]."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tfopt.strategies import configure_devices, get_strategy  # noqa: E402

configure_devices(logical_cpus=2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.models.test_sharpness_aware_minimization import W0, X, Y  # noqa: E402
from tfopt.models import (  # noqa: E402
    CachedDistiller,
    SharpnessAwareMinimization,
    SoftTargetDistillation,
    cache_teacher_outputs,  # noqa: E402
)

result = {}
mirrored = get_strategy("mirrored")
with mirrored.scope():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    inner.set_weights([W0])
    sam = SharpnessAwareMinimization(inner, rho=0.5)
    sam.compile(keras.optimizers.SGD(0.1), loss="mse")
history = sam.fit(tf.data.Dataset.from_tensor_slices((X, Y)).batch(8), epochs=2, verbose=0).history
result["sam"] = {"replicas": mirrored.num_replicas_in_sync, "weights": np.asarray(inner.get_weights()[0]).tolist(),
                 "losses": history["loss"]}

labels = (X[:, 0] > 0).astype("int32")
teacher = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
teacher.set_weights([W0.T[::-1].T.copy() * 2, np.zeros(2, "float32")])
cached = cache_teacher_outputs(teacher, X, labels)
# One MirroredStrategy object per process: two of them would reuse the same collective instance keys.
for name, strategy in (("mirrored", mirrored), ("one_device", get_strategy("one_device"))):
    with strategy.scope():
        student = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        student.set_weights([W0, np.zeros(2, "float32")])
        distiller = CachedDistiller(student, SoftTargetDistillation(2.0), student_loss_weight=0.5)
        distiller.compile(keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    distiller.fit(tf.data.Dataset.from_tensor_slices(cached).batch(8), epochs=3, verbose=0)
    result[f"distiller_{name}"] = [w.tolist() for w in student.get_weights()]
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
