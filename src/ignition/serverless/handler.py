"""One job, start to finish: input → models → images → prompt → outputs → clean-up.

1. Check the input (job_input); a UI-format workflow is converted with /object_info.
2. Wait until ComfyUI is up (a ComfyUI that cannot start fails the job with its last lines).
3. Provide the job's models (model_cache) and upload its input images.
4. Give every output node a per-job `filename_prefix` (`ignition-jobs/<job>/<prefix>`): ComfyUI
   caches node results, so an identical workflow sent again would skip its SaveImage and name
   the file the previous job's clean-up deleted. With the prefix changed only the output nodes
   run again; everything upstream (the sampling) is still served from ComfyUI's cache. The file
   names stay ComfyUI's (ComfyUI_00001_.png): the prefix is a folder.
5. Queue the prompt with the websocket already open, follow it (progress on every node start
   and sampler step), under IGNITION_JOB_TIMEOUT_S; on timeout or cancel the prompt is
   interrupted in ComfyUI.
6. Collect the outputs (outputs.py), then remove the job's files: its output folder, its temp
   files and its input images.

A failure comes back as `{"error", "details"}` (worker-comfyui's shape); the `error` text is
complete on its own, because runpod-python's local API keeps nothing else of a failed job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ignition._http import NETWORK_ERRORS, HttpClient, HttpError, describe_network_error
from ignition.errors import (
    ComfyUIDownError,
    JobError,
    JobTimeoutError,
    WorkflowFailedError,
)
from ignition.serverless.comfy_api import ComfyApi
from ignition.serverless.execution import Progress, PromptInterrupted, PromptRun, follow
from ignition.serverless.input_images import image_bytes
from ignition.serverless.job_input import JobInput, parse_job_input
from ignition.serverless.model_cache import ModelCache
from ignition.serverless.outputs import ProducedFile, job_output, produced
from ignition.serverless.ui_to_api import convert
from ignition.serverless.uploads import S3Uploader
from ignition.settings import Settings

log = logging.getLogger("ignition.serverless")

JOBS_FOLDER = "ignition-jobs"
_COMFYUI_UNREACHABLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, HttpError)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class ComfyUIState(Protocol):
    """The supervised ComfyUI, as jobs see it."""

    async def wait_up(self) -> None:
        """Return once ComfyUI answers; ComfyUIDownError when it cannot come up."""

    async def crash_report(self) -> str:
        """What to say when ComfyUI went away during a job (exit code, last lines)."""


@dataclass
class JobContext:
    settings: Settings
    api: ComfyApi
    client: HttpClient  # for input image URLs (public-only unless IGNITION_ALLOW_PRIVATE_URLS)
    comfyui: ComfyUIState
    models: ModelCache
    uploader: S3Uploader | None = None
    progress: Callable[[dict[str, Any], Progress], None] = lambda job, progress: None


@dataclass
class _Leftovers:
    """What a job left in ComfyUI's folders, removed once its output is built."""

    base: Path
    tag: str
    files: list[ProducedFile] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    def remove(self) -> None:
        shutil.rmtree(self.base / "output" / JOBS_FOLDER / self.tag, ignore_errors=True)
        for file in self.files:
            _unlink_inside(self.base / file.kind, Path(file.subfolder) / file.filename)
        for name in self.inputs:
            _unlink_inside(self.base / "input", Path(name))


async def handle(ctx: JobContext, job: dict[str, Any]) -> dict[str, Any]:
    """The job's result: its output, or `{"error", "details"}`."""
    job_id = str(job.get("id") or uuid.uuid4())
    leftovers = _Leftovers(ctx.settings.comfyui_base, _UNSAFE.sub("_", job_id)[:80])
    try:
        request = parse_job_input(job.get("input"))
        await ctx.comfyui.wait_up()
        try:
            async with asyncio.timeout(ctx.settings.job_timeout_s):
                return await _run(ctx, job, job_id, request, leftovers)
        except TimeoutError:
            raise JobTimeoutError(
                f"the job took longer than IGNITION_JOB_TIMEOUT_S={ctx.settings.job_timeout_s:g} "
                "s; its prompt was interrupted"
            ) from None
    except JobError as error:
        log.error("job %s failed: %s", job_id, error)
        return {"error": str(error), "details": error.details}
    finally:
        await asyncio.to_thread(leftovers.remove)


