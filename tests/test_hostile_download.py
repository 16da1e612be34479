"""Hostile input on the download side (issue 20): each attack as reproduced, against the fakes
on loopback with real files, ends as one clean failure (or is simply defused) while the rest of
the run completes."""

import asyncio
import json
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import test_engine_wire
from fakes.civitai import CivitaiFile
from fakes.content import model_bytes, sha256
from fakes.services import Fakes
from fakes.storage import PatternBlob
from helpers import by_name, files_under, provision_now, serve_catalog, staging_leftovers
from ignition import bounded_json
from ignition._http import HttpClient, ServiceToken, acting_for
from ignition.errors import PlaceError
from ignition.place.install import install, staging_path
from ignition.records import FetchedFile
from test_download_cli import ignition

trusted_ca = test_engine_wire.trusted_ca  # the private CA fixture, shared rather than copied

DEEP = b"[" * 200_000 + b"]" * 200_000


def deep_safetensors() -> bytes:
    """A "safetensors" file whose header is 200000 nested arrays: valid length, valid JSON."""
    return struct.pack("<Q", len(DEEP)) + DEEP


def run_json(result_stdout: str) -> dict[str, dict[str, object]]:
    """`--json` output, parsed whole (a partial print fails here), by model name."""
    document = json.loads(result_stdout)
    return {model["name"]: model for model in document["models"]}


# --- 1: deep JSON --------------------------------------------------------------------------------
def test_deep_json_in_a_model_header_or_a_workflow_fails_that_entry_only(fakes: Fakes) -> None:
    deep = deep_safetensors()
    fakes.civitai.add(1, files=[CivitaiFile(10, "deep.safetensors", deep)])  # true sha256
    fakes.civitai.add(2)
    workflow = fakes.tmp_path / "deep.json"
    workflow.write_bytes(b'{"nodes": ' + DEEP + b"}")
    models = fakes.tmp_path / "m"

    result = ignition(
        fakes,
        "download",
        "--json",
        "--models-dir",
        str(models),
        "--civitai",
        "1,2",
        "--workflow",
        str(workflow),
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    outcomes = run_json(result.stdout)
    assert outcomes["civitai:1"]["status"] == "failed"
    assert outcomes["civitai:1"]["code"] == "IGN403"
    assert "nests deeper than" in str(outcomes["civitai:1"]["error"])
    assert outcomes[str(workflow)]["status"] == "failed"
    assert "nests deeper than" in str(outcomes[str(workflow)]["error"])
    assert outcomes["civitai:2"]["status"] == "ok"
    assert files_under(models) == ["checkpoints/model_2.safetensors"]
    assert staging_leftovers(models) == []  # the known-bad bytes are gone, not kept to resume
    status = json.loads((fakes.tmp_path / "run" / "downloads.json").read_text())
    assert status["phase"] == "done"
    assert status["ok"] is False


def test_a_deep_manifest_planted_in_the_store_only_costs_a_re_verification(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    assert provision_now(fakes, civitai="1").ok
    (fakes.models_dir / ".ignition" / "manifest.json").write_bytes(DEEP)

    report = provision_now(fakes, civitai="1")

    assert report.ok
    assert by_name(report)["civitai:1"].status == "skipped"  # hashed again, then recorded


def test_the_bounded_reader_skips_strings_and_refuses_long_or_deep_documents() -> None:
    assert bounded_json.nesting_depth(b'{"a": "[[[[\\"[[", "b": [[1]]}') == 3
    assert bounded_json.loads('{"x": "]]]]"}') == {"x": "]]]]"}
    with pytest.raises(bounded_json.UntrustedJsonError, match="nests deeper than 4"):
        bounded_json.loads(b"[[[[[1]]]]]", max_depth=4)
    with pytest.raises(bounded_json.UntrustedJsonError, match="more than the 8"):
        bounded_json.loads(b"[1, 2, 3, 4]", max_bytes=8)
    # An unterminated string full of escaped quotes: linear to scan, reported as broken JSON.
    with pytest.raises(bounded_json.UntrustedJsonError, match="not valid JSON"):
        bounded_json.loads(b'["' + b'\\"' * 500_000)


# --- 5: planted links ----------------------------------------------------------------------------
def test_a_link_planted_at_the_partial_is_never_written_through(fakes: Fakes) -> None:
    data = model_bytes("victim")
    fakes.civitai.add(1, files=[CivitaiFile(10, "model_1.safetensors", data)])
    fakes.civitai.add(2)
    outside = fakes.tmp_path / "outside.bin"
    outside.write_bytes(b"precious, not a model")
    identity = f"sha256:{sha256(data)}"
    staged = staging_path(fakes.models_dir, identity, "checkpoints/model_1.safetensors")
    staged.parent.mkdir(parents=True)
    part = staged.with_name(staged.name + ".part")
    part.symlink_to(outside)
    record = {"version": 1, "identity": identity, "size": len(data), "etag": None}
    staged.with_name(staged.name + ".part.json").write_text(
        json.dumps({**record, "done": [[0, 8]]})
    )

    report = provision_now(fakes, civitai="1,2")

    assert report.ok, [(o.name, o.error) for o in report.outcomes]
    assert outside.read_bytes() == b"precious, not a model"
    target = fakes.models_dir / "checkpoints" / "model_1.safetensors"
    assert not target.is_symlink()
    assert target.read_bytes() == data
    assert not part.exists() and not part.is_symlink()  # the planted link was removed
    assert files_under(fakes.models_dir) == [
        "checkpoints/model_1.safetensors",
        "checkpoints/model_2.safetensors",
    ]


@pytest.mark.parametrize("linked", [".ignition", ".ignition/staging", ".ignition/locks"])
def test_a_linked_state_folder_is_refused_with_a_message(fakes: Fakes, linked: str) -> None:
    fakes.civitai.add(1)
    elsewhere = fakes.tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = fakes.models_dir / linked
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere)

    report = provision_now(fakes, civitai="1")

    outcome = by_name(report)["civitai:1"]
    assert not report.ok
    assert outcome.status == "failed"
    assert outcome.code == PlaceError.code
    assert f"{link} is a link" in (outcome.error or "")
    assert list(elsewhere.iterdir()) == []  # no manifest, lock or staged bytes went through
    assert files_under(fakes.models_dir) == []


def test_install_refuses_a_staged_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 16)
    staged = tmp_path / "staging" / "abc"
    staged.parent.mkdir()
    staged.symlink_to(outside)
    target = tmp_path / "models" / "loras" / "x.safetensors"

    with pytest.raises(PlaceError, match="not a plain file"):
        install(FetchedFile(staged, 16, sha256(b"x" * 16)), target)
    assert not target.exists() and not target.is_symlink()


