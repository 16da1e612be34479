"""The only reader of environment variables: everything Ignition can be told, as one frozen object.

Every path Ignition writes is a field here, so tests (and unusual pods) can redirect all of it.
Names follow the seed README's contract; aliases exist where users commonly mix names up.
Empty values count as unset (RunPod templates often carry `KEY=""`).
"""

from __future__ import annotations

import os
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# A template that references a RunPod secret the user never created passes the placeholder
# through verbatim; treating it as a token would send "{{ RUNPOD_SECRET_x }}" to CivitAI.
_UNRESOLVED_PLACEHOLDER = "{{"
# Folders of the operating system whose contents the nuke would empty if IGNITION_TMP_DIR named
# them (or anything inside the first group): never a scratch folder.
_SYSTEM_TREES = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
)
_SYSTEM_FOLDERS = ("/", "/var", "/opt", "/home", "/root", "/srv", "/mnt", "/media", "/run")


def system_folder(path: Path) -> str | None:
    """Why `path` cannot be a folder Ignition empties (IGNITION_TMP_DIR), or None when it can.

    Checked as written and resolved: a link named /scratch that leads to /etc is /etc.
    """
    if not path.is_absolute():
        return "it is not an absolute path"
    for candidate in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):  # noqa: PTH100
        if str(candidate) in _SYSTEM_FOLDERS or any(
            candidate.is_relative_to(tree) for tree in _SYSTEM_TREES
        ):
            return f"{candidate} is a system folder"
    return None


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _drop_unresolved_secret(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith(_UNRESOLVED_PLACEHOLDER):
        return None
    return value.strip() if isinstance(value, str) else value


# Every credential is one of these: the names of secret variables are derived from this type
# (`SECRET_ENV_NAMES`), so a new credential is masked and kept from children by being declared.
SecretSetting = Annotated[SecretStr | None, BeforeValidator(_drop_unresolved_secret)]


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
    # ignition.yaml: a path or an http(s) URL; its lists add to the three above.
    ignition_manifest: str = Field("", validation_alias=_env("IGNITION_MANIFEST"))
    # ignition.lock: a path or URL; unset, the `ignition.lock` beside the manifest is used.
    ignition_lock: str = Field("", validation_alias=_env("IGNITION_LOCK"))
    # Custom node packs: registry ids[@version], git URLs[@ref], owner/repo[@ref].
    comfyui_nodes: str = Field("", validation_alias=_env("COMFYUI_NODES"))

    # --- credentials ---------------------------------------------------------------------------
    civitai_token: SecretSetting = Field(
        None, validation_alias=_env("CIVITAI_TOKEN", "CIVITAI_API_KEY")
    )
    hf_token: SecretSetting = Field(
        None, validation_alias=_env("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    )
    runpod_api_key: SecretSetting = Field(None, validation_alias=_env("RUNPOD_API_KEY"))
    # Sent only to GITHUB_ENDPOINT (over its scheme), for private node pack repos.
    github_token: SecretSetting = Field(None, validation_alias=_env("GITHUB_TOKEN"))

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
    filebrowser_password: SecretSetting = Field(None, validation_alias=_env("FILEBROWSER_PASSWORD"))
    comfyui_auth: bool = Field(True, validation_alias=_env("COMFYUI_AUTH"))
    # Where ComfyUI listens on 127.0.0.1 while the front door owns COMFYUI_PORT (default +10000).
    comfyui_internal_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("COMFYUI_INTERNAL_PORT")
    )
    comfyui_password: SecretSetting = Field(None, validation_alias=_env("COMFYUI_PASSWORD"))
    comfyui_api_token: SecretSetting = Field(None, validation_alias=_env("COMFYUI_API_TOKEN"))
    enable_manager_ui: bool = Field(False, validation_alias=_env("ENABLE_MANAGER_UI"))
    comfy_flags: str = Field("--preview-method auto", validation_alias=_env("COMFY_FLAGS"))
    comfyui_python: str = Field(sys.executable, validation_alias=_env("COMFYUI_PYTHON"))
    wait_for_models: bool = Field(False, validation_alias=_env("WAIT_FOR_MODELS"))
    nuke_on_stop: bool = Field(True, validation_alias=_env("NUKE_ON_STOP"))
    privacy_mode: bool = Field(True, validation_alias=_env("PRIVACY_MODE"))
    monitor_interval_s: float = Field(120.0, validation_alias=_env("IGNITION_MONITOR_INTERVAL"))
    # The first wait before a crashed service is restarted; it doubles while the service keeps
    # crashing (up to 60 s). Tests shorten it rather than wait out real seconds.
    restart_delay_s: float = Field(2.0, gt=0, validation_alias=_env("IGNITION_RESTART_DELAY_S"))

    # --- transfer ------------------------------------------------------------------------------
    connections: int = Field(16, ge=1, le=256, validation_alias=_env("IGNITION_CONNECTIONS"))
    # Let links and redirects lead to loopback/private/link-local addresses (a mirror on the
    # LAN); off, a public host can never send a request to the pod itself or its network.
    allow_private_urls: bool = Field(False, validation_alias=_env("IGNITION_ALLOW_PRIVATE_URLS"))
    # Proxies, under the names curl and pip read (upper or lower case); NO_PROXY lists the hosts
    # reached directly. The HTTP client is given these: it never reads the environment.
    https_proxy: str | None = Field(None, validation_alias=_env("HTTPS_PROXY", "https_proxy"))
    http_proxy: str | None = Field(None, validation_alias=_env("HTTP_PROXY", "http_proxy"))
    no_proxy: str = Field("", validation_alias=_env("NO_PROXY", "no_proxy"))

    # --- `ignition template` ---------------------------------------------------------------------
    # The image the template runs, when --image is not given (template/image.py: the default).
    image: str | None = Field(None, validation_alias=_env("IGNITION_IMAGE"))

    # --- RunPod-injected -----------------------------------------------------------------------
    runpod_pod_id: str | None = Field(None, validation_alias=_env("RUNPOD_POD_ID"))
    # Set by RunPod in a serverless worker: `ignition start` then runs the worker instead.
    runpod_endpoint_id: str | None = Field(None, validation_alias=_env("RUNPOD_ENDPOINT_ID"))

    # --- serverless worker ---------------------------------------------------------------------
    # The endpoint's network volume; the persistent store when PERSISTENT_STORAGE is unset.
    serverless_volume: Path = Field(
        Path("/runpod-volume"), validation_alias=_env("IGNITION_SERVERLESS_VOLUME")
    )
    warmup_workflow: str = Field("", validation_alias=_env("IGNITION_WARMUP_WORKFLOW"))
    # Unset: no limit of Ignition's own (the endpoint's execution timeout still applies).
    job_timeout_s: float | None = Field(None, gt=0, validation_alias=_env("IGNITION_JOB_TIMEOUT_S"))
    # Models a job asks for (input.models) are kept on the worker up to this size, LRU beyond.
    model_cache_gb: float = Field(50.0, ge=0, validation_alias=_env("IGNITION_MODEL_CACHE_GB"))
    comfy_org_api_key: SecretSetting = Field(None, validation_alias=_env("COMFY_ORG_API_KEY"))
    # S3 uploads of job outputs (worker-comfyui's names); all three set: outputs go to S3.
    bucket_endpoint_url: str | None = Field(None, validation_alias=_env("BUCKET_ENDPOINT_URL"))
    bucket_access_key_id: SecretSetting = Field(None, validation_alias=_env("BUCKET_ACCESS_KEY_ID"))
    bucket_secret_access_key: SecretSetting = Field(
        None, validation_alias=_env("BUCKET_SECRET_ACCESS_KEY")
    )
    bucket_prefix: str = Field("", validation_alias=_env("BUCKET_PREFIX"))
    # runpod-python's rp_upload puts files in a bucket named after the month (`%m-%y`).
    bucket_name: str | None = Field(None, validation_alias=_env("BUCKET_NAME"))

    # The environment Ignition was started with, for the children's (see run/child_env.py).
    _environ: dict[str, str] = PrivateAttr(default_factory=lambda: dict(os.environ))

    @field_validator("models_dir_override", "workspace", mode="after")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        # `IGNITION_MODELS_DIR=~/models` (or `--models-dir=~/models`, which no shell expands)
        # means the home folder, never a folder named "~" in the current directory.
        return value.expanduser() if value is not None else None

    @field_validator("persistent_storage", mode="after")
    @classmethod
    def _expand_home_in_store(cls, value: str) -> str:
        return str(Path(value.strip()).expanduser()) if value.strip().startswith("~") else value

    @field_validator("tmp_dir")
    @classmethod
    def _scratch_folder(cls, value: Path) -> Path:
        if (why := system_folder(value)) is not None:
            raise ValueError(
                f"IGNITION_TMP_DIR={str(value)!r} is refused ({why}): the nuke empties it; "
                "point it at a scratch folder such as /tmp"
            )
        return value

    @model_validator(mode="after")
    def _workspace_given(self) -> Settings:
        # Empty values count as unset everywhere else, but an empty WORKSPACE is far more likely a
        # broken template than a wish for /workspace: the nuke would then wipe /workspace.
        if "workspace" not in self.model_fields_set and _set_but_empty("WORKSPACE"):
            raise ValueError(
                "WORKSPACE is set but empty: unset it to use /workspace, or set it to the "
                "workspace folder"
            )
        if not self.workspace.is_absolute():
            raise ValueError(f"WORKSPACE={str(self.workspace)!r} must be an absolute path")
        return self

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

    @property
    def environ(self) -> Mapping[str, str]:
        """The process environment as it was when these settings were read (read-only)."""
        return MappingProxyType(self._environ)

    def unresolved_secret_warnings(self) -> list[str]:
        """One message per env var holding a `{{ RUNPOD_SECRET_* }}` RunPod did not resolve.

        Such a value counts as unset; without this warning a gated download would say "set
        HF_TOKEN" to a user whose template does set it.
        """
        return [
            f"{name} is {value.strip()!r}: RunPod has no such secret, so {name} counts as unset; "
            "create the secret in RunPod (Settings → Secrets) or remove the variable"
            for name in sorted(SECRET_ENV_NAMES)
            if (value := self._environ.get(name, "")).strip().startswith(_UNRESOLVED_PLACEHOLDER)
        ]


def _set_but_empty(name: str) -> bool:
    value = os.environ.get(name)
    return value is not None and not value.strip()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, then apply explicit overrides (CLI flags win over env vars)."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)


def _field_env_names(*, secret_only: bool) -> frozenset[str]:
    names: set[str] = set()
    for info in Settings.model_fields.values():
        if secret_only and SecretStr not in typing.get_args(info.annotation):
            continue
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
    return frozenset(names)


# Every variable Settings reads, and those among them that carry a credential.
SETTINGS_ENV_NAMES = _field_env_names(secret_only=False)
SECRET_ENV_NAMES = _field_env_names(secret_only=True)


def helper_process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a helper Ignition runs itself (git, uv, pip, a pack's install.py):
    the process's own (PATH, HOME, proxies, UV_*/PIP_* index settings) minus every credential
    Ignition holds, plus `extra` (a token scoped by the caller, e.g. git's extraHeader)."""
    return {
        **{name: value for name, value in os.environ.items() if name not in SECRET_ENV_NAMES},
        **extra,
    }
