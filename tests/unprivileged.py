"""Run a test step as a user who cannot write root's files, so permission failures are real.

Root ignores file modes, so when the tests run as root the step runs in a forked child that has
dropped to `nobody`; otherwise it runs in-process (the caller's chmod already binds).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
NOBODY = 65534


def is_root() -> bool:
    return os.geteuid() == 0


@contextmanager
def reachable_dir() -> Iterator[Path]:
    """A fresh temp dir the unprivileged user can reach (pytest's tmp_path sits in a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="ignition-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, dirs, _files in os.walk(path):
            for name in dirs:  # undo test chmods so the cleanup works as a non-root user too
                (Path(folder) / name).chmod(0o755, follow_symlinks=False)
        shutil.rmtree(path)


def hand_over(*paths: Path) -> None:
    """Make `paths` (recursively) the unprivileged user's, when that user is `nobody`."""
    if not is_root():
        return
    for top in paths:
        os.chown(top, NOBODY, NOBODY, follow_symlinks=False)
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(Path(folder) / name, NOBODY, NOBODY, follow_symlinks=False)


def run_unprivileged(step: Callable[[], T]) -> T:
    if not is_root():
        return step()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(reader)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = pickle.dumps((True, step()))
        except BaseException as error:
            payload = pickle.dumps((False, repr(error)))
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        data = incoming.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)  # noqa: S301 - written by our own forked child
    if not ok:
        raise AssertionError(f"unprivileged step failed: {value}")
    return value
