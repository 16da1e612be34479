"""Is a password or token the user set strong enough to put on a public port?

The file browser and the ComfyUI front door answer on ports RunPod makes public; a password from
a tutorial (`runpod`, the seed's old default) or a token of one repeated letter is found by the
first scanner. Refused values are replaced by generated ones (see ignition.credentials), so these
rules only have to be cheap and clear, not a full strength meter.
"""

from __future__ import annotations

MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_DISTINCT = 6  # "aaaaaaaaaaab" and "abababababab" are long, not strong
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_DISTINCT = 10  # a generated 24-character token has ~20 different characters
# Lower case, trailing digits and punctuation removed: "Runpod2024!" is "runpod".
_WELL_KNOWN = frozenset(
    {
        "runpod", "password", "passw0rd", "admin", "administrator", "comfyui", "comfy", "changeme",
        "letmein", "qwerty", "qwertyuiop", "secret", "welcome", "default", "root", "toor",
        "filebrowser", "copyparty", "ignition", "iloveyou", "monkey", "dragon", "abc", "test",
    }
)  # fmt: skip


def password_weakness(value: str) -> str | None:
    """Why `value` is too weak for a password on a public port, or None when it will do."""
    if is_well_known(value):
        return "it is a well-known password"
    if value.isdigit():
        return "it is only digits"
    if len(value) < MIN_PASSWORD_LENGTH:
        return f"it is shorter than {MIN_PASSWORD_LENGTH} characters"
    if len(set(value)) < MIN_PASSWORD_DISTINCT:
        return f"it has fewer than {MIN_PASSWORD_DISTINCT} different characters"
    return None


def token_weakness(value: str) -> str | None:
    """Why `value` is too weak for an API token (which also unlocks ComfyUI), or None.

    A token of the wrong shape is not weak: the front door refuses it with its own message.
    """
    if len(value) >= MIN_TOKEN_LENGTH and len(set(value)) < MIN_TOKEN_DISTINCT:
        return f"it has fewer than {MIN_TOKEN_DISTINCT} different characters: not random"
    return None


def is_well_known(value: str) -> bool:
    """A password from the list above, or one of them with digits or symbols added at the end."""
    core = value.lower().rstrip("0123456789!@#$%^&*()-_=+.?~ ")
    return core in _WELL_KNOWN or value.lower() in _WELL_KNOWN
