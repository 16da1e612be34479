"""How long `ignition template` takes: in-process build + schema check, and the whole command.

    python benchmarks/template_generate.py [runs]

Prints the median of each; the command's time is mostly interpreter start and imports.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from ignition.template.build import TemplateInputs, build_request, render_json
from ignition.template.page import render_page
from ignition.template.schema import CREATE_TEMPLATE, request_errors


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    inputs = TemplateInputs(civitai_models="128713,46846", huggingface_models="flux1-dev,clip_l,ae")

    started = time.perf_counter()
    request_errors(build_request(inputs), CREATE_TEMPLATE)  # first call loads the schema
    print(
        f"first schema check (loads the 354 kB OpenAPI file): {time.perf_counter() - started:.3f} s"
    )

    timings = []
    for _ in range(200):
        started = time.perf_counter()
        body = build_request(inputs)
        request_errors(body, CREATE_TEMPLATE)
        render_json(body)
        render_page(inputs)
        timings.append(time.perf_counter() - started)
    print(f"build + check + render, in process: {statistics.median(timings) * 1000:.2f} ms")

    timings = []
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, "-m", "ignition", "template", "--no-input"]
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([*command, "--output-dir", directory], check=True, capture_output=True)
            timings.append(time.perf_counter() - started)
    print(f"`ignition template` command: {statistics.median(timings):.3f} s (median of {runs})")


if __name__ == "__main__":
    main()
