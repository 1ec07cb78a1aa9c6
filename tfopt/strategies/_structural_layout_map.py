"""A `keras.distribution.LayoutMap` keyed by exact variable paths that still finds a variable when the model is
built again with unnamed layers (Keras only: no TensorFlow, no JAX).

Keras names an unnamed layer from a per-process counter (`dense`, `dense_1`, ... `dense_7`), so the paths of a
second build of the same architecture differ from the first (`sequential_3/dense_7/kernel` for
`sequential/dense/kernel`). Every path component is therefore read as its *structural position*: the base name
without the counter suffix and the component's rank among the siblings of that base under the same parent. In the
reference build the rank is the order of the model's weights (graph order: a layer is built when it is first
called); in a build that is under way it is the order in which Keras asks for the layouts, which is the order the
layers create their variables: the same graph order for the same code (not the counters' order, which is the
order of construction: `Dense(32)(Dense(64)(x))` constructs the outer layer first but builds it second). Both
builds then give `sequential#0/dense#1/kernel#0` for the second Dense layer's kernel, and the layout of the
reference path is found. A name that is not an auto-name (`up`, `query`) is its own base with rank 0, so named
layers match by name. A Sequential loaded from a `.keras` file builds its layers outside its own name (no root
component on the paths): with a reference of one root, positions are also matched without it.

One map serves one rebuilt model per parent path: a functional model's variables have no model prefix, so building
two functional models under one distribution scope gives the second one ranks after the first one's (its
variables then find no layout and stay replicated, which `sharding_report` shows).
"""

import re

import keras

_AUTO_NAME = re.compile(r"^(.*?)(?:_(\d+))?$")


def split_name(component):
    """(`dense`, 7) for `dense_7`, (`dense`, 0) for `dense`: a path component's base and counter suffix."""
    base, number = _AUTO_NAME.match(component).groups()
    return (base or component), int(number or 0)


def canonical_paths(paths):
    """For the variable paths of one built model, in the model's order: {path: structural path}."""
    seen = {}
    canonical = {}
    for path in paths:
        parts = path.split("/")
        pieces = []
        for i, part in enumerate(parts):
            base, _ = split_name(part)
            names = seen.setdefault(("/".join(parts[:i]), base), [])
            if part not in names:
                names.append(part)
            pieces.append(f"{base}#{names.index(part)}")
        canonical[path] = "/".join(pieces)
    return canonical


class StructuralLayoutMap(keras.distribution.LayoutMap):
    """A LayoutMap over the exact variable paths of a reference build, looked up by structural position.

    Args:
        device_mesh: the `keras.distribution.DeviceMesh` of the layouts.
        reference_paths: every variable path of the reference build (also those left replicated), so that ranks
            are counted over the whole model.
        replicated: {path: reason} of the variables a rule would have sharded but could not; kept for the report.
    """

    def __init__(self, device_mesh, reference_paths, replicated=None):
        super().__init__(device_mesh)
        self._canonical = canonical_paths(list(reference_paths))
        self._reference_by_structure = {c: p for p, c in self._canonical.items()}
        # A Sequential's layers are built under its name when it is constructed, but outside it when the model is
        # loaded from a .keras file (`sequential/dense/kernel` saved, `dense/kernel` loaded): with one root
        # component, positions also match without it.
        roots = {c.split("/", 1)[0] for c in self._canonical.values()}
        self._tails = {} if len(roots) != 1 else {
            c.split("/", 1)[1]: p for p, c in self._canonical.items() if c.count("/") >= 2}
        self._by_tail = {}
        self._by_structure = {}
        self._seen = {}
        self.replicated = dict(replicated or {})

    def __setitem__(self, key, layout):
        if key not in self._canonical:
            raise ValueError(f"Argument `key` must be a variable path of the reference model. Received: key={key!r}")
        super().__setitem__(key, layout)
        structural = self._canonical[key]
        self._by_structure[structural] = key
        if structural.count("/") >= 2 and self._tails:
            self._by_tail[structural.split("/", 1)[1]] = key

    def __delitem__(self, key):
        self._by_structure.pop(self._canonical[key], None)
        self._by_tail = {t: k for t, k in self._by_tail.items() if k != key}
        return super().__delitem__(key)

    def structural_path(self, path):
        """The structural path of `path` in the build under way (records its components' first-seen ranks)."""
        parts = path.split("/")
        pieces = []
        for i, part in enumerate(parts):
            base, _ = split_name(part)
            seen = self._seen.setdefault(("/".join(parts[:i]), base), [])
            if part not in seen:
                seen.append(part)
            pieces.append(f"{base}#{seen.index(part)}")
        return "/".join(pieces)

    @staticmethod
    def structural_paths(paths):
        """{path: structural path} for all the variable paths of one built model (no state recorded)."""
        return canonical_paths(list(paths))

    @staticmethod
    def _find(structural, full, tails):
        found = full.get(structural)
        if found is None and tails:
            found = tails.get(structural)  # a loaded Sequential: no root component
        if found is None and structural.count("/") >= 2:
            found = full.get(structural.split("/", 1)[1])  # the reference was the loaded one
        return found

    def key_for_structure(self, structural):
        """The laid-out reference path at a structural path, or None."""
        return self._find(structural, self._by_structure, self._by_tail)

    def reference_for_structure(self, structural):
        """The reference variable path (laid out or not) at a structural path, or None."""
        return self._find(structural, self._reference_by_structure, self._tails)

    def reference_path(self, path):
        """The reference path whose layout applies to `path` of the build under way, or None."""
        return self.key_for_structure(self.structural_path(path))

    def __getitem__(self, key):
        if key in self._canonical:  # a path of the reference build itself (or a model that kept its names)
            return super().__getitem__(key) if key in self._layout_map else None
        reference = self.reference_path(key)
        return None if reference is None else super().__getitem__(reference)
