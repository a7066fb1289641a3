"""Activation names of the API and their C ids (enum nnc_act)."""
ACTIVATIONS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "sign": 4, "softmax": 5}
RELU = 1
SOFTMAX = 5
LEAKY_RELU = 6   # LeakyReLU's kernel id (with a slope: not an activation name)


def act_id(name, where, allowed=None):
    """The C id of an activation name; ValueError for unknown names."""
    names = ACTIVATIONS if allowed is None else allowed
    if not (name is None or isinstance(name, str)) or name not in names:
        valid = ", ".join(repr(n) for n in names)
        raise ValueError(f"{where}: unknown activation {name!r}; expected one of {valid}")
    return ACTIVATIONS[name]
