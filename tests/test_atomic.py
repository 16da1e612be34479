"""The one atomic write: mode from the first byte, links not followed, nothing left on failure,
folders swapped in one step."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ignition import atomic
from ignition.atomic import move_into_place, swap_dir, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_bytes_and_text(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_atomic(tmp_path / "b.txt", "grüße", durable=False)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "grüße"
    assert _temporaries(tmp_path) == []


def test_mode_is_set_before_the_rename_even_over_a_looser_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "secrets.json"
    target.write_text("old")
    target.chmod(0o666)
    # Leftovers of older versions (fixed temporary names) with a loose mode must not matter.
    for stale in (".secrets.json.tmp", "secrets.tmp"):
        (tmp_path / stale).write_text("stale")
        (tmp_path / stale).chmod(0o666)
    modes_at_rename: list[int] = []
    real_replace = Path.replace

    def spy(self: Path, other: Path) -> Path:
        modes_at_rename.append(_mode(self))
        return real_replace(self, other)

    monkeypatch.setattr(Path, "replace", spy)
    old_umask = os.umask(0o077)  # a narrow umask must not narrow the caller's mode either
    try:
        write_atomic(target, "new", mode=0o600)
        write_atomic(tmp_path / "script", "#!/bin/sh\n", mode=0o755)
    finally:
        os.umask(old_umask)
    assert modes_at_rename == [0o600, 0o755]
    assert _mode(target) == 0o600
    assert target.read_text() == "new"
    assert _mode(tmp_path / "script") == 0o755


def test_a_link_at_a_temporary_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    target = tmp_path / "state.json"
    planted = tmp_path / ".state.json.000000000000.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda _n: "000000000000")
    with pytest.raises(FileExistsError):
        write_atomic(target, "secret")
    assert victim.read_text() == "untouched"
    assert not target.exists()
    assert planted.is_symlink()  # not ours: left as it was


def test_nothing_is_left_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def broken_write(_fd: int, _data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", broken_write)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert _temporaries(tmp_path) == []


def test_nothing_is_left_when_the_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "folder-in-the-way"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert _temporaries(tmp_path) == []
    assert (target / "keep").exists()


def test_move_into_place_replaces_the_target(tmp_path: Path) -> None:
    source = tmp_path / "staged.part"
    source.write_text("new")
    target = tmp_path / "model.safetensors"
    target.write_text("old")
    move_into_place(source, target)
    assert target.read_text() == "new"
    assert not source.exists()


def _folders(root: Path, *, existing: bool) -> tuple[Path, Path]:
    """A staged folder holding `new` and its target (holding `old` when `existing`)."""
    staged = root / ".staged"
    staged.mkdir()
    (staged / "new").write_text("n")
    target = root / "pack"
    if existing:
        target.mkdir()
        (target / "old").write_text("o")
    return staged, target


def test_swap_dir_without_a_target(tmp_path: Path) -> None:
    staged, target = _folders(tmp_path, existing=False)
    assert swap_dir(staged, target) is None
    assert (target / "new").read_text() == "n"
    assert not staged.exists()


def test_swap_dir_over_an_existing_target(tmp_path: Path) -> None:
    staged, target = _folders(tmp_path, existing=True)
    old = swap_dir(staged, target)
    assert old is not None
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in old.iterdir()) == ["old"]


def test_swap_dir_moves_aside_where_exchange_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic, "libc_function", lambda _name: None)
    staged, target = _folders(tmp_path, existing=True)
    old = swap_dir(staged, target)
    assert old is not None and old != staged
    assert (target / "new").exists()
    assert (old / "old").exists()
