"""A job's `input`, checked: worker-comfyui's fields and Ignition's additions.

workflow           required; API format (a JSON string is parsed first). A UI-format
                   workflow (`nodes` + `links`) is marked for conversion.
images             [{name, image}]: base64, a data URI, or an http(s) URL (Ignition)
models             Ignition: {"civitai": …, "huggingface": …} (a list or a comma-separated
                   string, the syntax of CIVITAI_MODELS / HUGGINGFACE_MODELS), or one list
                   whose CivitAI ids and links go to CivitAI and the rest to Hugging Face
comfy_org_api_key  worker-comfyui's: passed to ComfyUI as extra_data.api_key_comfy_org
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ignition import bounded_json
from ignition.errors import JobInputError

_CIVITAI_ENTRY = re.compile(r"^(\d+([@:].*)?|(https?://)?(www\.)?civitai\.(com|green)/.*)$", re.I)
# A name becomes a file in ComfyUI's input folder: no folders, no dot-files, nothing odd.
_IMAGE_NAME = re.compile(r"^[\w][\w.\- ()]{0,199}$")


@dataclass(frozen=True)
class InputImage:
    name: str
    source: str  # base64, data URI or URL


@dataclass(frozen=True)
class JobInput:
    workflow: dict[str, Any]
    ui_format: bool
    images: tuple[InputImage, ...] = ()
    civitai_models: str = ""
    huggingface_models: str = ""
    comfy_org_api_key: str | None = None

    @property
    def wants_models(self) -> bool:
        return bool(self.civitai_models or self.huggingface_models)


def parse_job_input(raw: object) -> JobInput:
    if not isinstance(raw, dict):
        raise JobInputError("the job's input must be a JSON object with a 'workflow'")
    workflow = _workflow(raw.get("workflow"))
    ui_format = isinstance(workflow.get("nodes"), list) and isinstance(workflow.get("links"), list)
    if not ui_format:
        _check_api_format(workflow)
    civitai, huggingface = _models(raw.get("models"))
    key = raw.get("comfy_org_api_key")
    return JobInput(
        workflow=workflow,
        ui_format=ui_format,
        images=_images(raw.get("images")),
        civitai_models=civitai,
        huggingface_models=huggingface,
        comfy_org_api_key=key if isinstance(key, str) and key else None,
    )


def _workflow(value: object) -> dict[str, Any]:
    if value is None:
        raise JobInputError("Missing 'workflow' parameter")
    if isinstance(value, str):
        try:
            value = bounded_json.loads(value, what="'workflow'")
        except bounded_json.UntrustedJsonError as error:
            reason = f"'workflow' is a string but not JSON (or too large or deep): {error}"
            raise JobInputError(reason) from None
    if not isinstance(value, dict) or not value:
        raise JobInputError("'workflow' must be a non-empty JSON object (API format)")
    return value


def _check_api_format(workflow: dict[str, Any]) -> None:
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise JobInputError(
                f"workflow node {node_id!r} has no class_type: this is not an API-format workflow",
                hint="in ComfyUI use Workflow → Export (API) and send that file as 'workflow'",
            )
        if not isinstance(node.get("inputs", {}), dict):
            raise JobInputError(f"workflow node {node_id!r}: 'inputs' must be an object")


def _images(value: object) -> tuple[InputImage, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise JobInputError("'images' must be a list of {name, image}")
    images: list[InputImage] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise JobInputError(f"images[{index}] must be an object with 'name' and 'image'")
        name, source = item.get("name"), item.get("image")
        if not isinstance(name, str) or not _IMAGE_NAME.match(name) or ".." in name:
            raise JobInputError(
                f"images[{index}].name {name!r} is not a plain file name",
                hint="use a name like input_image_1.png (letters, digits, . _ - and spaces)",
            )
        if not isinstance(source, str) or not source:
            raise JobInputError(f"images[{index}] ({name}) has no 'image' (base64, data URI, URL)")
        if name in {image.name for image in images}:
            raise JobInputError(f"images[{index}]: the name {name!r} is used twice")
        images.append(InputImage(name, source))
    return tuple(images)


def _models(value: object) -> tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"civitai", "huggingface"})
        if unknown:
            raise JobInputError(
                f"'models' has unknown keys {unknown}", hint="use 'civitai' and 'huggingface'"
            )
        return _entries(value.get("civitai"), "civitai"), _entries(
            value.get("huggingface"), "huggingface"
        )
    entries = _entries(value, "models").split(",") if value else []
    civitai = [e for e in entries if _CIVITAI_ENTRY.match(e.strip())]
    huggingface = [e for e in entries if not _CIVITAI_ENTRY.match(e.strip())]
    return ",".join(civitai), ",".join(huggingface)


def _entries(value: object, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        return ",".join(str(item) for item in value)
    raise JobInputError(f"'{what}' must be a list of model entries or a comma-separated string")
