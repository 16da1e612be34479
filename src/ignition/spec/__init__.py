"""spec: the user's model lists (env vars, CLI flags) → ModelRefs."""

from ignition.spec.parse import ParsedSpecs, parse_specs

__all__ = ["ParsedSpecs", "parse_specs"]
