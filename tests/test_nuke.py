import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ignition.errors import ConfigError
from ignition.nuke import NukeReport, nuke
from ignition.run.pod_scripts import write_pod_scripts
from ignition.settings import Settings, load_settings
from unprivileged import hand_over, reachable_dir, run_unprivileged

DELETED = [
    "ws/ComfyUI/user/default/comfy.settings.json",
    "ws/ComfyUI/input/a.png",
    "ws/ComfyUI/output/2026/b.png",
    "ws/ComfyUI/temp/t.png",
    "ws/ComfyUI/logs/comfyui.log",
    "ws/ComfyUI/models/checkpoints/model.safetensors",
    "ws/ComfyUI/models/loras/deep/style.safetensors",
    "ws/ComfyUI/models/put_here",
    "tmp/download.part",
    "tmp/pip-build/setup.py",
    "home/.cache/pip/wheel",
    "home/.config/comfy-cli/config.ini",
    "home/.local/share/jupyter/runtime",
    "home/.bash_history",
]
KEPT = [
    "ws/ComfyUI/custom_nodes/node/__init__.py",
    "ws/.ignition/secrets.json",
    "ws/notes.txt",
    "tmp/run/control.sock",
    "tmp/ignition_startup.log",
    "home/.ssh/authorized_keys",
    "home/.bashrc",
    "home/.local/bin/tool",
    "outside/precious.safetensors",
]


def build(base: Path) -> Settings:
    for index, name in enumerate(DELETED + KEPT):
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (index + 1))
    return load_settings(
        workspace=base / "ws",
        home=base / "home",
        tmp_dir=base / "tmp",
        run_dir=base / "tmp" / "run",
        startup_log=base / "tmp" / "ignition_startup.log",
        persistent_storage="none",
    )


def existing(base: Path, names: list[str]) -> list[str]:
    return [name for name in names if (base / name).exists() or (base / name).is_symlink()]


def test_nuke_deletes_the_seeds_list_and_nothing_else(tmp_path: Path) -> None:
    report = nuke(build(tmp_path))
    assert existing(tmp_path, DELETED) == []
    assert existing(tmp_path, KEPT) == KEPT
    assert report.failures == []
    assert report.files == len(DELETED)
    assert report.size_bytes == sum(range(1, len(DELETED) + 1))
    # The roots stay; so do models' first-level folders, empty, for the next start.
    models = tmp_path / "ws/ComfyUI/models"
    assert sorted(p.name for p in models.iterdir()) == ["checkpoints", "loras"]
    assert not any((models / "loras").iterdir())
    for root in ["ws/ComfyUI/user", "ws/ComfyUI/output", "tmp", "home/.cache", "home/.local/share"]:
        assert (tmp_path / root).is_dir()
    assert nuke(build(tmp_path)).files == len(DELETED)  # and it can run again


def test_a_symlink_is_removed_and_its_target_is_not(tmp_path: Path) -> None:
    settings = build(tmp_path)
    outside = tmp_path / "outside"
    models = tmp_path / "ws/ComfyUI/models"
    (models / "linked_folder").symlink_to(outside, target_is_directory=True)
    (models / "checkpoints/linked.safetensors").symlink_to(outside / "precious.safetensors")
    (tmp_path / "tmp/escape").symlink_to(tmp_path / "ws", target_is_directory=True)
    (tmp_path / "home/.bash_history").unlink()
    (tmp_path / "home/.bash_history").symlink_to(outside / "precious.safetensors")
    report = nuke(settings)
    assert report.failures == []
    assert not (models / "linked_folder").is_symlink()
    assert not (models / "checkpoints/linked.safetensors").is_symlink()
    assert not (tmp_path / "tmp/escape").is_symlink()
    assert not (tmp_path / "home/.bash_history").is_symlink()
    assert existing(tmp_path, KEPT) == KEPT


def test_a_root_that_is_a_symlink_is_left_alone(tmp_path: Path) -> None:
    settings = build(tmp_path)
    output = tmp_path / "ws/ComfyUI/output"
    shutil.rmtree(output)
    output.symlink_to(tmp_path / "outside", target_is_directory=True)
    report = nuke(settings)
    assert output.is_symlink()
    assert existing(tmp_path, KEPT) == KEPT
    assert (output, "not a folder (a symlink is never followed)") in report.kept


@pytest.mark.parametrize(
    "store",
    [
        "ws/persistent_models",  # the seed's example: inside the workspace
        "ws/ComfyUI/models",  # the models folder itself
        "ws/ComfyUI/models/checkpoints",  # one model folder
        "tmp/store",  # inside the temp dir
        "home/.cache/models",  # inside a HOME root
    ],
)
def test_persistent_storage_is_never_deleted(tmp_path: Path, store: str) -> None:
    settings = build(tmp_path)
    (tmp_path / store / "sub").mkdir(parents=True, exist_ok=True)
    (tmp_path / store / "sub/kept.safetensors").write_bytes(b"weights")
    linked = tmp_path / "ws/ComfyUI/models/vae"
    if not (tmp_path / store).is_relative_to(linked.parent):
        linked.symlink_to(tmp_path / store / "sub", target_is_directory=True)
    report = nuke(settings.model_copy(update={"persistent_storage": str(tmp_path / store)}))
    assert report.failures == []
    assert (tmp_path / store / "sub/kept.safetensors").read_bytes() == b"weights"
    inside_a_root = store != "ws/persistent_models"
    assert ((tmp_path / store, "PERSISTENT_STORAGE") in report.kept) is inside_a_root
    assert existing(tmp_path, KEPT) == KEPT


