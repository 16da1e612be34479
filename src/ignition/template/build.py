"""The RunPod template as data: inputs → the v2 create-template request body and its Markdown page.

Pure functions, no I/O: the same inputs always give the same bytes (keys sorted, fixed ordering,
one trailing newline), so a regenerated template diffs cleanly against the committed one.
Tokens and passwords never enter the template: env values are RunPod secret references, which
RunPod fills in at pod start from the user's own secrets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ignition.errors import ConfigError, SpecError
from ignition.spec import parse_specs
from ignition.spec.entries import split_entries
from ignition.template.image import PLACEHOLDER_IMAGE

# When nothing better is known (see template/image.py for how the real default is chosen).
DEFAULT_IMAGE = PLACEHOLDER_IMAGE
DEFAULT_NAME = "Ignition ComfyUI"
# Container disk holds only what is written outside the volume (pip caches, /tmp); models and
# ComfyUI's data live on the volume.
DEFAULT_CONTAINER_DISK_GB = 30
DEFAULT_VOLUME_GB = 100
# RunPod mounts the pod's volume here, and it is the only path that survives a stop.
VOLUME_PATH = "/workspace"
SSH_PORT = "22/tcp"
JUPYTER_PORT = "8888/http"

_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class SecretNames:
    """Names of the RunPod secrets the template refers to (console → Settings → Secrets)."""

    civitai_token: str = "civitai_token"  # noqa: S105 - a secret's name, not its value
    hf_token: str = "hf_token"  # noqa: S105 - a secret's name, not its value
    filebrowser_password: str = "filebrowser_password"  # noqa: S105 - a name, not a value


@dataclass(frozen=True)
class TemplateInputs:
    """Everything the template depends on; model lists are comma-separated like the env vars."""

    name: str = DEFAULT_NAME
    image: str = DEFAULT_IMAGE
    civitai_models: str = ""
    huggingface_models: str = ""
    # IGNITION_MANIFEST: an ignition.yaml by http(s) URL (or a path on the volume), with its
    # ignition.lock beside it when the pod is to be provisioned exactly.
    manifest: str = ""
    container_disk_gb: int = DEFAULT_CONTAINER_DISK_GB
    volume_gb: int = DEFAULT_VOLUME_GB
    comfyui_port: int = 8188
    filebrowser_port: int = 8080
    persistent_storage: str = "none"
    enable_manager_ui: bool = False
    comfy_flags: str = "--preview-method auto"
    start_jupyter: bool = False
    cuda_versions: tuple[str, ...] = ()
    secrets: SecretNames = field(default_factory=SecretNames)
    # A template for a serverless endpoint's workers (`ignition template --serverless`).
    serverless: bool = False


def secret_reference(name: str) -> str:
    return "{{ RUNPOD_SECRET_" + name + " }}"


def model_list(text: str) -> str:
    """`" 1, 2  3 "` → `"1,2,3"`: the env var's own format, split as `ignition download` does."""
    return ",".join(entry for entry in split_entries(text) if entry)


def check_models(civitai: str, huggingface: str) -> None:
    """Refuse any entry `ignition download` would refuse, naming every bad one at once."""
    errors = parse_specs(civitai, huggingface).errors
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecError(
            f"{len(errors)} model entries are unusable: "
            + "; ".join(error.message for error in errors),
        )


def build_request(inputs: TemplateInputs) -> dict[str, Any]:
    """The body of `POST /v2/templates` (also a valid `PATCH /v2/templates/{id}` body)."""
    _check(inputs)
    if inputs.serverless:
        return serverless_request(inputs)
    body: dict[str, Any] = {
        "name": inputs.name,
        "image": inputs.image,
        "category": "NVIDIA",
        "disk": inputs.container_disk_gb,
        "mounts": {"persistent": {"size": inputs.volume_gb, "path": VOLUME_PATH}},
        "ports": ports(inputs),
        "env": environment(inputs),
        "public": False,
        "serverless": False,
        "startSsh": True,
        # RunPod defaults this to true when omitted: say false, or every pod runs JupyterLab.
        "startJupyter": inputs.start_jupyter,
    }
    if inputs.cuda_versions:
        body["allowedCudaVersions"] = list(inputs.cuda_versions)
    return body


