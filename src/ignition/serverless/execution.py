"""Following one prompt on ComfyUI's websocket, from queued to done, reporting progress.

ComfyUI sends, for the client that queued the prompt: `execution_start`, `execution_cached`
(nodes it will not run again), `executing {node}` as each node starts, `progress {value, max}`
during sampler steps, `executed {node, output}`, then `execution_success` and
`executing {node: null}` — or `execution_error` / `execution_interrupted`. Messages of other
prompts (a warm-up, a previous job's tail) are ignored by their `prompt_id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ignition._http import WebSocket, WebSocketMessageType
from ignition.errors import ComfyUIDownError, WorkflowFailedError

# What a progress report carries (runpod-python posts it as the job's IN_PROGRESS output).
Progress = dict[str, Any]
ProgressSink = Callable[[Progress], None]


class PromptInterrupted(Exception):
    """ComfyUI reported the prompt interrupted (our timeout or cancel asked it to)."""


@dataclass
class PromptRun:
    """What is known about a running prompt, for progress reports."""

    prompt_id: str
    workflow: dict[str, Any]
    report: ProgressSink
    cached: set[str] = field(default_factory=set)
    started: list[str] = field(default_factory=list)

    def node_started(self, node_id: str) -> None:
        self.started.append(node_id)
        self.report(self._state(node_id))

    def step(self, node_id: str, value: int, maximum: int) -> None:
        self.report({**self._state(node_id), "value": value, "max": maximum})

    def _state(self, node_id: str) -> Progress:
        node = self.workflow.get(node_id)
        class_type = node.get("class_type", "?") if isinstance(node, dict) else "?"
        return {
            "status": "executing",
            "node": node_id,
            "class_type": class_type,
            "nodes_done": len(self.cached) + len(self.started) - 1,
            "nodes_total": len(self.workflow),
        }


async def follow(socket: WebSocket, run: PromptRun) -> None:
    """Return when the prompt finished; raise WorkflowFailedError, PromptInterrupted, or
    ComfyUIDownError when the socket closes first (ComfyUI exited)."""
    async for message in socket:
        if message.type == WebSocketMessageType.BINARY:
            continue  # previews
        if message.type != WebSocketMessageType.TEXT:
            break
        event = json.loads(message.data)
        data = event.get("data") or {}
        if not isinstance(data, dict) or data.get("prompt_id") != run.prompt_id:
            continue
        if _handle(event.get("type"), data, run):
            return
    raise ComfyUIDownError(
        "ComfyUI closed its connection while the job ran (it exited or was restarted)"
    )


def _handle(kind: object, data: dict[str, Any], run: PromptRun) -> bool:
    """Act on one message of our prompt; True when the prompt is over."""
    if kind == "execution_cached":
        run.cached.update(str(node) for node in data.get("nodes") or [])
    elif kind == "executing":
        if data.get("node") is None:
            return True
        run.node_started(str(data["node"]))
    elif kind == "progress":
        run.step(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
    elif kind == "execution_error":
        raise _failure(data)
    elif kind == "execution_interrupted":
        raise PromptInterrupted
    return False


def _failure(data: dict[str, Any]) -> WorkflowFailedError:
    node, class_type = data.get("node_id", "?"), data.get("node_type", "?")
    said = f"{data.get('exception_type', 'Error')}: {data.get('exception_message', '')}".strip()
    traceback = [str(line).rstrip() for line in data.get("traceback") or []]
    return WorkflowFailedError(
        f"node {node} ({class_type}) failed: {said}",
        hint="the node's message says why; fix its inputs or the models it loads",
        details=traceback[-20:],
    )
