"""resolve: a ModelRef → the files it names (URL, expected sha256/size, folder)."""

from __future__ import annotations

from ignition._http import HttpClient, HttpError
from ignition.errors import IgnitionError
from ignition.records import CivitaiRef, ModelRef, ResolvedFile
from ignition.resolve.civitai import explain_civitai_error, resolve_civitai
from ignition.resolve.huggingface import explain_huggingface_error, resolve_huggingface
from ignition.settings import Settings


async def resolve(client: HttpClient, settings: Settings, ref: ModelRef) -> list[ResolvedFile]:
    if isinstance(ref, CivitaiRef):
        return [await resolve_civitai(client, settings, ref)]
    return await resolve_huggingface(client, settings, ref)


def explain_http_error(error: HttpError, ref: ModelRef, settings: Settings) -> IgnitionError:
    """A download's HTTP failure, explained by the source it came from."""
    if isinstance(ref, CivitaiRef):
        return explain_civitai_error(error, ref, settings)
    return explain_huggingface_error(error, ref, settings)


__all__ = ["explain_http_error", "resolve"]
