"""Stand-in node classes: the default text-to-image graph's nodes (fake maths, real files) and a
few that produce the other kinds of output ComfyUI can (video, audio, 3D, text) or crash it.

A node is a `Node`: its input spec (ComfyUI's /object_info shape), its return types, whether it
is an output node, and `run(ctx, inputs) -> (outputs, ui)`. Values passed between nodes are
small Python objects; IMAGE is PNG bytes, so whatever is saved is a real image.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")


@dataclass
class Context:
    """What a running node may use: the data folders, progress reporting, interruption."""

    base: Path
    model_roots: Callable[[str], list[Path]]
    progress: Callable[[int, int], Awaitable[None]]
    interrupted: Callable[[], bool]


class Interrupted(Exception):
    """POST /interrupt arrived while a node ran."""


Spec = list[Any]
Run = Callable[[Context, dict[str, Any]], Awaitable[tuple[tuple[Any, ...], dict[str, Any] | None]]]


@dataclass
class Node:
    required: Callable[[Context], dict[str, Spec]]
    returns: tuple[str, ...]
    run: Run
    output_node: bool = False


def png(width: int, height: int, seed: str) -> bytes:
    """A valid RGB PNG (at most 16x16) whose colour comes from `seed`."""
    width, height = max(1, min(width, 16)), max(1, min(height, 16))
    rgb = hashlib.sha256(seed.encode()).digest()[:3]
    raw = b"".join(b"\x00" + rgb * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def models_in(ctx: Context, folder: str) -> list[str]:
    roots = [root for root in ctx.model_roots(folder) if root.is_dir()]
    return sorted({p.name for r in roots for p in r.iterdir() if p.suffix in WEIGHTS})


def input_files(ctx: Context) -> list[str]:
    folder = ctx.base / "input"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def save_path(ctx: Context, kind: str, prefix: str, extension: str) -> tuple[Path, str, str]:
    """ComfyUI's naming: `<prefix>_<counter:05>_.<ext>`; a `/` in the prefix is a subfolder."""
    subfolder, _, name = prefix.rpartition("/")
    folder = ctx.base / kind / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    taken = re.compile(rf"^{re.escape(name)}_(\d{{5}})_")
    counters = [int(m.group(1)) for p in folder.iterdir() if (m := taken.match(p.name))]
    filename = f"{name}_{max(counters, default=0) + 1:05}_.{extension}"
    return folder / filename, filename, subfolder


