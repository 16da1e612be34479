"""Children's environments: built from an allow-list; no credential reaches a child."""

from __future__ import annotations

import pytest

from ignition.run.child_env import basic_env, inherited_for_comfyui
from ignition.settings import SECRET_ENV_NAMES, SETTINGS_ENV_NAMES, Settings


def test_secret_names_come_from_the_secret_fields() -> None:
    assert {"CIVITAI_TOKEN", "CIVITAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} <= (
        SECRET_ENV_NAMES
    )
    assert {"FILEBROWSER_PASSWORD", "COMFYUI_PASSWORD", "COMFYUI_API_TOKEN", "RUNPOD_API_KEY"} <= (
        SECRET_ENV_NAMES
    )
    assert "HF_ENDPOINT" not in SECRET_ENV_NAMES
    assert SECRET_ENV_NAMES < SETTINGS_ENV_NAMES


def test_every_child_gets_the_basics_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PATH": "/usr/bin",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "CUDA_VISIBLE_DEVICES": "0",
        "NVIDIA_DRIVER_CAPABILITIES": "all",
        "HF_TOKEN": "hf_x",
        "CIVITAI_TOKEN": "c_x",
        "JUPYTER_TOKEN": "j_x",
        "SOME_NODE_KEY": "k",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    basic = basic_env(settings)
    assert basic["PATH"] == "/usr/bin" and basic["LC_ALL"] == "C.UTF-8" and basic["TZ"] == "UTC"
    assert basic["CUDA_VISIBLE_DEVICES"] == "0" and "NVIDIA_DRIVER_CAPABILITIES" in basic
    assert not {"HF_TOKEN", "CIVITAI_TOKEN", "JUPYTER_TOKEN", "SOME_NODE_KEY"} & basic.keys()

    comfyui = inherited_for_comfyui(settings)
    assert comfyui["SOME_NODE_KEY"] == "k"  # a custom node's own variable
    assert not SECRET_ENV_NAMES & comfyui.keys()


def test_the_environment_is_the_one_the_settings_were_read_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    settings = Settings()
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert settings.environ["TZ"] == "UTC"
    with pytest.raises(TypeError):
        settings.environ["TZ"] = "x"  # type: ignore[index]
