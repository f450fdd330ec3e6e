"""fast_init: a frozen, slotted dataclass built the cheaper way is the same value."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import InitVar, dataclass, field

import pytest

from relay.frozeninit import fast_init


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: int = field(default=4, kw_only=True)


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: int = field(default=4, kw_only=True)


def _fields(value: object) -> tuple[object, ...]:
    return dataclasses.astuple(value)  # type: ignore[arg-type]


def test_every_way_of_calling_gives_the_fields_the_generated_init_gives() -> None:
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((1,), {}),
        ((1, "x"), {}),
        ((1, "x", [2]), {"d": 5}),
        ((), {"a": 1, "c": [3], "b": "y"}),
    ]
    for args, kwargs in calls:
        assert _fields(Fast(*args, **kwargs)) == _fields(Plain(*args, **kwargs))  # type: ignore[arg-type]
    assert Fast.__init__ is not Plain.__init__


def test_a_default_factory_makes_a_new_default_each_time() -> None:
    assert Fast(1).c is not Fast(1).c


def test_wrong_calls_fail_as_the_generated_init_fails() -> None:
    for args, kwargs in [((), {}), ((1, "x", [], 5), {}), ((1,), {"e": 2})]:
        with pytest.raises(TypeError):
            Plain(*args, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Fast(*args, **kwargs)  # type: ignore[arg-type]


def test_the_value_stays_frozen_equal_hashable_replaceable_and_picklable() -> None:
    value = Fast(1, "x", d=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 2  # type: ignore[misc]
    assert value == Fast(1, "x", d=2) and value != Fast(2, "x", d=2)
    assert pickle.loads(pickle.dumps(value)) == value
    assert dataclasses.replace(value, b="y") == Fast(1, "y", d=2)
    assert repr(value) == "Fast(a=1, b='x', c=[], d=2)"


def test_classes_it_cannot_stand_in_for_are_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int]

    for cls in (Mutable, Unslotted, Checked, WithInitVar):
        with pytest.raises(TypeError):
            fast_init(cls)
