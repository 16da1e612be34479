"""Where a person reaches a service: RunPod's proxy when on a pod, localhost otherwise."""

from __future__ import annotations

from ignition.settings import Settings


def public_url(settings: Settings, port: int) -> str:
    # RunPod proxies every exposed HTTP port of a pod at this address (PROTOCOLS.md, RunPod).
    if settings.runpod_pod_id:
        return f"https://{settings.runpod_pod_id}-{port}.proxy.runpod.net"
    return f"http://localhost:{port}"
