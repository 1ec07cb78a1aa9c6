"""Writes the `.keras` files that tests/test_saved_models_load.py loads: models saved by tfopt before the
architecture change of issue 21 (files moved between modules), so that models users saved keep loading.

Run once, from the repository root, at the commit before the move:
`python tests/data/make_saved_before_architecture.py`.
Each archive holds a model trained a few steps (wrappers, schedules, optimizer state inside); the .npz beside it
holds its predictions on fixed inputs and its optimizer variables at save time.
"""

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

import tfopt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def base_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def data(seed):
    rng = np.random.default_rng(seed)
    return rng.random((64, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 64).astype("int32")


def save(name, model, x):
    model.save(os.path.join(HERE, f"{name}.keras"))
    np.savez(os.path.join(HERE, f"{name}.npz"), x=x[:8], predictions=model.predict(x[:8], verbose=0),
             **{f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})


def main():
    x, y = data(0)
    pruned = tfopt.prune_low_magnitude(
        base_model(0), tfopt.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=1))
    pruned.compile(tfopt.Lookahead(tfopt.RAdam(tfopt.OneCycle(max_learning_rate=1e-2, total_steps=40))),
                   "sparse_categorical_crossentropy")
    pruned.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[tfopt.UpdatePruningStep()])
    save("pruned_lookahead_radam", pruned, x)

    model = tfopt.add_regularizer(base_model(1), tfopt.GroupLasso(1e-3))
    quantized = tfopt.quantize_model(model)
    quantized.compile(tfopt.SWA(tfopt.Adan(tfopt.Warmup(1e-3, warmup_steps=4)), average_period=2),
                      "sparse_categorical_crossentropy")
    quantized.fit(x, y, batch_size=16, epochs=2, verbose=0)
    save("quantized_swa_adan_group_lasso", quantized, x)

    clustered = tfopt.cluster_weights(base_model(2), 4)
    clustered.compile(tfopt.Yogi(tfopt.schedules.Sequential([tfopt.LinearDecay(1e-3, 4), 1e-4], [4])),
                      "sparse_categorical_crossentropy")
    clustered.fit(x, y, batch_size=16, epochs=2, verbose=0)
    save("clustered_yogi_sequential", clustered, x)


if __name__ == "__main__":
    main()
