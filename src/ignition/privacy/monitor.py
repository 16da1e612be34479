"""Who in the pod talks to the internet: samples of outbound connections, appended to a log.

Only addresses are recorded. Nothing here resolves a name (no reverse DNS), so the monitor
itself never causes network traffic.

Log line format (space separated, process name last because it may contain spaces):
    2026-01-02T03:04:05Z tcp 203.0.113.7:443 local:51234 pid:4242 python3
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from ignition.logfile import open_private_append
from ignition.settings import Settings

_log = logging.getLogger(__name__)

_PROTOCOLS = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}


@dataclass(frozen=True)
class ConnectionRecord:
    seen_at: datetime
    protocol: str  # "tcp" | "udp"
    remote_ip: str
    remote_port: int
    local_port: int
    pid: int | None  # None: the socket's owner is not visible to us (not root)
    process_name: str

    @property
    def remote(self) -> str:
        host = f"[{self.remote_ip}]" if ":" in self.remote_ip else self.remote_ip
        return f"{host}:{self.remote_port}"

    def to_line(self) -> str:
        stamp = self.seen_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        pid = "-" if self.pid is None else str(self.pid)
        name = " ".join(self.process_name.split()) or "?"
        return f"{stamp} {self.protocol} {self.remote} local:{self.local_port} pid:{pid} {name}"


def is_public(ip: str) -> bool:
    """True for addresses on the internet: not loopback, private, link-local, CGNAT or reserved."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global


def sample(*, include_private: bool = False) -> list[ConnectionRecord]:
    """The outbound connections open right now, one record per (socket owner, remote, local port).

    Outbound means: TCP in ESTABLISHED state, or a connected UDP socket, whose local port is not
    one this machine listens on (those are visitors of ComfyUI or the file browser).
    `include_private` keeps loopback and private remotes: for tests, which can only reach those.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    sockets = psutil.net_connections(kind="inet")
    listening = {c.laddr.port for c in sockets if c.status == psutil.CONN_LISTEN and c.laddr}
    names: dict[int, str] = {}
    records: dict[tuple[object, ...], ConnectionRecord] = {}
    for conn in sockets:
        protocol = _PROTOCOLS.get(conn.type)
        if protocol is None or not conn.raddr or not conn.laddr:
            continue
        if protocol == "tcp" and conn.status != psutil.CONN_ESTABLISHED:
            continue
        if conn.laddr.port in listening:
            continue
        if not include_private and not is_public(conn.raddr.ip):
            continue
        key = (protocol, conn.raddr.ip, conn.raddr.port, conn.laddr.port, conn.pid)
        if key in records:
            continue
        records[key] = ConnectionRecord(
            seen_at=now,
            protocol=protocol,
            remote_ip=conn.raddr.ip,
            remote_port=conn.raddr.port,
            local_port=conn.laddr.port,
            pid=conn.pid,
            process_name=_process_name(conn.pid, names),
        )
    return list(records.values())


def append(records: Iterable[ConnectionRecord], log_file: Path) -> int:
    """Append the records to the connection log; returns how many lines were written."""
    lines = [record.to_line() + "\n" for record in records]
    if lines:
        # In /tmp by default: a link or file another local user planted there is not trusted.
        with open_private_append(log_file) as handle:
            handle.writelines(lines)
    return len(lines)


async def monitor_forever(settings: Settings, *, include_private: bool = False) -> None:
    """Sample and log every `settings.monitor_interval_s` until cancelled (a runtime task).

    Returns at once when PRIVACY_MODE is off. A failed sample is logged and the loop goes on:
    the monitor must never take the pod down.
    """
    if not settings.privacy_mode:
        return
    while True:
        try:
            records = await asyncio.to_thread(sample, include_private=include_private)
            await asyncio.to_thread(append, records, settings.connections_log)
        except (OSError, psutil.Error) as error:
            _log.warning("connection monitor: sample failed (%s); trying again later", error)
        await asyncio.sleep(settings.monitor_interval_s)


def _process_name(pid: int | None, cache: dict[int, str]) -> str:
    if pid is None:
        return "?"
    if pid not in cache:
        try:
            cache[pid] = psutil.Process(pid).name()
        except psutil.Error:
            cache[pid] = "?"  # exited between the socket listing and this look-up
    return cache[pid]
