"""The real supervisor (`python -m ignition start`) running the ComfyUI stand-in."""

from __future__ import annotations

import configparser
import json
import signal
import socket
import stat
from pathlib import Path

import psutil

from fakes.content import model_bytes
from fakes.services import Fakes
from pod_harness import Pod, make_pod
from support import wait_for


def _start(pods: list[Pod], root: Path, **env: str) -> Pod:
    pod = make_pod(root, **env)
    pods.append(pod)
    pod.start()
    return pod


def _argv(pod: Pod) -> list[str]:
    argv: list[str] = pod.get("/system_stats")["system"]["argv"]
    return argv


def _manager_network_mode(pod: Pod) -> str:
    config = configparser.ConfigParser()
    config.read(pod.workspace / "ComfyUI" / "user" / "__manager" / "config.ini")
    return config["default"]["network_mode"]


def _place_model(pod: Pod) -> Path:
    model = pod.workspace / "ComfyUI" / "models" / "checkpoints" / "placed.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"weights")
    return model


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_status_and_stop(pods: list[Pod], tmp_path: Path) -> None:
    pod = _start(
        pods,
        tmp_path,
        CIVITAI_TOKEN="civitai-secret-4242",
        HF_TOKEN="hf-secret-4343",
        FILEBROWSER_PASSWORD="fb-secret-7777",
        STANDIN_ECHO_ENV="CIVITAI_TOKEN,HF_TOKEN,FILEBROWSER_PASSWORD",
        STANDIN_SPAWN_GRANDCHILD="1",
    )
    comfy = pod.wait_ready()
    assert comfy["alive"] and comfy["restarts"] == 0 and comfy["last_exit_code"] is None

    argv = _argv(pod)
    workspace = str(pod.workspace / "ComfyUI")
    assert argv[1:4] == ["--preview-method", "auto", "--enable-manager"]
    assert "--disable-manager-ui" in argv
    assert argv[-6:] == [
        "--base-directory",
        workspace,
        "--listen",
        "0.0.0.0",
        "--port",
        str(pod.port),
    ]
    assert _manager_network_mode(pod) == "offline"

    status = pod.status()
    assert status["services"]["comfyui"]["pid"] == comfy["pid"]
    assert status["services"]["comfyui"]["url"] == f"http://localhost:{pod.port}"
    assert status["ports"]["comfyui"] == pod.port
    human = pod.cli("status")
    assert human.returncode == 0 and "comfyui" in human.stdout and "ready" in human.stdout

    run_dir = Path(pod.env["IGNITION_RUN_DIR"])
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "control.sock").stat().st_mode) == 0o600
    for script in (
        pod.workspace / "scripts" / "restart-comfyui.sh",
        pod.workspace / "scripts" / "stop-pod.sh",
        pod.workspace / "scripts" / "privacy" / "show-connections.sh",
        Path(pod.env["IGNITION_BIN_DIR"]) / "nuke",
    ):
        assert script.stat().st_mode & stat.S_IXUSR, script

    # Secrets: never in the log, and ComfyUI (arbitrary custom nodes) is given none of them.
    log = pod.startup_log
    assert "env CIVITAI_TOKEN=(unset)" in log and "civitai-secret-4242" not in log
    assert "env HF_TOKEN=(unset)" in log and "hf-secret-4343" not in log
    assert "env FILEBROWSER_PASSWORD=(unset)" in log
    assert "fb-secret-7777" not in log

    out = pod.output.read_text()
    grandchild = int(out.split("standin grandchild pid ")[1].split()[0])
    model = _place_model(pod)
    stop = pod.cli("stop")
    assert stop.returncode == 0, stop.stderr
    assert "stopped; nuke: " in stop.stdout and "Nuclear cleanup complete" in stop.stdout
    assert pod.wait_exit() == 0
    assert "hard stop: running the nuke" in pod.startup_log
    assert not model.exists() and model.parent.is_dir()  # the nuke ran; folders stay
    assert _gone(grandchild) and _gone(comfy["pid"])
    assert not (run_dir / "control.sock").exists()
    assert pod.cli("status").returncode == 3


