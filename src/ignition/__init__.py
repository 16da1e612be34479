"""Ignition: turns a RunPod GPU pod into a ready ComfyUI workstation."""

__version__ = "0.1.0"
