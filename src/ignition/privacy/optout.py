"""Environment variables with which libraries and tools in the pod switch their own telemetry off.

Set for every child Ignition starts (ComfyUI and its custom nodes, the file browser) and for
Ignition's own process, so the opt-out holds even for hosts the blocklist cannot name.
"""

from __future__ import annotations

_OPT_OUT_ENV: dict[str, str] = {
    # huggingface_hub (and transformers/diffusers through it) reports usage to huggingface.co,
    # which downloads need, so it can only be switched off, not blocked.
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # The cross-tool convention (consoledonottrack.com); comfy-cli honours it, as do many CLIs.
    "DO_NOT_TRACK": "1",
    # comfy-cli's own switch (any value but "" or "0"); older releases read DISABLE_TELEMETRY.
    "COMFY_NO_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    # Gradio, embedded by some custom nodes, posts usage to api.gradio.app unless told not to.
    "GRADIO_ANALYTICS_ENABLED": "False",
    # albumentations (a dependency of popular preprocessor nodes) asks PyPI for updates on import.
    "NO_ALBUMENTATIONS_UPDATE": "1",
}


def optout_env() -> dict[str, str]:
    """A fresh copy of the opt-out variables, to merge into a child's environment."""
    return dict(_OPT_OUT_ENV)
