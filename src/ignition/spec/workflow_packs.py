"""The custom node packs a workflow needs, read from the workflow's own metadata.

UI format: since early 2025 ComfyUI-Manager's frontend stamps every node with the pack it came
from, `properties.cnr_id` (a registry id; `comfy-core` is ComfyUI itself) or `properties.aux_id`
(a GitHub `owner/repo`), plus `properties.ver` (a registry version or the commit of a nightly
install). Older workflows carry `extra.node_versions = {<pack>: <ver>}` instead. Nodes inside
subgraphs count like any other (see `ui_nodes`).

API format, and UI workflows without any metadata (hand-made, or saved before 2025), name only
classes: those are returned for the caller to map through the registry, as a guess. In a UI
workflow that does carry metadata, an unstamped node is taken to be ComfyUI's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ignition.errors import SpecError
from ignition.node_names import REGISTRY_ID
from ignition.records import NodeRef
from ignition.spec.nodes import parse_node_entry, registry_version
from ignition.spec.workflow import parse_workflow, ui_nodes

CORE_PACK = "comfy-core"
_AUX_ID = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# Frontend-only nodes (never in /object_info) and ComfyUI's most used core classes: never looked
# up. Any other class without metadata is asked of the registry, which maps core classes to
# nothing; such a class ends up "missing", named, and the user can ignore or fix it.
CORE_CLASSES = frozenset(
    [
        "Reroute",
        "Note",
        "MarkdownNote",
        "PrimitiveNode",
        "PrimitiveString",
        "PrimitiveInt",
        "PrimitiveFloat",
        "PrimitiveBoolean",
        "PrimitiveStringMultiline",
        "KSampler",
        "KSamplerAdvanced",
        "SamplerCustom",
        "SamplerCustomAdvanced",
        "CheckpointLoaderSimple",
        "CheckpointLoader",
        "CLIPTextEncode",
        "CLIPTextEncodeSDXL",
        "CLIPTextEncodeFlux",
        "CLIPSetLastLayer",
        "VAEDecode",
        "VAEEncode",
        "VAEDecodeTiled",
        "VAEEncodeTiled",
        "VAEEncodeForInpaint",
        "VAELoader",
        "EmptyLatentImage",
        "EmptySD3LatentImage",
        "EmptyHunyuanLatentVideo",
        "LatentUpscale",
        "LatentUpscaleBy",
        "LatentComposite",
        "LatentBlend",
        "LatentFromBatch",
        "RepeatLatentBatch",
        "SetLatentNoiseMask",
        "SaveImage",
        "PreviewImage",
        "LoadImage",
        "LoadImageMask",
        "ImageScale",
        "ImageScaleBy",
        "ImageInvert",
        "ImageBatch",
        "ImagePadForOutpaint",
        "ImageUpscaleWithModel",
        "UpscaleModelLoader",
        "ImageCrop",
        "LoraLoader",
        "LoraLoaderModelOnly",
        "UNETLoader",
        "CLIPLoader",
        "DualCLIPLoader",
        "TripleCLIPLoader",
        "QuadrupleCLIPLoader",
        "CLIPVisionLoader",
        "CLIPVisionEncode",
        "ControlNetLoader",
        "DiffControlNetLoader",
        "ControlNetApply",
        "ControlNetApplyAdvanced",
        "StyleModelLoader",
        "StyleModelApply",
        "unCLIPConditioning",
        "unCLIPCheckpointLoader",
        "ImageOnlyCheckpointLoader",
        "GLIGENLoader",
        "GLIGENTextBoxApply",
        "HypernetworkLoader",
        "ConditioningCombine",
        "ConditioningAverage",
        "ConditioningConcat",
        "ConditioningSetArea",
        "ConditioningSetMask",
        "ConditioningZeroOut",
        "ConditioningSetTimestepRange",
        "FluxGuidance",
        "BasicGuider",
        "CFGGuider",
        "BasicScheduler",
        "KSamplerSelect",
        "RandomNoise",
        "DisableNoise",
        "ModelSamplingDiscrete",
        "ModelSamplingSD3",
        "ModelSamplingFlux",
        "ModelSamplingAuraFlow",
        "SaveAnimatedWEBP",
        "SaveAnimatedPNG",
        "SaveVideo",
        "CreateVideo",
        "GetVideoComponents",
        "LoadVideo",
        "SaveWEBM",
        "InvertMask",
        "SolidMask",
        "MaskToImage",
        "ImageToMask",
        "GrowMask",
        "FeatherMask",
        "CropMask",
        "ThresholdMask",
        "PhotoMakerLoader",
        "ModelPatchLoader",
        "AudioEncoderLoader",
        "LatentUpscaleModelLoader",
        "SaveAudio",
        "LoadAudio",
        "PreviewAudio",
        "EmptyLatentAudio",
        "VAEDecodeAudio",
        "VAEEncodeAudio",
    ]
)


@dataclass
class WorkflowPacks:
    """What a workflow's nodes need beyond ComfyUI itself."""

    refs: list[NodeRef] = field(default_factory=list)  # named by the workflow's metadata
    classes: list[str] = field(default_factory=list)  # no metadata: map through the registry


