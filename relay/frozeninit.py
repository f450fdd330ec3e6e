"""A cheaper ``__init__`` for the frozen, slotted dataclasses a flush makes per message.

A frozen dataclass refuses plain assignment, so the ``__init__`` that
``dataclasses`` writes stores each field with ``object.__setattr__``: a global
lookup, an attribute lookup and a call per field. A flush makes several such
values per message (snapshots, replies, reports, verdicts), and those stores
were about 7% of its Python time. ``fast_init`` replaces that ``__init__`` with
one that stores through each slot's own descriptor, bound once (``__set__`` of
a slot is what ``object.__setattr__`` ends up calling, without the frozen
class's refusal in between): about half the cost.

The parameters, their order, defaults and default factories and keyword-only
markers are those of the generated ``__init__``, and the instance is the same
(``__eq__``, ``__hash__``, ``__repr__``, ``dataclasses.replace``, pickling are
untouched). Classes with ``__post_init__``, ``init=False`` fields or
``InitVar``s are refused rather than half handled.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

_T = TypeVar("_T")

_FACTORY = object()  # stands in for a default made by a factory, as in dataclasses


def fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` a cheaper, equivalent ``__init__``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"fast_init takes a frozen, slotted dataclass: {cls.__name__}")
    params = dataclasses.fields(cls)
    if (
        not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
        or any(not f.init for f in params)
    ):
        raise TypeError(f"fast_init takes a frozen, slotted dataclass: {cls.__name__}")
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in params:
        name = f.name
        scope[f"_set_{name}"] = cls.__dict__[name].__set__
        if f.default is not dataclasses.MISSING:
            scope[f"_default_{name}"] = f.default
            param = f"{name}=_default_{name}"
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory_{name}"] = f.default_factory
            param = f"{name}=_FACTORY"
            body.append(f"    if {name} is _FACTORY:\n        {name} = _factory_{name}()\n")
        else:
            param = name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    _set_{name}(__dataclass_self__, {name})\n")
    signature = ", ".join(
        ["__dataclass_self__", *positional, *(["*", *keyword] if keyword else [])]
    )
    source = f"def __init__({signature}):\n" + "".join(body) + "    return None\n"
    namespace: dict[str, Any] = {}
    exec(source, scope, namespace)  # generated from field names, as dataclasses does
    init = namespace["__init__"]
    original = cls.__init__
    if _shape(init) != _shape(original):  # an InitVar, say: a parameter that is no field
        raise TypeError(f"fast_init cannot stand in for {cls.__name__}'s __init__")
    init.__qualname__ = original.__qualname__
    init.__module__ = original.__module__
    init.__doc__ = original.__doc__
    init.__annotations__ = dict(original.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _shape(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()][1:]
