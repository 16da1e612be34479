"""A UI-format workflow (what ComfyUI's Save writes: `nodes` + `links`) → the API format.

The UI format keeps each node's widget values as a list in display order, without names; the
running ComfyUI's /object_info gives each class's inputs in that order, which names them.
Rules the frontend follows, and so does this:

- a linked input becomes `[source_id, slot]`; Reroute nodes are looked through, a bypassed
  node (mode 4) passes on its input of the link's type, a muted node (mode 2) is left out;
- a widget (INT, FLOAT, STRING, BOOLEAN or a choice list) takes the next widget value, also
  when it was converted to an input (the value stays in the list); a seed's
  "control after generate" setting (fixed/randomize/…) follows it and is skipped;
- Note and MarkdownNote are comments; a PrimitiveNode's value is already in its targets' lists.

A node class this ComfyUI does not know, or a subgraph, cannot be converted: the error says so
and how to export the API format instead.
"""

from __future__ import annotations

from typing import Any

from ignition.errors import JobInputError

_WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
_CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
_COMMENTS = frozenset({"Note", "MarkdownNote"})
_MUTED, _BYPASSED = 2, 4
EXPORT_HINT = "in ComfyUI use Workflow → Export (API) and send that file as 'workflow'"

Link = tuple[int, int, str]  # source node id, source slot, type


def convert(workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    nodes = {int(node["id"]): node for node in workflow["nodes"] if isinstance(node, dict)}
    links = _links(workflow["links"])
    api: dict[str, Any] = {}
    for node_id, node in nodes.items():
        kind = str(node.get("type", ""))
        if kind in _COMMENTS or kind in {"Reroute", "PrimitiveNode"}:
            continue
        if node.get("mode") in (_MUTED, _BYPASSED):
            continue
        info = object_info.get(kind)
        if not isinstance(info, dict):
            raise JobInputError(
                f"UI-format workflow: node {node_id} is a {kind!r}, which this ComfyUI does not "
                "know (a missing custom node, or a subgraph), so it cannot be converted",
                hint=EXPORT_HINT,
            )
        inputs = _inputs(node, info, nodes, links)
        title = node.get("title") or kind
        api[str(node_id)] = {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}
    if not api:
        raise JobInputError("UI-format workflow has no nodes to run", hint=EXPORT_HINT)
    return api


def _links(raw: object) -> dict[int, Link]:
    links: dict[int, Link] = {}
    for link in raw if isinstance(raw, list) else []:
        if isinstance(link, list) and len(link) >= 6:
            links[int(link[0])] = (int(link[1]), int(link[2]), str(link[5]))
        elif isinstance(link, dict):
            links[int(link["id"])] = (
                int(link["origin_id"]),
                int(link["origin_slot"]),
                str(link.get("type", "")),
            )
    return links


def _ordered_inputs(info: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    spec = info.get("input") or {}
    order = info.get("input_order") or {}
    named: list[tuple[str, list[Any]]] = []
    for section in ("required", "optional"):
        entries = spec.get(section) or {}
        for name in order.get(section) or list(entries):
            if name in entries:
                config = entries[name]
                named.append((name, config if isinstance(config, list) else [config]))
    return named


def _is_widget(config: list[Any]) -> bool:
    return bool(config) and (isinstance(config[0], list) or config[0] in _WIDGET_TYPES)


def _has_control(name: str, config: list[Any]) -> bool:
    options = config[1] if len(config) > 1 and isinstance(config[1], dict) else {}
    return bool(options.get("control_after_generate")) or (
        config[0] == "INT" and name in {"seed", "noise_seed"}
    )


def _inputs(
    node: dict[str, Any], info: dict[str, Any], nodes: dict[int, Any], links: dict[int, Link]
) -> dict[str, Any]:
    linked = {
        str(slot["name"]): slot["link"]
        for slot in node.get("inputs") or []
        if isinstance(slot, dict) and slot.get("link") is not None
    }
    raw_values = node.get("widgets_values")
    by_name = raw_values if isinstance(raw_values, dict) else {}
    values = list(raw_values) if isinstance(raw_values, list) else []
    inputs: dict[str, Any] = {}
    for name, config in _ordered_inputs(info):
        widget = _is_widget(config)
        source = _source(linked[name], nodes, links) if name in linked else None
        if widget and (values or name in by_name):
            value = by_name[name] if name in by_name else values.pop(0)
            if _has_control(name, config) and values and values[0] in _CONTROL_VALUES:
                values.pop(0)
            if source is None:
                inputs[name] = value
        if source is not None:
            inputs[name] = [str(source[0]), source[1]]
    for name, link in linked.items():  # dynamic inputs /object_info does not list
        source = _source(link, nodes, links)
        if name not in inputs and source is not None:
            inputs[name] = [str(source[0]), source[1]]
    return inputs


def _source(link_id: int, nodes: dict[int, Any], links: dict[int, Link]) -> tuple[int, int] | None:
    """The real node and slot behind a link: through Reroutes and bypassed nodes; None when
    it leads nowhere (a muted node, a dangling link) or to a PrimitiveNode (value inlined)."""
    seen: set[int] = set()
    while link_id in links and link_id not in seen:
        seen.add(link_id)
        origin, slot, kind = links[link_id]
        node = nodes.get(origin)
        if node is None or node.get("type") == "PrimitiveNode" or node.get("mode") == _MUTED:
            return None
        if node.get("type") == "Reroute" or node.get("mode") == _BYPASSED:
            passing = [
                s
                for s in node.get("inputs") or []
                if s.get("link") is not None
                and (node.get("type") == "Reroute" or s.get("type") == kind)
            ]
            if not passing:
                return None
            link_id = int(passing[0]["link"])
            continue
        return origin, slot
    return None
