"""Start-up logging: stdout and IGNITION_STARTUP_LOG, with every known secret masked.

Masking happens in the formatter, after the message is fully rendered, so a secret is caught
wherever it appears: in our messages, in a child's output line, in an exception's text.

A record logged with `extra=FILE_ONLY` (third-party services' chatter) goes to the file only.

One exception, on stdout only: an announcement (`log.info(..., extra=ANNOUNCEMENT)`) carries a
password or token Ignition generated, which the user has no other way to learn than the container
log. The start-up log file masks it like everything else.
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
ANNOUNCEMENT = {"announcement": True}
FILE_ONLY = {"file_only": True}


def _for_the_console(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class MaskingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = (), *, show_announcements: bool = False) -> None:
        super().__init__(_FORMAT, _DATE_FORMAT)
        self._show_announcements = show_announcements
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
        if self._show_announcements and getattr(record, "announcement", False):
            return text
        return self.mask(text)

    def mask(self, text: str) -> str:
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


class StartupLog:
    """The configured handlers' formatters, so secrets generated later can be masked too."""

    def __init__(self, formatters: Iterable[MaskingFormatter]) -> None:
        self._formatters = list(formatters)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        values = list(secrets)
        for formatter in self._formatters:
            formatter.add(values)

    def mask(self, text: str) -> str:
        """For text shown elsewhere than the log (a crash report in `ignition status`)."""
        return self._formatters[0].mask(text) if self._formatters else text


def configure_startup_logging(settings: Settings) -> StartupLog:
    """Route the `ignition` loggers to stdout and the start-up log, secrets masked."""
    secrets = known_secrets(settings)
    stdout = logging.StreamHandler(sys.stdout)
    stdout.setFormatter(MaskingFormatter(secrets, show_announcements=True))
    stdout.addFilter(_for_the_console)
    handlers: list[logging.Handler] = [stdout]
    try:
        to_file = _private_file_handler(settings.startup_log)
        to_file.setFormatter(MaskingFormatter(secrets))
        handlers.append(to_file)
    except OSError as error:
        print(f"warning: cannot write {settings.startup_log}: {error}", file=sys.stderr)
    root = logging.getLogger("ignition")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return StartupLog(h.formatter for h in handlers if isinstance(h.formatter, MaskingFormatter))


def _private_file_handler(path: Path) -> logging.FileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Masked, but still a record of the pod's life: readable by root only.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return logging.FileHandler(path, encoding="utf-8")
