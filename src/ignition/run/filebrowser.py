"""The file browser: copyparty serving $WORKSPACE behind a password, described as a ServiceSpec.

Steps, in the order `filebrowser_service` takes them:
1. FILEBROWSER_ENABLED=false → no service.
2. Check that the run dir lies outside the served workspace, and that the account and paths can be
   written into copyparty's line-based config unchanged (a newline or "  #" in a password would
   silently change the config, not the password).
3. Write every setting, the password included, to one 0600 file in the run dir; argv carries only
   that file's path, because `ps` shows argv to every user on the box.
4. Point all of copyparty's own state (sessions, salts, upload snapshots) into the run dir, so it
   writes nothing into the workspace or into HOME's dotfiles.

The port RunPod exposes is public, so the file browser is an internet-facing server: accounts only,
no anonymous access, no symlink leaves the workspace, and every protocol or feature that talks to
the network on its own or scans 20 GB model files at start-up is off.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ignition import credentials
from ignition.atomic import write_atomic
from ignition.credentials import Secret
from ignition.errors import ConfigError
from ignition.run import urls
from ignition.run.service import ServiceSpec
from ignition.settings import Settings

SERVICE_NAME = "filebrowser"
# RunPod's proxy reaches the pod from outside the container, so the port must be bound on every
# interface; tests pass 127.0.0.1.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
CONFIG_NAME = "copyparty.conf"

# copyparty parses `user: password` lines and treats ":" `,` and whitespace in names specially.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Behind RunPod's proxy every visitor arrives from the proxy's address, so a ban locks out the
# owner too: copyparty's defaults (a day after 9 failures) would let any scanner shut the owner
# out. Ban after 20 failures in 10 minutes, for 30 minutes: still only ~40 guesses an hour.
_BAN = "20,10,30"

# Each option is one line of copyparty's [global] section; see `python -m copyparty --help`.
_OPTIONS = (
    "usernames",  # log in with user AND password (copyparty's default checks the password only)
    "http-only",  # RunPod's proxy terminates TLS; no certificate generation at start
    "no-crt",
    "xvol",  # refuse symlinks that point outside the workspace
    "xdev",  # and bind mounts / other filesystems reached through it
    "no-robots",
    f"ban-pw: {_BAN}",
    f"ban-403: {_BAN}",
    f"ban-422: {_BAN}",
    # Thumbnails, media tags and audio transcoding would run ffmpeg/pillow over multi-GB models;
    # the up2k database (-e2d) stays off so nothing is hashed or indexed at start-up.
    "no-thumb",
    "no-mtag-ff",
    "no-acode",
    # Text-editor backups go to the run dir (the volume's hist), not into .hist/ in the workspace.
    "md-hist: v",
    # Not enabled, and listed here so a reader sees they were considered: zeroconf (mDNS, SSDP),
    # FTP, SFTP, TFTP, SMB and the version check (vc-url) are all off unless asked for.
)


def filebrowser_service(
    settings: Settings, *, password: Secret | None = None, bind: str = ALL_INTERFACES
) -> ServiceSpec | None:
    """The supervised copyparty process, or None when FILEBROWSER_ENABLED=false.

    `password` is the Secret the runtime fetched (pass the same one to `filebrowser_announcement`,
    whose one-time print depends on its `generated` flag); it is fetched here when omitted.
    Calling this again rewrites the same config, so a restarted process starts identically.
    """
    if not settings.filebrowser_enabled:
        return None
    state = state_dir(settings)
    _check_outside_workspace(settings, state)
    _check_config_safe(settings)
    secret = password if password is not None else credentials.filebrowser_password(settings)
    _check_password_safe(secret.value)

    for directory in (state, state / "home", state / "hist", state / "empty"):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    config = state / CONFIG_NAME
    _write_private(config, _config_text(settings, secret.value, bind, state))

    host = "127.0.0.1" if bind == ALL_INTERFACES else bind
    return ServiceSpec(
        name=SERVICE_NAME,
        argv=(sys.executable, "-m", "copyparty", "-c", str(config)),
        env={
            # copyparty keeps sessions, salts and other databases in $XDG_CONFIG_HOME/copyparty
            # (else ~/.config); HOME is redirected too, so no dotfile lands in the real one.
            "XDG_CONFIG_HOME": str(state),
            "HOME": str(state / "home"),
            # An inherited PRTY_CONFIG would load a second config; ${VAR} expansion would rewrite a
            # password or path containing "${".
            "PRTY_CONFIG": "",
            "PRTY_NO_ENVEXPAND": "1",
            "PYTHONUNBUFFERED": "1",  # log lines reach the supervisor as they happen
        },
        cwd=state,
        ready_url=f"http://{host}:{settings.filebrowser_port}/",
        public_url=public_url(settings),
        console=False,  # its banner lists internal addresses; the access block says the URL
    )


def filebrowser_announcement(settings: Settings, password: Secret) -> list[str]:
    """The start-up log lines saying where the file browser is and how to log in.

    The password itself is included only when it was generated by this start: it is shown once,
    then lives only in the root-only secrets file.
    """
    if not settings.filebrowser_enabled:
        return ["File browser: off (FILEBROWSER_ENABLED=false)"]
    store = credentials.secrets_file(settings)
    lines = [f"File browser: {public_url(settings)}  user: {settings.filebrowser_username}"]
    if password.generated:
        lines.append(
            f"File browser password (generated; shown only now, kept root-only in {store}): "
            f"{password.value}"
        )
    elif settings.filebrowser_password is not None:
        lines.append("File browser password: the FILEBROWSER_PASSWORD you set")
    else:
        lines.append(f"File browser password: generated at first start, kept root-only in {store}")
    return lines


def public_url(settings: Settings) -> str:
    """Where a person opens the file browser (a folder listing, hence the trailing slash)."""
    return urls.public_url(settings, settings.filebrowser_port) + "/"


def state_dir(settings: Settings) -> Path:
    """copyparty's config file and all the state it writes."""
    return settings.run_dir / SERVICE_NAME