def serverless_request(inputs: TemplateInputs) -> dict[str, Any]:
    """A worker template: no ports (workers are reached only through RunPod's queue), no
    volume of its own (an endpoint's network volume is mounted at /runpod-volume), no SSH or
    Jupyter. `ignition start` sees RUNPOD_ENDPOINT_ID and runs the worker."""
    body: dict[str, Any] = {
        "name": inputs.name,
        "image": inputs.image,
        "category": "NVIDIA",
        "disk": inputs.container_disk_gb,
        "env": serverless_environment(inputs),
        "public": False,
        "serverless": True,
        "startSsh": False,
        "startJupyter": False,
    }
    if inputs.cuda_versions:
        body["allowedCudaVersions"] = list(inputs.cuda_versions)
    return body


def _provisioning_environment(inputs: TemplateInputs) -> dict[str, str]:
    """What pods and workers provision alike: the model lists, their tokens, the manifest."""
    names = inputs.secrets
    return {
        "CIVITAI_MODELS": model_list(inputs.civitai_models),
        "HUGGINGFACE_MODELS": model_list(inputs.huggingface_models),
        "CIVITAI_TOKEN": secret_reference(names.civitai_token),
        "HF_TOKEN": secret_reference(names.hf_token),
        "COMFY_FLAGS": inputs.comfy_flags,
        # Only when set: templates without a manifest stay exactly as they were.
        **({"IGNITION_MANIFEST": inputs.manifest} if inputs.manifest else {}),
    }


def serverless_environment(inputs: TemplateInputs) -> dict[str, str]:
    """The pod's model lists and tokens, and the worker's own settings (empty: unset)."""
    return {
        **_provisioning_environment(inputs),
        "IGNITION_WARMUP_WORKFLOW": "",
        "IGNITION_JOB_TIMEOUT_S": "",
        "IGNITION_MODEL_CACHE_GB": "50",
        "BUCKET_ENDPOINT_URL": "",
        "BUCKET_ACCESS_KEY_ID": "",
        "BUCKET_SECRET_ACCESS_KEY": "",
        "BUCKET_PREFIX": "",
    }


def ports(inputs: TemplateInputs) -> list[str]:
    listed = [f"{inputs.comfyui_port}/http", f"{inputs.filebrowser_port}/http", SSH_PORT]
    if inputs.start_jupyter:
        listed.append(JUPYTER_PORT)
    return listed


def environment(inputs: TemplateInputs) -> dict[str, str]:
    return {
        **_provisioning_environment(inputs),
        "FILEBROWSER_PASSWORD": secret_reference(inputs.secrets.filebrowser_password),
        "PERSISTENT_STORAGE": inputs.persistent_storage,
        "COMFYUI_PORT": str(inputs.comfyui_port),
        "FILEBROWSER_PORT": str(inputs.filebrowser_port),
        "ENABLE_MANAGER_UI": "true" if inputs.enable_manager_ui else "false",
    }


def render_json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _check(inputs: TemplateInputs) -> None:
    """Refuse what RunPod's schema would accept but a pod could not use."""
    check_models(inputs.civitai_models, inputs.huggingface_models)
    manifest = inputs.manifest
    if manifest and not (manifest.startswith(("https://", "http://", VOLUME_PATH + "/"))):
        raise ConfigError(
            f"manifest {manifest!r} is neither an http(s) URL nor a path under {VOLUME_PATH}",
            hint="a pod cannot read this machine's files: publish ignition.yaml (and "
            "ignition.lock beside it) and pass its URL",
        )
    if not inputs.image.strip() or any(c.isspace() for c in inputs.image):
        raise ConfigError(
            f"image {inputs.image!r} is not an image reference",
            hint="pass --image REGISTRY/OWNER/NAME:TAG",
        )
    numbers = [p.split("/")[0] for p in ports(inputs)]
    for port in (inputs.comfyui_port, inputs.filebrowser_port):
        if not 1 <= port <= 65535:
            raise ConfigError(
                f"port {port} is outside 1-65535", hint="set COMFYUI_PORT/FILEBROWSER_PORT"
            )
    if len(set(numbers)) != len(numbers):
        raise ConfigError(
            f"the template would expose one port twice: {', '.join(ports(inputs))}",
            hint="give ComfyUI and the file browser different ports, other than 22 and 8888",
        )
    names = inputs.secrets
    for name in (names.civitai_token, names.hf_token, names.filebrowser_password):
        if not _SECRET_NAME.match(name):
            raise ConfigError(
                f"RunPod secret name {name!r} has characters other than letters, digits, _ and -",
                hint="use the secret's name as shown under Settings → Secrets in the console",
            )
