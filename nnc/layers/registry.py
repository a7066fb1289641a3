"""The layer registry: nnc's layer classes by class name, and the nested
``{"class_name": ..., "config": ...}`` form of a layer built from it.

Every public layer class of nnc (``Sequential`` too) enters the registry when
it is defined (``Layer.__init_subclass__``).  ``layer_from_config`` builds
only registered classes: a class name read from a config or a model file is
a key of this dict, never something to import or evaluate.  Containers
(Residual, Sequential) nest their sub-layers' configs with these two
functions; ``nnc.serialization`` uses them for the model in a file.

This module imports nothing from nnc, so any module may use it.
"""

_CLASSES = {}


def register(cls):
    """Add ``cls`` under its class name (returns ``cls``).  Two different
    classes under one name raise TypeError: a config names a class by
    ``__name__`` alone."""
    name = cls.__name__
    old = _CLASSES.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"nnc layer registry: {cls.__module__}.{cls.__qualname__} and "
                        f"{old.__module__}.{old.__qualname__} are both named {name}")
    _CLASSES[name] = cls
    return cls


def registry():
    """``{class name: class}`` of every registered layer class (a copy)."""
    return dict(_CLASSES)


def layer_to_config(layer):
    """``{"class_name": ..., "config": ...}`` of a registered layer."""
    name = type(layer).__name__
    if _CLASSES.get(name) is not type(layer):
        raise TypeError(f"cannot serialise {name}: not an nnc layer class (see nnc.layers.__all__)")
    return {"class_name": name, "config": layer.get_config()}


def layer_from_config(spec, where="nnc.load"):
    """Rebuild a layer from ``{"class_name", "config"}`` (possibly JSON round-tripped).
    ValueError, naming ``where``, for a malformed spec, an unregistered class
    name or a config its class rejects."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
            or not isinstance(spec.get("config"), dict):
        raise ValueError(f"{where}: expected a {{'class_name': str, 'config': dict}} layer spec, got {spec!r:.200}")
    cls = _CLASSES.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"{where}: unknown layer class {spec['class_name']!r}")
    try:
        return cls.from_config(spec["config"])
    except (TypeError, KeyError, OverflowError, MemoryError) as e:
        raise ValueError(f"{where}: invalid config for {spec['class_name']}: {e}") from None
