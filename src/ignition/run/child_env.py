"""What a child process sees of Ignition's environment: built from an allow-list, never a copy.

Every child (Caddy, copyparty, ComfyUI) gets the system's basics — PATH, HOME, USER, the locale
(LANG, LC_*), TZ, TMPDIR and the CUDA/NVIDIA variables a GPU stack reads — plus what its builder
sets in its `ServiceSpec.env` (its own config paths) and the telemetry opt-out. None of them gets
a credential from Settings (`SECRET_ENV_NAMES`: tokens, passwords, the RunPod API key): the front
door and the file browser read theirs from 0600 files, and ComfyUI needs none — it runs arbitrary
custom nodes, so a token it holds is a token every node holds.

ComfyUI alone also keeps the rest of the user's variables (`inherited_for_comfyui`): custom nodes
read variables of their own (PYTHONPATH, HF_HOME, a node's API key) that Ignition cannot list.
"""

from __future__ import annotations

from ignition.settings import SECRET_ENV_NAMES, Settings

_BASIC_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR"}
    | {"LD_LIBRARY_PATH"}  # where the CUDA libraries are found
)
_BASIC_PREFIXES = ("LC_", "CUDA_", "NVIDIA_")


def basic_env(settings: Settings) -> dict[str, str]:
    """The variables every child gets: the system's basics, never a secret."""
    return {
        name: value
        for name, value in settings.environ.items()
        if (name in _BASIC_NAMES or name.startswith(_BASIC_PREFIXES))
        and name not in SECRET_ENV_NAMES
    }


def inherited_for_comfyui(settings: Settings) -> dict[str, str]:
    """The user's variables ComfyUI and its custom nodes keep: everything but a credential."""
    return {name: value for name, value in settings.environ.items() if name not in SECRET_ENV_NAMES}
