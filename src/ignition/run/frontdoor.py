"""The front door: Caddy owns COMFYUI_PORT and lets through only holders of the password or token.

ComfyUI trusts whoever reaches it (with the Manager UI, that is code execution on the GPU), and a
RunPod HTTP port is public. So with COMFYUI_AUTH on, ComfyUI listens on 127.0.0.1 only and Caddy
answers on the public port. Caddy's config is generated here, per start, as JSON: JSON (unlike the
2.6 Caddyfile) can switch the admin endpoint off and config autosave off, so the only copy of the
secrets Caddy sees is one root-only file in the run dir, never argv, never ~/.config/caddy.

Accepted, first match wins: the session cookie; `Authorization: Bearer <token>`; `?token=<token>`
(a browser navigation gets the cookie and a 302 to the same URL without the token; an API client is
just served); HTTP Basic as `admin`. Anything else is a bare 401 — never a redirect to an HTML
login, which is what breaks API and websocket clients behind other proxies. Refused with 403 before
any of that: an Origin other than the request's own, and another site's subresource request riding
on the cookie or cached Basic credentials (runpod.net pods are all "same-site" to each other).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from ignition import credentials
from ignition.atomic import write_atomic
from ignition.errors import ConfigError
from ignition.run.service import ServiceSpec
from ignition.run.urls import public_url
from ignition.settings import Settings

USERNAME = "admin"
COOKIE_NAME = "ignition_comfyui"
SESSION_MAX_AGE_S = 30 * 24 * 3600
INTERNAL_PORT_OFFSET = 10000
# Every distinct Basic credential costs one bcrypt verification of Caddy's CPU (cached afterwards).
# Cost 14 (Caddy's own default) is ~1-2 s per guess on a busy pod, which turns password guessing
# into a cheap CPU-exhaustion attack; cost 10 is ~0.1 s. The hash only lives in a root-only file
# next to the API token itself, so a slower hash would protect nothing an attacker could reach.
BCRYPT_COST = 10
# bcrypt looks at the first 72 bytes only (Caddy refuses longer ones): a longer password would
# silently accept anything with the same prefix.
_BCRYPT_MAX_BYTES = 72
# Tokens go into the Caddy config, headers, URLs and cookies: the URL-safe alphabet needs no
# quoting anywhere, so `;`, quotes and CR/LF injection are impossible by construction.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{24,}")
_SESSION_CONTEXT = b"ignition comfyui session v1\0"
_UPSTREAM_DOWN = (
    "ComfyUI is not answering: it is starting or restarting. This page works again once it is "
    "up; `ignition status` and the start-up log say more.\n"
)
# Fetch Metadata: a request another site's page made without the user navigating here.
_OTHER_SITE_SUBRESOURCE: dict[str, Any] = {
    "header": {"Sec-Fetch-Site": ["same-site", "cross-site"]},
    "not": [{"header": {"Sec-Fetch-Mode": ["navigate"]}}],
}


@dataclass(frozen=True)
class _Door:
    """Everything the generated config depends on."""

    listen: str
    upstream: str
    token: str
    session: str  # the cookie's value
    password_hash: str
    public_origin: str | None  # the pod's proxy URL, whatever Host RunPod's proxy sends


def internal_port(settings: Settings) -> int:
    """The loopback port ComfyUI uses while the front door owns COMFYUI_PORT."""
    if settings.comfyui_internal_port is not None:
        return settings.comfyui_internal_port
    port = settings.comfyui_port + INTERNAL_PORT_OFFSET
    if port > 65535:
        raise ConfigError(
            f"COMFYUI_PORT={settings.comfyui_port} leaves no room for ComfyUI's internal port "
            f"(COMFYUI_PORT + {INTERNAL_PORT_OFFSET} is above 65535)",
            hint="set COMFYUI_INTERNAL_PORT to a free port, or choose a COMFYUI_PORT below 55536",
        )
    if port == settings.filebrowser_port:
        raise ConfigError(
            f"ComfyUI's internal port {port} collides with FILEBROWSER_PORT",
            hint="set COMFYUI_INTERNAL_PORT to another free port",
        )
    return port


def comfyui_bind(settings: Settings) -> tuple[str, int]:
    """Host and port ComfyUI must listen on (`--listen HOST --port PORT`).

    Behind the front door ComfyUI must be unreachable from outside, so loopback only; with
    COMFYUI_AUTH=off ComfyUI itself serves the public port, as in the seed.
    """
    if settings.comfyui_auth:
        return "127.0.0.1", internal_port(settings)
    return "0.0.0.0", settings.comfyui_port  # noqa: S104 - RunPod's proxy needs every interface


def comfyui_public_url(settings: Settings) -> str:
    return public_url(settings, settings.comfyui_port)


def _pod_origin(settings: Settings) -> str | None:
    pod = settings.runpod_pod_id or ""
    # RunPod's ids are alphanumeric; anything else is not a pod id and stays out of the config.
    return comfyui_public_url(settings) if re.fullmatch(r"[A-Za-z0-9]+", pod) else None


def frontdoor_dir(settings: Settings) -> Path:
    """Caddy's config, HOME and storage: root-only, under the run dir, nothing in the real HOME."""
    return settings.run_dir / "frontdoor"


