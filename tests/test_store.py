"""PERSISTENT_STORAGE end to end: real `ignition download` processes against the loopback fakes.

Warm starts read no model bytes, processes sharing a store fetch each file once, a killed
holder's lock is taken over, and damaged files are found and fetched again.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from fakes.civitai import CivitaiFile
from fakes.content import model_bytes, sha256
from fakes.services import Fakes
from helpers import files_under, provision_now, staging_leftovers
from ignition.cli import main
from ignition.comfyui_folders import COMFYUI_FOLDERS
from ignition.place.manifest import Manifest
from ignition.place.present import file_lock
from ignition.place.store import comfyui_store_args
from ignition.settings import Settings
from support import wait_for

# Runs the CLI in a child and reports how many bytes it read through read(2) and friends
# (/proc/self/io `rchar`, every thread included): the proof that a warm start reads no model.
_IO_PROBE = """
import sys
from ignition.cli import main
code = main(sys.argv[1:])
with open("/proc/self/io") as counters:
    io = dict(line.strip().split(": ") for line in counters)
print(f"IO rchar={io['rchar']}", file=sys.stderr)
raise SystemExit(code)
"""


Popen = subprocess.Popen[str]


def _start(fakes: Fakes, store: Path, *args: str, name: str = "pod", **env: str) -> Popen:
    environment = {
        **os.environ,
        **fakes.env(
            PERSISTENT_STORAGE=str(store),
            IGNITION_MODELS_DIR=str(fakes.tmp_path / name / "models"),
            IGNITION_RUN_DIR=str(fakes.tmp_path / name / "run"),
            **env,
        ),
    }
    return subprocess.Popen(
        [sys.executable, "-c", _IO_PROBE, "download", "--json", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Finished(NamedTuple):
    code: int
    report: dict[str, object]  # the --json output
    rchar: int  # bytes the child read through read(2) and friends
    stderr: str


def _finish(process: Popen) -> Finished:
    out, err = process.communicate(timeout=60)
    rchar = int(err.rsplit("IO rchar=", 1)[1].split()[0]) if "IO rchar=" in err else -1
    assert out, err
    return Finished(process.returncode, json.loads(out), rchar, err)


def _statuses(report: dict[str, object]) -> list[str]:
    models = report["models"]
    assert isinstance(models, list)
    return [model["status"] for model in models]


def _publish(fakes: Fakes, count: int, data_bytes: int = 256 * 1024) -> dict[int, bytes]:
    published = {}
    for version_id in range(1, count + 1):
        data = model_bytes(f"store-{version_id}", data_bytes)
        fakes.civitai.add(
            version_id,
            files=[CivitaiFile(version_id * 10, f"model_{version_id}.safetensors", data)],
        )
        published[version_id] = data
    return published


def _ids(published: dict[int, bytes]) -> str:
    return ",".join(str(version_id) for version_id in published)


def test_warm_start_stats_but_never_reads_the_models(fakes: Fakes) -> None:
    store = fakes.tmp_path / "store"
    sparse_bytes = 1 << 30
    manifest = Manifest(store)
    for version_id in range(1, 5):
        name = f"big_{version_id}.safetensors"
        claimed = f"{version_id:064x}"  # never computed: nothing may read these files
        fakes.civitai.add(
            version_id, files=[CivitaiFile(version_id, name, b"x", published_sha256=claimed)]
        )
        path = store / "checkpoints" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(sparse_bytes)
        manifest.record(f"checkpoints/{name}", identity=f"sha256:{claimed}", sha256=claimed)

    code, report, rchar, _ = _finish(_start(fakes, store, "--civitai", "1,2,3,4"))

    assert code == 0, report
    assert _statuses(report) == ["skipped"] * 4
    assert sum(fakes.storage.counters.requests.values()) == 0
    assert not [path for path in fakes.civitai.counters.requests if "/download/" in path]
    # Python itself reads a few MB at startup; one of the 1 GiB files would be 1 GiB.
    assert 0 < rchar < 64 * 1024 * 1024


def test_processes_sharing_a_store_fetch_each_file_once(fakes: Fakes) -> None:
    store = fakes.tmp_path / "store"
    published = _publish(fakes, 3)
    # The locks stay taken until every pod has resolved every file, so all of them compete;
    # each first download answer is a 429, so the winner holds its lock through a 1 s backoff
    # while the others wait on it.
    gate = [
        file_lock(store, f"checkpoints/model_{v}.safetensors", stale_after_s=30) for v in published
    ]
    assert all(lock.try_acquire() for lock in gate)
    for version_id in published:
        fakes.civitai.throttle.remaining[f"/api/download/models/{version_id}"] = 1
    try:
        pods = [
            _start(fakes, store, "--civitai", _ids(published), name=f"pod{n}") for n in range(3)
        ]
        wait_for(
            lambda: all(
                fakes.civitai.counters.requests[f"/api/v1/model-versions/{v}"] == len(pods)
                for v in published
            ),
            20,
            "all pods to resolve every file",
            interval_s=0.02,
        )
        time.sleep(0.3)
    finally:
        for lock in gate:
            lock.release()
    results = [_finish(pod) for pod in pods]

    assert [result.code for result in results] == [0, 0, 0], results
    assert fakes.storage.counters.bytes_served == sum(len(d) for d in published.values())
    assert all(count == 1 for count in fakes.storage.counters.requests.values())
    statuses = sorted(s for result in results for s in _statuses(result.report))
    assert statuses == ["ok"] * 3 + ["skipped"] * 6  # fetched once, reused twice
    for version_id, data in published.items():
        assert (store / "checkpoints" / f"model_{version_id}.safetensors").read_bytes() == data
    assert len(Manifest(store).items()) == 3
    assert list((store / ".ignition" / "locks").iterdir()) == []
    assert staging_leftovers(store) == []


def test_a_pod_fetches_other_files_while_waiting_for_locked_ones(fakes: Fakes) -> None:
    store = fakes.tmp_path / "store"
    published = _publish(fakes, 5)
    # Another pod holds as many files as one pod fetches at once; the fifth must not wait.
    other_pod = [
        file_lock(store, f"checkpoints/model_{n}.safetensors", stale_after_s=30)
        for n in range(1, 5)
    ]
    assert all(lock.try_acquire() for lock in other_pod)
    try:
        pod = _start(fakes, store, "--civitai", _ids(published))
        fifth = store / "checkpoints" / "model_5.safetensors"
        wait_for(
            fifth.exists,
            20,
            "model 5 to be fetched while models 1-4 are locked elsewhere",
            interval_s=0.02,
        )
        assert files_under(store) == ["checkpoints/model_5.safetensors"]
    finally:
        for lock in other_pod:
            lock.release()
    code, report, _, stderr = _finish(pod)

    assert code == 0, report
    assert _statuses(report) == ["ok"] * 5
    assert "waiting  checkpoints/model_1.safetensors:" in stderr
    for version_id, data in published.items():
        assert (store / "checkpoints" / f"model_{version_id}.safetensors").read_bytes() == data


def test_a_killed_holders_lock_is_taken_over(fakes: Fakes) -> None:
    store = fakes.tmp_path / "store"
    published = _publish(fakes, 1)
    locks = store / ".ignition" / "locks"
    download = "/api/download/models/1"
    # CivitAI keeps answering 429: the holder backs off and retries, holding the file's lock.
    fakes.civitai.throttle.remaining[download] = 1000
    holder = _start(fakes, store, "--civitai", "1", name="holder", IGNITION_LOCK_STALE_S="1")
    wait_for(
        lambda: fakes.civitai.counters.requests[download] >= 1,
        20,
        "the holder's download",
        interval_s=0.02,
    )
    assert len(list(locks.iterdir())) == 1
    holder.send_signal(signal.SIGKILL)  # a pod stopped mid-download: no cleanup runs
    holder.communicate(timeout=10)
    fakes.civitai.throttle.remaining[download] = 0
    assert len(list(locks.iterdir())) == 1, "the dead holder's lock is left behind"

    started = time.monotonic()
    code, report, _, _ = _finish(
        _start(fakes, store, "--civitai", "1", name="next", IGNITION_LOCK_STALE_S="1")
    )

    assert code == 0, report
    assert _statuses(report) == ["ok"]
    assert time.monotonic() - started < 30
    placed = store / "checkpoints" / "model_1.safetensors"
    assert placed.read_bytes() == published[1]
    assert list(locks.iterdir()) == []


def test_a_truncated_file_in_the_store_is_fetched_again(fakes: Fakes) -> None:
    store = fakes.tmp_path / "store"
    published = _publish(fakes, 2)
    assert provision_now(fakes, civitai="1,2", persistent_storage=str(store)).ok
    served = fakes.storage.counters.bytes_served
    damaged = store / "checkpoints" / "model_1.safetensors"
    with damaged.open("r+b") as handle:
        handle.truncate(1000)

    report = provision_now(fakes, civitai="1,2", persistent_storage=str(store))

    assert report.ok
    assert [o.status for o in report.outcomes] == ["ok", "skipped"]
    assert fakes.storage.counters.bytes_served == served + len(published[1])
    assert damaged.read_bytes() == published[1]
    assert files_under(fakes.models_dir) == [], "with a store, nothing lands in the models dir"


def test_same_size_damage_with_the_old_mtime_is_caught_by_verify(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fakes.tmp_path / "store"
    published = _publish(fakes, 2)
    assert provision_now(fakes, civitai="1,2", persistent_storage=str(store)).ok
    damaged = store / "checkpoints" / "model_2.safetensors"
    before = damaged.stat()
    with damaged.open("r+b") as handle:  # bit rot: same size, mtime put back
        handle.seek(len(published[2]) - 1)
        handle.write(b"\x00" if published[2][-1:] != b"\x00" else b"\x01")
    os.utime(damaged, ns=(before.st_atime_ns, before.st_mtime_ns))
    monkeypatch.setenv("PERSISTENT_STORAGE", str(store))
    monkeypatch.setenv("IGNITION_MODELS_DIR", str(fakes.models_dir))

    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "changed" in out and "model_2.safetensors" in out and "1 of 2" in out

    report = provision_now(fakes, civitai="1,2", persistent_storage=str(store))
    assert [o.status for o in report.outcomes] == ["skipped", "ok"]
    assert damaged.read_bytes() == published[2]
    assert main(["verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_verify_reports_a_missing_file_and_exits_non_zero(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(fakes, 2)
    assert provision_now(fakes, civitai="1,2").ok
    (fakes.models_dir / "checkpoints" / "model_1.safetensors").unlink()
    monkeypatch.setenv("IGNITION_MODELS_DIR", str(fakes.models_dir))

    assert main(["verify", "--json"]) == 1

    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    found = {item["path"]: item["status"] for item in result["roots"][str(fakes.models_dir)]}
    assert found == {
        "checkpoints/model_1.safetensors": "missing",
        "checkpoints/model_2.safetensors": "ok",
    }
    assert [o.status for o in provision_now(fakes, civitai="1,2").outcomes] == ["ok", "skipped"]


def test_a_file_changed_behind_our_back_is_rehashed_and_kept_if_right(fakes: Fakes) -> None:
    published = _publish(fakes, 1)
    assert provision_now(fakes, civitai="1").ok
    served = fakes.storage.counters.bytes_served
    placed = fakes.models_dir / "checkpoints" / "model_1.safetensors"
    os.utime(placed, ns=(0, 10**18))  # touched: stat no longer matches, bytes still do
    manifest = Manifest(fakes.models_dir)
    assert manifest.trusted("checkpoints/model_1.safetensors") is None

    report = provision_now(fakes, civitai="1")

    assert [o.status for o in report.outcomes] == ["skipped"]
    assert fakes.storage.counters.bytes_served == served
    manifest.reload()
    assert manifest.trusted("checkpoints/model_1.safetensors", sha256=sha256(published[1]))


def test_comfyui_sees_the_store_through_extra_model_paths(tmp_path: Path) -> None:
    store = tmp_path / "persistent_models"
    settings = Settings(run_dir=tmp_path / "run", persistent_storage=str(store))

    args = comfyui_store_args(settings)

    assert args[0] == "--extra-model-paths-config"
    config = yaml.safe_load(Path(args[1]).read_text())
    (section,) = config.values()
    assert section["base_path"] == str(store) and section["is_default"] is True
    assert store.is_dir()
    for folder in COMFYUI_FOLDERS:
        assert f"{folder}/" in section[folder.replace("/", "_")].splitlines()
    assert section["text_encoders"].splitlines() == ["text_encoders/", "clip/"]
    assert comfyui_store_args(Settings(run_dir=tmp_path / "run", persistent_storage="none")) == []
