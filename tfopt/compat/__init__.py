"""Migration namespaces: `tfopt.compat.tfmot` and `tfopt.compat.tfa` (names and arguments only, on tfopt's objects)."""
