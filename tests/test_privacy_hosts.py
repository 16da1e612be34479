import logging
import logging.handlers
from pathlib import Path

import pytest

from ignition import privacy
from ignition.privacy.hosts import BEGIN_MARKER, END_MARKER, load_blocklist, write_block
from ignition.privacy.optout import optout_env
from ignition.settings import load_settings
from unprivileged import reachable_dir, run_unprivileged

# Docker's own lines, a comment, CRLF, trailing blanks, no final newline: all must survive as is.
ORIGINAL = (
    b"127.0.0.1\tlocalhost\n"
    b"::1\tlocalhost ip6-localhost ip6-loopback\n"
    b"# user comment  \r\n"
    b"172.17.0.2\tpod-1234"
)


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(ORIGINAL)
    return path


def test_the_block_holds_an_ipv4_and_an_ipv6_line_per_domain(hosts: Path) -> None:
    assert write_block(hosts, ["a.example.com", "b.example.com"])
    text = hosts.read_text()
    block = text[text.index(BEGIN_MARKER) :]
    assert block.splitlines() == [
        BEGIN_MARKER,
        "0.0.0.0 a.example.com",
        ":: a.example.com",
        "0.0.0.0 b.example.com",
        ":: b.example.com",
        END_MARKER,
    ]


def test_other_lines_are_kept_byte_for_byte_and_a_rerun_changes_nothing(hosts: Path) -> None:
    domains = load_blocklist()
    write_block(hosts, domains)
    first = hosts.read_bytes()
    assert first.startswith(ORIGINAL + b"\n" + BEGIN_MARKER.encode())
    mtime = hosts.stat().st_mtime_ns
    assert write_block(hosts, domains)
    assert hosts.read_bytes() == first
    assert hosts.stat().st_mtime_ns == mtime  # not even rewritten


def test_a_changed_list_replaces_the_block_and_lines_added_later_survive(hosts: Path) -> None:
    write_block(hosts, ["old.example.com"])
    with hosts.open("ab") as handle:
        handle.write(b"10.0.0.9 added-by-someone-else\n")
    write_block(hosts, ["new.example.com"])
    text = hosts.read_bytes()
    assert b"old.example.com" not in text
    assert text.count(BEGIN_MARKER.encode()) == 1
    assert text == (
        ORIGINAL
        + b"\n10.0.0.9 added-by-someone-else\n"
        + f"{BEGIN_MARKER}\n0.0.0.0 new.example.com\n:: new.example.com\n{END_MARKER}\n".encode()
    )


def test_a_block_that_lost_its_end_marker_never_swallows_the_lines_after_it(hosts: Path) -> None:
    write_block(hosts, ["old.example.com"])
    damaged = hosts.read_bytes().replace(END_MARKER.encode() + b"\n", b"10.0.0.9 mine\n")
    hosts.write_bytes(damaged)
    write_block(hosts, ["new.example.com"])
    text = hosts.read_bytes()
    assert text.startswith(ORIGINAL + b"\n10.0.0.9 mine\n" + BEGIN_MARKER.encode())
    assert b"old.example.com" not in text


def test_a_missing_hosts_file_gives_one_warning_and_is_not_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "no-such-hosts"
    with caplog.at_level(logging.WARNING):
        assert write_block(path, ["a.example.com"]) is False
    assert len(caplog.records) == 1
    assert "does not exist" in caplog.records[0].getMessage()
    assert not path.exists()


def test_a_read_only_hosts_file_gives_one_warning_and_stays_as_it_was() -> None:
    with reachable_dir() as folder:
        path = folder / "hosts"
        path.write_bytes(ORIGINAL)
        path.chmod(0o444)  # and root's: the unprivileged step may read it, not write it
        warnings = run_unprivileged(lambda: _write_block_capturing_warnings(path))
        assert path.read_bytes() == ORIGINAL
    assert len(warnings) == 1
    assert "not writable" in warnings[0]


def _write_block_capturing_warnings(path: Path) -> list[str]:
    handler = logging.handlers.BufferingHandler(capacity=100)
    logger = logging.getLogger("ignition.privacy.hosts")
    logger.addHandler(handler)
    try:
        assert write_block(path, ["a.example.com"]) is False
    finally:
        logger.removeHandler(handler)
    return [record.getMessage() for record in handler.buffer]


def test_apply_writes_the_block_and_returns_the_opt_out_env(hosts: Path) -> None:
    env = privacy.apply(load_settings(hosts_file=hosts, privacy_mode=True))
    assert env == optout_env()
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert env["DO_NOT_TRACK"] == "1"
    assert "0.0.0.0 api.mixpanel.com" in hosts.read_text()


def test_privacy_mode_off_touches_nothing(hosts: Path) -> None:
    assert privacy.apply(load_settings(hosts_file=hosts, privacy_mode=False)) == {}
    assert hosts.read_bytes() == ORIGINAL
