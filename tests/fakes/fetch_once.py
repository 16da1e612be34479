"""Fetch one URL with the engine in its own process (for kill -9 and disk-full tests).

usage: python fetch_once.py URL STAGING_PATH SHA256 SIZE CONNECTIONS
Prints `ok <sha256>` or `error <code> <message>`; exit status 0 or 1.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ignition._http import HttpClient
from ignition.errors import IgnitionError
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.progress import NoProgress
from ignition.records import FetchRequest


async def main(url: str, staging: str, sha256: str, size: str, connections: str) -> int:
    request = FetchRequest(
        url=url,
        staging_path=Path(staging),
        expected_size=int(size),
        expected_sha256=sha256,
        identity=f"sha256:{sha256}",
        label="child",
    )
    tuning = Tuning(buffer_bytes=64 * 1024, min_split_bytes=512 * 1024, save_every_s=0.05)
    async with HttpClient(connections=int(connections)) as client:
        try:
            fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)
        except IgnitionError as error:
            print("error", error.code, error, flush=True)
            return 1
    print("ok", fetched.sha256, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:6])))
