"""fetch: a resolved file's URL → verified bytes in a staging file (see engine.fetch_file)."""

from ignition.fetch.engine import Tuning, fetch_file

__all__ = ["Tuning", "fetch_file"]