async def _run(
    ctx: JobContext, job: dict[str, Any], job_id: str, request: JobInput, leftovers: _Leftovers
) -> dict[str, Any]:
    try:
        workflow = request.workflow
        if request.ui_format:
            workflow = convert(workflow, await ctx.api.object_info())
        if request.wants_models:
            await ctx.models.provide(request.civitai_models, request.huggingface_models)
        for image in request.images:
            data = await image_bytes(ctx.client, image)
            leftovers.inputs.append(await ctx.api.upload_image(image.name, data))
        workflow = with_job_prefix(workflow, leftovers.tag)
        history = await _execute(ctx, job, workflow, request)
        files, texts = produced(history)
        leftovers.files.extend(files)
        return await job_output(ctx.api, files, texts, job_id=job_id, uploader=ctx.uploader)
    except ComfyUIDownError as error:
        raise ComfyUIDownError(f"{error.message}. {await ctx.comfyui.crash_report()}") from error
    except _COMFYUI_UNREACHABLE as error:
        said = str(error) if isinstance(error, HttpError) else describe_network_error(error)
        raise ComfyUIDownError(
            f"ComfyUI stopped answering during the job ({said}). {await ctx.comfyui.crash_report()}"
        ) from error


async def _execute(
    ctx: JobContext, job: dict[str, Any], workflow: dict[str, Any], request: JobInput
) -> dict[str, Any]:
    """Queue the prompt, follow it to the end; ComfyUI's history entry for it."""
    client_id = uuid.uuid4().hex
    key = request.comfy_org_api_key or _secret(ctx.settings)
    extra = {"api_key_comfy_org": key} if key else {}
    async with ctx.api.events(client_id) as socket:
        prompt_id = await ctx.api.queue_prompt(workflow, client_id, extra)
        run = PromptRun(prompt_id, workflow, report=lambda progress: ctx.progress(job, progress))
        try:
            await follow(socket, run)
        except asyncio.CancelledError:  # our timeout, or RunPod cancelling the job
            await _interrupt(ctx.api.interrupt, prompt_id)
            raise
        except PromptInterrupted:
            raise WorkflowFailedError(
                "ComfyUI interrupted the prompt (someone pressed cancel in ComfyUI?)"
            ) from None
    return await ctx.api.history(prompt_id)


async def _interrupt(interrupt: Callable[[str], Awaitable[None]], prompt_id: str) -> None:
    with contextlib.suppress(*_COMFYUI_UNREACHABLE):
        await interrupt(prompt_id)
    log.warning("prompt %s interrupted", prompt_id)


def with_job_prefix(workflow: dict[str, Any], tag: str) -> dict[str, Any]:
    """A copy where every `filename_prefix` lies under `ignition-jobs/<tag>/`."""
    changed: dict[str, Any] = {}
    for node_id, node in workflow.items():
        inputs = node.get("inputs") or {}
        prefix = inputs.get("filename_prefix")
        if isinstance(prefix, str):
            inputs = {**inputs, "filename_prefix": f"{JOBS_FOLDER}/{tag}/{prefix.lstrip('/')}"}
            node = {**node, "inputs": inputs}
        changed[node_id] = node
    return changed


def _secret(settings: Settings) -> str | None:
    key = settings.comfy_org_api_key
    return key.get_secret_value() if key is not None else None


def _unlink_inside(folder: Path, relative: Path) -> None:
    """Remove folder/relative, if that stays inside folder (names come from ComfyUI's answer)."""
    target = (folder / relative).resolve()
    if target.is_relative_to(folder.resolve()) and target.is_file():
        target.unlink(missing_ok=True)
