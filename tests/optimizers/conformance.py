"""Checks every optimizer test reuses: the Keras base options, schedules, sparse gradients, tf.distribute, saving.

Each check takes `make`, a function `make(**kwargs) -> keras.optimizers.Optimizer` that builds the optimizer under
test with its own hyperparameters plus the keyword arguments the check passes (`learning_rate` and the base options
`weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`, `ema_momentum`, `loss_scale_factor`,
`gradient_accumulation_steps`), and asserts one behaviour by comparing two runs that must agree: the option applied
by the optimizer against the same thing done by hand (gradients clipped, averaged or scaled in NumPy, the learning
rate set step by step, an exponential moving average computed in NumPy).

Gradients are fixed random arrays that do not depend on the weights, so two runs see the same gradients whatever
their weights. Usage, in a test module:

    from .conformance import BASE_OPTION_CHECKS, check_save_load_continues

    def make(**kwargs):
        return RAdam(**{"learning_rate": 0.01, **kwargs})

    @pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda check: check.__name__)
    def test_honours_base_option(check):
        check(make)

`check_sparse_gradients` and `check_mirrored_strategy_fit` use TensorFlow; the others are backend-agnostic.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

RTOL = 1e-5  # two float32 runs of the same math, computed in different orders
ATOL = 1e-6
SHAPES = {"kernel": (4, 3), "bias": (3,)}  # a matrix and a 1-D variable, as in a Dense layer


def random_gradients(steps, shapes=SHAPES, seed=0, scale=1.0):
    """`steps` lists of float32 gradients, one array per shape, drawn from N(0, scale^2)."""
    rng = np.random.default_rng(seed)
    return [[(scale * rng.standard_normal(shape)).astype("float32") for shape in shapes.values()]
            for _ in range(steps)]


def initial_values(shapes=SHAPES, seed=1):
    """Float32 starting weights, one array per shape."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype("float32") for shape in shapes.values()]


def make_variables(values=None, shapes=SHAPES):
    """Fresh `keras.Variable`s named after the keys of `shapes` (so `exclude_from_weight_decay` can match them)."""
    values = initial_values(shapes) if values is None else values
    return [keras.Variable(value, name=name, dtype="float32") for name, value in zip(shapes, values)]


def run(optimizer, gradients, variables=None, before_step=None):
    """Applies each step's gradients eagerly; returns the variables and the trajectory (values after each step).

    `before_step(step)` is called before each update, e.g. to set the learning rate by hand.
    """
    variables = make_variables() if variables is None else variables
    trajectory = []
    for step, step_gradients in enumerate(gradients):
        if before_step is not None:
            before_step(step)
        optimizer.apply([ops.convert_to_tensor(g) for g in step_gradients], variables)
        trajectory.append([ops.convert_to_numpy(v).copy() for v in variables])
    return variables, trajectory


def run_stateless(optimizer, gradients, variables=None):
    """Like `run`, through `optimizer.stateless_apply` (the JAX trainer's path): values in, new values out."""
    variables = make_variables() if variables is None else variables
    optimizer.build(variables)
    trajectory = []
    for step_gradients in gradients:
        new_values, new_state = optimizer.stateless_apply(
            [v.value for v in optimizer.variables], [ops.convert_to_tensor(g) for g in step_gradients],
            [v.value for v in variables])
        for variable, value in zip(variables, new_values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, new_state):
            variable.assign(value)
        trajectory.append([ops.convert_to_numpy(v).copy() for v in variables])
    return variables, trajectory


def assert_same(actual, expected, rtol=RTOL, atol=ATOL):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def assert_different(actual, expected, atol=1e-4):
    assert np.max(np.abs(np.asarray(actual) - np.asarray(expected))) > atol


# ---------------------------------------------------------------------------------------------------------------
# The Keras base options.


def check_weight_decay(make, steps=5):
    """`weight_decay` changes the decayed variable and leaves the one excluded with `exclude_from_weight_decay`
    exactly as without decay."""
    gradients = random_gradients(steps)
    decayed = make(weight_decay=0.1)
    decayed.exclude_from_weight_decay(var_names=["bias"])
    _, with_decay = run(decayed, gradients)
    _, without_decay = run(make(), gradients)
    kernel, bias = with_decay[-1]
    assert_same([bias], [without_decay[-1][1]])
    assert_different(kernel, without_decay[-1][0])


