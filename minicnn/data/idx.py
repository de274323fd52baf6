"""Reader and writer for the IDX format that MNIST, Fashion-MNIST and KMNIST are distributed in.

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian uint32
dimensions, then the values in C order (big-endian). MNIST-like image files are ``0x00000803``
(unsigned bytes, 3 dimensions: N, rows, columns) and label files ``0x00000801`` (unsigned bytes, N).
Files may be gzip-compressed; compression is detected from the content (gzip's magic bytes
``1f 8b``), never from the file name.
"""
import gzip
import os
import zlib

import numpy as np

# IDX type byte -> big-endian dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    """The file's content, decompressed when it starts with gzip's magic bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path, expected_magic=None):
    """The array stored in the IDX file ``path`` (gzipped or not), in native byte order.

    ``expected_magic``, if given, is the required 4-byte magic number as an int (e.g. ``0x00000803``).
    Raises ``ValueError`` naming the file for a wrong magic number, an unknown type, or a length that
    differs from what the header declares (truncated or trailing bytes).
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path}: wrong IDX magic number 0x{magic:08X}, expected 0x{expected_magic:08X}")
    zero, type_code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or type_code not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (magic number 0x{magic:08X})")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path}: truncated IDX header: expected at least {header_size} bytes, "
                         f"got {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes after the data"
        raise ValueError(f"{path}: wrong file size ({what}): header {shape} needs {expected} bytes, "
                         f"file has {len(data)} (uncompressed)")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx_images(path):
    """Images ``(N, rows, cols)`` uint8 from an IDX image file (magic ``0x00000803``)."""
    return read_idx(path, expected_magic=0x00000803)


def read_idx_labels(path):
    """Labels ``(N,)`` uint8 from an IDX label file (magic ``0x00000801``)."""
    return read_idx(path, expected_magic=0x00000801)


def write_idx(path, array, compress=None):
    """Write ``array`` (one of the IDX dtypes) as an IDX file; gzip it when ``compress`` is true
    (default: when ``path`` ends in ``.gz``). Used to make test files and to export data."""
    path = os.fspath(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise TypeError(f"array dtype {array.dtype} has no IDX type; expected one of "
                        f"{sorted(str(d) for d in codes)}")
    if array.ndim > 255:
        raise ValueError(f"array has {array.ndim} dimensions; IDX allows at most 255")
    header = bytes([0, 0, codes[dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[codes[dtype]]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
