"""The download engine: one file, many ranged connections, resumable, verified while it arrives.

`fetch_file` turns a FetchRequest into a verified file at `request.staging_path`. Its transfers
hold slots of the budget shared by every file fetched through the same HttpClient, and its
ranges go over the transport the client picks (`HttpClient.ranged`).

Every retry is bounded: transient failures (cut connections, 5xx, 429, stalls, expired links)
are retried with backoff until `Tuning.max_failures` happen in a row without a byte of progress;
a wrong checksum costs exactly one refetch; a source that changes under the partial restarts the
download at most twice. Disk full removes the partial; any other failure keeps it for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    RangedAnswer,
    Response,
    StreamError,
    describe_network_error,
    is_certificate_error,
    raise_for_status,
    redact_url,
)
from ignition.atomic import move_into_place
from ignition.errors import (
    ChecksumMismatchError,
    DiskFullError,
    FetchError,
    SizeMismatchError,
    SourceChangedError,
    TransferFailedError,
    TransferStalledError,
)
from ignition.fetch._memory import keep_socket_buffers_in_heap
from ignition.fetch.disk import reserve, write_at
from ignition.fetch.hashing import PrefixHasher
from ignition.fetch.progress import TransferProgress
from ignition.fetch.resume import (
    PartialState,
    discard_partial,
    load_partial,
    open_part,
    part_path,
    save_partial,
)
from ignition.fetch.segments import Segment, SegmentPlan
from ignition.fetch.verify import check_body_start
from ignition.records import FetchedFile, FetchRequest

_UNKNOWN_END = 1 << 62
# Ranged requests to storage are retried here, not in the client (`HttpClient.ranged` asks
# once): the engine knows which bytes are still missing and gives its connection slot to others
# while it backs off.
# Whole-file attempts: a bad sha256 earns one refetch, a changed source up to two restarts.
_MAX_ATTEMPTS = 3
_MIN_SAVE_BYTES = 32 << 20
_CERTIFICATE_HINT = (
    "the server's TLS certificate is not trusted here; behind a TLS-inspecting proxy or with a "
    "private CA, point SSL_CERT_FILE at its CA bundle"
)


@dataclass(frozen=True)
class Tuning:
    """Engine knobs. Memory in flight is about connections × buffer_bytes."""

    # Read buffer per connection, and the write batch of ranges read through the HttpClient.
    buffer_bytes: int = 256 << 10
    # Largest ranged request: big enough that a request's round trip is noise (0.8 s at
    # 20 MB/s), small enough that the hashed prefix trails the download by connections × this.
    piece_bytes: int = 16 << 20
    # A steal leaves at least this much on either side: below it a new request is not worth it.
    min_split_bytes: int = 4 << 20
    # Failures in a row, on one file, without a byte of progress, before giving up. Backoff
    # between them follows the client's RetryPolicy (1 s doubling to 30 s by default).
    max_failures: int = 8
    save_every_s: float = 2.0


class _Retryable(Exception):
    """A transient failure of one request; its range goes back to be fetched again."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: str | None = None,
        stalled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after  # the server's Retry-After header, if it sent one
        self.stalled = stalled


class _StartOver(Exception):
    """The partial no longer fits the source: discard it and fetch from byte 0."""


class _ChecksumMismatch(Exception):
    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


async def fetch_file(
    client: HttpClient,
    request: FetchRequest,
    progress: TransferProgress,
    *,
    tuning: Tuning | None = None,
) -> FetchedFile:
    """Fetch `request.url` into `request.staging_path`, resuming and verifying.

    1. Load the partial of a previous run, if it was for this source (else discard it).
    2. The first request learns the size, whether Range works and the presigned URL; segments
       reuse that URL, and a 403 from storage fetches a fresh one through `request.url`.
    3. Missing ranges stream over connections from the shared budget, with work stealing; a
       server that ignores Range is read as one stream.
    4. The contiguous prefix is hashed as it completes; at the end size and sha256 are checked.
    5. A wrong sha256 discards the partial and fetches once more; wrong again raises
       ChecksumMismatchError with both hashes.
    6. `<staging>.part` is renamed to `request.staging_path` and its state record removed.
    """
    knobs = tuning or Tuning()
    keep_socket_buffers_in_heap()
    first_mismatch: str | None = None
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        transfer = _FileTransfer(client, request, progress, knobs)
        try:
            size, sha256 = await transfer.run()
        except (DiskFullError, SizeMismatchError):
            discard_partial(request.staging_path)
            raise
        except _StartOver as reason:
            discard_partial(request.staging_path)
            if attempt == _MAX_ATTEMPTS:
                raise SourceChangedError(f"{request.label}: {reason}") from None
            continue
        except _ChecksumMismatch as mismatch:
            discard_partial(request.staging_path)
            if first_mismatch is None and attempt < _MAX_ATTEMPTS:
                first_mismatch = mismatch.actual
                continue
            got = mismatch.actual
            if first_mismatch is not None and first_mismatch != got:
                got = f"{first_mismatch}, then {got}"
            raise ChecksumMismatchError(
                f"{request.label}: sha256 should be {request.expected_sha256} but the download "
                f"hashed to {got}"
            ) from None
        except BaseException:
            if not transfer.kept_bytes:
                discard_partial(request.staging_path)  # nothing worth resuming
            raise
        # Not durable yet: installing it fsyncs the data and the model folder.
        move_into_place(part_path(request.staging_path), request.staging_path, durable=False)
        discard_partial(request.staging_path)
        return FetchedFile(request.staging_path, size, sha256)
    raise AssertionError("unreachable: every attempt returns or raises")