def _config_text(settings: Settings, password: str, bind: str, state: Path) -> str:
    user = settings.filebrowser_username
    lines = [
        "[global]",
        f"  i: {bind}",
        f"  p: {settings.filebrowser_port}",
        "  name: ignition",
        f"  hist: {state / 'hist'}",
        f"  ses-db: {state / 'sessions.db'}",
        *(f"  {option}" for option in _OPTIONS),
        "",
        "[accounts]",
        f"  {user}: {password}",
        "",
        # One volume, the workspace, for one account; anyone else gets nothing ("*" is never
        # granted). No "." permission: dotfiles stay out of listings.
        "[/]",
        f"  {settings.workspace}",
        "  accs:",
        f"    rwmd: {user}",
        "",
        # The credentials store lies inside the workspace; a volume mounted over it, backed by an
        # empty directory and granting nothing that reads or writes, keeps it from being
        # downloaded, replaced or deleted through the browser.
        f"[/{_credentials_dir(settings).relative_to(settings.workspace).as_posix()}]",
        f"  {state / 'empty'}",
        "  accs:",
        f"    g: {user}",
        "",
    ]
    return "\n".join(lines)


def _credentials_dir(settings: Settings) -> Path:
    return credentials.secrets_file(settings).parent


def _check_config_safe(settings: Settings) -> None:
    user = settings.filebrowser_username
    if not _USERNAME.fullmatch(user):
        raise ConfigError(
            f"FILEBROWSER_USERNAME {user!r} cannot be used as a login name",
            hint="use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit",
        )
    for name, path in (("WORKSPACE", settings.workspace), ("IGNITION_RUN_DIR", settings.run_dir)):
        if _has_control_char(str(path)) or "  #" in str(path):
            raise ConfigError(
                f"{name} {str(path)!r} cannot be passed to the file browser",
                hint=f"set {name} to a path without control characters or '  #'",
            )


def _check_password_safe(password: str) -> None:
    if not password or _has_control_char(password) or "  #" in password:
        raise ConfigError(
            "FILEBROWSER_PASSWORD cannot be used: it is empty, holds a control character "
            "(newline, tab …) or two spaces before a '#'",
            hint="choose another password, or unset FILEBROWSER_PASSWORD to get a generated one",
        )


def _check_outside_workspace(settings: Settings, state: Path) -> None:
    # The config holds the password in plain text; inside the served tree it would be downloadable.
    if state.resolve().is_relative_to(settings.workspace.resolve()):
        raise ConfigError(
            f"IGNITION_RUN_DIR ({settings.run_dir}) is inside WORKSPACE ({settings.workspace}), "
            "which the file browser serves: its password file would be downloadable",
            hint="set IGNITION_RUN_DIR to a directory outside WORKSPACE (default /run/ignition)",
        )


def _has_control_char(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _write_private(path: Path, text: str) -> None:
    # 0600 from the first byte: the password is never readable by others, not even briefly.
    write_atomic(path, text, mode=0o600, durable=False)
