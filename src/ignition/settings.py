"""The only reader of environment variables: everything Ignition can be told, as one frozen object.

Every path Ignition writes is a field here, so tests (and unusual pods) can redirect all of it.
Names follow the seed README's contract; aliases exist where users commonly mix names up.
Empty values count as unset (RunPod templates often carry `KEY=""`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A template that references a RunPod secret the user never created passes the placeholder
# through verbatim; treating it as a token would send "{{ RUNPOD_SECRET_x }}" to CivitAI.
_UNRESOLVED_PLACEHOLDER = "{{"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Ignition's configuration. Field docs name the environment variable that sets each."""

    model_config = SettingsConfigDict(
        frozen=True,
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # --- what to provision -------------------------------------------------------------------
    civitai_models: str = Field("", validation_alias=_env("CIVITAI_MODELS"))
    huggingface_models: str = Field("", validation_alias=_env("HUGGINGFACE_MODELS"))
    comfyui_workflows: str = Field("", validation_alias=_env("COMFYUI_WORKFLOWS"))
    # Custom node packs: registry ids[@version], git URLs[@ref], owner/repo[@ref].
    comfyui_nodes: str = Field("", validation_alias=_env("COMFYUI_NODES"))

    # --- credentials ---------------------------------------------------------------------------
    civitai_token: SecretStr | None = Field(
        None, validation_alias=_env("CIVITAI_TOKEN", "CIVITAI_API_KEY")
    )
    hf_token: SecretStr | None = Field(
        None, validation_alias=_env("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    )
    runpod_api_key: SecretStr | None = Field(None, validation_alias=_env("RUNPOD_API_KEY"))
    # Sent only to GITHUB_ENDPOINT's host, for private node pack repos.
    github_token: SecretStr | None = Field(None, validation_alias=_env("GITHUB_TOKEN"))

    # --- endpoints (mirrors and tests) ----------------------------------------------------------
    civitai_endpoint: str = Field("https://civitai.com", validation_alias=_env("CIVITAI_ENDPOINT"))
    hf_endpoint: str = Field("https://huggingface.co", validation_alias=_env("HF_ENDPOINT"))
    runpod_api_url: str = Field("https://api.runpod.io", validation_alias=_env("RUNPOD_API_URL"))
    comfy_registry_endpoint: str = Field(
        "https://api.comfy.org", validation_alias=_env("COMFY_REGISTRY_ENDPOINT")
    )
    github_endpoint: str = Field("https://github.com", validation_alias=_env("GITHUB_ENDPOINT"))

    # --- paths ---------------------------------------------------------------------------------
    workspace: Path = Field(Path("/workspace"), validation_alias=_env("WORKSPACE"))
    comfyui_dir: Path = Field(Path("/opt/ComfyUI"), validation_alias=_env("COMFYUI_DIR"))
    models_dir_override: Path | None = Field(None, validation_alias=_env("IGNITION_MODELS_DIR"))
    persistent_storage: str = Field("none", validation_alias=_env("PERSISTENT_STORAGE"))
    # A store lock whose heartbeat has not changed for this long belongs to a dead process.
    lock_stale_s: float = Field(30.0, gt=0, validation_alias=_env("IGNITION_LOCK_STALE_S"))
    # How long ComfyUI's first start waits for node packs; later ones get one soft restart.
    nodes_wait_s: float = Field(600.0, gt=0, validation_alias=_env("IGNITION_NODES_WAIT_S"))
    run_dir: Path = Field(Path("/run/ignition"), validation_alias=_env("IGNITION_RUN_DIR"))
    startup_log: Path = Field(
        Path("/tmp/ignition_startup.log"),  # noqa: S108 - the seed's documented location
        validation_alias=_env("IGNITION_STARTUP_LOG"),
    )
    hosts_file: Path = Field(Path("/etc/hosts"), validation_alias=_env("IGNITION_HOSTS_FILE"))
    connections_log: Path = Field(
        Path("/tmp/ignition-connections.log"),  # noqa: S108 - the seed's documented location
        validation_alias=_env("IGNITION_CONNECTIONS_LOG"),
    )
    tmp_dir: Path = Field(Path("/tmp"), validation_alias=_env("IGNITION_TMP_DIR"))  # noqa: S108
    home: Path = Field(Path.home(), validation_alias=_env("HOME"))
    # Where `nuke` is put on PATH at start (the image's PATH includes it).
    bin_dir: Path = Field(Path("/usr/local/bin"), validation_alias=_env("IGNITION_BIN_DIR"))

    # --- services ------------------------------------------------------------------------------
    comfyui_port: int = Field(8188, validation_alias=_env("COMFYUI_PORT"))
    filebrowser_port: int = Field(8080, validation_alias=_env("FILEBROWSER_PORT"))
    filebrowser_enabled: bool = Field(True, validation_alias=_env("FILEBROWSER_ENABLED"))
    filebrowser_username: str = Field("admin", validation_alias=_env("FILEBROWSER_USERNAME"))
    filebrowser_password: SecretStr | None = Field(
        None, validation_alias=_env("FILEBROWSER_PASSWORD")
    )
    comfyui_auth: bool = Field(True, validation_alias=_env("COMFYUI_AUTH"))
    # Where ComfyUI listens on 127.0.0.1 while the front door owns COMFYUI_PORT (default +10000).
    comfyui_internal_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("COMFYUI_INTERNAL_PORT")
    )
    comfyui_password: SecretStr | None = Field(None, validation_alias=_env("COMFYUI_PASSWORD"))
    comfyui_api_token: SecretStr | None = Field(None, validation_alias=_env("COMFYUI_API_TOKEN"))
    enable_manager_ui: bool = Field(False, validation_alias=_env("ENABLE_MANAGER_UI"))
    comfy_flags: str = Field("--preview-method auto", validation_alias=_env("COMFY_FLAGS"))
    comfyui_python: str = Field(sys.executable, validation_alias=_env("COMFYUI_PYTHON"))
    wait_for_models: bool = Field(False, validation_alias=_env("WAIT_FOR_MODELS"))
    nuke_on_stop: bool = Field(True, validation_alias=_env("NUKE_ON_STOP"))
    privacy_mode: bool = Field(True, validation_alias=_env("PRIVACY_MODE"))
    monitor_interval_s: float = Field(120.0, validation_alias=_env("IGNITION_MONITOR_INTERVAL"))

    # --- transfer ------------------------------------------------------------------------------
    connections: int = Field(16, ge=1, le=256, validation_alias=_env("IGNITION_CONNECTIONS"))

    # --- RunPod-injected -----------------------------------------------------------------------
    runpod_pod_id: str | None = Field(None, validation_alias=_env("RUNPOD_POD_ID"))

    @field_validator(
        "civitai_token",
        "hf_token",
        "runpod_api_key",
        "github_token",
        "filebrowser_password",
        "comfyui_password",
        "comfyui_api_token",
        mode="before",
    )
    @classmethod
    def _drop_unresolved_secret(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith(_UNRESOLVED_PLACEHOLDER):
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator(
        "civitai_endpoint",
        "hf_endpoint",
        "runpod_api_url",
        "comfy_registry_endpoint",
        "github_endpoint",
    )
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # --- derived paths -------------------------------------------------------------------------
    @property
    def comfyui_base(self) -> Path:
        """ComfyUI's data root (`--base-directory`): models, custom_nodes, input, output, user."""
        return self.workspace / "ComfyUI"

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.comfyui_base / "models"

    @property
    def persistent_store(self) -> Path | None:
        value = self.persistent_storage.strip()
        return None if value.lower() in {"", "none", "off", "false"} else Path(value)

    @property
    def status_file(self) -> Path:
        """Download progress, as JSON, for `ignition status` and for people tailing a pod."""
        return self.run_dir / "downloads.json"

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "control.sock"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, then apply explicit overrides (CLI flags win over env vars)."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)


def unresolved_secret_warnings() -> list[str]:
    """One message per env var holding a `{{ RUNPOD_SECRET_* }}` RunPod did not resolve.

    Such a value counts as unset; without this warning a gated download would say "set HF_TOKEN"
    to a user whose template does set it.
    """
    names = (
        "CIVITAI_TOKEN",
        "CIVITAI_API_KEY",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "FILEBROWSER_PASSWORD",
        "COMFYUI_PASSWORD",
        "COMFYUI_API_TOKEN",
        "RUNPOD_API_KEY",
        "GITHUB_TOKEN",
    )
    return [
        f"{name} is {value.strip()!r}: RunPod has no such secret, so {name} counts as unset; "
        "create the secret in RunPod (Settings → Secrets) or remove the variable"
        for name in names
        if (value := os.environ.get(name, "")).strip().startswith(_UNRESOLVED_PLACEHOLDER)
    ]


def helper_process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a helper Ignition runs itself (git, uv, pip, a pack's install.py):
    the process's own (PATH, HOME, proxies, UV_*/PIP_* index settings) minus every credential
    Ignition holds, plus `extra` (a token scoped by the caller, e.g. git's extraHeader)."""
    secrets = {
        "CIVITAI_TOKEN",
        "CIVITAI_API_KEY",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "GITHUB_TOKEN",
        "RUNPOD_API_KEY",
        "FILEBROWSER_PASSWORD",
        "COMFYUI_PASSWORD",
        "COMFYUI_API_TOKEN",
    }
    return {
        **{name: value for name, value in os.environ.items() if name not in secrets},
        **extra,
    }