def test_crash_manager_reboot_soft_restart_and_sigterm(pods: list[Pod], tmp_path: Path) -> None:
    pod = _start(pods, tmp_path, NUKE_ON_STOP="false")
    first = pod.wait_ready()

    pod.post("/standin/exit?code=1")  # a crash: back after the (shortened) restart delay
    second = pod.wait_ready(not_pid=first["pid"])
    assert (second["restarts"], second["crashes"], second["last_exit_code"]) == (1, 1, 1)

    pod.post("/standin/reboot")  # ComfyUI-Manager's restart: not a crash
    third = pod.wait_ready(not_pid=second["pid"])
    assert (third["restarts"], third["crashes"], third["last_exit_code"]) == (2, 1, 0)

    restart = pod.cli("restart", env={"ENABLE_MANAGER_UI": "true"})
    assert restart.returncode == 0, restart.stderr
    fourth = pod.wait_ready(not_pid=third["pid"])
    assert str(fourth["pid"]) in restart.stdout and fourth["restarts"] == 3
    assert "--disable-manager-ui" not in _argv(pod)
    assert _manager_network_mode(pod) == "public"

    pod.signal(signal.SIGTERM)
    assert pod.wait_exit(timeout_s=10) == 0
    assert "no nuke: NUKE_ON_STOP=false" in pod.startup_log
    assert _gone(fourth["pid"])


def test_crash_loop_is_reported_and_left_down(pods: list[Pod], tmp_path: Path) -> None:
    pod = _start(pods, tmp_path, COMFY_FLAGS="--no-such-flag")

    def failed() -> dict[str, object] | None:
        comfy = pod.comfyui()
        return comfy if comfy.get("state") == "failed" else None

    comfy = wait_for(failed, 20, "the crash loop to be reported")
    assert comfy["last_exit_code"] == 2 and comfy["restarts"] == 2 and not comfy["alive"]
    assert "unrecognized arguments: --no-such-flag" in comfy["error"]
    assert "COMFY_FLAGS" in comfy["error"]
    assert pod.cli("status").returncode == 1  # the HEALTHCHECK says unhealthy
    assert "keeps exiting before it becomes ready" in pod.startup_log

    pod.signal(signal.SIGINT)
    assert pod.wait_exit(timeout_s=10) == 0
    assert "no nuke: ComfyUI never became ready" in pod.startup_log


def _crash_at_start(root: Path) -> Path:
    marker = root / "workspace" / "ComfyUI" / "standin-crash"
    marker.parent.mkdir(parents=True)
    marker.write_text("1")
    return marker


def _first_crash(pod: Pod) -> dict[str, object]:
    found: dict[str, object] = wait_for(
        lambda: (c := pod.comfyui()).get("crashes") and c, 15, "a first crash"
    )
    return found


def test_stop_while_comfyui_crashes_keeps_the_data(pods: list[Pod], tmp_path: Path) -> None:
    # Never ready in this container's life: the nuke must not run.
    _crash_at_start(tmp_path)
    # The real backoff: the first crash is seen while the service is still being restarted.
    pod = _start(pods, tmp_path, IGNITION_RESTART_DELAY_S="2")
    assert _first_crash(pod)["state"] in {"restarting", "starting"}
    model = _place_model(pod)
    stop = pod.cli("stop")
    assert stop.returncode == 0 and "not run: ComfyUI never became ready" in stop.stdout
    assert pod.wait_exit() == 0
    assert "no nuke: ComfyUI never became ready" in pod.startup_log
    assert model.exists()


