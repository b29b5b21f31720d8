"""The one YAML reader: safe, strict about duplicate keys, and refusing aliases and deep nesting.

PyYAML keeps the last of two equal keys silently (``t2m_svq`` defined twice trained as the second
definition); every project file is read here instead, which refuses them, naming key and line.
An alias (``*name``) is refused unless the caller allows it: a few lines of nested aliases stand
for 10^9 values once anything walks them (validation, a repr, a JSON dump), so params.yaml, which
users edit, may not hold any; the project's own paper.yaml keeps its shared column lists. Nesting
deeper than MAX_DEPTH is refused too (a recursion error otherwise, never a config), and so is a
file over MAX_BYTES: PyYAML reads about 300 KB a second, so a 4 MB list took half a minute to be
refused; the project's files are 30-40 KB.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from pipeline.core.errors import ConfigError

MAX_DEPTH = 64  # params.yaml nests about 6 deep
MAX_BYTES = 2**19  # 512 KiB: about 4 s to parse, 13 times the largest file the project has


class _Refused(Exception):
    """A composing error that is already the whole message, bar the file name."""


class _StrictLoader(yaml.SafeLoader):
    aliases = False

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if not self.aliases and self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Refused(f"line {event.start_mark.line + 1}: alias *{event.anchor} refused; "
                           f"write the value out instead of referring to an anchor (&{event.anchor})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"line {self.peek_event().start_mark.line + 1}: nested deeper than "
                               f"{MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {seen[key]}, again on line {line})",
                        key_node.start_mark)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _AliasLoader(_StrictLoader):
    aliases = True


def read_yaml(path: str | Path, *, aliases: bool = False) -> Any:
    """The YAML document in ``path``; ConfigError naming the file for a missing file, bad YAML,
    a duplicate key, an alias (unless ``aliases``), nesting deeper than MAX_DEPTH or a file over
    MAX_BYTES."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; expected a YAML file of at most {MAX_BYTES:,} bytes")
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_yaml(text, str(path), aliases=aliases)


def parse_yaml(text: str, source: str = "<string>", *, aliases: bool = False) -> Any:
    try:
        return yaml.load(text, Loader=_AliasLoader if aliases else _StrictLoader)  # noqa: S506 - SafeLoader subclasses
    except _Refused as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