def frontdoor_service(
    settings: Settings,
    *,
    upstream_port: int | None = None,
    listen_host: str = "0.0.0.0",  # noqa: S104 - RunPod's proxy needs every interface
) -> ServiceSpec | None:
    """Write Caddy's config and say how to run it; None when COMFYUI_AUTH=off (nothing to run).

    Call it before every start of the service: it writes the config from the current secrets.
    `upstream_port` defaults to `comfyui_bind(settings)`'s port.
    """
    if not settings.comfyui_auth:
        return None
    caddy = shutil.which("caddy")
    if caddy is None:
        raise ConfigError(
            "COMFYUI_AUTH is on but the `caddy` program is not installed",
            hint="install it (`apt-get install caddy`), or set COMFYUI_AUTH=off to run ComfyUI "
            "without a login (anyone with the URL can then run code on this pod)",
        )
    port = upstream_port if upstream_port is not None else internal_port(settings)
    token = credentials.comfyui_api_token(settings).value
    password = credentials.comfyui_password(settings).value
    _check_secrets(token, password)
    door = _Door(
        listen=f"{listen_host}:{settings.comfyui_port}",
        upstream=f"127.0.0.1:{port}",
        token=token,
        session=session_value(token, password),
        password_hash=bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode(),
        public_origin=_pod_origin(settings),
    )
    root = frontdoor_dir(settings)
    home = root / "home"
    for directory in (root, home):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    config = root / "caddy.json"
    _write_private(config, json.dumps(caddy_config(door, storage=root / "data"), indent=2))
    probe_host = "127.0.0.1" if listen_host in {"0.0.0.0", "::", ""} else listen_host  # noqa: S104
    return ServiceSpec(
        name="frontdoor",
        argv=(caddy, "run", "--config", str(config)),
        # Caddy writes ~/.local/share/caddy, ~/.config/caddy and ~/.step unless told otherwise.
        env={
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
        },
        cwd=root,
        # Any answer below 500 means Caddy is up; without credentials that is the 401, so the
        # front door is ready even while ComfyUI is still loading.
        ready_url=f"http://{probe_host}:{settings.comfyui_port}/",
        public_url=comfyui_public_url(settings),
        console=False,  # Caddy's JSON log lines are for the log file, not the container log
    )


def session_value(token: str, password: str) -> str:
    """The cookie's value: stable across restarts, new whenever the token or password changes.

    An HMAC keyed by the token, so a leaked cookie reveals neither secret, and rotating either
    secret logs every browser out.
    """
    return hmac.new(
        token.encode(), _SESSION_CONTEXT + password.encode(), hashlib.sha256
    ).hexdigest()


