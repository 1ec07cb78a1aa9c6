"""MNIST-shaped data for the transcribed tfmot guides: scikit-learn's digits (bundled with tfopt) scaled from 8x8
to 28x28, so the guides' models learn something in a few steps."""

import os
import zipfile

import numpy as np

from tfopt.data import load_digits


def mnist_like(train=600, test=200):
    """`(train_images, train_labels), (test_images, test_labels)`: (n, 28, 28) float32 in [0, 1], int labels
    (up to 1,437 training images: the digits' train and validation parts)."""
    data = load_digits()

    def resize(x):
        x = np.kron(x[..., 0], np.ones((3, 3), "float32"))  # 24x24
        return np.pad(x, ((0, 0), (2, 2), (2, 2))).astype("float32")

    (x_train, y_train), (x_test, y_test) = data.train, data.test
    x_train, y_train = np.concatenate([x_train, data.validation[0]]), np.concatenate([y_train, data.validation[1]])
    return (resize(x_train[:train]), y_train[:train].astype("int64")), (resize(x_test[:test]),
                                                                       y_test[:test].astype("int64"))


def tflite_kernels(content):
    """`[(op name, input dtype, weights dtype, weights array)]` of the CONV_2D / FULLY_CONNECTED ops of a file."""
    from tfopt.compression.tflite_model import tflite_interpreter

    interpreter = tflite_interpreter(model_content=content)
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            data, weights = (int(i) for i in op["inputs"][:2])
            found.append((op["op_name"], np.dtype(details[data]["dtype"]).name,
                          np.dtype(details[weights]["dtype"]).name, interpreter.get_tensor(weights)))
    return found


def evaluate_model(interpreter, test_images, test_labels):
    """The guides' `evaluate_model`: accuracy of a TFLite interpreter, one image per call."""
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    prediction_digits = []
    for test_image in test_images:
        test_image = np.expand_dims(test_image, axis=0).astype(np.float32)
        interpreter.set_tensor(input_index, test_image)
        interpreter.invoke()
        output = interpreter.tensor(output_index)
        prediction_digits.append(np.argmax(output()[0]))
    return (np.array(prediction_digits) == test_labels).mean()


def get_gzipped_model_size(folder, content, name):
    """The guides' `get_gzipped_model_size`: bytes of `content` written to `folder/name` and zipped (deflate)."""
    path = folder / name
    path.write_bytes(content)
    zipped_file = folder / f"{name}.zip"
    with zipfile.ZipFile(zipped_file, "w", compression=zipfile.ZIP_DEFLATED) as f:
        f.write(path)
    return os.path.getsize(zipped_file)
