"""The stand-in's custom node loading, as ComfyUI's nodes.py does it (PROTOCOLS.md §4).

Every folder in `<base>/custom_nodes` (not `__pycache__`, not ending in `.disabled`) is imported
from its `__init__.py` as `custom_nodes.<folder>`; its NODE_CLASS_MAPPINGS classes are served by
/object_info. The import report uses ComfyUI's format, so tests can read failures the same way.
"""

import importlib.util
import sys
import time
import traceback
from pathlib import Path


def load_custom_nodes(base: Path) -> dict[str, type]:
    classes: dict[str, type] = {}
    root = base / "custom_nodes"
    report: list[str] = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name == "__pycache__" or entry.name.endswith(".disabled") or not entry.is_dir():
            continue
        started = time.perf_counter()
        failed = ""
        try:
            spec = importlib.util.spec_from_file_location(
                f"custom_nodes.{entry.name}", entry / "__init__.py"
            )
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            classes.update(module.NODE_CLASS_MAPPINGS)
        except Exception as error:  # ComfyUI logs the failure and goes on, as here
            traceback.print_exc()
            print(f"Cannot import {entry} module for custom nodes: {error}", flush=True)
            failed = " (IMPORT FAILED)"
        report.append(f"{time.perf_counter() - started:6.1f} seconds{failed}: {entry}")
    if report:
        print("Import times for custom nodes:\n" + "\n".join(report), flush=True)
    return classes


def object_info(classes: dict[str, type], name: str) -> dict[str, object]:
    """/object_info (name "") or /object_info/<name>, for the custom classes."""
    chosen = {k: v for k, v in classes.items() if not name or k == name}
    return {k: {"name": k, "category": getattr(v, "CATEGORY", "")} for k, v in chosen.items()}
