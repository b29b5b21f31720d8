"""Dotted params.yaml keys (``datasets.t2m.train.lr``) looked up in the nested mapping they name."""
from __future__ import annotations

import copy
from typing import Any

MISSING = object()  # what ``lookup`` gives for a key that is not there (None is a real value)


def lookup(tree: Any, key: str) -> Any:
    """The value at dotted ``key`` in ``tree``, or ``MISSING``."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def has_key(tree: Any, key: str) -> bool:
    return lookup(tree, key) is not MISSING


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``tree`` with dotted ``key`` set to ``value`` (missing levels created)."""
    out = copy.deepcopy(tree)
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out
