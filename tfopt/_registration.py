"""tfopt's Keras classes registered with Keras's serialization as soon as Keras is imported.

A `.keras` file names tfopt's objects by their registered names ("tfopt>PruneLowMagnitude"), and Keras imports
the module behind a name only for its own packages, so `keras.models.load_model` finds a tfopt wrapper, optimizer
or schedule only if its module has run. `import tfopt` imports no module of its own and no Keras (names load on
first use, and the `tfopt` command quiets the backend's start-up before Keras loads), so it registers the classes
here instead: at once if Keras is already imported, else right after Keras's own import finishes. Either way, a new
process that runs `import tfopt` loads every model tfopt saved.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Every area whose classes a `.keras` file can name: layer wrappers and pruning schedules, optimizers, schedules,
# regularizers, and the Model subclasses (SAM, distillers).
SAVEABLE_AREAS = ("tfopt.layers", "tfopt.optimizers", "tfopt.regularizers", "tfopt.schedules", "tfopt.models")


def register_all():
    """Imports every saveable area, which registers its classes (their `register_keras_serializable` decorators)."""
    for name in SAVEABLE_AREAS:
        importlib.import_module(name)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands Keras's own module spec back with a loader that registers tfopt after it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once only, and so that the look-up below finds the real Keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register_all()

        spec.loader.exec_module = exec_then_register
        return spec


def register_when_keras_is_imported():
    """Registers tfopt's classes now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules:
        register_all()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
