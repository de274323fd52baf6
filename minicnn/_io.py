"""Writing files atomically, with normal permissions: the one writer that checkpoints, metrics, plots and
downloaded data sets go through.

``atomic_write(path, write)`` calls ``write(binary_file)`` on a new temporary file beside ``path``,
flushes and fsyncs it, then renames it over ``path`` (``os.replace``): a reader (or a run killed at any
moment) sees either the old complete file or the new complete one, never a partial one, and the
temporary file is removed on any failure. The file gets the permissions any new file gets (``0o666``
minus the umask), unlike ``tempfile.mkstemp``'s ``0o600``.
"""
import json
import os
import secrets


def umask_mode():
    """The permission bits a new file gets from ``open()``: ``0o666`` minus the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _temporary_beside(path):
    """An open binary file ``.name.<pid>.<random>.tmp`` in ``path``'s folder, and its path."""
    directory, base = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:  # O_EXCL: never another process's file; mode 0o666 is reduced by the umask as usual
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), tmp


def _sync_directory(directory):
    """Make a rename in ``directory`` durable (POSIX); best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Write ``path`` (str or PathLike) atomically: ``write(f)`` fills a binary file ``f``; see the module
    docstring. Returns ``path``."""
    path = os.fspath(path)
    f, tmp = _temporary_beside(path)
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_directory(os.path.dirname(os.path.abspath(path)))
    return path


def remove_stale_temporaries(folder):
    """Remove the temporary files ``atomic_write`` left in ``folder`` when its process was killed (SIGKILL,
    power loss: no handler ran), i.e. ``.name.<pid>.<hex>.tmp`` whose process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        parts = name.rsplit(".", 3)
        if not (name.startswith(".") and name.endswith(".tmp") and len(parts) == 4 and parts[1].isdigit()):
            continue
        pid = int(parts[1])
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # still running: its write may be under way
            except ProcessLookupError:
                pass
            except OSError:  # e.g. another user's process
                continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _plain(o):
    """What JSON cannot hold directly: numpy arrays and scalars as lists and numbers, anything else as text."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def write_json(path, obj):
    """``obj`` as indented JSON (UTF-8, a final newline), written atomically; numpy arrays and scalars
    become lists and numbers."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_plain) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def move_into_place(source, path):
    """Rename ``source`` over ``path`` with the permissions of a normally created file (files that other
    tools, e.g. ``pooch``, wrote through ``mkstemp`` are ``0o600``)."""
    os.chmod(source, umask_mode())
    os.replace(source, path)
    _sync_directory(os.path.dirname(os.path.abspath(path)))