# --- 6: tokens belong to a service and its scheme ------------------------------------------------
class SplitPort:
    """One loopback port that answers TLS and plaintext: an https request is redirected to the
    same host and port over http://, and what arrives in plaintext is recorded — what anyone on
    the network path would read."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.over_tls: list[bytes] = []
        self.in_clear: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            with connection:
                if connection.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
                    with self._tls.wrap_socket(connection, server_side=True) as secure:
                        self.over_tls.append(_read_head(secure))
                        location = f"http://127.0.0.1:{self.port}/blob"
                        secure.sendall(_answer(302, f"Location: {location}\r\n", b""))
                else:
                    self.in_clear.append(_read_head(connection))
                    connection.sendall(_answer(200, "", b"bytes"))

    def close(self) -> None:
        self._listener.close()


def _read_head(connection: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _answer(status: int, headers: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\n{headers}Content-Length: {len(body)}\r\nConnection: close\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture
def split_port(trusted_ca: "test_engine_wire.trustme.CA") -> Iterator[SplitPort]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trusted_ca.issue_cert("127.0.0.1").configure_cert(tls)
    server = SplitPort(tls)
    yield server
    server.close()


def test_a_token_never_follows_a_redirect_to_plain_http(split_port: SplitPort) -> None:
    endpoint = f"https://127.0.0.1:{split_port.port}"
    token = "civitai-secret-token-over-tls"

    async def fetch() -> tuple[int, bytes]:
        tokens = [ServiceToken("civitai", endpoint, token)]
        async with HttpClient(tokens) as client:
            with acting_for("civitai"):
                async with client.get(f"{endpoint}/api/download/models/1") as response:
                    return response.status, await response.read()

    assert asyncio.run(fetch()) == (200, b"bytes")
    assert f"Bearer {token}".encode() in split_port.over_tls[0]
    assert len(split_port.in_clear) == 1
    assert b"authorization" not in split_port.in_clear[0].lower()
    assert token.encode() not in split_port.in_clear[0]


def test_two_services_on_one_origin_keep_their_own_tokens(fakes: Fakes) -> None:
    # A mirror serving CivitAI and Hugging Face on one origin: the HF token must not replace
    # CivitAI's (which made CivitAI refuse "the key").
    fakes.civitai.add(1, login_required=True)

    report = provision_now(
        fakes,
        civitai="1",
        hf_endpoint=fakes.civitai.url,
        civitai_token=fakes.civitai.token,
        hf_token="hf_granted_secret_token_42",
    )

    # The download needs CivitAI's own token: with Hugging Face's it is refused.
    assert report.ok, [(o.name, o.error) for o in report.outcomes]
    assert "/api/download/models/1" in fakes.civitai.counters.authorization_seen


def test_a_request_for_no_named_service_gets_no_token_when_two_could_own_it() -> None:
    origin = "https://mirror.example"
    client = HttpClient(
        [
            ServiceToken("civitai", origin, "tok-civitai"),
            ServiceToken("huggingface", origin, "t-hf"),
        ]
    )
    assert client.auth_headers(f"{origin}/x") == {}  # whose request is this? nobody's
    with acting_for("huggingface"):
        assert client.auth_headers(f"{origin}/x") == {"Authorization": "Bearer t-hf"}
        assert client.auth_headers("http://mirror.example/x") == {}  # a scheme downgrade


# --- 10: a huge "workflow" -----------------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_huge_workflow_url_is_refused_while_streaming(fakes: Fakes, chunked: bool) -> None:
    fakes.civitai.add(1)
    url = fakes.storage.put("workflow", PatternBlob(96 << 20, seed=3))
    fakes.storage.faults.no_length = chunked

    report = provision_now(fakes, civitai="1", comfyui_workflows=url)

    outcomes = {o.source: o for o in report.outcomes}
    assert outcomes["workflow"].status == "failed"
    assert f"more than the {bounded_json.MAX_JSON_BYTES}" in (outcomes["workflow"].error or "")
    assert outcomes["civitai"].status == "ok"
    # Read up to the cap and no further (the model itself is a few KB).
    assert fakes.storage.counters.bytes_served < 2 * bounded_json.MAX_JSON_BYTES


# --- 11: server text echoing the token -----------------------------------------------------------
def test_an_error_page_echoing_the_token_is_masked_everywhere(fakes: Fakes) -> None:
    fakes.civitai.add(3, echo_headers=True)
    fakes.civitai.add(4)
    token = fakes.civitai.token

    result = ignition(
        fakes,
        "download",
        "--json",
        "--models-dir",
        str(fakes.tmp_path / "m"),
        "--civitai",
        "3,4",
        CIVITAI_TOKEN=token,
    )

    assert result.returncode == 1, result.stderr
    outcomes = run_json(result.stdout)
    assert outcomes["civitai:3"]["status"] == "failed"
    assert "Authorization: ***" in str(outcomes["civitai:3"]["error"])
    assert outcomes["civitai:4"]["status"] == "ok"
    status = (fakes.tmp_path / "run" / "downloads.json").read_text()
    for text in (result.stdout, result.stderr, status):
        assert token not in text


# --- 13: loader values naming files outside the models -------------------------------------------
def test_a_loader_value_outside_the_models_is_invalid_not_skipped(fakes: Fakes) -> None:
    secret = fakes.tmp_path / "secret.txt"
    secret.write_text("exists")
    serve_catalog(fakes, "clip_l")
    nodes = [
        {"type": "LoraLoader", "widgets_values": [str(secret), 1.0, 1.0]},
        {"type": "VAELoader", "widgets_values": ["../../secret.txt"]},
        {"type": "CLIPLoader", "widgets_values": ["clip_l.safetensors", "flux"]},
    ]
    workflow = fakes.tmp_path / "wf.json"
    workflow.write_text(json.dumps({"nodes": nodes}))

    report = provision_now(fakes, comfyui_workflows=str(workflow))

    outcomes = by_name(report)
    for name in (str(secret), "../../secret.txt"):
        assert outcomes[name].status == "failed"
        assert "invalid model file" in (outcomes[name].error or "")
        assert outcomes[name].path is None
    placed = [o for o in report.outcomes if o.filename == "clip_l.safetensors"]
    assert [o.status for o in placed] == ["ok"]
    assert not any(str(secret) == o.path for o in report.outcomes)


# --- 14: the same bytes for two destinations -----------------------------------------------------
def test_two_entries_with_the_same_bytes_are_both_placed(fakes: Fakes) -> None:
    data = model_bytes("shared")
    fakes.hf.add("owner/one", {"x.safetensors": data})
    fakes.hf.add("owner/two", {"y.safetensors": data})
    fakes.storage.throttle(per_connection_bps=32 * 1024, total_bps=None)  # both in flight at once

    report = provision_now(
        fakes, hf="owner/one/x.safetensors:loras,owner/two/y.safetensors:checkpoints"
    )

    assert report.ok, [(o.name, o.error) for o in report.outcomes]
    assert (fakes.models_dir / "loras" / "x.safetensors").read_bytes() == data
    assert (fakes.models_dir / "checkpoints" / "y.safetensors").read_bytes() == data
    assert staging_leftovers(fakes.models_dir) == []
