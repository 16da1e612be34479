"""Read a ComfyUI workflow and list every model file its nodes need.

Two formats exist. The UI format (what "Save" writes and what the official templates ship) has
`nodes[]`, and since the 2025 frontend each loader node may carry
`properties.models: [{name, url, directory}]`; subgraphs keep their inner nodes under
`definitions.subgraphs[].nodes[]`. The API format ("Save (API)") is a mapping of node id to
`{class_type, inputs}` and never carries URLs.

Loader widgets name files without saying where to get them; those are reported with no source so
the caller can match them against the catalog or list them as missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ignition import bounded_json
from ignition._http import redact_url
from ignition.catalog import load_catalog
from ignition.comfyui_folders import COMFYUI_FOLDERS, normalise_folder
from ignition.errors import MissingSourceError, SpecError
from ignition.model_hosts import CIVITAI_HOSTS, HF_HOSTS
from ignition.records import ModelRef
from ignition.spec.civitai import parse_civitai_entry
from ignition.spec.huggingface import parse_huggingface_entry

# Core loader nodes: the widgets (in widget order, which is also their API input name order)
# that name a model file, and the folder ComfyUI looks the file up in.
_LOADER_WIDGETS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "CheckpointLoaderSimple": (("ckpt_name", "checkpoints"),),
    "CheckpointLoader": (("config_name", "configs"), ("ckpt_name", "checkpoints")),
    "ImageOnlyCheckpointLoader": (("ckpt_name", "checkpoints"),),
    "unCLIPCheckpointLoader": (("ckpt_name", "checkpoints"),),
    "VAELoader": (("vae_name", "vae"),),
    "LoraLoader": (("lora_name", "loras"),),
    "LoraLoaderModelOnly": (("lora_name", "loras"),),
    "UNETLoader": (("unet_name", "diffusion_models"),),
    "CLIPLoader": (("clip_name", "text_encoders"),),
    "DualCLIPLoader": (("clip_name1", "text_encoders"), ("clip_name2", "text_encoders")),
    "TripleCLIPLoader": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
    ),
    "QuadrupleCLIPLoader": (
        ("clip_name1", "text_encoders"),
        ("clip_name2", "text_encoders"),
        ("clip_name3", "text_encoders"),
        ("clip_name4", "text_encoders"),
    ),
    "CLIPVisionLoader": (("clip_name", "clip_vision"),),
    "ControlNetLoader": (("control_net_name", "controlnet"),),
    "DiffControlNetLoader": (("control_net_name", "controlnet"),),
    "StyleModelLoader": (("style_model_name", "style_models"),),
    "UpscaleModelLoader": (("model_name", "upscale_models"),),
    "LatentUpscaleModelLoader": (("model_name", "latent_upscale_models"),),
    "HypernetworkLoader": (("hypernetwork_name", "hypernetworks"),),
    "GLIGENLoader": (("gligen_name", "gligen"),),
    "PhotoMakerLoader": (("photomaker_model_name", "photomaker"),),
    "ModelPatchLoader": (("name", "model_patches"),),
    "AudioEncoderLoader": (("audio_encoder_name", "audio_encoders"),),
}


@dataclass(frozen=True)
class WorkflowModel:
    """One model file a workflow needs."""

    name: str  # the filename the loader node will look for (may contain a sub-folder)
    directory: str  # the ComfyUI folder it must be in
    url: str | None  # where to get it, when the workflow says
    node: str  # node type that needs it, for messages


def read_workflow(text: str | bytes, *, origin: str) -> list[WorkflowModel]:
    """Every model the workflow in `text` needs, deduplicated, URL-carrying entries first.

    `origin` (a path or URL) names the workflow in error messages. A workflow is anyone's file:
    one too large or too deeply nested is refused like one that is not JSON.
    """
    document = parse_workflow(text, origin=origin)
    if "nodes" in document:
        found = list(_from_ui_format(document, origin))
    else:
        found = list(_from_api_format(document))
    return _dedupe(found)


def parse_workflow(text: str | bytes, *, origin: str) -> dict[str, Any]:
    """The workflow document in `text`, UI format (`nodes`) or API format (`class_type`
    entries); SpecError when it is neither."""
    try:
        shown = redact_url(origin) if "://" in origin else origin
        document = bounded_json.loads(text, what=f"workflow {shown}")
    except bounded_json.UntrustedJsonError as error:
        raise SpecError(
            str(error), hint="export the workflow again from ComfyUI (Workflow → Export)"
        ) from None
    if not isinstance(document, dict):
        raise SpecError(
            f"workflow {origin} is not a ComfyUI workflow (top level is not an object)",
            hint="pass a workflow saved from ComfyUI (UI or API format)",
        )
    if "nodes" in document:
        if not isinstance(document["nodes"], list):
            raise SpecError(f"workflow {origin}: `nodes` is not a list")
        return document
    if document and all(_is_api_node(node) for node in document.values()):
        return document
    raise SpecError(
        f"workflow {origin} has neither `nodes` (UI format) nor `class_type` entries (API format)",
        hint="pass a workflow saved from ComfyUI (UI or API format)",
    )


def ui_nodes(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a UI-format document: the top level and every subgraph definition's
    inner nodes (`definitions.subgraphs[].nodes[]`, definitions nested in them included)."""
    pending: list[Mapping[str, Any]] = [document]
    while pending:
        graph = pending.pop()
        for node in graph.get("nodes") or []:
            if isinstance(node, dict):
                yield node
        definitions = graph.get("definitions")
        if isinstance(definitions, dict):
            subgraphs = definitions.get("subgraphs")
            for subgraph in subgraphs if isinstance(subgraphs, list) else []:
                if isinstance(subgraph, dict) and isinstance(subgraph.get("nodes"), list):
                    pending.append(subgraph)


