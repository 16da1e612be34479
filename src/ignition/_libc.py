"""The one lookup of glibc functions Python does not wrap (fallocate, sync_file_range,
renameat2, mallopt): each with its argument types, or None off Linux/glibc."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

_ARGUMENTS: dict[str, list[type[ctypes._SimpleCData[Any]]]] = {
    # fallocate(fd, mode, offset, len): unlike posix_fallocate it never falls back to writing
    # zeros, so a filesystem without it costs nothing.
    "fallocate": [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64],
    # sync_file_range(fd, offset, nbytes, flags)
    "sync_file_range": [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint],
    # renameat2(olddirfd, oldpath, newdirfd, newpath, flags)
    "renameat2": [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint],
    # mallopt(param, value)
    "mallopt": [ctypes.c_int, ctypes.c_int],
}


@functools.cache
def libc_function(name: str) -> ctypes._NamedFuncPointer | None:
    """The glibc function `name` (errno kept for ctypes.get_errno), or None where it is absent."""
    try:
        function: ctypes._NamedFuncPointer = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = _ARGUMENTS[name]
    function.restype = ctypes.c_int
    return function