def check_clipnorm(make, steps=5, clipnorm=0.5):
    """`clipnorm` equals rescaling each gradient to norm <= clipnorm by hand."""
    gradients = random_gradients(steps, scale=3.0)
    clipped = [[g * min(1.0, clipnorm / np.linalg.norm(g)) for g in step] for step in gradients]
    _, ours = run(make(clipnorm=clipnorm), gradients)
    _, by_hand = run(make(), [[g.astype("float32") for g in step] for step in clipped])
    assert_same(ours[-1], by_hand[-1])


def check_clipvalue(make, steps=5, clipvalue=0.5):
    """`clipvalue` equals clipping each gradient element to [-clipvalue, clipvalue] by hand."""
    gradients = random_gradients(steps)
    clipped = [[np.clip(g, -clipvalue, clipvalue) for g in step] for step in gradients]
    _, ours = run(make(clipvalue=clipvalue), gradients)
    _, by_hand = run(make(), clipped)
    assert_same(ours[-1], by_hand[-1])


def check_global_clipnorm(make, steps=5, global_clipnorm=0.5):
    """`global_clipnorm` equals rescaling all gradients together to a global norm <= global_clipnorm by hand."""
    gradients = random_gradients(steps, scale=3.0)
    clipped = []
    for step in gradients:
        norm = np.sqrt(sum(float(np.sum(np.square(g.astype("float64")))) for g in step))
        clipped.append([(g * min(1.0, global_clipnorm / norm)).astype("float32") for g in step])
    _, ours = run(make(global_clipnorm=global_clipnorm), gradients)
    _, by_hand = run(make(), clipped)
    assert_same(ours[-1], by_hand[-1])


def check_ema(make, steps=6, ema_momentum=0.8):
    """`use_ema` leaves training unchanged, and `finalize_variable_values` sets the weights to the moving average
    Keras defines: a_1 = w_1, a_t = m a_{t-1} + (1 - m) w_t."""
    gradients = random_gradients(steps)
    optimizer = make(use_ema=True, ema_momentum=ema_momentum)
    variables, with_ema = run(optimizer, gradients)
    _, without_ema = run(make(), gradients)
    assert_same(with_ema[-1], without_ema[-1])
    average = [w.astype("float64") for w in with_ema[0]]
    for weights in with_ema[1:]:
        average = [ema_momentum * a + (1 - ema_momentum) * w for a, w in zip(average, weights)]
    optimizer.finalize_variable_values(variables)
    assert_same([ops.convert_to_numpy(v) for v in variables], average)


def check_gradient_accumulation(make, accumulate=3, steps=4):
    """`gradient_accumulation_steps=n` equals one update per n micro-batches with their mean gradient."""
    micro = random_gradients(accumulate * steps)
    means = [[np.mean([micro[s * accumulate + i][j] for i in range(accumulate)], axis=0) for j in range(len(SHAPES))]
             for s in range(steps)]
    optimizer = make(gradient_accumulation_steps=accumulate)
    _, ours = run(optimizer, micro)
    _, by_hand = run(make(), means)
    assert int(ops.convert_to_numpy(optimizer.iterations)) == steps
    assert_same(ours[accumulate - 2], initial_values())  # nothing moves before the first full accumulation
    assert_same(ours[-1], by_hand[-1])


def check_loss_scale_factor(make, steps=5, factor=128.0):
    """`loss_scale_factor` divides the gradients of a loss scaled by it: same updates as unscaled gradients."""
    gradients = random_gradients(steps)
    _, ours = run(make(loss_scale_factor=factor), [[g * factor for g in step] for step in gradients])
    _, plain = run(make(), gradients)
    assert_same(ours[-1], plain[-1])


