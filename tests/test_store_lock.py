"""The cross-process lock and the verified-file manifest, with real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ignition.place.lock import FileLock
from ignition.place.manifest import Manifest

_HOLDER = """
import sys, time
from pathlib import Path
from ignition.place.lock import FileLock
lock_path, log = Path(sys.argv[1]), Path(sys.argv[2])
with FileLock(lock_path, poll_s=0.01, heartbeat_s=0.05):
    with log.open("a") as out:
        out.write(f"enter {sys.argv[3]}\\n"); out.flush()
        time.sleep(0.15)
        out.write(f"leave {sys.argv[3]}\\n")
"""


def test_processes_take_turns(tmp_path: Path) -> None:
    log = tmp_path / "log"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(tmp_path / "x.lock"), str(log), str(i)]
        )
        for i in range(4)
    ]
    assert all(child.wait(timeout=30) == 0 for child in children)
    events = log.read_text().splitlines()
    assert len(events) == 8
    # enter/leave strictly alternate with the same holder: nobody overlapped.
    for enter, leave in zip(events[0::2], events[1::2], strict=True):
        assert enter.startswith("enter") and leave == enter.replace("enter", "leave")


def test_lock_of_a_killed_holder_is_recovered(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _HOLDER.replace("0.15", "60"),
            str(lock_path),
            str(tmp_path / "l"),
            "0",
        ]
    )
    deadline = time.monotonic() + 10
    while not lock_path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    holder.kill()
    holder.wait()
    lock = FileLock(lock_path, stale_after_s=0.5, poll_s=0.05)
    assert not lock.try_acquire(), "a fresh heartbeat must be respected"
    started = time.monotonic()
    lock.acquire()
    try:
        assert lock.held()
        assert time.monotonic() - started < 10
    finally:
        lock.release()
    assert not lock_path.exists()


def test_live_holder_keeps_its_lock_past_the_stale_age(tmp_path: Path) -> None:
    first = FileLock(tmp_path / "x.lock", stale_after_s=0.3, heartbeat_s=0.05)
    first.acquire()
    try:
        time.sleep(0.6)
        assert not FileLock(tmp_path / "x.lock", stale_after_s=0.3).try_acquire()
        assert first.held()
    finally:
        first.release()


def test_manifest_trusts_unchanged_files_without_reading_them(tmp_path: Path) -> None:
    model = tmp_path / "checkpoints" / "m.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"x" * 100)
    Manifest(tmp_path).record("checkpoints/m.safetensors", identity="sha:ab", sha256="AB")
    model.chmod(0)  # unreadable: trusting it must not need a read
    try:
        record = Manifest(tmp_path).trusted("checkpoints/m.safetensors", sha256="ab")
        assert record is not None and record.size_bytes == 100
    finally:
        model.chmod(0o644)


def test_manifest_distrusts_changed_files(tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 100)
    manifest = Manifest(tmp_path)
    manifest.record("m.bin", identity="i", sha256="ab")
    with model.open("r+b") as handle:
        handle.truncate(50)
    assert manifest.trusted("m.bin") is None
    model.write_bytes(b"y" * 100)
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert manifest.trusted("m.bin") is None
    assert manifest.trusted("other.bin") is None


def test_concurrent_manifest_writers_lose_nothing(tmp_path: Path) -> None:
    script = """
import sys
from pathlib import Path
from ignition.place.manifest import Manifest
root = Path(sys.argv[1])
for i in range(10):
    name = f"{sys.argv[2]}-{i}.bin"
    (root / name).write_bytes(b"z")
    Manifest(root).record(name, identity="i", sha256="00")
"""
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"p{n}"]) for n in range(3)
    ]
    assert all(child.wait(timeout=60) == 0 for child in children)
    files = json.loads((tmp_path / ".ignition" / "manifest.json").read_text())["files"]
    assert len(files) == 30


def _dead_lock(path: Path, *, mtime_s: float) -> None:
    """A lock file as a killed holder leaves it: a record nobody will update again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"owner": "gone:1:dead", "beat": 7, "since": 0}))
    os.utime(path, (mtime_s, mtime_s))


def test_staleness_is_judged_on_the_waiters_clock_not_the_files_mtime(tmp_path: Path) -> None:
    # The file server's clock runs an hour ahead: an mtime comparison would never expire it.
    lock_path = tmp_path / "x.lock"
    _dead_lock(lock_path, mtime_s=time.time() + 3600)
    lock = FileLock(lock_path, stale_after_s=0.3, poll_s=0.02)
    started = time.monotonic()
    lock.acquire()
    try:
        assert lock.held()
        assert time.monotonic() - started >= 0.3
    finally:
        lock.release()


def test_a_live_holder_with_an_ancient_mtime_keeps_its_lock(tmp_path: Path) -> None:
    # The server's clock runs behind: by mtime the lock looks long dead, yet it beats.
    holder = FileLock(tmp_path / "x.lock", stale_after_s=0.3, heartbeat_s=0.05)
    holder.acquire()
    try:
        os.utime(holder.path, (0, 0))
        waiter = FileLock(tmp_path / "x.lock", stale_after_s=0.3, poll_s=0.02)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert not waiter.try_acquire()
            time.sleep(0.02)
        assert holder.held()
    finally:
        holder.release()


def test_waiters_racing_for_one_stale_lock_take_turns(tmp_path: Path) -> None:
    lock_path, log = tmp_path / "x.lock", tmp_path / "log"
    _dead_lock(lock_path, mtime_s=0)
    script = _HOLDER.replace("poll_s=0.01", "poll_s=0.01, stale_after_s=0.3")
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(lock_path), str(log), str(i)])
        for i in range(4)
    ]
    assert all(child.wait(timeout=30) == 0 for child in children)
    events = log.read_text().splitlines()
    assert len(events) == 8
    for enter, leave in zip(events[0::2], events[1::2], strict=True):
        assert enter.startswith("enter") and leave == enter.replace("enter", "leave")
    assert not lock_path.exists()
    assert [p.name for p in tmp_path.iterdir() if ".stale." in p.name] == []
