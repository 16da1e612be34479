"""Fake services on loopback that behave like the real ones (PROTOCOLS.md), failures included."""
