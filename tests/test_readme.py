"""The README and docs/ tell the truth: every command a newcomer copies runs as written (against
the fakes where it needs the network), every link leads somewhere, every setting is documented,
and the generated tables match their sources."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.services import Fakes
from helpers import serve_catalog
from ignition.catalog import load_catalog
from ignition.cli.catalog import markdown_table
from ignition.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_LIMIT_BYTES = 25_000

# Pages whose commands need their own part's fakes (custom nodes, manifest, serverless), so this
# test does not run them (each page's own tests do). Links to them are followed once they exist.
OTHER_OWNERS = {
    "custom-nodes.md",
    "manifest.md",
    "serverless.md",
}

# The install step needs PyPI, which tests never reach (.ci/run installs the same package); what
# follows it on the same line still runs, with the project's own `ignition` as `.venv/bin/ignition`.
INSTALL = "python3 -m venv .venv && .venv/bin/pip install ."

# Commands a test cannot run, each with the reason. Matched by how the command starts.
EXEMPT = {
    INSTALL: "installs from PyPI (no network in tests); .ci/run does the same install",
    "bash .ci/run": "the whole check itself (apt, pip, every test): CI runs it",
    "docker ": "needs Docker and a GPU; scripts/image-smoke.sh proves the image without them",
    "RUNPOD_API_KEY=": "deploys with a real RunPod key; tests/test_template_deploy.py runs the "
    "same deploy against the fake RunPod API",
    "export COMFYUI_API_TOKEN=": "talks to a running pod on RunPod; tests/test_frontdoor.py "
    "checks the same credentials against the real front door",
    'curl -X POST "https://api.runpod.ai/': "a job on a real RunPod endpoint; "
    "tests/test_serverless.py sends the same jobs to the worker through runpod-python's local API",
}
# Blocks whose every line belongs to an exempt first line (variables it sets, calls it makes).
EXEMPT_BLOCKS = {"export COMFYUI_API_TOKEN=": "a session against a running pod"}

SHELL_LANGUAGES = {"bash", "sh", "shell"}
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.S | re.M)
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def pages() -> list[Path]:
    return [README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]


def command_pages() -> list[Path]:
    return [README, *(p for p in sorted(DOCS.glob("*.md")) if p.name not in OTHER_OWNERS)]


def fenced(page: Path) -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in _FENCE.finditer(page.read_text("utf-8"))]


def shell_commands(body: str) -> list[str]:
    """One string per command: continuation lines joined, blank lines dropped."""
    commands: list[str] = []
    pending = ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def exemption(command: str) -> str | None:
    if command == INSTALL:
        return EXEMPT[INSTALL]
    if command.startswith(INSTALL + " && "):
        return None  # the rest runs
    return next((why for start, why in EXEMPT.items() if command.startswith(start)), None)


def documented_commands() -> list[tuple[str, str]]:
    """(page name, command) for every shell command in the README and in docs/."""
    found = []
    for page in command_pages():
        for lang, body in fenced(page):
            if lang not in SHELL_LANGUAGES:
                continue
            commands = shell_commands(body)
            if commands and any(commands[0].startswith(s) for s in EXEMPT_BLOCKS):
                continue
            found += [(page.name, command) for command in commands]
    return found


COMMANDS = documented_commands()


def test_the_readme_stays_short() -> None:
    assert len(README.read_bytes()) < README_LIMIT_BYTES


def test_the_readme_leads_with_deploying_on_runpod() -> None:
    headings = re.findall(r"^## (.+)$", README.read_text("utf-8"), re.M)
    assert headings[:4] == [
        "Deploy on RunPod",
        "Try it locally with Docker",
        "Set up and test",
        "Configuration",
    ]


def test_every_command_is_either_run_or_exempt_for_a_stated_reason() -> None:
    ran = [c for _, c in COMMANDS if exemption(c) is None]
    assert ran, "no documented command is run"
    assert any(c.startswith(INSTALL + " && ") for _, c in COMMANDS), "the install line moved"
    assert "bash .ci/run" in [c for _, c in COMMANDS]


@pytest.fixture
def newcomer(fakes: Fakes, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh clone's folder with `ignition` installed in .venv, every public service faked."""
    serve_catalog(fakes, *load_catalog())
    fakes.civitai.add(128713)
    clip_l = {"type": "CLIPLoader", "widgets_values": ["clip_l.safetensors", "flux"]}
    workflow = ('{"nodes": [' + str(clip_l).replace("'", '"') + "]}").encode()
    fakes.hf.add("me/wf", {"wan.json": workflow}, small={"wan.json"})
    here = tmp_path / "clone"
    venv_bin = here / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (here / "flux_schnell.json").write_bytes(workflow)
    wrapper = venv_bin / "ignition"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m ignition "$@"\n', "utf-8")
    wrapper.chmod(0o755)
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT / "src"),
        "IGNITION_STARTUP_LOG": str(tmp_path / "startup.log"),
        "IGNITION_TMP_DIR": str(tmp_path / "tmp"),
        "IGNITION_CONNECTIONS_LOG": str(tmp_path / "connections.log"),
        "RUNPOD_API_URL": "http://127.0.0.1:9",
        **fakes.env(),
    }
    return here, env


@pytest.mark.parametrize(
    ("page", "command"), [pc for pc in COMMANDS if exemption(pc[1]) is None], ids=str
)
def test_documented_command_runs_as_written(
    newcomer: tuple[Path, dict[str, str]], page: str, command: str
) -> None:
    here, env = newcomer
    runnable = command.removeprefix(INSTALL + " && ")
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", runnable],
        cwd=here,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{page}: {command}\n{output}"
    assert "Traceback" not in output


def test_python_examples_are_valid_python() -> None:
    for page in pages():
        for lang, body in fenced(page):
            if lang == "python":
                compile(body, f"{page.name}: python block", "exec")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text("utf-8"))
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_link_leads_to_a_page_and_heading_that_exist() -> None:
    broken = []
    for page in pages():
        text = _FENCE.sub("", page.read_text("utf-8"))
        for match in _LINK.finditer(text):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                if linked.name not in OTHER_OWNERS:
                    broken.append(f"{page.name}: {target}")
                continue
            if anchor and linked.is_file() and anchor not in _anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_docs_index_links_every_page() -> None:
    readme = README.read_text("utf-8")
    for name in sorted({p.name for p in DOCS.glob("*.md")} | OTHER_OWNERS):
        assert f"(docs/{name})" in readme, name


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.read_text("utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    names = set()
    for name, info in Settings.model_fields.items():
        if name == "home":
            continue  # HOME: the user's, not Ignition's setting
        alias = info.validation_alias
        choices = getattr(alias, "choices", [alias])
        names.add(str(choices[0]))
    assert sorted(names - documented) == []


def test_catalog_table_matches_the_data_file() -> None:
    page = (DOCS / "catalog.md").read_text("utf-8")
    table = markdown_table(list(load_catalog().values()))
    assert table in page, "regenerate with: ignition catalog --markdown"
