"""Small helpers shared by the download tests."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fakes.content import model_bytes
from fakes.services import Fakes
from ignition.catalog import load_catalog
from ignition.pipeline import provision
from ignition.report import ModelOutcome, ProvisionReport
from support import FAST_RETRY

__all__ = ["FAST_RETRY", "PLENTY_OF_DISK", "by_name", "files_under", "provision_now"]
PLENTY_OF_DISK: Callable[[Path], int] = lambda _: 10**15  # noqa: E731


def serve_catalog(fakes: Fakes, *names: str) -> dict[str, bytes]:
    """Publish the catalog entries `names` on the fake Hub; returns name → bytes."""
    published: dict[str, bytes] = {}
    for name in names:
        entry = load_catalog()[name]
        data = model_bytes(f"catalog-{name}")
        repo = fakes.hf.repos.get(entry.repo) or fakes.hf.add(entry.repo, {})
        repo.files[entry.path] = data
        published[name] = data
    return published


def provision_now(
    fakes: Fakes,
    *,
    civitai: str = "",
    hf: str = "",
    dry_run: bool = False,
    free_bytes: Callable[[Path], int] = PLENTY_OF_DISK,
    **overrides: Any,
) -> ProvisionReport:
    settings = fakes.settings(civitai_models=civitai, huggingface_models=hf, **overrides)
    return asyncio.run(
        provision(settings, dry_run=dry_run, retry=FAST_RETRY, free_bytes=free_bytes)
    )


def by_name(report: ProvisionReport) -> dict[str, ModelOutcome]:
    return {outcome.name: outcome for outcome in report.outcomes}


def files_under(root: Path) -> list[str]:
    """Every file below `root`, relative, ignoring Ignition's own hidden state directory."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".ignition")
    )


def staging_leftovers(models_dir: Path) -> list[str]:
    staging = models_dir / ".ignition" / "staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []
