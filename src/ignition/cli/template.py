"""`ignition template [--deploy]`: write the RunPod template, and create or update it on RunPod.

Values come from flags, then the environment (the seed's variables), then Ignition's defaults.
Tokens and passwords never enter the template: it refers to RunPod secrets by name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ignition.atomic import write_atomic
from ignition.cli._paths import require_folder
from ignition.errors import ConfigError
from ignition.settings import Settings, load_settings
from ignition.template.build import (
    DEFAULT_CONTAINER_DISK_GB,
    DEFAULT_NAME,
    DEFAULT_VOLUME_GB,
    SecretNames,
    TemplateInputs,
    build_request,
    render_json,
)
from ignition.template.image import choose_image, placeholder_warning
from ignition.template.page import render_page
from ignition.template.pick import pick_models
from ignition.template.schema import CREATE_TEMPLATE, request_errors

JSON_FILE = "runpod-template.json"
MARKDOWN_FILE = "runpod-template.md"
SERVERLESS_JSON_FILE = "runpod-serverless-template.json"
SERVERLESS_NAME = f"{DEFAULT_NAME} serverless"


def register(subparsers: Any) -> None:
    defaults = SecretNames()
    parser = subparsers.add_parser(
        "template",
        help="write the RunPod template; --deploy creates or updates it in your account",
        description=(
            f"Write {JSON_FILE} (RunPod's v2 create-template request) and {MARKDOWN_FILE} (its "
            "description page). With --deploy, create the template through RunPod's API using "
            "RUNPOD_API_KEY, or update the one that already has its name."
        ),
        epilog=(
            "example: ignition template --hf flux1-schnell,clip_l,ae "
            "--image ghcr.io/OWNER/REPO:latest"
        ),
    )
    parser.add_argument("--deploy", action="store_true", help="create or update it on RunPod")
    parser.add_argument(
        "--serverless",
        action="store_true",
        help=f"a template for serverless endpoint workers ({SERVERLESS_JSON_FILE}): no ports, "
        "no volume of its own; see docs/serverless.md",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request --deploy would send (key masked); write and send nothing",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path(), help="where to write the files (default: .)"
    )
    parser.add_argument("--name", help=f"default: {DEFAULT_NAME} (--serverless: {SERVERLESS_NAME})")
    parser.add_argument(
        "--image",
        help="the Docker image (default: IGNITION_IMAGE, else ghcr.io/OWNER/REPO:latest for the "
        "GitHub checkout Ignition runs from, which .github/workflows/image.yml publishes)",
    )
    parser.add_argument(
        "--civitai", metavar="IDS", help="CivitAI version ids, comma-separated (CIVITAI_MODELS)"
    )
    parser.add_argument(
        "--hf",
        metavar="NAMES",
        help="Hugging Face repos, files or short names, comma-separated (HUGGINGFACE_MODELS)",
    )
    parser.add_argument(
        "--manifest",
        metavar="URL",
        default="",
        help="point pods at this ignition.yaml (IGNITION_MANIFEST; its ignition.lock beside it "
        "pins the files); an http(s) URL, or a path under /workspace",
    )
    parser.add_argument(
        "--no-input",
        action="store_true",
        help="never ask for models, even at a terminal (they are asked for when stdin is a "
        "terminal and neither the flags nor CIVITAI_MODELS/HUGGINGFACE_MODELS give any)",
    )
    parser.add_argument(
        "--disk-gb",
        type=int,
        default=DEFAULT_CONTAINER_DISK_GB,
        help=f"container disk (default: {DEFAULT_CONTAINER_DISK_GB})",
    )
    parser.add_argument(
        "--volume-gb",
        type=int,
        default=DEFAULT_VOLUME_GB,
        help=f"volume at /workspace, at least 10 (default: {DEFAULT_VOLUME_GB})",
    )
    parser.add_argument(
        "--jupyter", action="store_true", help="start JupyterLab and expose 8888/http"
    )
    parser.add_argument(
        "--cuda",
        metavar="VERSIONS",
        default="",
        help="only hosts with these CUDA versions, comma-separated, e.g. 12.8,12.9 (default: any)",
    )
    parser.add_argument(
        "--civitai-secret",
        default=defaults.civitai_token,
        help=f"RunPod secret holding CIVITAI_TOKEN (default: {defaults.civitai_token})",
    )
    parser.add_argument(
        "--hf-secret",
        default=defaults.hf_token,
        help=f"RunPod secret holding HF_TOKEN (default: {defaults.hf_token})",
    )
    parser.add_argument(
        "--filebrowser-secret",
        default=defaults.filebrowser_password,
        help=(
            f"RunPod secret holding FILEBROWSER_PASSWORD (default: {defaults.filebrowser_password})"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    inputs = _inputs(args, settings)
    warning = placeholder_warning(inputs.image)
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    body = build_request(inputs)
    problems = request_errors(body, CREATE_TEMPLATE)
    if problems:
        raise ConfigError(
            "the template breaks RunPod's schema: " + "; ".join(problems),
            hint="adjust the flag for the field named (--volume-gb, --disk-gb, --cuda, --name)",
        )
    # deploy is imported only when used: aiohttp is a third of this command's start-up, and
    # writing the files (the common case) needs no network.
    if args.dry_run:
        from ignition.template.deploy import describe_request

        print(describe_request(body, settings.runpod_api_url), end="")
        if settings.runpod_api_key is None:
            print("note: RUNPOD_API_KEY is not set; --deploy would stop there", file=sys.stderr)
        return 0
    require_folder(args.output_dir, "--output-dir")
    files = (
        {SERVERLESS_JSON_FILE: render_json(body)}
        if inputs.serverless
        else {JSON_FILE: render_json(body), MARKDOWN_FILE: render_page(inputs)}
    )
    written = _write(args.output_dir, files)
    for path in written:
        print(f"wrote {path}")
    if args.deploy:
        if settings.runpod_api_key is None:
            raise ConfigError(
                "--deploy needs RUNPOD_API_KEY",
                hint="export RUNPOD_API_KEY (Settings → API Keys in the RunPod console); "
                "or import the written JSON by hand",
            )
        from ignition._http import Proxies
        from ignition.template.deploy import deploy_template

        deployed = asyncio.run(
            deploy_template(
                body,
                api_url=settings.runpod_api_url,
                api_key=settings.runpod_api_key,
                proxies=Proxies.of(settings),
            )
        )
        verb = "created" if deployed.created else "updated"
        print(f"{verb} template {deployed.name!r}: id {deployed.template_id}")
        print(f"deploy it: {deployed.console_url}")
    return 0


def _inputs(args: argparse.Namespace, settings: Settings) -> TemplateInputs:
    civitai = args.civitai if args.civitai is not None else settings.civitai_models
    huggingface = args.hf if args.hf is not None else settings.huggingface_models
    asked_for = (
        args.civitai is not None or args.hf is not None or civitai or huggingface or args.manifest
    )
    if not (asked_for or args.no_input) and sys.stdin.isatty():
        civitai, huggingface = pick_models(input, print)
    default_name = SERVERLESS_NAME if args.serverless else DEFAULT_NAME
    return TemplateInputs(
        name=args.name or default_name,
        serverless=args.serverless,
        image=choose_image(args.image, settings.image, Path(__file__).parent),
        civitai_models=civitai,
        huggingface_models=huggingface,
        manifest=args.manifest,
        container_disk_gb=args.disk_gb,
        volume_gb=args.volume_gb,
        comfyui_port=settings.comfyui_port,
        filebrowser_port=settings.filebrowser_port,
        persistent_storage=settings.persistent_storage,
        enable_manager_ui=settings.enable_manager_ui,
        comfy_flags=settings.comfy_flags,
        start_jupyter=args.jupyter,
        cuda_versions=tuple(v.strip() for v in args.cuda.split(",") if v.strip()),
        secrets=SecretNames(
            civitai_token=args.civitai_secret,
            hf_token=args.hf_secret,
            filebrowser_password=args.filebrowser_secret,
        ),
    )


def _write(directory: Path, files: dict[str, str]) -> list[Path]:
    """Each file appears whole or not at all: written beside its name, then renamed over it."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        write_atomic(path, text, durable=False)
        written.append(path)
    return written
