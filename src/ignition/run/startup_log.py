"""Start-up logging: stdout and IGNITION_STARTUP_LOG, with every known secret masked.

Masking happens in the formatter, after the message is fully rendered, so a secret is caught
wherever it appears: in our messages, in a child's output line, in an exception's text.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr

from ignition.credentials import secrets_file
from ignition.settings import Settings

MASK = "********"
_FORMAT = "%(asctime)s %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class MaskingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(_FORMAT, _DATE_FORMAT)
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if secret:
                # A token inside a URL arrives percent-encoded.
                self._secrets.update({secret, quote(secret, safe="")})
        # Longest first: a secret containing another is replaced whole.
        self._ordered = sorted(self._secrets, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._ordered:
            text = text.replace(secret, MASK)
        return text


class LogLines(io.StringIO):
    """A text stream whose lines become log records (so they are masked and reach the log file)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line.rstrip())
        return len(text)


def known_secrets(settings: Settings) -> list[str]:
    """Every secret setting, plus the passwords and tokens Ignition generated earlier."""
    values = [
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    ]
    try:
        stored = json.loads(secrets_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if isinstance(stored, dict):
        values.extend(str(value) for value in stored.values())
    return values


def configure_startup_logging(settings: Settings) -> MaskingFormatter:
    """Route the `ignition` loggers to stdout and the start-up log; returns the formatter so
    secrets generated later (a file-browser password) can be added to it."""
    formatter = MaskingFormatter(known_secrets(settings))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    try:
        handlers.append(_private_file_handler(settings.startup_log))
    except OSError as error:
        print(f"warning: cannot write {settings.startup_log}: {error}", file=sys.stderr)
    root = logging.getLogger("ignition")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return formatter


def _private_file_handler(path: Path) -> logging.FileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Masked, but still a record of the pod's life: readable by root only.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return logging.FileHandler(path, encoding="utf-8")
