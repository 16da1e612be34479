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
- Refuses (before deleting anything) when WORKSPACE is empty or relative or resolves to /, or
  when a root resolves to / or contains the workspace or HOME.
- Keeps going past entries it cannot delete and lists them in the report.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ignition.errors import ConfigError
from ignition.settings import Settings

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
        wiper.wipe(root)
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
        try:
            if not root.contents_only:
                self._remove(fd, path, result)
                return
            inner = self._open_folder(path.name, path, fd) if root.parts else os.dup(fd)
            if inner is not None:
                try:
                    self._empty(inner, path, result, keep_subfolders=root.keep_subfolders)
                finally:
                    os.close(inner)
        finally:
            os.close(fd)

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

    def _empty(self, fd: int, path: Path, result: RootResult, *, keep_subfolders: bool) -> bool:
        """Delete everything inside the open folder; True when it is empty afterwards."""
        try:
            names = sorted(os.listdir(fd))
        except OSError as error:
            self._fail(path, error)
            return False
        gone = [
            self._remove(fd, path / name, result, keep_folder=keep_subfolders) for name in names
        ]
        return all(gone)

    def _remove(
        self, parent_fd: int, path: Path, result: RootResult, *, keep_folder: bool = False
    ) -> bool:
        """Delete `path` (an entry of the open folder `parent_fd`); True when it is gone."""
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
        if not stat.S_ISDIR(info.st_mode):
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
        # O_NOFOLLOW: if a symlink replaced the folder since the stat above, this fails instead
        # of walking into the link's target.
        fd = self._open_folder(path.name, path, parent_fd)
        if fd is None:
            return False
        try:
            emptied = self._empty(fd, path, result, keep_subfolders=False)
        finally:
            os.close(fd)
        if not emptied or keep_folder:
            return False
        try:
            os.rmdir(path.name, dir_fd=parent_fd)
        except OSError as error:
            self._fail(path, error)
            return False
        result.folders += 1
        return True

    def _fail(self, path: Path, error: OSError) -> None:
        self.report.failures.append((path, error.strerror or str(error)))
