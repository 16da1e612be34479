"""What a transfer reports while it runs; the pipeline hands each transfer one of these."""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    def set_total(self, total_bytes: int | None) -> None:
        """The file's size once the server has said it (None: unknown)."""

    def advance(self, n_bytes: int) -> None:
        """`n_bytes` more bytes are on disk."""

    def reset(self, done_bytes: int = 0) -> None:
        """The transfer starts over (or resumes) with `done_bytes` already on disk."""


class NoProgress:
    """A TransferProgress that reports nothing (library callers, tests)."""

    def set_total(self, total_bytes: int | None) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        pass

    def reset(self, done_bytes: int = 0) -> None:
        pass
