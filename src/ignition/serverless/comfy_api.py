"""ComfyUI's HTTP API as the worker uses it, through the one HttpClient: one method per call.

ComfyUI answers a workflow it refuses with 400 and
`{"error": {type, message, details, extra_info}, "node_errors": {id: {errors, class_type}}}`;
`rejection` turns that into one message naming each node id, class and input, because
runpod-python keeps only the `error` text of a failed job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from ignition import bounded_json
from ignition._http import FormData, HttpClient, RetryPolicy, WebSocket, raise_for_status
from ignition.errors import WorkflowRejectedError

# A prompt must not be queued twice because a retry raced a slow first answer.
_ONCE = RetryPolicy(attempts=1)


class ComfyApi:
    """ComfyUI at `base_url` (http://127.0.0.1:PORT)."""

    def __init__(self, client: HttpClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    async def object_info(self) -> dict[str, Any]:
        info = await self.client.get_json(f"{self.base_url}/object_info")
        return info if isinstance(info, dict) else {}

    async def upload_image(self, name: str, data: bytes) -> str:
        """Put `data` in ComfyUI's input folder as `name` (replacing a file of that name)."""
        form = FormData()
        form.add_field("image", data, filename=name, content_type="application/octet-stream")
        form.add_field("overwrite", "true")
        url = f"{self.base_url}/upload/image"
        async with self.client.request("POST", url, data=form, retry=_ONCE) as response:
            await raise_for_status(response)
            answer = await bounded_json.read_json(response, what="ComfyUI's answer")
        return str(answer.get("name", name)) if isinstance(answer, dict) else name

    async def queue_prompt(
        self, workflow: dict[str, Any], client_id: str, extra_data: dict[str, Any]
    ) -> str:
        """Queue the workflow; its prompt id. WorkflowRejectedError when validation refuses it."""
        prompt_id = str(uuid.uuid4())
        body = {
            "prompt": workflow,
            "client_id": client_id,
            "prompt_id": prompt_id,
            "extra_data": extra_data,
        }
        url = f"{self.base_url}/prompt"
        async with self.client.request("POST", url, json=body, retry=_ONCE) as response:
            if response.status == 400:
                raise rejection(
                    await bounded_json.read_json(response, what="ComfyUI's answer"), workflow
                )
            await raise_for_status(response)
            answer = await bounded_json.read_json(response, what="ComfyUI's answer")
        return str(answer.get("prompt_id", prompt_id)) if isinstance(answer, dict) else prompt_id

    async def history(self, prompt_id: str) -> dict[str, Any]:
        entries = await self.client.get_json(f"{self.base_url}/history/{prompt_id}")
        entry = entries.get(prompt_id) if isinstance(entries, dict) else None
        return entry if isinstance(entry, dict) else {}

    async def view(self, filename: str, subfolder: str, kind: str) -> bytes:
        query = urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
        async with self.client.get(f"{self.base_url}/view?{query}") as response:
            await raise_for_status(response)
            return await response.read()

    async def interrupt(self, prompt_id: str) -> None:
        """Stop the running prompt (ComfyUI ignores an id that is not the running one)."""
        url = f"{self.base_url}/interrupt"
        async with self.client.request(
            "POST", url, json={"prompt_id": prompt_id}, retry=_ONCE
        ) as response:
            await raise_for_status(response)

    @asynccontextmanager
    async def events(self, client_id: str) -> AsyncIterator[WebSocket]:
        """ComfyUI's websocket for `client_id`: open it before queueing, so nothing is missed."""
        url = f"{self.base_url.replace('http', 'ws', 1)}/ws?clientId={client_id}"
        async with self.client.websocket(url) as socket:
            yield socket


def rejection(body: object, workflow: dict[str, Any]) -> WorkflowRejectedError:
    """ComfyUI's 400 answer as one error whose text names each node id, class and input."""
    if not isinstance(body, dict):
        return WorkflowRejectedError(f"ComfyUI refused the workflow: {str(body)[:500]}")
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    problems: list[str] = []
    node_errors = body.get("node_errors")
    for node_id, entry in (node_errors if isinstance(node_errors, dict) else {}).items():
        class_type = entry.get("class_type") or _class_of(workflow, node_id)
        for item in entry.get("errors", []):
            extra = item.get("extra_info") or {}
            where = f"node {node_id} ({class_type})"
            if extra.get("input_name"):
                where += f" input {extra['input_name']}"
            said = item.get("message", "invalid")
            if item.get("details"):
                said += f": {item['details']}"
            problems.append(f"{where}: {said}")
    if not problems:
        problems.append(_whole_prompt_problem(error, workflow))
    details = [json.dumps(body, sort_keys=True)[:4000]]
    return WorkflowRejectedError(
        "ComfyUI refused the workflow: " + "; ".join(problems),
        hint=_hint(error),
        details=[*problems, *details],
    )


def _whole_prompt_problem(error: dict[str, Any], workflow: dict[str, Any]) -> str:
    extra = error.get("extra_info") or {}
    message = str(error.get("message", "invalid prompt"))
    if error.get("type") == "missing_node_type" or extra.get("class_type"):
        node_id = extra.get("node_id", "?")
        class_type = extra.get("class_type") or _class_of(workflow, str(node_id))
        return f"node {node_id} ({class_type}): {message}"
    details = error.get("details")
    return f"{message} ({details})" if details else message


def _hint(error: dict[str, Any]) -> str | None:
    if error.get("type") == "missing_node_type":
        return "install the custom node pack that provides it on the worker, or remove the node"
    if error.get("type") == "prompt_no_outputs":
        return "add an output node (SaveImage, SaveVideo …) to the workflow"
    return None


def _class_of(workflow: dict[str, Any], node_id: str) -> str:
    node = workflow.get(node_id)
    return str(node.get("class_type", "?")) if isinstance(node, dict) else "?"
