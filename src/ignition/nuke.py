"""Nuke: delete the user's data and models for a fresh start, and never anything else.

What goes (the seed's list):
    $WORKSPACE/ComfyUI/{user,input,output,temp,logs}/   their contents
    $WORKSPACE/ComfyUI/models/                         its contents; first-level folders stay, empty
    IGNITION_TMP_DIR (default /tmp)                    its contents
    $HOME/{.cache,.config,.local/share}/               their contents
    $HOME/.bash_history
What stays, even inside those roots: PERSISTENT_STORAGE, $WORKSPACE/.ignition (generated
passwords), the running Ignition's run dir and startup log, the Python installation Ignition runs
from; and everything outside the roots (custom_nodes, the workspace's other files).

Safety rules:
- A symlink is never followed: the link is removed, its target is not. Directories are opened
  with O_NOFOLLOW relative to their parent's descriptor, so a link swapped in mid-walk is not
  followed either. A root that is itself a symlink is left alone.
- Refuses (before deleting anything) when WORKSPACE is empty or relative or resolves to /, when
  IGNITION_TMP_DIR is a system folder (/etc, /usr …), or when a root resolves to / or contains
  the workspace or HOME.
- Walks with a loop, never recursion, so no depth of folders stops it.
- Keeps going past entries it cannot delete and lists them in the report.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ignition.errors import ConfigError
from ignition.settings import Settings, system_folder

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NO_FOLLOW_DIR_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW


@dataclass(frozen=True)
class Root:
    base: Path  # resolved once (a /workspace may be a link to a volume); nothing below it is
    parts: tuple[str, ...]  # followed: each of these is opened with O_NOFOLLOW
    source: str  # the variable the path comes from, for messages
    contents_only: bool = True  # False: the path itself goes (a file such as .bash_history)
    # models/: the first-level folders (checkpoints/, loras/ …) stay, empty, so placement and the
    # file browser find the layout they expect on the next start.
    keep_subfolders: bool = False

    @property
    def path(self) -> Path:
        return self.base.joinpath(*self.parts)


@dataclass
class RootResult:
    path: Path
    files: int = 0
    folders: int = 0
    size_bytes: int = 0


@dataclass
class NukeReport:
    roots: list[RootResult] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)  # (path, why)
    kept: list[tuple[Path, str]] = field(default_factory=list)  # protected or not followed

    @property
    def files(self) -> int:
        return sum(root.files for root in self.roots)

    @property
    def folders(self) -> int:
        return sum(root.folders for root in self.roots)

    @property
    def size_bytes(self) -> int:
        return sum(root.size_bytes for root in self.roots)


def roots(settings: Settings) -> list[Root]:
    """The seed's nuke list, in the order it is wiped."""
    workspace, home = settings.workspace, settings.home
    comfyui = settings.comfyui_base.relative_to(workspace).parts
    return [
        *(
            Root(workspace, (*comfyui, name), "WORKSPACE")
            for name in ("user", "input", "output", "temp", "logs")
        ),
        Root(workspace, (*comfyui, "models"), "WORKSPACE", keep_subfolders=True),
        Root(settings.tmp_dir, (), "IGNITION_TMP_DIR"),
        Root(home, (".cache",), "HOME"),
        Root(home, (".config",), "HOME"),
        Root(home, (".local", "share"), "HOME"),
        Root(home, (".bash_history",), "HOME", contents_only=False),
    ]


def protected_paths(settings: Settings) -> dict[Path, str]:
    """Paths nuke never deletes, each with the reason, as given and as resolved."""
    reasons: list[tuple[Path | None, str]] = [
        (settings.persistent_store, "PERSISTENT_STORAGE"),
        (settings.workspace / ".ignition", "Ignition's generated passwords"),
        (settings.run_dir, "the running Ignition's run dir"),
        (settings.startup_log, "the startup log"),
        (Path(sys.prefix), "the Python environment Ignition runs from"),
        (Path(sys.base_prefix), "the Python installation Ignition runs from"),
    ]
    protected: dict[Path, str] = {}
    for path, reason in reasons:
        if path is not None:
            # Both spellings: a link named as PERSISTENT_STORAGE is kept, and so is its target.
            protected.setdefault(Path(os.path.abspath(path)), reason)  # noqa: PTH100 - lexical
            protected.setdefault(Path(os.path.realpath(path)), reason)
    return protected