def _saver(kind: str, ui_key: str, extension: str, *, animated: bool = False) -> Run:
    async def run(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        data = inputs.get("images") or f"{ui_key}:{inputs.get('filename_prefix')}".encode()
        path, filename, subfolder = save_path(
            ctx, kind, str(inputs.get("filename_prefix", "ComfyUI")), extension
        )
        path.write_bytes(data if isinstance(data, bytes) else str(data).encode())
        ui: dict[str, Any] = {
            ui_key: [{"filename": filename, "subfolder": subfolder, "type": kind}]
        }
        if animated:
            ui["animated"] = [True]
        return (), ui

    return run


async def _checkpoint(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    name = inputs["ckpt_name"]
    return (f"model:{name}", f"clip:{name}", f"vae:{name}"), None


async def _encode(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    return (f"cond:{inputs['text']}",), None


async def _latent(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    return ({"w": inputs["width"], "h": inputs["height"], "seed": ""},), None


async def _sample(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    steps = int(inputs["steps"])
    # STANDIN_STEP_S slows each step down, for timeouts and for watching progress.
    step_s = float(os.environ.get("STANDIN_STEP_S", "0"))
    for step in range(1, steps + 1):
        if ctx.interrupted():
            raise Interrupted
        await asyncio.sleep(step_s)
        await ctx.progress(step, steps)
    latent = dict(inputs["latent_image"])
    latent["seed"] = f"{inputs['seed']}|{inputs['positive']}|{inputs['model']}"
    return (latent,), None


async def _decode(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    latent = inputs["samples"]
    return (png(latent["w"], latent["h"], latent["seed"]),), None


async def _empty_image(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    return (png(inputs["width"], inputs["height"], f"color {inputs['color']}"),), None


async def _load_image(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    data = (ctx.base / "input" / inputs["image"]).read_bytes()
    return (data, b"mask"), None


async def _show_text(
    ctx: Context, inputs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), {"text": [inputs["text"]]}


async def _crash(ctx: Context, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], None]:
    print("standin: StandinCrash node executed; exiting as a crashed ComfyUI would", flush=True)
    os._exit(3)


def _int(default: int, **extra: Any) -> Spec:
    return ["INT", {"default": default, "min": 0, "max": 2**32, **extra}]


def _string(default: str = "") -> Spec:
    return ["STRING", {"default": default}]


NODES: dict[str, Node] = {
    "CheckpointLoaderSimple": Node(
        lambda ctx: {"ckpt_name": [models_in(ctx, "checkpoints")]},
        ("MODEL", "CLIP", "VAE"),
        _checkpoint,
    ),
    "CLIPTextEncode": Node(
        lambda ctx: {"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]},
        ("CONDITIONING",),
        _encode,
    ),
    "EmptyLatentImage": Node(
        lambda ctx: {"width": _int(512), "height": _int(512), "batch_size": _int(1)},
        ("LATENT",),
        _latent,
    ),
    "KSampler": Node(
        lambda ctx: {
            "model": ["MODEL"],
            "seed": _int(0, control_after_generate=True),
            "steps": _int(20),
            "cfg": ["FLOAT", {"default": 8.0}],
            "sampler_name": [["euler", "euler_ancestral", "dpmpp_2m"]],
            "scheduler": [["normal", "karras", "simple"]],
            "positive": ["CONDITIONING"],
            "negative": ["CONDITIONING"],
            "latent_image": ["LATENT"],
            "denoise": ["FLOAT", {"default": 1.0}],
        },
        ("LATENT",),
        _sample,
    ),
    "VAEDecode": Node(lambda ctx: {"samples": ["LATENT"], "vae": ["VAE"]}, ("IMAGE",), _decode),
    "EmptyImage": Node(
        lambda ctx: {
            "width": _int(512),
            "height": _int(512),
            "batch_size": _int(1),
            "color": _int(0, display="color"),
        },
        ("IMAGE",),
        _empty_image,
    ),
    "LoadImage": Node(
        lambda ctx: {"image": [input_files(ctx), {"image_upload": True}]},
        ("IMAGE", "MASK"),
        _load_image,
    ),
    "SaveImage": Node(
        lambda ctx: {"images": ["IMAGE"], "filename_prefix": _string("ComfyUI")},
        (),
        _saver("output", "images", "png"),
        output_node=True,
    ),
    "PreviewImage": Node(
        lambda ctx: {"images": ["IMAGE"]},
        (),
        _saver("temp", "images", "png"),
        output_node=True,
    ),
    "StandinSaveVideo": Node(
        lambda ctx: {"images": ["IMAGE"], "filename_prefix": _string("video/ComfyUI")},
        (),
        _saver("output", "images", "mp4", animated=True),
        output_node=True,
    ),
    "StandinSaveAudio": Node(
        lambda ctx: {"filename_prefix": _string("audio/ComfyUI")},
        (),
        _saver("output", "audio", "flac"),
        output_node=True,
    ),
    "StandinSave3D": Node(
        lambda ctx: {"filename_prefix": _string("3d/ComfyUI")},
        (),
        _saver("output", "3d", "glb"),
        output_node=True,
    ),
    "StandinShowText": Node(lambda ctx: {"text": _string()}, (), _show_text, output_node=True),
    "StandinCrash": Node(lambda ctx: {"images": ["IMAGE"]}, (), _crash, output_node=True),
}
