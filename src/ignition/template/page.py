"""The template's Markdown page: what a pod from this template runs and how to use it.

RunPod's v2 API has no readme field, so this page is written beside the JSON for pasting into the
console's template description. Pure text from the same inputs as the request body: deterministic.
"""

from __future__ import annotations

from ignition.template.build import (
    JUPYTER_PORT,
    SSH_PORT,
    VOLUME_PATH,
    TemplateInputs,
    environment,
    model_list,
    ports,
    secret_reference,
)


def render_page(inputs: TemplateInputs) -> str:
    sections = [
        _intro(inputs),
        _ports_section(inputs),
        _models_section(inputs),
        _secrets_section(inputs),
        _environment_section(inputs),
        _storage_section(inputs),
        _operations_section(),
    ]
    return "\n\n".join(sections) + "\n"


def _intro(inputs: TemplateInputs) -> str:
    return "\n".join(
        [
            f"# {inputs.name}",
            "",
            "ComfyUI on a RunPod GPU pod, provisioned and supervised by Ignition: at start it",
            "downloads the models listed below in parallel, verifies every file (sha256, size,",
            "safetensors header) and moves each into the right ComfyUI model folder, then runs",
            "ComfyUI and a password-protected file browser and restarts them if they crash.",
            "",
            f"Image: `{inputs.image}`",
        ]
    )


def _ports_section(inputs: TemplateInputs) -> str:
    services = {
        f"{inputs.comfyui_port}/http": "ComfyUI",
        f"{inputs.filebrowser_port}/http": "File browser (user `admin`)",
        SSH_PORT: "SSH (needs your public key under Settings → SSH Public Keys)",
        JUPYTER_PORT: "JupyterLab",
    }
    rows = ["## Ports", "", "| Port | Service |", "|---|---|"]
    rows += [f"| `{port}` | {services[port]} |" for port in ports(inputs)]
    rows += ["", "HTTP ports open at `https://<pod id>-<port>.proxy.runpod.net`."]
    return "\n".join(rows)


def _models_section(inputs: TemplateInputs) -> str:
    civitai = model_list(inputs.civitai_models)
    huggingface = model_list(inputs.huggingface_models)
    return "\n".join(
        [
            "## Models",
            "",
            f"- CivitAI version ids (`CIVITAI_MODELS`): {_listed(civitai)}",
            f"- Hugging Face repos, files or short names (`HUGGINGFACE_MODELS`): "
            f"{_listed(huggingface)}",
            "",
            "Edit either variable when you deploy to change the models; comma-separated.",
            *(
                [
                    "",
                    f"The manifest `{inputs.manifest}` (`IGNITION_MANIFEST`) adds its models and "
                    "workflows; with `ignition.lock` beside it the pod gets exactly the locked "
                    "files, each verified against its sha256.",
                ]
                if inputs.manifest
                else []
            ),
        ]
    )


def _listed(models: str) -> str:
    return ", ".join(f"`{m}`" for m in models.split(",")) if models else "none"


def _secrets_section(inputs: TemplateInputs) -> str:
    names = inputs.secrets
    rows = [
        (names.civitai_token, "CIVITAI_TOKEN", "only public CivitAI models download"),
        (names.hf_token, "HF_TOKEN", "gated and private Hugging Face repos fail"),
        (
            names.filebrowser_password,
            "FILEBROWSER_PASSWORD",
            "Ignition generates a password, prints it once in the startup log and keeps it in "
            f"`{VOLUME_PATH}/.ignition/secrets.json`",
        ),
    ]
    lines = [
        "## Secrets",
        "",
        "Create these under Settings → Secrets in the RunPod console. The template refers to",
        "them by name, so no token or password is stored in the template itself.",
        "",
        "| Secret | Variable | Without it |",
        "|---|---|---|",
    ]
    lines += [f"| `{secret}` | `{variable}` | {effect} |" for secret, variable, effect in rows]
    lines += [
        "",
        "A missing secret is harmless: RunPod passes the reference (for example",
        f"`{secret_reference(names.hf_token)}`) through unchanged, and Ignition treats a value",
        "that still reads `{{ ... }}` as unset. The file browser password also guards ComfyUI",
        "unless `COMFYUI_PASSWORD` is set.",
    ]
    return "\n".join(lines)


def _environment_section(inputs: TemplateInputs) -> str:
    meanings = {
        "CIVITAI_MODELS": "CivitAI model-version ids to download",
        "HUGGINGFACE_MODELS": "Hugging Face repos, files or catalog short names to download",
        "CIVITAI_TOKEN": "CivitAI API token",
        "HF_TOKEN": "Hugging Face token",
        "FILEBROWSER_PASSWORD": "file browser (and ComfyUI) password",
        "PERSISTENT_STORAGE": "`none`, or a folder on the volume that keeps models across stops",
        "COMFYUI_PORT": "ComfyUI's port",
        "FILEBROWSER_PORT": "the file browser's port",
        "ENABLE_MANAGER_UI": "show ComfyUI-Manager's UI (`true`/`false`)",
        "COMFY_FLAGS": "extra command-line flags for ComfyUI",
        "IGNITION_MANIFEST": "ignition.yaml naming models and workflows (with ignition.lock "
        "beside it: exactly the locked files)",
    }
    lines = ["## Environment", "", "| Variable | Value | Meaning |", "|---|---|---|"]
    for variable, value in environment(inputs).items():
        shown = f"`{value}`" if value else "(empty)"
        lines.append(f"| `{variable}` | {shown} | {meanings[variable]} |")
    return "\n".join(lines)


def _storage_section(inputs: TemplateInputs) -> str:
    return "\n".join(
        [
            "## Storage",
            "",
            f"- Volume: {inputs.volume_gb} GB at `{VOLUME_PATH}`, where ComfyUI keeps its",
            "  models, custom nodes, inputs and outputs. Everything outside it is wiped when the",
            "  pod stops.",
            "- **A stop (RunPod's Stop button, `ignition stop`) also deletes your outputs, inputs,",
            f"  ComfyUI user data and downloaded models inside `{VOLUME_PATH}`** (the nuke), once",
            "  ComfyUI had started. `NUKE_ON_STOP=false` keeps all of it; `PERSISTENT_STORAGE`",
            f"  (a folder on the volume, e.g. `{VOLUME_PATH}/persistent_models`) keeps the models,",
            "  which are then never deleted. Download your outputs before you stop.",
            f"- Container disk: {inputs.container_disk_gb} GB.",
        ]
    )


def _operations_section() -> str:
    return "\n".join(
        [
            "## Running it",
            "",
            "- Startup log: `tail -f /tmp/ignition_startup.log`",
            "- Download progress and services: `ignition status`",
            "- Restart ComfyUI, keeping models: `ignition restart`",
            "- Stop the pod and delete all user data and models: `ignition stop`",
        ]
    )