def test_persistent_storage_given_through_a_symlink_is_kept_as_link_and_target(
    tmp_path: Path,
) -> None:
    settings = build(tmp_path)
    (tmp_path / "outside/store").mkdir()
    link = tmp_path / "tmp/store-link"
    link.symlink_to(tmp_path / "outside/store", target_is_directory=True)
    nuke(settings.model_copy(update={"persistent_storage": str(link)}))
    assert link.is_symlink()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workspace", "/"),
        ("workspace", "link-to-root"),
        ("workspace", ""),
        ("workspace", "relative/ws"),
        ("tmp_dir", "/"),
        ("tmp_dir", "ws"),  # would wipe the whole workspace
        ("tmp_dir", "."),  # holds the workspace and HOME
        ("home", "relative/home"),
    ],
)
def test_unsafe_settings_are_refused_before_anything_is_deleted(
    tmp_path: Path, field: str, value: str
) -> None:
    settings = build(tmp_path)
    (tmp_path / "link-to-root").symlink_to("/", target_is_directory=True)
    if value == "link-to-root" or value in {"ws", "."}:
        value = str(tmp_path / value)
    with pytest.raises(ConfigError, match="refusing to nuke"):
        nuke(settings.model_copy(update={field: Path(value)}))
    assert existing(tmp_path, DELETED) == DELETED


def test_undeletable_entries_are_reported_and_the_rest_still_goes() -> None:
    with reachable_dir() as base:
        settings = build(base)
        locked = base / "ws/ComfyUI/output/locked"
        locked.mkdir()
        (locked / "stuck.png").write_bytes(b"png")
        (base / "ws/ComfyUI/output/zz-after.png").write_bytes(b"png")
        hand_over(*(base / top for top in ("ws", "tmp", "home", "outside")))
        os.chown(locked, os.geteuid(), os.getegid())  # not handed over: stays the caller's
        locked.chmod(0o555)  # the unprivileged step may not delete what is inside
        report: NukeReport = run_unprivileged(lambda: nuke(settings))
        assert [(path, why) for path, why in report.failures] == [
            (locked / "stuck.png", "Permission denied")
        ]
        assert (locked / "stuck.png").exists()
        assert not (base / "ws/ComfyUI/output/zz-after.png").exists()
        assert existing(base, DELETED) == []
        assert existing(base, KEPT) == KEPT


def cli(base: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WORKSPACE": str(base / "ws"),
        "HOME": str(base / "home"),
        "IGNITION_TMP_DIR": str(base / "tmp"),
        "IGNITION_RUN_DIR": str(base / "tmp/run"),
        "IGNITION_STARTUP_LOG": str(base / "tmp/ignition_startup.log"),
        "IGNITION_CONNECTIONS_LOG": str(base / "tmp/connections.log"),
        "PERSISTENT_STORAGE": "none",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return subprocess.run(
        list(args), env=env, capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


def test_the_cli_refuses_without_yes_when_it_cannot_ask(tmp_path: Path) -> None:
    build(tmp_path)
    result = cli(tmp_path, sys.executable, "-m", "ignition", "nuke", stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert existing(tmp_path, DELETED) == DELETED


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0)])
def test_at_a_terminal_the_cli_asks_first(tmp_path: Path, answer: str, code: int) -> None:
    build(tmp_path)
    primary, secondary = pty.openpty()
    try:
        os.write(primary, f"{answer}\n".encode())
        result = cli(tmp_path, sys.executable, "-m", "ignition", "nuke", stdin=secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == code, result.stderr
    assert "Delete all of this? [y/N]" in result.stdout
    assert existing(tmp_path, DELETED) == ([] if answer == "y" else DELETED)


def test_the_cli_with_yes_deletes_and_says_how_much(tmp_path: Path) -> None:
    build(tmp_path)
    result = cli(tmp_path, sys.executable, "-m", "ignition", "nuke", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"deleted {len(DELETED)} files" in result.stdout
    assert existing(tmp_path, DELETED) == []
    assert existing(tmp_path, KEPT) == KEPT


def test_the_seed_wrappers_pass_shellcheck_and_run_ignition(tmp_path: Path) -> None:
    build(tmp_path)
    # The scripts exactly as `ignition start` writes them; only their location is a temp dir.
    written = write_pod_scripts(load_settings(workspace=tmp_path / "pod", bin_dir=tmp_path))
    scripts = {path.name: path for path in written if path.name in {"nuke", "show-connections.sh"}}
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        assert not os.environ.get("IGNITION_TEST_REQUIRE_TOOLS"), "shellcheck is not installed"
    else:
        subprocess.run([shellcheck, *map(str, scripts.values())], check=True)
    shown = cli(tmp_path, str(scripts["show-connections.sh"]))
    assert shown.returncode == 0, shown.stderr
    assert "No outbound connections logged" in shown.stdout
    nuked = cli(tmp_path, str(scripts["nuke"]), "--yes")
    assert nuked.returncode == 0, nuked.stderr
    assert existing(tmp_path, DELETED) == []
