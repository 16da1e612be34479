"""JSON from someone else (a model header, a shared workflow, an API answer), read within bounds.

Python's parser recurses once per nesting level, so `[` × 200000 raises RecursionError from deep
inside whatever called it, and a body of any length is read into memory whole. Here a document is
refused with `UntrustedJsonError` (a ValueError, like the parser's own errors) when it is longer
than `max_bytes` or nests deeper than `max_depth`, before the parser sees it. The depth is found
by one linear pass over the brackets outside strings; strings are skipped by a regular
expression that cannot backtrack.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the HTTP layer reads JSON answers through this module
    from ignition._http import Response

# Workflows, manifests and API answers are KBs to a few MB; 32 MiB leaves room for huge graphs.
MAX_JSON_BYTES = 32 * 1024 * 1024
# Real documents nest a dozen levels (a workflow's subgraphs about 10); the parser's own limit
# is the interpreter's recursion limit (1000), shared with its callers.
MAX_JSON_DEPTH = 128

# A complete string (possessive: never backtracks), a bracket, or a lone quote that opens a
# string which never closes — the scan stops there, and the parser reports the broken string.
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{}]|"', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')


class UntrustedJsonError(ValueError):
    """A JSON document too long, too deep, or not JSON at all; the message says which."""


def nesting_depth(data: bytes, *, stop_above: int | None = None) -> int:
    """The deepest bracket nesting in `data` outside strings (stops early past `stop_above`)."""
    depth = deepest = 0
    for match in _TOKEN.finditer(data):
        first = data[match.start()]
        if first in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif first in _CLOSE:
            depth -= 1
        elif first == _QUOTE and match.end() - match.start() == 1:
            break
    return deepest


def loads(
    data: bytes | str,
    *,
    what: str = "JSON document",
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> object:
    """Parse `data` (UTF-8, -16 or -32 when bytes), refusing it past the bounds.

    `what` names the document in the error ("workflow x.json", "safetensors header").
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise UntrustedJsonError(f"{what} is {len(raw)} bytes, more than the {max_bytes} allowed")
    if nesting_depth(raw, stop_above=max_depth) > max_depth:
        raise UntrustedJsonError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except RecursionError:  # UTF-16/32 text hides its brackets from the byte scan
        raise UntrustedJsonError(f"{what} nests deeper than {max_depth} levels") from None
    except ValueError as error:
        raise UntrustedJsonError(f"{what} is not valid JSON ({error})") from None


async def read_body(response: Response, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """A response's body, streamed and refused as soon as it outgrows `max_bytes`: a hostile
    server can neither fill memory nor make us wait for the whole of a huge body."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise UntrustedJsonError(f"{what} is {declared} bytes, more than the {max_bytes} allowed")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise UntrustedJsonError(f"{what} is more than the {max_bytes} bytes allowed")
    return bytes(body)


async def read_json(
    response: Response, *, what: str = "JSON answer", max_bytes: int = MAX_JSON_BYTES
) -> object:
    """A response's body parsed as JSON, within the byte and depth bounds."""
    return loads(await read_body(response, what=what, max_bytes=max_bytes), what=what)
