"""A model's variables once each: `model.weights` lists a variable shared by two layers (tied embeddings, a layer
called twice inside a nested model) once per holder; layouts and byte counts must see it once."""


def unique_variables(variables):
    """`variables` in order, each variable once (by identity)."""
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique
