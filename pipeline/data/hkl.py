"""KITTI's hickle (``.hkl``) files read with h5py alone, never unpickled.

hickle stores Python objects in HDF5 and unpickles whatever a file says (in hickle 4+ even every
node's type comes from a pickle), so a crafted ``.hkl`` runs code on ``hickle.load``. PredNet's
files hold just two things: the frames (an ndarray) and one recording name per frame (a list of
strings). This reader understands those in the hickle 2/3 layout (``data_0`` typed by a string
attribute) and the 4/5 layout (``data`` typed through ``hickle_types_table``, whose base-type
*names* are read and whose pickled type objects are never touched), and refuses any node typed
``pickle``.

Bounds, checked from the file's metadata before any data is read: the datasets may declare at most
``MAX_BYTES`` in all (KITTI's largest, X_train.hkl, is 41396 x 128 x 160 x 3 uint8 = 2.5 GB; a
compressed dataset of 10^12 zeros fits in a few KB and would otherwise be allocated), and a
reference is followed at most ``MAX_LINK_DEPTH`` deep (hickle 5 links a repeated item to the first,
one step; a reference to itself recursed forever).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

TYPES_TABLE = "hickle_types_table"
MAX_BYTES = 16 * 2**30  # six times KITTI's largest file
MAX_LINK_DEPTH = 8
_ARRAY = {"ndarray"}
_SEQUENCE = {"list", "tuple", "<class 'list'>", "<type 'list'>", "<class 'tuple'>", "<type 'tuple'>"}


def read_hkl(path: str | Path, *, max_bytes: int = MAX_BYTES) -> np.ndarray | list[str]:
    """The ndarray or list of strings in hickle file ``path``, whose datasets declare at most
    ``max_bytes`` in all."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable hickle (HDF5) file ({exc})") from None
    with f:
        nodes = [k for k in f.keys() if k != TYPES_TABLE]
        if len(nodes) != 1:
            raise DataError(f"{path}: expected one hickle data node, found {nodes}")
        pickled, declared, biggest = _survey(f)
        if pickled:
            raise DataError(f"{path}: node {pickled[0]!r} holds a pickled Python object; refusing to "
                            f"unpickle it (only arrays and lists of names are read)")
        if declared > max_bytes:
            raise DataError(f"{path}: datasets declare {declared:,} bytes (largest {biggest!r}), over the "
                            f"limit of {max_bytes:,}; refusing to read them")
        try:
            return _read(f, f[nodes[0]], path)
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: unexpected hickle content ({type(exc).__name__}: {exc})") from None


def _kind(f, node) -> str:
    """The hickle type name of a node, from its attributes only."""
    import h5py

    t = node.attrs.get("type")
    if isinstance(t, h5py.Reference):  # hickle 4/5: an entry of the types table
        entry = f[t]
        base = entry.attrs.get("base_type")
        if not isinstance(base, h5py.Reference):
            raise DataError(f"{f.filename}: node {node.name!r} has no readable base type")
        return f[base].name.rsplit("/", 1)[-1]
    if t is None:
        return ""
    first = np.asarray(t).ravel()[0]
    return first.decode() if isinstance(first, bytes) else str(first)


def _survey(f) -> tuple[list[str], int, str]:
    """Nodes typed ``pickle`` (hickle 2/3) or stored as an untyped byte blob (how hickle 4/5 keep
    an object they pickled; an untyped reference is only a link to a repeated item); and the bytes
    all datasets declare, with the largest one's name. h5py visits each object once, so hard-link
    cycles end; soft links are not followed."""
    import h5py

    found: list[str] = []
    sizes: dict[str, int] = {}

    def visit(name, node):
        if name.split("/", 1)[0] == TYPES_TABLE:
            return  # hickle 4/5's pickled type objects: never read, so never unpickled
        if isinstance(node, h5py.Dataset):  # math.prod of Python ints: a shape cannot overflow
            sizes[node.name] = math.prod(node.shape or ()) * node.dtype.itemsize
        kind = _kind(f, node)
        untyped_blob = (kind == "" and isinstance(node, h5py.Dataset)
                        and h5py.check_ref_dtype(node.dtype) is None)
        if kind == "pickle" or untyped_blob:
            found.append(node.name)

    f.visititems(visit)
    biggest = max(sizes, key=sizes.__getitem__, default="")
    return found, sum(sizes.values()), biggest


def _read(f, node, path: Path):
    import h5py

    kind = _kind(f, node)
    if isinstance(node, h5py.Dataset):
        if kind in _ARRAY:
            value = node[()]
            if value.dtype.kind in "SUO" and value.dtype.kind != "U":
                return [_text(f, v) for v in value.ravel()]
            return value
        if kind in _SEQUENCE:
            return [_text(f, v) for v in np.asarray(node[()]).ravel()]
        if kind in ("str", "bytes"):
            return _text(f, node[()])
    elif kind in _SEQUENCE or kind in _ARRAY:  # hickle 4/5: one child per item
        items = sorted(node.values(), key=lambda n: int(n.attrs.get("item_index", 0)))
        return [_item(f, item, path) for item in items]
    raise DataError(f"{path}: node {node.name!r} holds a {kind or 'untyped'} object, not an array or "
                    f"a list of names")


def _item(f, node, path: Path, depth: int = 0) -> str:
    import h5py

    value = node[()]
    if isinstance(value, h5py.Reference):  # hickle 5 stores a repeated item as a link to the first
        if depth >= MAX_LINK_DEPTH:
            raise DataError(f"{path}: node {node.name!r}: references nested over {MAX_LINK_DEPTH} deep "
                            f"(a cycle?); refusing to follow them")
        return _item(f, f[value], path, depth + 1)
    return _text(f, value)


def _text(f, value) -> str:
    if isinstance(value, np.ndarray):
        if value.dtype == "S1":  # hickle 5 writes a str as its characters
            return b"".join(value.ravel().tolist()).decode()
        value = value.item() if value.size == 1 else value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise DataError(f"{f.filename}: expected a name, got {type(value).__name__}")
