"""ComfyUI's model-folder vocabulary, shared below the stages: folder names and legacy aliases,
weight extensions, CivitAI types → folders, safe file names."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ignition.errors import PlaceError, SpecError, UnsupportedModelError

# ComfyUI's own model folders (folder_paths.py) plus the common custom-node ones.
COMFYUI_FOLDERS = frozenset(
    {
        "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
        "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
        "gligen", "upscale_models", "hypernetworks", "photomaker", "classifiers",
        "model_patches", "audio_encoders", "animatediff_models", "ultralytics",
        "ultralytics/bbox", "ultralytics/segm", "ipadapter", "sams", "insightface",
        "latent_upscale_models",
        # newer core and template folders seen in ComfyUI's official workflow templates
        "frame_interpolation", "geometry_estimation", "background_removal", "optical_flow",
        "detection",
    }
)  # fmt: skip

# Older names users still write; ComfyUI reads them too, but new files go to the current ones.
LEGACY_FOLDERS = {"unet": "diffusion_models", "clip": "text_encoders"}

# Files ComfyUI loads as weights (folder_paths.supported_pt_extensions, plus GGUF via nodes).
WEIGHT_EXTENSIONS = frozenset(
    {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".gguf"}
)

# CivitAI `model.type` → folder. Types absent here are not weights ComfyUI loads from a folder.
CIVITAI_MODEL_TYPES = {
    "Checkpoint": "checkpoints",
    "LORA": "loras",
    "LoCon": "loras",
    "DoRA": "loras",
    "TextualInversion": "embeddings",
    "VAE": "vae",
    "Controlnet": "controlnet",
    "Upscaler": "upscale_models",
    "Hypernetwork": "hypernetworks",
    "TextEncoder": "text_encoders",
    "CLIP": "text_encoders",
    "UNet": "diffusion_models",
    "CLIPVision": "clip_vision",
    "MotionModule": "animatediff_models",
    "Detection": "ultralytics/bbox",
}
# CivitAI `files[].type` values that name a more specific folder than the model's type (a VAE
# shipped inside a Checkpoint version). "Model", "Pruned Model" and "Other" defer to the type.
CIVITAI_FILE_TYPES = {
    "VAE": "vae",
    "Text Encoder": "text_encoders",
    "Vision Encoder": "clip_vision",
    "CLIPVision": "clip_vision",
    "UNet": "diffusion_models",
    "Diffusion Model": "diffusion_models",
    "ControlNet": "controlnet",
    "Upscaler": "upscale_models",
    "Negative": "embeddings",
    "Enhancement LoRA": "loras",
    "Config": "configs",
}
CIVITAI_NOT_WEIGHTS = frozenset(
    {"Workflows", "ComfyWorkflows", "Poses", "Wildcards", "AestheticGradient"}
)
CIVITAI_FILES_NOT_WEIGHTS = frozenset({"Archive", "Training Data", "Workflow"})

# Hugging Face files that no catalog entry, override or repo path places.
DEFAULT_FOLDER = "checkpoints"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FOLDER_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_MAX_NAME_BYTES = 255


def normalise_folder(folder: str) -> str:
    """A user's or catalog's folder → the folder to write (legacy names mapped, no escapes)."""
    folder = folder.strip().strip("/")
    folder = LEGACY_FOLDERS.get(folder, folder)
    if not folder or not all(_FOLDER_PART.match(part) for part in folder.split("/")):
        raise SpecError(
            f"folder {folder!r} is not a model folder name",
            hint="use a ComfyUI folder such as checkpoints, loras, vae or text_encoders",
        )
    return folder


def civitai_folder(model_type: str, file_type: str, filename: str) -> str:
    """Folder for a CivitAI file from its model type and file type (the file type wins)."""
    if model_type in CIVITAI_NOT_WEIGHTS or file_type in CIVITAI_FILES_NOT_WEIGHTS:
        raise UnsupportedModelError(
            f"CivitAI {model_type} ({file_type or 'file'} {filename!r}) is not model weights",
            hint="Ignition only installs model files; download this one by hand",
        )
    if file_type in CIVITAI_FILE_TYPES:
        return CIVITAI_FILE_TYPES[file_type]
    if model_type in CIVITAI_MODEL_TYPES:
        return CIVITAI_MODEL_TYPES[model_type]
    if PurePosixPath(filename).suffix.lower() not in WEIGHT_EXTENSIONS:
        raise UnsupportedModelError(
            f"CivitAI {model_type} file {filename!r} is not model weights",
            hint="Ignition only installs model files; download this one by hand",
        )
    raise UnsupportedModelError(
        f"CivitAI type {model_type!r} has no standard ComfyUI folder ({filename!r})",
        hint="add the folder to the entry, e.g. 123456:checkpoints",
    )


def huggingface_folder(path: str) -> str | None:
    """The folder a repo path names (`split_files/text_encoders/x` → text_encoders), if any."""
    directories = PurePosixPath(path).parts[:-1]
    for index in range(len(directories) - 1, -1, -1):
        for length in (2, 1):  # two-level folders first: ultralytics/bbox
            candidate = "/".join(directories[index : index + length])
            if candidate in COMFYUI_FOLDERS:
                return candidate
            if candidate in LEGACY_FOLDERS:
                return LEGACY_FOLDERS[candidate]
    return None


def sanitise_filename(name: str) -> str:
    """A server-provided name → a safe basename: no separators, `..`, control characters,
    leading dots (hidden files ComfyUI would skip) or more than 255 bytes."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _CONTROL.sub("", base).strip().lstrip(".")
    while len(base.encode()) > _MAX_NAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        base = f"{stem[:-1]}{dot}{suffix}" if dot and stem else base[:-1]
    if not base:
        raise PlaceError(
            f"the server named the file {name!r}, which is not a usable file name",
            hint="report the model to its publisher; nothing was written",
        )
    return base