def check_loss_scale_optimizer(make, steps=5, scale=16.0):
    """Inside `keras.optimizers.LossScaleOptimizer`, gradients of the scaled loss give the unscaled updates."""
    gradients = random_gradients(steps)
    wrapped = keras.optimizers.LossScaleOptimizer(make(), initial_scale=scale)
    scaled = [[g * scale for g in step] for step in gradients]
    # On JAX the wrapper's finite-gradient `cond` needs the stateless path, the one `fit` takes there.
    _, ours = (run_stateless if keras.backend.backend() == "jax" else run)(wrapped, scaled)
    _, plain = run(make(), gradients)
    assert_same(ours[-1], plain[-1])


def regression_data(samples=64, features=8, seed=0):
    """A noiseless linear regression problem, float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype("float32")
    y = (x @ rng.standard_normal((features, 1))).astype("float32")
    return x, y


def regression_model(dtype=None, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh", dtype=dtype),
                             keras.layers.Dense(1, dtype=dtype)])


def check_mixed_float16_fit(make, epochs=5):
    """Under the `mixed_float16` policy `compile` wraps the optimizer in `LossScaleOptimizer`; `fit` then trains:
    the loss falls and the float32 weights stay finite. The global policy is restored afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        x, y = regression_data()
        model = regression_model()
        model.compile(make(), loss="mse")
        history = model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.layers[0].compute_dtype == "float16"
        losses = history.history["loss"]
        assert np.isfinite(losses).all() and losses[-1] < losses[0]
        for weight in model.trainable_weights:
            assert weight.dtype == "float32" and np.isfinite(ops.convert_to_numpy(weight)).all()
    finally:
        keras.config.set_dtype_policy(previous)


BASE_OPTION_CHECKS = (
    check_weight_decay,
    check_clipnorm,
    check_clipvalue,
    check_global_clipnorm,
    check_ema,
    check_gradient_accumulation,
    check_loss_scale_factor,
    check_loss_scale_optimizer,
    check_mixed_float16_fit,
)


# ---------------------------------------------------------------------------------------------------------------
# Learning rates.


class HalvingEvery(keras.optimizers.schedules.LearningRateSchedule):
    """A user-written schedule: `initial` halved every `period` steps (tests any `LearningRateSchedule` works)."""

    def __init__(self, initial, period):
        self.initial = initial
        self.period = period

    def __call__(self, step):
        halvings = ops.floor_divide(ops.cast(step, "float32"), float(self.period))
        return self.initial * ops.power(0.5, halvings)

    def get_config(self):
        return {"initial": self.initial, "period": self.period}


def check_learning_rate_schedule(make, initial=0.01, steps=8):
    """A `LearningRateSchedule` as `learning_rate` equals a float learning rate set to the schedule's value before
    each step (Keras evaluates the schedule at the number of updates done so far)."""
    gradients = random_gradients(steps)
    schedules = [
        keras.optimizers.schedules.ExponentialDecay(initial, decay_steps=3, decay_rate=0.5),
        keras.optimizers.schedules.PiecewiseConstantDecay([2, 5], [initial, initial / 4, initial / 10]),
        HalvingEvery(initial, 3),
    ]
    for schedule in schedules:
        _, ours = run(make(learning_rate=schedule), gradients)
        by_hand = make(learning_rate=initial)

        def set_learning_rate(step, optimizer=by_hand, schedule=schedule):
            optimizer.learning_rate = float(ops.convert_to_numpy(schedule(step)))

        _, expected = run(by_hand, gradients, before_step=set_learning_rate)
        assert_same(ours[-1], expected[-1])


# ---------------------------------------------------------------------------------------------------------------
# TensorFlow only: sparse gradients and tf.distribute.


