"""Where files go: CivitAI types, HF paths, legacy names, safe file names."""

import pytest

from ignition.catalog import load_catalog
from ignition.comfyui_folders import (
    civitai_folder,
    huggingface_folder,
    normalise_folder,
    sanitise_filename,
)
from ignition.errors import PlaceError, SpecError, UnsupportedModelError

MODEL_TYPE_ROWS = [
    ("Checkpoint", "checkpoints"),
    ("LORA", "loras"),
    ("LoCon", "loras"),
    ("DoRA", "loras"),
    ("TextualInversion", "embeddings"),
    ("VAE", "vae"),
    ("Controlnet", "controlnet"),
    ("Upscaler", "upscale_models"),
    ("Hypernetwork", "hypernetworks"),
    ("TextEncoder", "text_encoders"),
    ("CLIP", "text_encoders"),
    ("UNet", "diffusion_models"),
    ("CLIPVision", "clip_vision"),
    ("MotionModule", "animatediff_models"),
    ("Detection", "ultralytics/bbox"),
]


@pytest.mark.parametrize(("model_type", "folder"), MODEL_TYPE_ROWS)
def test_every_civitai_model_type_has_its_folder(model_type: str, folder: str) -> None:
    assert civitai_folder(model_type, "Model", "x.safetensors") == folder


@pytest.mark.parametrize(
    ("file_type", "folder"),
    [
        ("VAE", "vae"),
        ("Text Encoder", "text_encoders"),
        ("UNet", "diffusion_models"),
        ("Diffusion Model", "diffusion_models"),
        ("Vision Encoder", "clip_vision"),
        ("Pruned Model", "checkpoints"),
        ("Other", "checkpoints"),
    ],
)
def test_a_more_specific_file_type_wins(file_type: str, folder: str) -> None:
    assert civitai_folder("Checkpoint", file_type, "x.safetensors") == folder


@pytest.mark.parametrize(
    ("model_type", "file_type", "name"),
    [
        ("Workflows", "Model", "flow.zip"),
        ("Poses", "Model", "poses.zip"),
        ("Wildcards", "Model", "cards.txt"),
        ("Other", "Model", "readme.txt"),
        ("Other", "Model", "weights.safetensors"),  # weights, but no folder to guess
        ("Checkpoint", "Training Data", "data.zip"),
        ("LORA", "Archive", "pack.zip"),
    ],
)
def test_non_weights_get_a_clear_error(model_type: str, file_type: str, name: str) -> None:
    with pytest.raises(UnsupportedModelError) as caught:
        civitai_folder(model_type, file_type, name)
    assert caught.value.hint


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        ("split_files/text_encoders/x.safetensors", "text_encoders"),
        ("split_files/diffusion_models/x.safetensors", "diffusion_models"),
        ("text_encoders/clip_g.safetensors", "text_encoders"),
        ("models/unet/x.safetensors", "diffusion_models"),
        ("a/clip/x.safetensors", "text_encoders"),
        ("ultralytics/bbox/face.pt", "ultralytics/bbox"),
        ("x.safetensors", None),
        ("weird/dir/x.safetensors", None),
    ],
)
def test_hf_folder_from_repo_path(path: str, folder: str | None) -> None:
    assert huggingface_folder(path) == folder


@pytest.mark.parametrize(
    ("given", "expected"),
    [("unet", "diffusion_models"), ("clip", "text_encoders"), ("loras/", "loras"),
     ("ultralytics/bbox", "ultralytics/bbox"), ("my_custom", "my_custom")],
)  # fmt: skip
def test_folder_names_normalised(given: str, expected: str) -> None:
    assert normalise_folder(given) == expected


@pytest.mark.parametrize("bad", ["..", "../etc", "a/../b", ".hidden", "", "a b"])
def test_folder_names_cannot_escape(bad: str) -> None:
    with pytest.raises(SpecError):
        normalise_folder(bad)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("model.safetensors", "model.safetensors"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.safetensors", "win.safetensors"),
        ("bell\x07\x00null.safetensors", "bellnull.safetensors"),
        (".hidden.safetensors", "hidden.safetensors"),
        ("/abs/path.ckpt", "path.ckpt"),
        ("x" * 300 + ".safetensors", "x" * 243 + ".safetensors"),
    ],
)
def test_filenames_are_sanitised(name: str, safe: str) -> None:
    assert sanitise_filename(name) == safe


@pytest.mark.parametrize("name", ["..", ".", "a/..", "\x07", "/"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(PlaceError):
        sanitise_filename(name)


def test_catalog_folders_are_valid() -> None:
    for entry in load_catalog().values():
        assert normalise_folder(entry.folder) == entry.folder
