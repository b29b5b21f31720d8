"""The base of every component's settings schema, and how a bad value becomes one clear line.

Components declare their settings as pydantic models deriving from :class:`Settings` (strict:
unknown keys are refused, no silent str->int coercion, frozen). :func:`parse` validates a mapping
and turns pydantic's report into a ``ConfigError`` naming the dotted params.yaml key, the value and
what was expected, e.g. ``datasets.t2m.train.lr: expected a number > 0, got -1``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from pipeline.core.errors import ConfigError, shown

S = TypeVar("S", bound=BaseModel)

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Rate = Annotated[float, Field(ge=0, lt=1)]  # a proportion in [0, 1)


def expected(text: str) -> PydanticCustomError:
    """Raise it from a validator: the error then reads ``<key>: expected <text>, got <value>``."""
    return PydanticCustomError("expected", text.replace("{", "{{").replace("}", "}}"))


def expecting(text: str) -> WrapValidator:
    """``Annotated`` metadata: any error inside the value reads ``expected <text>`` (for composite
    values such as a list of table numbers, where pydantic's own wording names an item)."""
    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise expected(text) from None
    return WrapValidator(wrap)


def registered(registry: Any) -> AfterValidator:
    """``Annotated`` metadata: a name ``registry`` knows, kept in its registered spelling (aliases
    and case folded), so a config says ``moganet`` wherever the user wrote ``moga``."""
    def check(name: str) -> str:
        if name not in registry:
            raise expected(registry.choices())
        return registry.canonical(name)
    return AfterValidator(check)


class Settings(BaseModel):
    # strict: YAML gives real ints/floats/bools, so "3" for an int is a mistake worth naming;
    # ints are still accepted where a float is expected.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def parse(cls: type[S], values: Any, where: str,
          origin: Callable[[str], str] | None = None) -> S:
    """``cls`` validated from ``values``; errors name ``<where>.<field>`` (or ``origin(field)``,
    the params.yaml key a layered value came from)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {shown(values)}")
    try:
        return cls.model_validate(dict(values))
    except ValidationError as err:
        raise ConfigError(describe(err, where, origin, cls)) from None


def parse_value(kind: Any, value: Any, key: str) -> Any:
    """One value (a constructor argument, not a settings block) validated as ``kind``, e.g.
    ``parse_value(PositiveInt, dim, "SVQ dim")``; errors read like :func:`parse`'s."""
    try:
        return TypeAdapter(kind, config=ConfigDict(strict=True, allow_inf_nan=False)).validate_python(value)
    except ValidationError as err:
        raise ConfigError(describe(err, key)) from None


def describe(err: ValidationError, where: str, origin: Callable[[str], str] | None = None,
             cls: type[BaseModel] | None = None) -> str:
    """The first error of ``err`` as ``<key>: expected ..., got <value>``."""
    e = err.errors(include_url=False)[0]
    field = ".".join(str(p) for p in e["loc"])
    key = origin(field) if origin and field else f"{where}.{field}" if field else where
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind == "extra_forbidden":
        at = _model_at(cls, e["loc"][:-1]) if cls is not None else None
        expected = sorted(at.model_fields) if at is not None else []
        return f"{key}: unknown key; expected one of {expected}" if expected else f"{key}: unknown key"
    if kind == "missing":
        return f"{key}: missing required key"
    if kind == "value_error":  # a cross-field check of a model validator: its message says it all
        return f"{key}: {ctx.get('error', e['msg'])}"
    got = e.get("input")
    return f"{key}: expected {_expected(kind, ctx, e['msg'])}, got {shown(got)}"


def _model_at(cls: Any, loc: tuple) -> type[BaseModel] | None:
    """The settings class that holds the key at ``loc`` below ``cls`` (through optional values,
    mappings and lists), to list the keys it accepts."""
    tp = cls
    for part in (*loc, None):
        while True:  # Annotated[X, ...] and X | None stand for X
            if get_origin(tp) is Annotated:
                tp = get_args(tp)[0]
            elif get_origin(tp) in (Union, UnionType) and len(get_args(tp)) == 2 and type(None) in get_args(tp):
                tp = next(a for a in get_args(tp) if a is not type(None))
            else:
                break
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) in (dict, list):
            tp = get_args(tp)[-1]
        else:
            return None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


_BOUNDS = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}",
           "less_than_equal": "<= {le}"}


def _expected(kind: str, ctx: dict[str, Any], msg: str) -> str:
    if kind in _BOUNDS:
        return "a value " + _BOUNDS[kind].format(**ctx)
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind.startswith("int_"):
        return "an integer"
    if kind.startswith("float_"):
        return "a number"
    if kind.startswith("bool_"):
        return "true or false"
    if kind == "finite_number":
        return "a finite number"
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} item(s)"
    if kind.startswith("string_"):
        return "a string"
    return msg[0].lower() + msg[1:] if msg else kind