def check_sparse_gradients(make, steps=5):
    """An `Embedding` layer's gradient (a `tf.IndexedSlices`, rows for the looked-up ids only) gives the same
    updates as the same gradient made dense: rows not looked up see a zero gradient, as in dense training."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    table = rng.standard_normal((10, 4)).astype("float32")
    sparse_layer, dense_layer = keras.layers.Embedding(10, 4), keras.layers.Embedding(10, 4)
    for layer in (sparse_layer, dense_layer):
        layer.build((None, 3))
        layer.embeddings.assign(table)
    sparse_optimizer, dense_optimizer = make(), make()
    for _ in range(steps):
        ids = tf.constant(rng.integers(0, 6, size=(4, 3)))  # ids 6..9 never looked up; repeats are summed
        target = tf.constant(rng.standard_normal((4, 3, 4)).astype("float32"))
        runs = ((sparse_layer, sparse_optimizer, False), (dense_layer, dense_optimizer, True))
        for layer, optimizer, densify in runs:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(ids) - target))
            (gradient,) = tape.gradient(loss, [layer.embeddings.value])
            assert isinstance(gradient, tf.IndexedSlices)
            if densify:
                gradient = tf.convert_to_tensor(gradient)
            optimizer.apply([gradient], [layer.embeddings])
    assert_same([ops.convert_to_numpy(sparse_layer.embeddings)], [ops.convert_to_numpy(dense_layer.embeddings)])
    assert_different(ops.convert_to_numpy(sparse_layer.embeddings), table)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    request = json.loads(sys.stdin.read())
    for module in request["modules"]:
        importlib.import_module(module)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype("float32")
    y = (x @ rng.standard_normal((8, 1))).astype("float32")

    def train(strategy, config):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"),
                                      keras.layers.Dense(1)])
            model.compile(keras.optimizers.deserialize(config), loss="mse")
        history = model.fit(x, y, batch_size=16, epochs=request["epochs"], shuffle=False, verbose=0)
        return model, history.history["loss"]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name, config in request["optimizers"].items():
        distributed, losses = train(mirrored, config)
        single, single_losses = train(tf.distribute.get_strategy(), config)
        results[name] = {
            "replicas": mirrored.num_replicas_in_sync,
            "losses": losses,
            "single_losses": single_losses,
            "weights": [np.asarray(w).tolist() for w in distributed.get_weights()],
            "single_weights": [np.asarray(w).tolist() for w in single.get_weights()],
        }
    print(json.dumps(results))
    """
)


