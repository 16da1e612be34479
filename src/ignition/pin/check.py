"""`ignition lock --check`: does the lock still describe the manifest? Offline but for workflows
given by URL: the manifest's lists and each workflow's hash against what the lock was made from."""

from __future__ import annotations

from ignition.pin.build import workflow_hashes
from ignition.pin.lockfile import differences, inputs_of
from ignition.pin.request import load_lock
from ignition.pipeline import open_client
from ignition.settings import Settings
from ignition.spec.manifest import load_manifest


async def lock_differences(settings: Settings, manifest_source: str, lock_source: str) -> list[str]:
    """What the manifest says that the lock does not, one line each; [] when the lock matches."""
    async with open_client(settings) as client:
        manifest = await load_manifest(client, manifest_source)
        lock = await load_lock(client, lock_source, required=True)
        assert lock is not None
        current = inputs_of(manifest, await workflow_hashes(client, settings, manifest))
    return differences(lock.inputs, current)
