"""One registry style for everything built by name: translators, quantizers, dataset sources.

    TRANSLATORS = Registry("translator", key="model.translator")

    @TRANSLATORS.register("gsta")            # in the module that defines it
    def build_gsta(...): ...

    TRANSLATORS.register_lazy("swin", "pipeline.models.translators.transformers")

A lazy entry names the module whose import registers the name; it is imported on first lookup,
so a run pays the import (timm, torchvision, the comparator library) only for what it builds.
Adding a model or quantizer is one file with a ``@register`` line (plus a ``register_lazy`` line
in the package when it should load lazily).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pipeline.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, *, key: str) -> None:
        self.kind = kind    # "translator"
        self.key = key      # the params.yaml key that names an entry, for error messages
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj
        return add

    def register_lazy(self, name: str, module: str, *, aliases: tuple[str, ...] = ()) -> None:
        self._lazy[name] = module
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (aliases and case folded); ConfigError if unknown."""
        key = name.lower() if isinstance(name, str) else name
        key = self._aliases.get(key, key)
        if key not in self._entries and key not in self._lazy:
            raise ConfigError(f"{self.key}: unknown {self.kind} {name!r}; expected {self.choices()}")
        return key

    def choices(self) -> str:
        """``one of a, b, c (aliases x=a)``: what a name may be, for error messages."""
        aliases = ", ".join(f"{a}={c}" for a, c in sorted(self._aliases.items()))
        return f"one of {', '.join(self.names())}" + (f" (aliases {aliases})" if aliases else "")

    def get(self, name: str) -> T:
        key = self.canonical(name)
        if key not in self._entries:
            importlib.import_module(self._lazy[key])
            if key not in self._entries:
                raise RuntimeError(f"module {self._lazy[key]} did not register {self.kind} {key!r}")
        return self._entries[key]

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        try:
            self.canonical(name)  # type: ignore[arg-type]
        except ConfigError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