def test_restart_after_fixing_a_crash(pods: list[Pod], tmp_path: Path) -> None:
    marker = _crash_at_start(tmp_path)
    pod = _start(pods, tmp_path)
    _first_crash(pod)
    marker.unlink()  # the user fixed the cause
    assert pod.cli("restart").returncode == 0
    comfy = pod.wait_ready()
    # The restart may land in the backoff or on the next attempt: either way it is up.
    assert comfy["crashes"] >= 1 and comfy["restarts"] >= 1


def test_status_without_a_supervisor(tmp_path: Path) -> None:
    pod = make_pod(tmp_path)
    result = pod.cli("status", "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["running"] is False
    assert "not running" in result.stderr
    assert pod.cli("restart").returncode == 3


def test_wait_for_models_starts_comfyui_after_the_downloads(
    pods: list[Pod], tmp_path: Path, fakes: Fakes
) -> None:
    fakes.hf.add("org/good", {"good.safetensors": model_bytes("good")})
    pod = _start(
        pods,
        tmp_path / "pod",
        WAIT_FOR_MODELS="true",
        HF_ENDPOINT=fakes.hf.url,
        HUGGINGFACE_MODELS="org/good/good.safetensors:checkpoints,org/missing/x.safetensors",
    )
    comfy = pod.wait_ready()
    # Models first: the moment ComfyUI answers, the downloaded checkpoint is already listed.
    assert pod.get("/models/checkpoints") == ["good.safetensors"]
    status = pod.status()
    assert status["downloads"]["state"] == "failed"  # one of the two could not be found
    cli_status = json.loads(pod.cli("status", "--json").stdout)
    assert cli_status["downloads"]["progress"]["ok"] is False
    human = pod.cli("status").stdout
    assert "downloads    failed (done): 1 failed, 1 ok" in human
    assert "org/missing/x.safetensors: " in human
    assert "downloads: org/missing/x.safetensors failed" in pod.startup_log
    assert comfy["restarts"] == 0
    pod.signal(signal.SIGTERM)
    assert pod.wait_exit() == 0


def test_sigterm_while_waiting_for_a_hung_download(pods: list[Pod], tmp_path: Path) -> None:
    # A server that accepts connections and never answers: the download hangs until stopped.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        pod = _start(
            pods,
            tmp_path,
            WAIT_FOR_MODELS="true",
            HF_ENDPOINT=f"http://127.0.0.1:{hung.getsockname()[1]}",
            HUGGINGFACE_MODELS="org/slow/model.safetensors",
        )
        wait_for(
            lambda: pod.status().get("downloads", {}).get("state") == "running", 15, "downloads"
        )
        assert pod.comfyui()["state"] == "waiting"
        assert pod.cli("status").returncode == 0  # waiting on purpose is healthy
        pod.signal(signal.SIGTERM)
        assert pod.wait_exit() == 0
    assert "no nuke: ComfyUI never became ready" in pod.startup_log
    assert "comfyui started" not in pod.startup_log


def test_persistent_storage_feeds_comfyui_and_survives_the_nuke(
    pods: list[Pod], tmp_path: Path, fakes: Fakes
) -> None:
    fakes.hf.add("org/kept", {"kept.safetensors": model_bytes("kept")})
    store = tmp_path / "store"
    pod = _start(
        pods,
        tmp_path / "pod",
        PERSISTENT_STORAGE=str(store),
        WAIT_FOR_MODELS="true",
        HF_ENDPOINT=fakes.hf.url,
        HUGGINGFACE_MODELS="org/kept/kept.safetensors:checkpoints",
    )
    pod.wait_ready()
    argv = _argv(pod)
    config = argv[argv.index("--extra-model-paths-config") + 1]
    assert Path(config).parent == Path(pod.env["IGNITION_RUN_DIR"])
    assert pod.get("/models/checkpoints") == ["kept.safetensors"]  # read from the store
    assert pod.cli("stop").returncode == 0
    assert pod.wait_exit() == 0
    assert (store / "checkpoints" / "kept.safetensors").exists()
