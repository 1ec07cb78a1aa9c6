"""The process the strategy test starts (TensorFlow only): two logical CPUs must be set before TensorFlow starts,
so the search under MirroredStrategy runs in its own process.

    python strategy_worker.py OUT     (writes OUT/strategy.json)
"""

import json
import os
import sys


def main(out):
    import keras
    import keras_tuner
    import numpy as np

    from tfopt.compression import sparsity_report
    from tfopt.strategies import configure_devices, describe_strategy, get_strategy
    from tfopt.tuning import OptimizationHyperModel

    configure_devices(logical_cpus=2)
    strategy = get_strategy("mirrored")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def build_model():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(2, activation="softmax")])

    hypermodel = OptimizationHyperModel(build_model, ("optimizer", "pruning"), epochs=2, steps_per_epoch=3,
                                        optimizers=("adam", "sgd"), pruning={"optional": False, "structures": (None,)})
    trained = []

    class Record(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            trained.append(self.model)

    keras.utils.set_random_seed(0)
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2, seed=0,
                                     distribution_strategy=strategy, directory=out, project_name="mirrored")
    tuner.search(x[:48], y[:48], batch_size=16, validation_data=(x[48:], y[48:]), callbacks=[Record()], verbose=0)
    trials = list(tuner.oracle.trials.values())
    model = trained[-1]
    description = describe_strategy(strategy)
    # GradientNormMonitor on the mirrored model equals it on a one-device copy with the same weights.
    from tfopt.callbacks import GradientNormMonitor

    copy = keras.models.clone_model(model)
    copy.compile("sgd", "sparse_categorical_crossentropy")
    copy.set_weights(model.get_weights())
    norms = []
    for each in (model, copy):
        monitor = GradientNormMonitor((x[:16], y[:16]))
        monitor.set_model(each)
        norms.append(monitor.gradient_norms()["gradient_norm/global"])
    result = {
        "kind": description["kind"], "replicas": description["replicas"], "trials": len(trials),
        "scores": [t.score for t in trials],
        "variables_mirrored": all("Mirrored" in type(v.value).__name__ for v in model.trainable_variables),
        "sparsity": sparsity_report(model)["total"]["sparsity"],
        "target_sparsity": trials[-1].hyperparameters.values["pruning/sparsity"],
        "gradient_norms": norms,
    }
    with open(os.path.join(out, "strategy.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