def read_workflow_packs(text: str | bytes, *, origin: str, github_endpoint: str) -> WorkflowPacks:
    """The packs the workflow in `text` names, one ref per pack, plus classes naming none.

    The first node naming a pack with a version decides the version: a workflow saved from one
    ComfyUI has one version per pack anyway.
    """
    document = parse_workflow(text, origin=origin)
    found = WorkflowPacks()
    chosen: dict[tuple[str, str], NodeRef] = {}
    classes: dict[str, None] = {}
    if "nodes" in document:
        subgraph_ids = _subgraph_ids(document)
        unmarked: dict[str, None] = {}
        stamped = False  # saved by a frontend that writes pack metadata
        for node in ui_nodes(document):
            node_type = str(node.get("type", ""))
            properties = node.get("properties")
            if isinstance(properties, Mapping) and properties.get("cnr_id") == CORE_PACK:
                stamped = True
                continue  # ComfyUI itself
            ref = _ref_from_properties(properties, origin, github_endpoint)
            if ref is not None:
                stamped = True
                _choose(chosen, ref)
            elif not _is_core_or_subgraph(node, node_type, subgraph_ids):
                unmarked[node_type] = None
        # A frontend that stamps packs stamps every custom node it knows; a node it left
        # unstamped in such a workflow is ComfyUI's own (new core nodes, official templates).
        # Only a workflow with no metadata at all has its classes guessed.
        extra = document.get("extra")
        legacy = isinstance(extra, Mapping) and bool(extra.get("node_versions"))
        if not stamped and not legacy:
            classes.update(unmarked)
        for ref in _legacy_node_versions(document.get("extra"), origin):
            if ref.key not in chosen:
                chosen[ref.key] = ref
    else:
        for node in document.values():
            if node["class_type"] not in CORE_CLASSES:
                classes[node["class_type"]] = None
    found.refs = list(chosen.values())
    found.classes = list(classes)
    return found


def _choose(chosen: dict[tuple[str, str], NodeRef], ref: NodeRef) -> None:
    first = chosen.get(ref.key)
    if first is None or (first.version is None and ref.version is not None):
        chosen[ref.key] = ref


def _ref_from_properties(properties: object, origin: str, github_endpoint: str) -> NodeRef | None:
    if not isinstance(properties, Mapping):
        return None
    cnr_id = properties.get("cnr_id")
    aux_id = properties.get("aux_id")
    version = _version(properties.get("ver"))
    if isinstance(cnr_id, str) and REGISTRY_ID.match(cnr_id):
        return NodeRef(
            f"{cnr_id}@{version}" if version else cnr_id,
            "registry",
            cnr_id.lower(),
            version,
            origin=origin,
        )
    if isinstance(aux_id, str) and _AUX_ID.match(aux_id):
        entry = f"{aux_id}@{version}" if version else aux_id
        try:  # the same checks as a COMFYUI_NODES entry: the repo name becomes a folder
            return parse_node_entry(entry, github_endpoint=github_endpoint, origin=origin)
        except SpecError:
            return None
    return None


def _version(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return registry_version(value, value)
    except SpecError:
        return None  # a version the frontend would not have written: take the latest


def _legacy_node_versions(extra: object, origin: str) -> Iterable[NodeRef]:
    """`extra.node_versions` of workflows saved before per-node metadata (early 2025)."""
    versions = extra.get("node_versions") if isinstance(extra, Mapping) else None
    if not isinstance(versions, Mapping):
        return
    for name, ver in versions.items():
        if not isinstance(name, str) or name == CORE_PACK or not REGISTRY_ID.match(name):
            continue
        version = _version(ver)
        text = f"{name}@{version}" if version else name
        yield NodeRef(text, "registry", name.lower(), version, origin=origin)


def _subgraph_ids(document: Mapping[str, Any]) -> set[str]:
    definitions = document.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
    if not isinstance(subgraphs, list):
        return set()
    return {str(subgraph.get("id")) for subgraph in subgraphs if isinstance(subgraph, Mapping)}


def _is_core_or_subgraph(node: Mapping[str, Any], node_type: str, subgraph_ids: set[str]) -> bool:
    return (
        not node_type
        or node_type in CORE_CLASSES
        or node_type in subgraph_ids
        or bool(_UUID.match(node_type))
    )
