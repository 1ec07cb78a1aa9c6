"""The small CNNs trained on the bundled digits data by `tfopt demo`, `tfopt tune`, `tfopt compress` (when no model
is given) and the benchmarks: one builder, so every one of them trains the same architecture."""

import keras


def _small_cnn(input_shape, num_classes, filters, *, batch_norm=False, dropout=0.25, name=None):
    """Two 3x3 convolutions (relu, or bias-free with BatchNormalization before the relu), 2x2 max pooling, an
    optional Dropout, Dense(32, relu) and a softmax classifier: the shape of every model the demo trains."""
    layers = [keras.Input(input_shape)]
    for width in filters:
        if batch_norm:
            layers += [keras.layers.Conv2D(width, 3, padding="same", use_bias=False),
                       keras.layers.BatchNormalization(), keras.layers.ReLU()]
        else:
            layers.append(keras.layers.Conv2D(width, 3, padding="same", activation="relu"))
    layers += [keras.layers.MaxPooling2D(2), keras.layers.Flatten()]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers += [keras.layers.Dense(32, activation="relu"), keras.layers.Dense(num_classes, activation="softmax")]
    return keras.Sequential(layers, name=name)


def build_demo_cnn(input_shape=(8, 8, 1), num_classes=10):
    """The demo's baseline: a small CNN (51,946 parameters) for 8x8 grey images."""
    return _small_cnn(input_shape, num_classes, (32, 64), name="demo_cnn")


def build_demo_cnn_bn(input_shape=(8, 8, 1), num_classes=10):
    """The demo CNN with BatchNormalization after each convolution (bias-free convolutions)."""
    return _small_cnn(input_shape, num_classes, (32, 64), batch_norm=True, name="demo_cnn_bn")


def build_demo_student(input_shape=(8, 8, 1), num_classes=10):
    """The distilled stage's student: the baseline's shape at a quarter of its convolution widths, no Dropout
    (9,802 parameters, 5.3x fewer)."""
    return _small_cnn(input_shape, num_classes, (8, 16), dropout=0.0, name="demo_student")
