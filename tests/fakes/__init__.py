"""Fake CivitAI, Hugging Face and presigned storage that speak real HTTP on loopback."""
