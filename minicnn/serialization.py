"""``save`` / ``load``: model and optimizer state dicts and training checkpoints, without pickle.

A file is a ``.npz`` archive (the format ``np.savez`` writes): every numpy array and numpy scalar of
the saved object is one ``a<i>.npy`` member, and the member ``__minicnn__.npy`` holds a UTF-8 JSON
document describing the tree that holds them. Nothing is ever pickled (``allow_pickle=False`` on
both sides), so loading a file cannot run code.

Supported objects, round-tripped exactly (types and values): ``dict`` and ``OrderedDict`` with
``str`` or ``int`` keys (order kept), ``list``, ``tuple``, ``numpy.ndarray`` (any shape and dtype
except object dtypes; not subclasses), numpy scalars (``np.float32(1)``, ...), ``int`` (any size),
``float`` (incl. nan, inf, -0.0), ``bool``, ``str``, ``None``.

The file name is used exactly as given: ``'.npz'`` is NOT appended (unlike ``np.savez``), so
``save(obj, 'checkpoint.npz')`` writes ``checkpoint.npz`` and ``save(obj, 'ckpt')`` writes ``ckpt``.
"""
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np

from ._io import atomic_write

_FORMAT = "minicnn"
_VERSION = 1
_HEADER = "__minicnn__"
_INT64_LIMIT = 2 ** 63  # larger ints are written as hex strings (JSON readers may round big numbers)


class _CorruptFile(Exception):
    """Raised while decoding; ``load`` turns it into a ``ValueError`` naming the file."""


# -- encoding -----------------------------------------------------------------------------------
def _encode(obj, where, arrays, active):
    """The JSON node for ``obj``; arrays and numpy scalars are appended to ``arrays``."""
    t = type(obj)
    if obj is None or t is bool or t is str:
        return obj
    if t is int:
        return obj if -_INT64_LIMIT < obj < _INT64_LIMIT else {"int": hex(obj)}
    if t is float:
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if t is np.ndarray or isinstance(obj, np.generic):
        dtype = obj.dtype
        if dtype.hasobject:
            raise TypeError(f"cannot save {where}: arrays of dtype {dtype} hold Python objects, which "
                            "would need pickle")
        name = f"a{len(arrays)}"
        arrays.append((name, np.asarray(obj)))
        return {"array" if t is np.ndarray else "scalar": name}
    if t in (list, tuple, dict, OrderedDict):
        if id(obj) in active:
            raise ValueError(f"cannot save {where}: it contains itself (circular reference)")
        active.add(id(obj))
        try:
            if t is list:
                return [_encode(v, f"{where}[{i}]", arrays, active) for i, v in enumerate(obj)]
            if t is tuple:
                return {"tuple": [_encode(v, f"{where}[{i}]", arrays, active) for i, v in enumerate(obj)]}
            items = []
            for key, value in obj.items():
                if type(key) not in (str, int):
                    raise TypeError(f"cannot save {where}: dict keys must be str or int, got key {key!r} "
                                    f"of type {type(key).__name__}")
                items.append([_encode(key, where, arrays, active),
                              _encode(value, f"{where}[{key!r}]", arrays, active)])
            return {"dict" if t is dict else "odict": items}
        finally:
            active.discard(id(obj))
    raise TypeError(f"cannot save {where}: unsupported type {t.__module__}.{t.__qualname__} (supported: "
                    "dict, OrderedDict, list, tuple, numpy arrays and scalars, int, float, bool, str, None)")


def save(obj, path):
    """Write ``obj`` (see the module docstring for the supported types) to ``path`` atomically.

    ``path`` (str or os.PathLike) is used as given, no suffix is appended. Written through
    ``minicnn._io.atomic_write``: an existing file is either left untouched or replaced by the
    complete new one, with the permissions of a normally created file. Unsupported objects raise
    ``TypeError`` naming their place in the tree (e.g. ``obj['optimizer']['state'][0]``) before
    anything is written.
    """
    path = os.fspath(path)
    arrays = []
    tree = _encode(obj, "obj", arrays, set())
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree},
                        allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    members = [(_HEADER, np.frombuffer(header.encode("utf-8"), dtype=np.uint8))] + arrays

    def write(f):
        # What np.savez writes, with pickling refused explicitly.
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in members:
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    atomic_write(path, write)


# -- decoding -----------------------------------------------------------------------------------
def _decode(node, archive, used):
    if node is None or isinstance(node, (bool, str, int, float)):
        return node
    if isinstance(node, list):
        return [_decode(v, archive, used) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise _CorruptFile(f"unexpected node {str(node)[:80]!r} in the structure")
    (tag, value), = node.items()
    if tag in ("array", "scalar"):
        if not isinstance(value, str) or value not in used or used[value]:
            raise _CorruptFile(f"the structure refers to a missing or repeated array {value!r}")
        used[value] = True
        array = archive[value]
        if tag == "array":
            return array
        if array.shape != ():
            raise _CorruptFile(f"scalar {value!r} is stored with shape {array.shape}")
        return array[()]
    if tag == "tuple" and isinstance(value, list):
        return tuple(_decode(v, archive, used) for v in value)
    if tag in ("dict", "odict") and isinstance(value, list):
        out = {} if tag == "dict" else OrderedDict()
        for item in value:
            if not isinstance(item, list) or len(item) != 2:
                raise _CorruptFile("malformed dict entry in the structure")
            key = _decode(item[0], archive, used)
            if type(key) not in (str, int):
                raise _CorruptFile(f"dict key {key!r} is neither str nor int")
            out[key] = _decode(item[1], archive, used)
        return out
    if tag == "int" and isinstance(value, str):
        return int(value, 16)
    if tag == "float" and value in ("nan", "inf", "-inf"):
        return float(value)
    raise _CorruptFile(f"unknown node {str(node)[:80]!r} in the structure")


def _read(f):
    try:
        archive = np.load(f, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):  # np.load's message for anything that is neither .npy nor .npz
            raise _CorruptFile("it is neither a .npz archive nor a .npy file") from None
        raise
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _CorruptFile("it is a single .npy array, not a minicnn .npz archive")
    with archive:
        if _HEADER not in archive.files:
            raise _CorruptFile(f"it is a .npz archive without the {_HEADER!r} entry that minicnn.save "
                               "writes (not written by minicnn.save?)")
        raw = archive[_HEADER]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _CorruptFile(f"the {_HEADER!r} entry is not a byte string")
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != _FORMAT or "tree" not in header:
            raise _CorruptFile(f"the {_HEADER!r} entry is not a minicnn structure")
        if header.get("version") != _VERSION:
            raise _CorruptFile(f"format version {header.get('version')!r} is not supported "
                               f"(this minicnn reads version {_VERSION})")
        # name -> already decoded? (each stored array belongs to exactly one place in the tree)
        used = {name: False for name in archive.files if name != _HEADER}
        return _decode(header["tree"], archive, used)


def load(path):
    """Read an object written by ``save``; arrays come back as new, writeable numpy arrays.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the path for a
    file that is corrupt, truncated or not written by ``minicnn.save``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            return _read(f)
        except _CorruptFile as exc:
            raise ValueError(f"cannot load {path!r}: not a valid minicnn checkpoint: {exc}") from None
        except Exception as exc:  # zipfile, zlib, npy-header and JSON errors of a damaged file
            raise ValueError(f"cannot load {path!r}: the file is corrupt or truncated "
                             f"({type(exc).__name__}: {exc})") from exc
