import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from ignition.cli import main
from ignition.privacy import monitor
from ignition.privacy.monitor import ConnectionRecord, is_public, sample
from ignition.privacy.summary import summarize, summarize_file
from ignition.settings import load_settings

# The child connects, says so, and holds the connection until its stdin closes.
CLIENT = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(conn.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child_connection() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """(child, server port, child's local port): a live loopback TCP connection from a child."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        child = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            local_port = int(child.stdout.readline())
            accepted, _ = server.accept()
            with accepted:
                yield child, port, local_port
        finally:
            child.communicate(timeout=10)


def test_a_childs_loopback_connection_is_recorded_with_the_filter_off(
    child_connection: tuple[subprocess.Popen[str], int, int],
) -> None:
    child, port, local_port = child_connection
    records = [r for r in sample(include_private=True) if r.pid == child.pid]
    assert len(records) == 1  # deduplicated: one socket, one record
    record = records[0]
    assert (record.protocol, record.remote_ip, record.remote_port) == ("tcp", "127.0.0.1", port)
    assert record.local_port == local_port
    assert record.process_name == psutil.Process(child.pid).name()
    # The accepted end in this process is a visitor of a listening port, not outbound.
    assert not [r for r in sample(include_private=True) if r.local_port == port]


def test_loopback_is_filtered_out_by_default(
    child_connection: tuple[subprocess.Popen[str], int, int],
) -> None:
    child, _, _ = child_connection
    assert not [r for r in sample() if r.pid == child.pid]


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_only_internet_addresses_count_as_public(ip: str, public: bool) -> None:
    assert is_public(ip) is public


def test_log_lines_fold_into_a_summary_per_remote_and_process(tmp_path: Path) -> None:
    log = tmp_path / "connections.log"

    def seen(minute: int, ip: str, name: str) -> ConnectionRecord:
        at = datetime(2026, 1, 2, 3, minute, tzinfo=UTC)
        return ConnectionRecord(at, "tcp", ip, 443, 50000 + minute, 42, name)

    monitor.append([seen(0, "203.0.113.7", "python3"), seen(0, "2001:db8::1", "comfy ui")], log)
    monitor.append([seen(2, "203.0.113.7", "python3")], log)
    monitor.append([], log)
    lines = log.read_text().splitlines()
    assert lines[0] == "2026-01-02T03:00:00Z tcp 203.0.113.7:443 local:50000 pid:42 python3"
    rows = summarize_file(log)
    assert [(r.remote, r.process, r.first_seen, r.last_seen, r.count) for r in rows] == [
        ("203.0.113.7:443", "python3", "2026-01-02T03:00:00Z", "2026-01-02T03:02:00Z", 2),
        ("[2001:db8::1]:443", "comfy ui", "2026-01-02T03:00:00Z", "2026-01-02T03:00:00Z", 1),
    ]
    assert summarize(["garbage", ""]) == []
    assert summarize_file(tmp_path / "missing.log") == []


async def test_monitor_forever_appends_samples_until_cancelled(
    tmp_path: Path, child_connection: tuple[subprocess.Popen[str], int, int]
) -> None:
    child, port, _ = child_connection
    log = tmp_path / "connections.log"
    settings = load_settings(connections_log=log, monitor_interval_s=0.05, privacy_mode=True)
    task = asyncio.create_task(monitor.monitor_forever(settings, include_private=True))
    deadline = time.monotonic() + 10
    while f"pid:{child.pid} " not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the monitor never logged the child's connection"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"127.0.0.1:{port}" in log.read_text()


async def test_monitor_forever_does_nothing_when_privacy_is_off(tmp_path: Path) -> None:
    log = tmp_path / "connections.log"
    settings = load_settings(connections_log=log, monitor_interval_s=0.01, privacy_mode=False)
    await asyncio.wait_for(monitor.monitor_forever(settings, include_private=True), timeout=5)
    assert not log.exists()


def test_ignition_connections_prints_the_summary_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "connections.log"
    log.write_text(
        "2026-01-02T03:00:00Z tcp 203.0.113.7:443 local:50000 pid:42 python3\n"
        "2026-01-02T03:02:00Z tcp 203.0.113.7:443 local:50001 pid:42 python3\n"
    )
    monkeypatch.setenv("IGNITION_CONNECTIONS_LOG", str(log))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["connections"]) == 0
    out = capsys.readouterr().out
    assert "Remote" in out and "First seen" in out
    row = next(line for line in out.splitlines() if "203.0.113.7:443" in line)
    assert "python3" in row and "2026-01-02T03:00:00Z" in row and "2026-01-02T03:02:00Z" in row
    assert row.rstrip(" │|").endswith("2")