def check(settings: Settings) -> list[Root]:
    """The roots to wipe; raises ConfigError when the settings make a wipe unsafe."""
    workspace = settings.workspace
    if not workspace.is_absolute():  # an empty WORKSPACE arrives as "."
        raise ConfigError(
            f"WORKSPACE is {str(workspace)!r}: refusing to nuke without an absolute workspace",
            hint="set WORKSPACE to the workspace folder (default /workspace)",
        )
    real_workspace = Path(os.path.realpath(workspace))
    if real_workspace == Path("/"):
        raise ConfigError(
            f"WORKSPACE ({workspace}) resolves to /: refusing to nuke",
            hint="set WORKSPACE to the workspace folder (default /workspace)",
        )
    # Settings refuse these too; checked again because a caller may build Settings around that.
    if (why := system_folder(settings.tmp_dir)) is not None:
        raise ConfigError(
            f"IGNITION_TMP_DIR ({settings.tmp_dir}) is refused ({why}): refusing to nuke",
            hint="point IGNITION_TMP_DIR at a scratch folder such as /tmp",
        )
    if not settings.home.is_absolute():
        raise ConfigError(f"HOME is {str(settings.home)!r}: refusing to nuke a relative HOME")
    real_home = Path(os.path.realpath(settings.home))
    planned = roots(settings)
    for root in planned:
        # Resolved the way the wipe walks: the base followed, the parts below it never.
        real = Path(os.path.realpath(root.base)).joinpath(*root.parts)
        if (
            real == Path("/")
            or real_workspace.is_relative_to(real)
            or real_home.is_relative_to(real)
        ):
            raise ConfigError(
                f"{root.source} makes nuke wipe {real}, which is / or holds the workspace or "
                "HOME: refusing to nuke",
                hint=f"point {root.source} at a dedicated folder",
            )
    return planned


def nuke(settings: Settings) -> NukeReport:
    """Wipe every root (see the module docstring); raises ConfigError before touching anything
    when the settings are unsafe."""
    planned = check(settings)
    wiper = _Wiper(protected_paths(settings))
    for root in planned:
        try:
            wiper.wipe(root)
        except OSError as error:  # one root's trouble (descriptors run out …) spares the others
            wiper.report.failures.append((root.path, error.strerror or str(error)))
    return wiper.report


def describe(report: NukeReport) -> list[str]:
    """The report as lines for a terminal or the startup log; the last line is the verdict."""
    lines = [
        f"  {root.path}: {root.files} files, {root.folders} folders, {_size(root.size_bytes)}"
        for root in report.roots
        if root.files or root.folders
    ]
    lines += [f"  kept {path} ({reason})" for path, reason in report.kept]
    lines += [f"  could not delete {path}: {why}" for path, why in report.failures]
    total = f"{report.files} files and {report.folders} folders ({_size(report.size_bytes)})"
    if report.failures:
        lines.append(f"⚠️  Deleted {total}; {len(report.failures)} could not be deleted.")
    else:
        lines.append(f"✅ Nuclear cleanup complete: deleted {total}.")
    return lines


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@dataclass
class _Level:
    """One folder on the walk's path from the root: what is left to delete in it."""

    path: Path
    names: Iterator[str]
    identity: tuple[int, int]  # (st_dev, st_ino): to check that ".." still leads back here
    keep_children: bool  # models/: its first-level folders are emptied, not removed
    emptied: bool = True


