"""`ignition status [--json]`: services, downloads, URLs. Exit code 0 only if ComfyUI is alive
(or deliberately waiting for WAIT_FOR_MODELS): this is the image's Docker HEALTHCHECK."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ignition.cli._control_client import NOT_RUNNING, ask
from ignition.settings import Settings, load_settings

UNHEALTHY = 1
_COMFYUI = "comfyui"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show services, download progress and URLs (exit 0 only when ComfyUI is alive)",
        description=(
            "Asks the running supervisor for each service's state (alive, ready, pid, uptime, "
            "restarts, last exit code), shows download progress and the URLs. Exit codes: "
            f"0 ComfyUI alive, {UNHEALTHY} ComfyUI down, {NOT_RUNNING} supervisor not running."
        ),
        epilog="example: ignition status --json",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    reply = ask(settings, {"command": "status"}, timeout_s=5)
    if reply is None:
        if args.json:
            print(json.dumps({"running": False, "downloads": _download_progress(settings)}))
        return NOT_RUNNING
    status: dict[str, Any] = reply["status"]
    status["running"] = True
    status["downloads"].update(_download_progress(settings) or {})
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_render(status))
    return 0 if _comfyui_healthy(status) else UNHEALTHY


def _download_progress(settings: Settings) -> dict[str, Any] | None:
    """The download pipeline's own progress file, when it has written one."""
    try:
        progress = json.loads(settings.status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {"progress": progress}


def _comfyui_healthy(status: dict[str, Any]) -> bool:
    comfy = status["services"].get(_COMFYUI)
    if comfy is None:  # still in the system check
        return bool(status["supervisor"]["state"] == "starting")
    return bool(comfy["alive"]) or comfy["state"] == "waiting"


def _render(status: dict[str, Any]) -> str:
    supervisor = status["supervisor"]
    lines = [
        f"ignition {supervisor['version']}: {supervisor['state']}, supervisor pid "
        f"{supervisor['pid']}, up {_duration(supervisor['uptime_s'])}"
    ]
    for name, service in status["services"].items():
        alive = "ready" if service["ready"] else ("alive" if service["alive"] else "down")
        parts = [f"  {name:<12} {service['state']:<10} {alive:<5}"]
        if service["pid"] is not None:
            parts.append(f"pid {service['pid']}, up {_duration(service['uptime_s'])}")
        parts.append(f"restarts {service['restarts']}")
        if service["last_exit_code"] is not None:
            parts.append(f"last exit {service['last_exit_code']}")
        if service["url"]:
            parts.append(service["url"])
        lines.append(", ".join(parts))
        if service["error"]:
            lines.extend(f"    {line}" for line in service["error"].splitlines())
    lines.extend(_render_downloads(status["downloads"]))
    lines.extend(_render_nodes(status.get("nodes")))
    ports = ", ".join(f"{name} {port}" for name, port in status["ports"].items())
    lines.append(f"  ports        {ports}; Manager UI {'on' if status['manager_ui'] else 'off'}")
    return "\n".join(lines)


def _render_downloads(downloads: dict[str, Any]) -> list[str]:
    """The pipeline's status file (`{"phase", "ok", "models": [...]}`) as a few lines."""
    progress = downloads.get("progress")
    if not isinstance(progress, dict) or not progress.get("models"):
        return [f"  downloads    {downloads['state']}"]
    models: list[dict[str, Any]] = progress["models"]
    counts: dict[str, int] = {}
    for model in models:
        counts[model.get("status", "?")] = counts.get(model.get("status", "?"), 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"  downloads    {downloads['state']} ({progress.get('phase')}): {summary}"]
    for model in models:
        if model.get("status") == "fetching" and model.get("size"):
            percent = 100 * model.get("bytes_done", 0) / model["size"]
            lines.append(f"    {model.get('name')}: {percent:.0f}%")
        elif model.get("status") == "failed":
            lines.append(f"    {model.get('name')}: {model.get('error')}")
    return lines


def _render_nodes(nodes: dict[str, Any] | None) -> list[str]:
    """Custom node packs: the state, then one line per pack once they are done."""
    if not nodes:
        return []
    lines = [f"  nodes        {nodes['state']}"]
    for pack in nodes.get("packs") or []:
        at = pack.get("version") or (pack.get("commit") or "")[:12] or "-"
        lines.append(f"    {pack.get('folder') or pack.get('name')} @ {at}: {pack.get('status')}")
    return lines


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
