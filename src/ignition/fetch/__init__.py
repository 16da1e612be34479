"""fetch: a resolved file's URL → verified bytes in a staging file."""

from ignition.fetch.transfer import fetch_file

__all__ = ["fetch_file"]
