"""The image's essentials, read from the Dockerfile and the workflows that build it.

No Docker engine is needed: the file is parsed into instructions (continuations joined, comments
dropped) and checked for what RunPod users rely on. `scripts/image-smoke.sh` builds and boots it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOWS = ROOT / ".github" / "workflows"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def build_arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name] = shlex.split(value)[0] if value else ""
    return defaults


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for pair in shlex.split(ins.args):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def first_line(instructions: list[Instruction], pattern: str) -> int:
    for ins in instructions:
        if re.search(pattern, ins.args):
            return ins.line
    raise AssertionError(f"no instruction matches {pattern!r}")


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("# c\nFROM x AS y\nRUN a \\\n    # inner\n    && b\n\nEXPOSE 1\n")
    assert [(i.keyword, i.args) for i in parsed] == [
        ("FROM", "x AS y"),
        ("RUN", "a && b"),
        ("EXPOSE", "1"),
    ]


def test_base_image_is_cuda_12_8_or_newer(instructions: list[Instruction]) -> None:
    base = build_arg_defaults(instructions)["BASE_IMAGE"]
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)(?:\.\d+)?-[\w.-]+-ubuntu\d+\.\d+", base)
    assert match, f"BASE_IMAGE default is not an nvidia/cuda Ubuntu tag: {base}"
    assert (int(match[1]), int(match[2])) >= (12, 8), "Blackwell (sm_120) needs CUDA ≥ 12.8"
    assert instructions[0].keyword in {"ARG", "FROM"}
    assert any(ins.keyword == "FROM" and "${BASE_IMAGE}" in ins.args for ins in instructions)


def test_torch_is_a_stable_cuda_build(instructions: list[Instruction]) -> None:
    args = build_arg_defaults(instructions)
    index = args["TORCH_INDEX_URL"]
    cuda = re.search(r"/whl/cu(\d+)$", index)
    assert cuda and int(cuda[1]) >= 128, f"torch index is not a CUDA ≥ 12.8 one: {index}"
    assert "nightly" not in index
    spec = dict(part.split("==") for part in args["TORCH_SPEC"].split())
    assert set(spec) == {"torch", "torchvision", "torchaudio"}
    assert not any(re.search(r"dev|a|b|rc", version) for version in spec.values())


def test_comfyui_is_pinned_to_a_release_tag(instructions: list[Instruction]) -> None:
    args = build_arg_defaults(instructions)
    ref = args["COMFYUI_REF"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", ref), f"COMFYUI_REF must be a release tag: {ref}"
    assert args["COMFYUI_REPO"].endswith("/ComfyUI.git")
    clone = next(ins for ins in instructions if "git clone" in ins.args)
    assert '--branch "${COMFYUI_REF}"' in clone.args
    assert "requirements.txt" in clone.args
    assert "manager_requirements.txt" in clone.args


def test_paths_come_from_env(instructions: list[Instruction]) -> None:
    env = env_values(instructions)
    assert env["COMFYUI_DIR"] == "/opt/ComfyUI"
    assert env["WORKSPACE"] == "/workspace"


def test_nothing_is_written_to_workspace(instructions: list[Instruction]) -> None:
    for ins in instructions:
        if ins.keyword == "ENV":
            continue
        assert "/workspace" not in ins.args, f"line {ins.line} touches /workspace"
        assert "${WORKSPACE}" not in ins.args and "$WORKSPACE" not in ins.args
    assert not any(ins.keyword in {"VOLUME", "WORKDIR"} for ins in instructions)


def test_entrypoint_is_tini_then_ignition_start(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    entrypoints = [ins for ins in stage if ins.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0].args) == ["tini", "--", "ignition", "start"]
    assert not any(ins.keyword == "CMD" for ins in stage)


def test_ports_and_healthcheck(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    exposed = {port for ins in stage if ins.keyword == "EXPOSE" for port in ins.args.split()}
    assert {"8188", "8080"} <= exposed
    (health,) = [ins for ins in stage if ins.keyword == "HEALTHCHECK"]
    command = json.loads(health.args.split(" CMD ", 1)[1])
    assert command[:2] == ["ignition", "status"]


def test_layers_run_from_least_to_most_often_changed(instructions: list[Instruction]) -> None:
    system = first_line(instructions, r"apt-get install")
    torch = first_line(instructions, r"\$\{TORCH_SPEC\}")
    comfyui = first_line(instructions, r"git clone")
    ignition = next(
        ins.line for ins in instructions if ins.keyword == "COPY" and ins.args.startswith("src ")
    )
    assert system < torch < comfyui < ignition


def test_apt_lists_and_package_caches_stay_out_of_layers(
    instructions: list[Instruction],
) -> None:
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        if "apt-get install" in ins.args:
            assert "rm -rf /var/lib/apt/lists/*" in ins.args, f"line {ins.line}"
            assert "--no-install-recommends" in ins.args, f"line {ins.line}"
        if "pip install" in ins.args and "uv pip install" not in ins.args:
            assert "--no-cache-dir" in ins.args, f"line {ins.line}"
        if "uv pip install" in ins.args:
            assert "--mount=type=cache,target=/root/.cache/uv" in ins.args, f"line {ins.line}"


def test_no_secrets_in_build_args_or_env(instructions: list[Instruction]) -> None:
    names = set(build_arg_defaults(instructions)) | set(env_values(instructions))
    names |= {ins.args.split("=")[0] for ins in instructions if ins.keyword == "ARG"}
    secretish = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY|CREDENTIAL", re.IGNORECASE)
    assert not [name for name in names if secretish.search(name)]


def test_build_context_is_an_allow_list() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/", "!scripts/optional/"} <= set(rules)
    assert not any(rule.startswith("!tests") for rule in rules)


def load_workflow(name: str) -> dict[str, object]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def workflow_steps(data: dict[str, object]) -> list[dict[str, object]]:
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    return [step for job in jobs.values() for step in job["steps"]]


def test_ci_workflow_runs_the_project_check_on_pull_requests() -> None:
    data = load_workflow("ci.yml")
    assert isinstance(data["on"], dict) and "pull_request" in data["on"]
    runs = " ".join(str(step.get("run", "")) for step in workflow_steps(data))
    for command in ("bash .ci/run", "hadolint Dockerfile", "actionlint", "shellcheck"):
        assert command in runs


def test_image_workflow_builds_smoke_tests_then_pushes() -> None:
    data = load_workflow("image.yml")
    trigger = data["on"]
    assert isinstance(trigger, dict)
    assert trigger["push"]["branches"] == ["main"]
    assert trigger["push"]["tags"] == ["v*"]
    steps = workflow_steps(data)
    uses = [str(step.get("uses", "")) for step in steps]
    for action in (
        "docker/setup-buildx-action@",
        "docker/metadata-action@",
        "docker/login-action@",
        "docker/build-push-action@",
    ):
        assert any(use.startswith(action) for use in uses), action
    meta = next(step for step in steps if str(step.get("uses", "")).startswith("docker/metadata"))
    tags = str(meta["with"]["tags"])  # type: ignore[index]
    assert "type=semver" in tags and "type=sha" in tags and "value=latest" in tags
    names = [str(step.get("name", "")) for step in steps]
    assert names.index("Free disk space") < names.index("Build")
    assert names.index("Build") < names.index("Smoke test (no GPU on the runner)")
    assert names.index("Smoke test (no GPU on the runner)") < names.index("Push")
    smoke = str(steps[names.index("Smoke test (no GPU on the runner)")]["run"])
    assert "ignition" in smoke and "--version" in smoke
    assert "import torch; print(torch.__version__)" in smoke
    build = steps[names.index("Build")]["with"]
    assert isinstance(build, dict) and build["cache-from"] == "type=gha"