def _from_ui_format(document: Mapping[str, Any], origin: str) -> Iterator[WorkflowModel]:
    for node in ui_nodes(document):
        node_type = str(node.get("type", "?"))
        properties = node.get("properties")
        declared = properties.get("models") if isinstance(properties, dict) else None
        for entry in declared if isinstance(declared, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                url = entry.get("url")
                directory = entry.get("directory")
                yield WorkflowModel(
                    name=entry["name"],
                    directory=directory if isinstance(directory, str) else "",
                    url=url if isinstance(url, str) and url else None,
                    node=node_type,
                )
        widgets = node.get("widgets_values")
        if isinstance(widgets, list):
            # Loaders have more widgets than file names (strengths, dtypes): zip stops early.
            file_widgets = _LOADER_WIDGETS.get(node_type, ())
            for (_input, folder), value in zip(file_widgets, widgets, strict=False):
                if isinstance(value, str) and value:
                    yield WorkflowModel(name=value, directory=folder, url=None, node=node_type)


def _is_api_node(node: object) -> bool:
    return isinstance(node, dict) and isinstance(node.get("class_type"), str)


def _from_api_format(document: Mapping[str, Any]) -> Iterator[WorkflowModel]:
    for node in document.values():
        node_type = node["class_type"]
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for input_name, folder in _LOADER_WIDGETS.get(node_type, ()):
            value = inputs.get(input_name)
            if isinstance(value, str) and value:
                yield WorkflowModel(name=value, directory=folder, url=None, node=node_type)


def _dedupe(models: Iterable[WorkflowModel]) -> list[WorkflowModel]:
    """One entry per (folder, name); an entry with a URL beats a bare widget value."""
    chosen: dict[tuple[str, str], WorkflowModel] = {}
    for model in models:
        key = (model.directory, model.name)
        if key not in chosen or (chosen[key].url is None and model.url is not None):
            chosen[key] = model
    return sorted(chosen.values(), key=lambda m: (m.url is None, m.directory, m.name))


@dataclass(frozen=True)
class WorkflowNeed:
    """A workflow's model turned into something the pipeline can act on.

    Exactly one of `ref` (fetch it through the resolvers) or `problem` (why it can't be
    fetched: unknown folder, unsupported URL, or no source known) is set.
    """

    model: WorkflowModel
    origin: str
    ref: ModelRef | None = None
    problem: SpecError | None = None


def workflow_needs(models: Iterable[WorkflowModel], *, origin: str) -> list[WorkflowNeed]:
    """Each model → a ref with the workflow's folder and filename, or the reason it has none.

    URL-carrying entries go through the same parsers as CIVITAI_MODELS / HUGGINGFACE_MODELS
    (so the same endpoint rewriting and token scoping apply); bare names are looked up in the
    catalog by file name.
    """
    return [_need(model, origin) for model in models]


def _need(model: WorkflowModel, origin: str) -> WorkflowNeed:
    try:
        _check_name(model, origin)
        folder = normalise_folder(model.directory)
        if folder not in COMFYUI_FOLDERS:
            raise SpecError(
                f"{origin}: {model.node} wants {model.name!r} in unknown folder {folder!r}",
                hint="fix the node's `directory`, or provision the file with an explicit "
                ":folder in HUGGINGFACE_MODELS",
            )
        if model.url is not None:
            ref = _ref_from_url(model, folder, origin)
        else:
            ref = _ref_from_catalog(model, folder, origin)
    except SpecError as error:
        return WorkflowNeed(model, origin, problem=error)
    return WorkflowNeed(model, origin, ref=ref)


def _check_name(model: WorkflowModel, origin: str) -> None:
    """A loader value names a file under its model folder; `/etc/shadow` or `../x` would make
    every later step (present? skipped?) answer questions about files outside the models."""
    path = PurePosixPath(model.name)
    if path.is_absolute() or ".." in path.parts or "\0" in model.name:
        raise SpecError(
            f"{origin}: {model.node} names an invalid model file {model.name!r} "
            "(an absolute path or one with '..')",
            hint="a loader names a file inside its models folder, like 'sdxl/model.safetensors'",
        )


def _ref_from_url(model: WorkflowModel, folder: str, origin: str) -> ModelRef:
    assert model.url is not None
    host = urlsplit(model.url).hostname or ""
    if host in HF_HOSTS:
        hf = parse_huggingface_entry(model.url, folder)
        return replace(hf, text=model.name, filename=model.name)
    if host in CIVITAI_HOSTS:
        civitai = parse_civitai_entry(model.url, folder)
        return replace(civitai, text=model.name, filename=model.name)
    raise SpecError(
        f"{origin}: {model.name!r} comes from {host or model.url!r}, which Ignition cannot "
        "verify (only Hugging Face and CivitAI state a checksum)",
        hint=f"download it yourself into models/{folder}/, or find it on Hugging Face",
    )


def _ref_from_catalog(model: WorkflowModel, folder: str, origin: str) -> ModelRef:
    basename = model.name.rsplit("/", 1)[-1]
    for entry in load_catalog().values():
        if entry.path.rsplit("/", 1)[-1] == basename:
            hf = parse_huggingface_entry(entry.name, folder)
            return replace(hf, text=model.name, filename=model.name)
    raise MissingSourceError(
        f"missing, no source known: {model.node} in {origin} needs {folder}/{model.name}",
        hint=f"add it to HUGGINGFACE_MODELS or CIVITAI_MODELS with ':{folder}', "
        f"or upload it to models/{folder}/",
    )


def split_sources(text: str) -> list[str]:
    """COMFYUI_WORKFLOWS: comma or newline separated paths or URLs."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