class _FileTransfer:
    """One attempt at one file: the state shared by its connections."""

    def __init__(
        self,
        client: HttpClient,
        request: FetchRequest,
        progress: TransferProgress,
        tuning: Tuning,
    ) -> None:
        self._client = client
        self._request = request
        self._progress = progress
        self._tuning = tuning
        self._label = request.label
        self._url = request.url  # becomes the presigned storage URL after the first request
        self._content_type: str | None = None
        self._state = PartialState(request.identity)
        self._plan: SegmentPlan | None = None
        self._fd = -1
        self._hasher: PrefixHasher | None = None
        self._done_bytes = 0
        self._failures = 0
        self._total_failures = 0
        self._saved_at = 0.0
        self._saved_bytes = 0
        self._renewing = asyncio.Lock()

    # --- the attempt -----------------------------------------------------------------------------
    async def run(self) -> tuple[int, str]:
        request = self._request
        request.staging_path.parent.mkdir(parents=True, exist_ok=True)
        self._state = load_partial(request.staging_path, request.identity)
        if request.expected_size is not None and self._state.size not in (
            None,
            request.expected_size,
        ):
            discard_partial(request.staging_path)
            self._state = PartialState(request.identity)
        try:
            self._fd = open_part(request.staging_path, self._state)
        except OSError as error:  # full, read-only, or something planted at the .part
            raise self._disk_error(error) from None
        self._hasher = PrefixHasher(self._fd)
        try:
            self._done_bytes = self._state.done.total()
            self._progress.reset(self._done_bytes)
            self._progress.set_total(self._state.size)
            self._hasher.advance(self._state.done.prefix_end())
            if not self._complete():
                await self._download()
            size = self._state.size
            assert size is not None and self._complete()
            self._save(force=True)
            sha256 = await self._hasher.finish(size)
        finally:
            await self._hasher.close()
            os.close(self._fd)
            if self._done_bytes:
                # Stopped (pod stop, Ctrl-C, a failure): the next run resumes from here.
                with contextlib.suppress(OSError):
                    save_partial(request.staging_path, self._state)
        expected = request.expected_sha256
        if expected is not None and sha256 != expected.lower():
            raise _ChecksumMismatch(sha256)
        return size, sha256

    @property
    def kept_bytes(self) -> int:
        return self._done_bytes

    def _complete(self) -> bool:
        size = self._state.size
        return size is not None and not self._state.done.missing(size)

    async def _download(self) -> None:
        try:
            async with asyncio.TaskGroup() as workers:
                await self._lead(workers)
        except BaseExceptionGroup as group:
            raise _root_cause(group) from None

    async def _lead(self, workers: asyncio.TaskGroup) -> None:
        """The first request: discover the source, then stream its answer as the first segment."""
        while True:
            delay: float | None = None
            async with self._client.transfer_slot(), contextlib.AsyncExitStack() as stack:
                first, last = self._first_range()
                try:
                    # Always through the source's endpoint: a new run needs a fresh presigned
                    # link. The client retries 429/5xx here (the source API's rate limits).
                    response = await stack.enter_async_context(
                        self._client.get(self._request.url, headers=_range_header(first, last))
                    )
                    self._url = str(response.url)
                    if not await self._discover(response, first):
                        return
                    answer = self._client.answer(response, buffer_bytes=self._tuning.buffer_bytes)
                    if self._plan is None:
                        await self._stream_single(answer, first)
                        return
                except NETWORK_ERRORS as error:
                    # The client already retried this request under its policy.
                    raise TransferFailedError(
                        f"{self._label}: cannot reach {redact_url(self._url)} "
                        f"({describe_network_error(error)})",
                        hint=_CERTIFICATE_HINT if is_certificate_error(error) else None,
                    ) from None
                except _Retryable as failure:
                    delay = self._failed(failure)
                else:
                    delay = await self._stream_first(answer, workers)
                    break
            if delay:
                await self._client.retry.sleep(delay)
        if delay:
            await self._client.retry.sleep(delay)
        await self._work()

    def _first_range(self) -> tuple[int, int | None]:
        """What the first request asks for: the first piece of the plan when the size is known
        (so that it ends where the next connection's piece begins), else everything we lack."""
        self._plan = None
        size = self._state.size if self._state.size is not None else self._request.expected_size
        missing = [] if size is None else self._state.done.missing(size)
        if not missing:
            return self._state.done.prefix_end(), None
        self._plan = self._new_plan(missing)
        start, end = self._plan.next_piece()
        return start, end - 1

    def _new_plan(self, missing: list[tuple[int, int]]) -> SegmentPlan:
        return SegmentPlan(
            missing,
            connections=self._client.connections,
            piece_bytes=self._tuning.piece_bytes,
            min_split_bytes=self._tuning.min_split_bytes,
        )

    async def _discover(self, response: Response, first: int) -> bool:
        """Learn size and Range support from the first answer. False: nothing left to fetch."""
        status = response.status
        if status == 416:
            # Asked for bytes past the end: if our bytes are exactly the file, it is complete
            # (the previous run was killed before renaming it); otherwise the partial is stale.
            total = _total_size(response.headers.get("Content-Range"))
            if total is not None and total == first == self._state.done.prefix_end():
                self._state.size = total
                return False
            raise _StartOver(f"the server's file is {total} bytes; the partial has {first}")
        if status not in (200, 206):
            # The source's own answer (login required, gone, rate limited after the client's
            # retries …): raised as HttpError for the resolver's source to explain.
            await raise_for_status(response)
        etag = response.headers.get("ETag")
        self._content_type = response.headers.get("Content-Type")
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != first:
                raise _Retryable(f"asked for byte {first}, got a range starting at {start}")
        else:
            # A 200 answer to a Range request means the server ignored it: the body starts at 0.
            if first > 0:
                raise _StartOver("the server ignores Range, so the partial cannot be resumed")
            total = response.content_length
        self._check_identity(total, etag)
        self._state.size = total
        self._state.etag = etag
        if total is not None:
            try:
                reserve(self._fd, total)
            except OSError as error:
                raise self._disk_error(error) from None
        self._progress.set_total(total)
        if status != 206 or total is None:
            self._plan = None  # one stream
        elif self._plan is None or self._plan.next_piece()[1] > total:
            self._plan = self._new_plan(self._state.done.missing(total))
        return True

    def _check_identity(self, total: int | None, etag: str | None) -> None:
        expected = self._request.expected_size
        if total is not None and expected is not None and total != expected:
            raise SizeMismatchError(
                f"{self._label}: the source says {expected} bytes but the server has {total}",
                hint="the file changed at the source; run again to re-resolve it",
            )
        state = self._state
        if state.size is not None and total is not None and total != state.size:
            raise _StartOver(f"the file is now {total} bytes, the partial was for {state.size}")
        # Without a sha256 to check at the end, a changed ETag is the only sign of a new file.
        if (
            self._request.expected_sha256 is None
            and state.etag
            and etag
            and etag != state.etag
            and state.done.total()
        ):
            raise _StartOver("the file's ETag changed since the partial was written")

    def _check_range(self, content_range: str | None, segment: Segment) -> None:
        """A 206 to a segment's request must be for this file, starting where we asked."""
        start, total = _content_range(content_range)
        if total != self._state.size:
            raise _StartOver(f"the file is now {total} bytes, not {self._state.size}")
        if start != segment.position:
            raise _Retryable(f"asked for byte {segment.position}, got a range at {start}")

    # --- segments -------------------------------------------------------------------------------
    async def _stream_first(self, answer: RangedAnswer, workers: asyncio.TaskGroup) -> float | None:
        """Stream the first answer as the first piece while helpers take the next ones."""
        plan = self._plan
        assert plan is not None and self._state.size is not None
        segment = plan.take()
        assert segment is not None
        remaining = self._state.size - self._state.done.total()
        helpers = min(self._client.connections, math.ceil(remaining / self._tuning.min_split_bytes))
        # Helpers take the other pieces, then steal; each waits for a slot of the shared budget.
        for _ in range(helpers - 1):
            workers.create_task(self._work())
        return await self._fetch_into(segment, answer)

    async def _work(self) -> None:
        """Take segments (stealing when none are free) until the file needs no more."""
        plan = self._plan
        assert plan is not None
        while True:
            async with self._client.transfer_slot():
                segment = plan.take()
                if segment is None:
                    return
                delay = await self._fetch_into(segment, None)
            if delay:
                await self._client.retry.sleep(delay)

    async def _fetch_into(self, segment: Segment, answer: RangedAnswer | None) -> float | None:
        """Fetch one segment (from `answer` if already open). Returns a backoff after a failure."""
        assert self._plan is not None
        try:
            if answer is not None:
                await answer.stream_into(segment, self._write)
            else:
                await self._fetch_range(segment)
        except _Retryable as failure:
            return self._failed(failure)
        except StreamError as error:
            where = f"{error} at byte {segment.position}"
            return self._failed(_Retryable(where, stalled=error.stalled))
        except TimeoutError:
            return self._failed(_Retryable("no answer", stalled=True))
        except NETWORK_ERRORS as error:
            return self._failed(_Retryable(describe_network_error(error)))
        finally:
            self._plan.finish(segment)
        return None

    async def _fetch_range(self, segment: Segment) -> None:
        """Ask for the segment on the current link; an expired link is renewed first."""
        link, first, last = self._url, segment.position, segment.end - 1
        buffer_bytes = self._tuning.buffer_bytes
        async with self._client.ranged(link, first, last, buffer_bytes=buffer_bytes) as answer:
            if answer.status != 403 or link == self._request.url:
                await self._stream_range(answer, segment)
                return
        async with self._renewed(link, first, last) as answer:
            await self._stream_range(answer, segment)

    @contextlib.asynccontextmanager
    async def _renewed(self, link: str, first: int, last: int) -> AsyncIterator[RangedAnswer]:
        """The presigned link expired (storage answers 403): the source's own endpoint hands out
        a fresh one, and the partial continues with it. One connection asks; the others wait for
        its answer instead of all hitting a rate-limited API at once."""
        buffer_bytes = self._tuning.buffer_bytes
        async with contextlib.AsyncExitStack() as stack:
            answer: RangedAnswer | None = None
            async with self._renewing:
                if self._url == link:
                    response = await stack.enter_async_context(
                        self._client.get(self._request.url, headers=_range_header(first, last))
                    )
                    self._url = str(response.url)
                    answer = self._client.answer(response, buffer_bytes=buffer_bytes)
            if answer is None:  # another connection renewed it meanwhile
                answer = await stack.enter_async_context(
                    self._client.ranged(self._url, first, last, buffer_bytes=buffer_bytes)
                )
            yield answer

    async def _stream_range(self, answer: RangedAnswer, segment: Segment) -> None:
        """A 206 for this segment streams into it; any other answer is a failure to explain."""
        self._raise_if_transient(answer.status, answer.headers, answer.url)
        if answer.status == 200:
            raise _Retryable("HTTP 200 to a Range request (Range support stopped)")
        if answer.status != 206:
            await answer.raise_for_status()
            raise _Retryable(f"HTTP {answer.status} to a Range request")
        self._check_range(answer.headers.get("content-range"), segment)
        await answer.stream_into(segment, self._write)

    async def _stream_single(self, answer: RangedAnswer, first: int) -> None:
        """No Range support or no length: the body as one stream. A failure raises _Retryable;
        the next request asks for `bytes=<what we have>-` (a 200 to that starts over)."""
        size = self._state.size
        segment = Segment(first, _UNKNOWN_END if size is None else size)
        try:
            await answer.stream_into(segment, self._write)
        except StreamError as error:
            raise _Retryable(f"{error} at byte {segment.position}", stalled=error.stalled) from None
        if size is None:
            # No length: the body's end is the file's, and it must be the source's size.
            size = self._request.expected_size
            if size is None:
                size = self._state.size = segment.position
            elif segment.position == size:
                self._state.size = size
        self._save(force=True)
        if segment.position < size:
            raise _Retryable(f"the answer ended at byte {segment.position} of {size}")

    # --- disk and bookkeeping -------------------------------------------------------------------
    def _write(self, offset: int, *chunks: bytes | memoryview) -> None:
        """Write bytes where they belong (on the loop: see fetch/disk.py) and record them.
        Nothing is ever written past the file's size: a body longer than the server or the
        source said (a lying Content-Length, an endless chunked answer) fails the file."""
        limit = self._state.size if self._state.size is not None else self._request.expected_size
        if limit is not None and offset + sum(len(chunk) for chunk in chunks) > limit:
            raise SizeMismatchError(
                f"{self._label}: the server sent more than the {limit} bytes the file has",
                hint="the server does not serve the file the source describes; report it",
            )
        if offset == 0:
            # The classic failure: a login page saved as .safetensors.
            check_body_start(bytes(chunks[0][:512]), self._content_type, self._label)
        try:
            written = write_at(self._fd, chunks, offset)
        except OSError as error:
            raise self._disk_error(error) from None
        self._state.done.add(offset, offset + written)
        self._done_bytes += written
        self._failures = 0
        assert self._hasher is not None
        self._hasher.advance(self._state.done.prefix_end())
        self._progress.advance(written)
        self._save()

    def _save(self, *, force: bool = False) -> None:
        """Record the done ranges every `save_every_s`, and every 4% of the file, so that a
        killed run costs its successor at most a few percent of the file."""
        now = time.monotonic()
        unsaved = self._done_bytes - self._saved_bytes
        if (
            force
            or now - self._saved_at >= self._tuning.save_every_s
            or unsaved >= max((self._state.size or 0) // 25, _MIN_SAVE_BYTES)
        ):
            try:
                save_partial(self._request.staging_path, self._state)
            except OSError as error:
                raise self._disk_error(error) from None
            self._saved_at, self._saved_bytes = now, self._done_bytes

    def _disk_error(self, error: OSError) -> FetchError:
        part = part_path(self._request.staging_path)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(part.parent).free
            return DiskFullError(
                f"{self._label}: disk full writing {part} (the file needs "
                f"{self._state.size} bytes, {free} are free there)"
            )
        return FetchError(
            f"{self._label}: cannot write {part}: {error}",
            hint="check that the models volume is mounted and writable",
        )

    def _failed(self, failure: _Retryable) -> float:
        """Count a failure; give up when too many came without progress, else the backoff."""
        self._failures += 1
        self._total_failures += 1
        tuning = self._tuning
        if self._failures > tuning.max_failures or self._total_failures > 8 * tuning.max_failures:
            self._save(force=True)
            error = TransferStalledError if failure.stalled else TransferFailedError
            raise error(
                f"{self._label}: {failure.reason}; gave up after {self._total_failures} failed "
                f"requests ({self._done_bytes} bytes kept for the next run)"
            )
        policy = self._client.retry
        # A long Retry-After from storage is cut short: the range may go to another connection.
        delay = min(policy.backoff_s(self._failures - 1, failure.retry_after), policy.max_delay_s)
        if delay:
            host = urlsplit(self._url).hostname or ""
            what = f"the download of {self._label}"
            attempts = tuning.max_failures + 1
            policy.notify(what, host, failure.reason, self._failures - 1, delay, attempts=attempts)
        return delay

    def _raise_if_transient(self, status: int, headers: Mapping[str, str], url: str) -> None:
        """_Retryable for a status the retry policy retries; other statuses are the caller's."""
        if self._client.retry.retryable(status):
            # 429 usually comes without Retry-After (CivitAI): the policy's backoff applies.
            retry_after = headers.get("retry-after")  # both transports: lower-case names
            raise _Retryable(f"HTTP {status} from {redact_url(url)}", retry_after=retry_after)


def _root_cause(group: BaseExceptionGroup) -> BaseException:
    """The failure that ended a file's connections (the others were only cancelled by it)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        elif not isinstance(error, asyncio.CancelledError):
            leaves.append(error)
    # Disk full outranks the rest: it decides whether the partial is kept.
    leaves.sort(key=lambda e: not isinstance(e, DiskFullError))
    return leaves[0] if leaves else group


def _range_header(first: int, last: int | None) -> dict[str, str]:
    return {"Range": f"bytes={first}-{'' if last is None else last}"}


def _content_range(header: str | None) -> tuple[int, int | None]:
    """`bytes a-b/total` → (a, total or None when the server says `*`)."""
    try:
        spec = (header or "").split(" ", 1)[1]
        span, _, total = spec.partition("/")
        return int(span.split("-", 1)[0]), None if total.strip() == "*" else int(total)
    except (IndexError, ValueError):
        raise _Retryable(f"unreadable Content-Range {header!r}") from None


def _total_size(header: str | None) -> int | None:
    """The total of a 416's `bytes */total`."""
    _, _, total = (header or "").partition("/")
    return int(total) if total.strip().isdigit() else None


__all__ = ["Tuning", "fetch_file"]