class _Wiper:
    def __init__(self, protected: dict[Path, str]) -> None:
        self.protected = protected
        self.report = NukeReport()

    def wipe(self, root: Root) -> None:
        result = RootResult(root.path)
        self.report.roots.append(result)
        base = Path(os.path.realpath(root.base))
        path = base.joinpath(*root.parts)
        for protected, reason in self.protected.items():
            if path.is_relative_to(protected):
                self.report.kept.append((path, reason))
                return
        fd = self._open_folder(base, base, None)
        walked = base
        for part in root.parts[:-1]:
            if fd is None:
                return
            walked = walked / part
            child = self._open_folder(part, walked, fd)
            os.close(fd)
            fd = child
        if fd is None:
            return
        if not root.contents_only:  # the entry itself goes: walk its parent, that one name only
            self._walk(fd, path.parent, iter([path.name]), result, keep_children=False)
            return
        inner = self._open_folder(path.name, path, fd) if root.parts else os.dup(fd)
        os.close(fd)
        if inner is not None:
            names = self._list(inner, path)
            self._walk(inner, path, iter(names), result, keep_children=root.keep_subfolders)

    def _walk(
        self, fd: int, path: Path, names: Iterator[str], result: RootResult, *, keep_children: bool
    ) -> None:
        """Delete `names` in the open folder `fd` (which is closed at the end), depth first.

        A loop, not recursion: a tree thousands of levels deep (one file-browser upload makes
        one) must not hit Python's recursion limit. Only the current folder is open; going back
        up opens ".." and checks it is the folder we came from, so a folder moved elsewhere
        mid-walk does not lead the wipe out of its root.
        """
        info = os.fstat(fd)
        stack = [_Level(path, names, (info.st_dev, info.st_ino), keep_children)]
        while stack:
            level = stack[-1]
            name = next(level.names, None)
            if name is not None:
                child = self._remove(fd, level.path / name, result)
                if isinstance(child, bool):
                    level.emptied &= child
                    continue
                os.close(fd)
                fd, child_info = child, os.fstat(child)
                child_path = level.path / name
                stack.append(
                    _Level(
                        child_path,
                        iter(self._list(fd, child_path)),
                        (child_info.st_dev, child_info.st_ino),
                        keep_children=False,
                    )
                )
                continue
            stack.pop()
            if not stack:
                break
            parent = stack[-1]
            up = self._climb(fd, parent)
            os.close(fd)
            if up is None:
                self.report.failures.append((level.path, "moved during the nuke; left there"))
                return
            fd = up
            parent.emptied &= self._rmdir(fd, level, result, keep=parent.keep_children)
        os.close(fd)

    def _climb(self, fd: int, parent: _Level) -> int | None:
        """The open parent of `fd`, or None when it is not the folder the walk came from."""
        try:
            up = os.open("..", _NO_FOLLOW_DIR_FLAGS, dir_fd=fd)
        except OSError:
            return None
        info = os.fstat(up)
        if (info.st_dev, info.st_ino) != parent.identity:
            os.close(up)
            return None
        return up

    def _rmdir(self, parent_fd: int, level: _Level, result: RootResult, *, keep: bool) -> bool:
        """Remove the walked folder `level` from its open parent; True when it is gone."""
        if not level.emptied or keep:
            return False
        try:
            os.rmdir(level.path.name, dir_fd=parent_fd)
        except OSError as error:
            self._fail(level.path, error)
            return False
        result.folders += 1
        return True

    def _list(self, fd: int, path: Path) -> list[str]:
        try:
            return sorted(os.listdir(fd))
        except OSError as error:
            self._fail(path, error)
            return []

    def _open_folder(self, name: str | Path, path: Path, parent_fd: int | None) -> int | None:
        """Open a folder to walk it; None, with the reason recorded, when it is missing, a
        symlink (followed only when `parent_fd` is None: the resolved base) or unreadable."""
        flags = _DIR_FLAGS if parent_fd is None else _NO_FOLLOW_DIR_FLAGS
        try:
            return os.open(name, flags, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                self.report.kept.append((path, "not a folder (a symlink is never followed)"))
            else:
                self._fail(path, error)
            return None

    def _remove(self, parent_fd: int, path: Path, result: RootResult) -> bool | int:
        """Delete the entry `path` of the open folder `parent_fd`: True when it is gone, False
        when it stays (kept or failed, recorded), or a folder's open descriptor to walk into."""
        if path in self.protected:
            self.report.kept.append((path, self.protected[path]))
            return False
        try:
            info = os.stat(path.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError as error:
            self._fail(path, error)
            return False
        if stat.S_ISDIR(info.st_mode):
            # O_NOFOLLOW: if a symlink replaced the folder since the stat above, this fails
            # instead of walking into the link's target.
            fd = self._open_folder(path.name, path, parent_fd)
            return False if fd is None else fd
        try:
            os.unlink(path.name, dir_fd=parent_fd)
        except FileNotFoundError:
            return True
        except OSError as error:
            self._fail(path, error)
            return False
        result.files += 1
        if stat.S_ISREG(info.st_mode):
            result.size_bytes += info.st_size
        return True

    def _fail(self, path: Path, error: OSError) -> None:
        self.report.failures.append((path, error.strerror or str(error)))
