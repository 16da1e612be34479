"""Fetch stage: FetchRequest → verified bytes at the staging path (see engine.fetch_file)."""

from ignition.fetch.engine import ProgressCallback, Tuning, fetch_file

__all__ = ["ProgressCallback", "Tuning", "fetch_file"]
