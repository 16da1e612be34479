"""What a prompt produced, as the job's output: worker-comfyui's `images`, plus `files`.

ComfyUI's history lists each output node's UI output by kind: `images` (SaveImage; also
SaveVideo and animated WEBP/PNG, flagged `animated`), `gifs` and `videos` (custom nodes),
`audio`, `3d`, `text` …, each file as {filename, subfolder, type}. worker-comfyui returns only
`images` and drops the rest (its issue #232); here:

- `images`: image files under `images` — [{filename, type: "base64"|"s3_url", data}];
- `files`: every other file (video, audio, animated image, 3D, anything) with its media type,
  and every text output — [{filename, media_type, type: "base64"|"s3_url"|"text", data, node}].

Temp files (previews) are not outputs, as in worker-comfyui.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from typing import Any

from ignition.serverless.comfy_api import ComfyApi
from ignition.serverless.uploads import S3Uploader

# Types Python's table may lack; a file nobody knows is application/octet-stream.
_MEDIA_TYPES = {
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".obj": "model/obj",
    ".flac": "audio/flac",
    ".webm": "video/webm",
    ".webp": "image/webp",
    ".safetensors": "application/octet-stream",
}


@dataclass(frozen=True)
class ProducedFile:
    node: str
    key: str  # the UI output's kind: images, gifs, audio, 3d …
    filename: str
    subfolder: str
    kind: str  # output | temp | input
    animated: bool = False

    @property
    def media_type(self) -> str:
        return media_type(self.filename)


@dataclass(frozen=True)
class ProducedText:
    node: str
    text: str


def media_type(filename: str) -> str:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return (
        _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )


def produced(history: dict[str, Any]) -> tuple[list[ProducedFile], list[ProducedText]]:
    """Every file and text the history's output nodes list, in node order."""
    files: list[ProducedFile] = []
    texts: list[ProducedText] = []
    outputs = history.get("outputs")
    for node_id, ui in (outputs if isinstance(outputs, dict) else {}).items():
        if not isinstance(ui, dict):
            continue
        animated = any(bool(flag) for flag in ui.get("animated") or [])
        for key, items in ui.items():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    files.append(
                        ProducedFile(
                            node=str(node_id),
                            key=key,
                            filename=item["filename"],
                            subfolder=str(item.get("subfolder") or ""),
                            kind=str(item.get("type") or "output"),
                            animated=animated,
                        )
                    )
                elif isinstance(item, str) and key == "text":
                    texts.append(ProducedText(str(node_id), item))
    return files, texts


def is_image(file: ProducedFile) -> bool:
    """What worker-comfyui clients read from `images`: still images of an `images` output."""
    return file.key == "images" and file.media_type.startswith("image/") and not file.animated


async def job_output(
    api: ComfyApi,
    files: list[ProducedFile],
    texts: list[ProducedText],
    *,
    job_id: str,
    uploader: S3Uploader | None,
) -> dict[str, Any]:
    """The job's `output`: `images` and `files` (worker-comfyui's `success_no_images` when
    nothing at all came out)."""
    images: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for file in files:
        if file.kind == "temp":
            continue
        data = await api.view(file.filename, file.subfolder, file.kind)
        if uploader is not None:
            url = await uploader.upload(job_id, file.filename, data, file.media_type)
            entry = {"filename": file.filename, "type": "s3_url", "data": url}
        else:
            encoded = base64.b64encode(data).decode("ascii")
            entry = {"filename": file.filename, "type": "base64", "data": encoded}
        if is_image(file):
            images.append(entry)
        else:
            others.append({**entry, "media_type": file.media_type, "node": file.node})
    for text in texts:
        others.append(
            {
                "filename": None,
                "media_type": "text/plain",
                "type": "text",
                "data": text.text,
                "node": text.node,
            }
        )
    if not images and not others:
        return {"status": "success_no_images", "images": []}
    output: dict[str, Any] = {"images": images}
    if others:
        output["files"] = others
    return output