def _check_secrets(token: str, password: str) -> None:
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigError(
            "COMFYUI_API_TOKEN must be at least 24 characters of A-Z, a-z, 0-9, '-' and '_'",
            hint="unset it to get a generated one, or use e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(36))'`",
        )
    if not password:
        raise ConfigError("the ComfyUI password is empty", hint="set COMFYUI_PASSWORD")
    if len(password.encode()) > _BCRYPT_MAX_BYTES:
        raise ConfigError(
            f"the ComfyUI password is longer than {_BCRYPT_MAX_BYTES} bytes",
            hint="choose a shorter COMFYUI_PASSWORD (or FILEBROWSER_PASSWORD, its default)",
        )


def caddy_config(door: _Door, *, storage: Path) -> dict[str, Any]:
    """Caddy 2.6 JSON config: one server, routes tried in order, each one terminal."""
    proxy = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": door.upstream}],
        # ComfyUI streams previews and progress: pass bytes on as they come.
        "flush_interval": -1,
        # ComfyUI and its custom nodes never see the credentials. Host passes unchanged (Caddy's
        # default): ComfyUI refuses a loopback Host with a foreign Origin.
        "headers": {"request": {"delete": ["Authorization"]}},
    }
    strip_token = {
        "handler": "rewrite",
        # Caddy 2.6 cannot edit single query parameters; the token's alphabet needs no
        # percent-encoding, so its raw form is what browsers and clients send.
        "uri_substring": [
            {"find": f"&token={door.token}", "replace": ""},
            {"find": f"token={door.token}&", "replace": ""},
            {"find": f"token={door.token}", "replace": ""},
        ],
    }
    has_token = {"query": {"token": [door.token]}}
    own_origins = ["'http://' + {http.request.hostport}", "'https://' + {http.request.hostport}"]
    if door.public_origin:
        own_origins.append(f"'{door.public_origin}'")
    routes: list[dict[str, Any]] = [
        {
            # runpod.net is not on the Public Suffix List: every pod's page is "same-site" with
            # this one, so SameSite cookies don't stop another pod's page (or its websocket) from
            # riding on the user's session. Only the request's own origin may send credentials.
            # RunPod's proxy speaks http to us while the browser's Origin says https.
            "match": [
                {
                    "expression": (
                        "{http.request.header.Origin} != '' && "
                        f"!({{http.request.header.Origin}} in [{', '.join(own_origins)}])"
                    )
                }
            ],
            "handle": [_refuse("Cross-origin request refused by Ignition's ComfyUI front door.")],
        },
        {
            "match": [
                {
                    "expression": f"{{http.request.cookie.{COOKIE_NAME}}} == '{door.session}'",
                    "not": [_OTHER_SITE_SUBRESOURCE],
                }
            ],
            "handle": [proxy],
        },
        {
            "match": [
                {"header": {"Authorization": [f"Bearer {door.token}", f"bearer {door.token}"]}}
            ],
            "handle": [proxy],
        },
        {
            # A browser opening a link with ?token=: keep the token out of the address bar,
            # history and Referer. The cookie route above serves the redirected request.
            "match": [
                {**has_token, "method": ["GET", "HEAD"], "header": {"Accept": ["*text/html*"]}},
                {
                    **has_token,
                    "method": ["GET", "HEAD"],
                    "header": {"Sec-Fetch-Dest": ["document"]},
                },
            ],
            "handle": [
                strip_token,
                _set_cookie(door),
                {
                    "handler": "static_response",
                    "status_code": 302,
                    "headers": {"Location": ["{http.request.uri}"], "Cache-Control": ["no-store"]},
                },
            ],
        },
        {"match": [has_token], "handle": [strip_token, proxy]},
        {
            # Browsers attach the cookie and cached Basic credentials to an <img>/<script> that
            # another pod's page points here (same-site, so SameSite=Lax allows it), and such
            # requests carry no Origin. Only navigations may arrive from another site on
            # ambient credentials; embedding from elsewhere needs the token.
            "match": [_OTHER_SITE_SUBRESOURCE],
            "handle": [_refuse("Cross-site request refused by Ignition's ComfyUI front door.")],
        },
        {
            # The authentication handler answers 401 before the cookie handler runs: the cookie
            # is never sent to someone who failed (a `handle` block in a Caddyfile would sort the
            # header directive first and leak it on the 401).
            "handle": [
                {
                    "handler": "authentication",
                    "providers": {
                        "http_basic": {
                            "accounts": [{"username": USERNAME, "password": door.password_hash}],
                            "hash": {"algorithm": "bcrypt"},
                            "hash_cache": {},
                            "realm": "ComfyUI",
                        }
                    },
                },
                _set_cookie(door),
                proxy,
            ]
        },
    ]
    for route in routes:
        route["terminal"] = True
    return {
        "admin": {"disabled": True, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage)},
        "logging": {
            "logs": {
                "default": {
                    # Error entries carry the request URI (Caddy 2.6 logs unhandled 5xx; the
                    # 502 below is handled): no token may reach the log, in ?token= or wherever
                    # a client put it. Caddy itself redacts Cookie and Authorization headers.
                    "encoder": {
                        "format": "filter",
                        "wrap": {"format": "json"},
                        "fields": {
                            "request>uri": {
                                "filter": "regexp",
                                "regexp": f"token=[^&]*|{door.token}",
                                "value": "REDACTED",
                            }
                        },
                    }
                }
            }
        },
        "apps": {
            "http": {
                # On SIGTERM, wait this long for requests in flight (RunPod kills after ~10 s).
                "grace_period": "2s",
                "servers": {
                    "comfyui": {
                        "listen": [door.listen],
                        "protocols": ["h1"],
                        # TLS ends at RunPod's proxy; Caddy must not try to get certificates.
                        "automatic_https": {"disable": True},
                        "routes": routes,
                        # Caddy's own 502 is an empty page; say what is going on instead.
                        "errors": {
                            "routes": [
                                {
                                    "match": [{"expression": "{http.error.status_code} == 502"}],
                                    "handle": [
                                        {
                                            "handler": "static_response",
                                            "status_code": 502,
                                            "body": _UPSTREAM_DOWN,
                                        }
                                    ],
                                }
                            ]
                        },
                    }
                },
            }
        },
    }


