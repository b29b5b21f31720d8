"""The one YAML reader: safe, and strict about duplicate keys.

PyYAML keeps the last of two equal keys silently (``t2m_svq`` defined twice trained as the second
definition); every project file is read here instead, which refuses them, naming key and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
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


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``; ConfigError naming the file for a missing file, bad YAML or
    a duplicate key."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