def mirrored_strategy_results(optimizers, epochs=3, modules=()):
    """Trains a small regression model with each optimizer in `optimizers` (a dict name -> optimizer) under
    `tf.distribute.MirroredStrategy` over two logical CPUs and on one device, in one fresh Python process (logical
    devices can only be set before TensorFlow initialises); returns a dict name -> result for
    `assert_mirrored_strategy_result`.

    Optimizers travel as `keras.optimizers.serialize(optimizer)`; `modules` (plus each optimizer's own module) are
    imported there first so their registered classes deserialize.
    """
    request = {
        "optimizers": {name: keras.optimizers.serialize(optimizer) for name, optimizer in optimizers.items()},
        "modules": sorted({*(type(optimizer).__module__ for optimizer in optimizers.values()), *modules}),
        "epochs": epochs,
    }
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT], input=json.dumps(request), env=environment,
                             capture_output=True, text=True, timeout=600, check=False)
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def assert_mirrored_strategy_result(result):
    """Two replicas; the loss falls; losses and weights equal single-device training's."""
    assert result["replicas"] == 2
    losses = result["losses"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    np.testing.assert_allclose(losses, result["single_losses"], rtol=1e-4)
    assert_same(result["weights"], result["single_weights"], rtol=1e-4, atol=1e-5)


def check_mirrored_strategy_fit(optimizer, epochs=3, modules=()):
    """`model.fit` under `tf.distribute.MirroredStrategy` over two logical CPUs trains (the loss falls) and gives
    the weights single-device training gives. One subprocess per call; `mirrored_strategy_results` takes many
    optimizers in one."""
    result = mirrored_strategy_results({"optimizer": optimizer}, epochs=epochs, modules=modules)["optimizer"]
    assert_mirrored_strategy_result(result)


# ---------------------------------------------------------------------------------------------------------------
# Saving, configuration and arguments.


def check_save_load_continues(make, path, epochs=2):
    """After `fit`, `model.save(".keras")` -> `keras.models.load_model` restores the optimizer with its slot
    variables: the loaded model's optimizer holds the same values and continues with exactly the same updates."""
    x, y = regression_data()
    model = regression_model()
    model.compile(make(), loss="mse")
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    file = os.path.join(str(path), "m.keras")
    model.save(file)
    loaded = keras.models.load_model(file)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    assert_same([ops.convert_to_numpy(v) for v in loaded.optimizer.variables],
                [ops.convert_to_numpy(v) for v in model.optimizer.variables], rtol=0, atol=0)
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    assert_same(loaded.get_weights(), model.get_weights(), rtol=1e-6, atol=1e-7)
    assert_same([ops.convert_to_numpy(v) for v in loaded.optimizer.variables],
                [ops.convert_to_numpy(v) for v in model.optimizer.variables], rtol=1e-6, atol=1e-7)


def check_config_round_trip(optimizer):
    """`from_config(get_config())` and `keras.optimizers.deserialize(serialize(...))` rebuild the same optimizer."""
    config = optimizer.get_config()
    assert type(optimizer).from_config(config).get_config() == config
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(rebuilt) is type(optimizer)
    assert rebuilt.get_config() == config


def check_rejects(factory, argument, value, error=ValueError, **kwargs):
    """`factory(argument=value, **kwargs)` raises `error` whose message names the argument and the value received,
    in the project's form ``Argument `name` must be ... Received: name=value``. Returns the message."""
    with pytest.raises(error) as raised:
        factory(**{argument: value}, **kwargs)
    message = str(raised.value)
    assert f"Argument `{argument}` must be" in message, message
    assert f"Received: {argument}={value!r}" in message, message
    return message


# ---------------------------------------------------------------------------------------------------------------
# Update rules against references, and training on real data.

REFERENCE_STEPS = 100
REFERENCE_SHAPES = {"kernel": (5, 4), "bias": (4,), "scale": (1,)}
REFERENCE_RTOL = 1e-5


def reference_problem(steps=REFERENCE_STEPS, shapes=REFERENCE_SHAPES, seed=0, scale=1.0):
    """(initial weights, per-step gradients, variable names) for a reference comparison, float32 arrays."""
    return initial_values(shapes, seed=seed + 1), random_gradients(steps, shapes, seed=seed, scale=scale), list(shapes)


def run_reference_problem(optimizer, initial, gradients, names=tuple(REFERENCE_SHAPES)):
    """The optimizer's trajectory (values after each step) from `initial` under `gradients`."""
    variables = [keras.Variable(value, name=name, dtype="float32") for name, value in zip(names, initial)]
    return run(optimizer, gradients, variables)[1]


def assert_matches_reference(trajectory, reference, rtol=REFERENCE_RTOL, atol=1e-6):
    """Every step of a float32 trajectory agrees with a float64 reference trajectory: each element to `rtol`, with
    an absolute floor of `atol` times the variable's largest magnitude over the run (at least 1), the float32
    rounding that an element passing near zero carries from the sums and norms it was built from."""
    assert len(trajectory) == len(reference)
    scales = [max(1.0, max(float(np.max(np.abs(step[i]))) for step in reference)) for i in range(len(reference[0]))]
    for step, (ours, expected) in enumerate(zip(trajectory, reference)):
        for a, e, scale in zip(ours, expected, scales, strict=True):
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=f"step {step + 1}")


def optax_trajectory(transformation, initial, gradients, state_edit=None):
    """The trajectory optax's `transformation` gives in float64 (JAX's 64-bit mode, for this call only), so that
    it is a reference rather than another float32 run; `state_edit(state)` may adjust the initial state."""
    import jax
    import jax.numpy as jnp
    import optax

    with jax.enable_x64(True):
        params = [jnp.asarray(value, jnp.float64) for value in initial]
        state = transformation.init(params)
        if state_edit is not None:
            state = state_edit(state)
        trajectory = []
        for step_gradients in gradients:
            updates, state = transformation.update([jnp.asarray(g, jnp.float64) for g in step_gradients], state,
                                                   params)
            params = optax.apply_updates(params, updates)
            trajectory.append([np.asarray(p) for p in params])
    assert trajectory[-1][0].dtype == np.float64
    return trajectory


def fit_digits(optimizer, epochs=8, seed=0):
    """Trains a small MLP on the bundled digits data; returns (first-epoch loss, last loss, validation accuracy)."""
    from tfopt.data import load_digits

    data = load_digits(seed=seed)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(data.x_train, data.y_train, batch_size=64, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    return history.history["loss"][0], history.history["loss"][-1], accuracy


def check_docstring_examples(module):
    """The examples in `module`'s docstrings run and print what they show (doctest)."""
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
