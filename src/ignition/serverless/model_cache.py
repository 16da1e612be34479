"""Models a job asks for (`input.models`), kept on the worker between jobs, LRU beyond a size.

They go through the same pipeline as a pod's lists (resolve, verified parallel download, atomic
placement, the per-file locks), into the worker's own models folder — not the shared volume:
one job's choice should not fill every worker's store. The cache index (`<run_dir>/
job-models.json`: path → last use) holds only files a job fetched, so the models the worker
started with are never evicted. After each job's models are in place, the least recently used
files of other jobs are deleted until the cache fits IGNITION_MODEL_CACHE_GB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from ignition.atomic import write_atomic
from ignition.errors import JobModelError
from ignition.pipeline import provision
from ignition.progress import RunDisplay
from ignition.report import ModelOutcome
from ignition.run.startup_log import LogLines
from ignition.settings import Settings

log = logging.getLogger("ignition.serverless")
_GB = 1024**3


class ModelCache:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.models_dir
        self.index_path = settings.run_dir / "job-models.json"
        self.limit_bytes = int(settings.model_cache_gb * _GB)
        self._lock = asyncio.Lock()

    async def provide(self, civitai: str, huggingface: str) -> list[Path]:
        """Provision the job's models; their paths. JobModelError names each one that failed."""
        job_settings = self.settings.model_copy(
            update={
                "civitai_models": civitai,
                "huggingface_models": huggingface,
                "comfyui_workflows": "",
                "persistent_storage": "none",
                "models_dir_override": self.root,
            }
        )
        async with self._lock:
            display = RunDisplay(job_settings.status_file, stream=LogLines(log), tty=False)
            report = await provision(job_settings, display=display)
            failed = [o for o in report.outcomes if not o.in_place]
            if failed:
                raise _model_error(failed)
            index = self._read_index()
            now = time.time()
            used: list[Path] = []
            for outcome in report.outcomes:
                if outcome.path is None:
                    continue
                path = Path(outcome.path)
                used.append(path)
                # Fetched by a job now, or by a job before: the cache's. Else the worker's own.
                if outcome.status == "ok" or str(path) in index:
                    index[str(path)] = now
            await asyncio.to_thread(self._evict, index, {str(p) for p in used})
            return used

    def _evict(self, index: dict[str, float], keep: set[str]) -> None:
        sizes = {path: _size(path) for path in index}
        for path in [p for p, size in sizes.items() if size is None]:
            del index[path]  # removed by hand meanwhile
        total = sum(size or 0 for size in sizes.values())
        for path in sorted(index, key=index.__getitem__):
            if total <= self.limit_bytes:
                break
            if path in keep:
                continue
            Path(path).unlink(missing_ok=True)
            total -= sizes[path] or 0
            del index[path]
            log.info(
                "model cache: evicted %s (least recently used; over %s GB)",
                path,
                self.settings.model_cache_gb,
            )
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True), durable=False)

    def _read_index(self) -> dict[str, float]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _size(path: str) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def _model_error(failed: list[ModelOutcome]) -> JobModelError:
    lines = [f"{o.name}: {o.error or o.status}" for o in failed]
    first = failed[0]
    return JobModelError(
        f"the job's model {first.name} could not be provided: {first.error or first.status}"
        + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""),
        hint="fix the entry in input.models (same syntax as CIVITAI_MODELS / HUGGINGFACE_MODELS)",
        details=lines,
    )