def _set_cookie(door: _Door) -> dict[str, Any]:
    """Set the session cookie; Secure when the browser spoke HTTPS to RunPod's proxy.

    Host-only (no Domain): a cookie for proxy.runpod.net would go to every pod. A client faking
    X-Forwarded-Proto over plain http only gets a cookie its own browser refuses to store.
    """
    base = (
        f"{COOKIE_NAME}={door.session}; Path=/; Max-Age={SESSION_MAX_AGE_S}; HttpOnly; SameSite=Lax"
    )
    https = {"header": {"X-Forwarded-Proto": ["https"]}}
    return {
        "handler": "subroute",
        "routes": [
            {
                "match": [https],
                "handle": [_header("Set-Cookie", f"{base}; Secure")],
            },
            {"match": [{"not": [https]}], "handle": [_header("Set-Cookie", base)]},
        ],
    }


def _refuse(reason: str) -> dict[str, Any]:
    return {"handler": "static_response", "status_code": 403, "body": reason + "\n"}


def _header(name: str, value: str) -> dict[str, Any]:
    return {"handler": "headers", "response": {"set": {name: [value]}}}


def _write_private(path: Path, text: str) -> None:
    # 0600 from the first byte: no window in which the secrets are readable by others.
    write_atomic(path, text, mode=0o600, durable=False)
