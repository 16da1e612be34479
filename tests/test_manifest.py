"""ignition.yaml: the env vars' grammar in one file, and one clear line for every bad manifest."""

from pathlib import Path

import pytest

from fakes.content import model_bytes
from fakes.services import Fakes
from helpers import by_name, files_under, provision_now, serve_catalog
from ignition.errors import ConfigError, ManifestError
from ignition.pin.request import merged_settings
from ignition.settings import Settings
from ignition.spec.manifest import parse_manifest
from ignition.spec.parse import parse_specs
from ignition.template.build import TemplateInputs, build_request
from test_download_cli import ignition
from test_template_build import generate

EXAMPLE = """\
version: 1
models:
  civitai: [128713, "456789:loras"]
  huggingface: [clip_l, "comfyanonymous/flux_text_encoders/t5xxl_fp16.safetensors"]
nodes: ["comfyui-impact-pack@8.8.1", "https://github.com/owner/repo@v1.2"]
workflows: [workflows/portrait.json]
python: ["onnxruntime-gpu>=1.19", "numpy>=1.26,<3"]
"""


def test_each_list_takes_its_env_vars_entries() -> None:
    manifest = parse_manifest(EXAMPLE, origin="/project/ignition.yaml")

    assert manifest.civitai == ("128713", "456789:loras")
    assert manifest.huggingface[0] == "clip_l"
    assert manifest.nodes == ("comfyui-impact-pack@8.8.1", "https://github.com/owner/repo@v1.2")
    assert manifest.python == ("onnxruntime-gpu>=1.19", "numpy>=1.26,<3")
    # Relative to the manifest, wherever it is read from.
    assert manifest.workflow_sources() == ["/project/workflows/portrait.json"]
    url = parse_manifest(EXAMPLE, origin="https://example.test/setups/ignition.yaml")
    assert url.workflow_sources() == ["https://example.test/setups/workflows/portrait.json"]
    # The same refs the env lists give for the same entries: one grammar.
    from_env = parse_specs(
        "128713, 456789:loras", manifest.huggingface[0] + "\n" + manifest.huggingface[1]
    )
    from_manifest = parse_specs("\n".join(manifest.civitai), "\n".join(manifest.huggingface))
    assert from_manifest.refs == from_env.refs


def test_a_list_may_be_one_string_written_as_the_env_var() -> None:
    manifest = parse_manifest(
        'version: 1\nmodels:\n  civitai: "128713, 456789:loras"\n', origin="m.yaml"
    )
    assert manifest.civitai == ("128713", "456789:loras")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nmodels:\n  civitai: [1\n", "m.yaml: YAML syntax error at line 4, column 1"),
        ("version: 1\nmodels: {civitai: [1], huggingface: x: y}\n", "line 2, column 38"),
        ("models: {civitai: [1]}\n", "m.yaml: no `version` key"),
        ("version: 2\n", "m.yaml: version 2 is not one this Ignition reads"),
        ("version: '1'\n", "version '1' is not one"),
        ("version: 1\nmodel: {civitai: [1]}\n", "unknown key model; did you mean models?"),
        (
            "version: 1\nmodels: {civitiai: [1]}\n",
            "unknown key models.civitiai; did you mean models.civitai?",
        ),
        ("version: 1\nworkflow: [a.json]\n", "unknown key workflow; did you mean workflows?"),
        ("version: 1\nmodels: [1, 2]\n", "models must be a mapping"),
        ("version: 1\nmodels: {civitai: {a: 1}}\n", "models.civitai must be a list of entries"),
        (
            "version: 1\nmodels: {civitai: [1, [2]]}\n",
            "models.civitai[1] must be a string or a number",
        ),
        ("version: 1\nnodes: [true]\n", "nodes[0] must be a string or a number, not a boolean"),
        ("version: 1\nmodels: {civitai: [abc]}\n", "models.civitai: CivitAI entry 'abc' is not"),
        ("version: 1\nmodels: {huggingface: [clip_ll]}\n", "did you mean clip_l"),
        ("version: 1\npython: ['--index-url https://evil.test']\n", "is an installer option"),
        ("- 1\n- 2\n", "the top level must be a mapping"),
        ("version: 1\nnodes: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
        ("", "the top level must be a mapping"),
    ],
)
def test_a_bad_manifest_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, origin="m.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_env_lists_and_the_manifest_add_up_an_entry_in_both_is_one(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    fakes.civitai.add(128713)
    fakes.civitai.add(456789, model_type="LORA")
    manifest_path = fakes.tmp_path / "ignition.yaml"
    manifest_path.write_text(
        "version: 1\nmodels:\n  civitai: [128713, '456789:loras']\n  huggingface: [clip_l]\n"
    )

    report = provision_now(fakes, civitai="128713", hf="ae", ignition_manifest=str(manifest_path))

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == [
        "checkpoints/model_128713.safetensors",
        "loras/model_456789.safetensors",
        "text_encoders/clip_l.safetensors",
        "vae/ae.safetensors",
    ]
    assert by_name(report)["128713"].status == "duplicate"  # the env list's copy
    assert fakes.civitai.counters.requests["/api/download/models/128713"] == 1


def test_a_bad_manifest_fails_as_one_entry_and_the_env_lists_still_run(fakes: Fakes) -> None:
    serve_catalog(fakes, "ae")
    manifest_path = fakes.tmp_path / "ignition.yaml"
    manifest_path.write_text("version: 1\nmodles: {}\n")

    report = provision_now(fakes, hf="ae", ignition_manifest=str(manifest_path))

    failed = [o for o in report.outcomes if o.status == "failed"]
    assert [(o.source, o.code) for o in failed] == [("manifest", "IGN110")]
    assert "did you mean models?" in (failed[0].error or "")
    assert files_under(fakes.models_dir) == ["vae/ae.safetensors"]


def test_a_manifest_by_url_is_fetched_with_its_workflow_beside_it(fakes: Fakes) -> None:
    data = model_bytes("lora")
    fakes.hf.add("o/r", {"ignition.yaml": b"", "wf.json": b"", "l.safetensors": data})
    repo = fakes.hf.repos["o/r"]
    repo.small = frozenset({"ignition.yaml", "wf.json"})
    repo.files["ignition.yaml"] = b"version: 1\nworkflows: [wf.json]\n"
    repo.files["wf.json"] = (
        b'{"nodes": [{"type": "LoraLoader", "widgets_values": ["l.safetensors", 1, 1],'
        b' "properties": {"models": [{"name": "l.safetensors", "directory": "loras",'
        b' "url": "https://huggingface.co/o/r/resolve/main/l.safetensors"}]}}]}'
    )

    report = provision_now(
        fakes, ignition_manifest=f"{fakes.hf.url}/o/r/resolve/main/ignition.yaml"
    )

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == ["loras/l.safetensors"]


def test_a_huge_manifest_is_refused_unread(fakes: Fakes) -> None:
    manifest_path = fakes.tmp_path / "ignition.yaml"
    manifest_path.write_text("version: 1\n" + "#" * (2 << 20))
    report = provision_now(fakes, ignition_manifest=str(manifest_path))
    assert "larger than 1024 KiB" in (report.outcomes[0].error or "")


def test_merged_settings_put_the_manifest_first(tmp_path: Path) -> None:
    manifest = parse_manifest("version: 1\nmodels: {civitai: [1]}\n", origin=str(tmp_path / "m"))
    merged = merged_settings(Settings(civitai_models="2"), manifest)
    assert merged.civitai_models == "1\n2"


def test_download_manifest_flag_and_its_errors_exit_cleanly(fakes: Fakes) -> None:
    manifest_path = fakes.tmp_path / "ignition.yaml"
    manifest_path.write_text("version: 1\nmodels:\n  civitai: [1\n")

    result = ignition(
        fakes, "download", "--manifest", str(manifest_path), "--models-dir", str(fakes.models_dir)
    )

    assert result.returncode == 1
    assert "YAML syntax error at line 4, column 1" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_template_can_point_pods_at_a_manifest_url(tmp_path: Path) -> None:
    url = "https://example.test/setups/ignition.yaml"
    body, page = generate(tmp_path, "--no-input", "--manifest", url)
    env = body["env"]
    assert isinstance(env, dict) and env["IGNITION_MANIFEST"] == url
    assert f"The manifest `{url}`" in page and "| `IGNITION_MANIFEST` |" in page
    # Without one the template is what it always was; a laptop path is refused.
    plain, _ = generate(tmp_path / "plain", "--no-input")
    assert isinstance(plain["env"], dict) and "IGNITION_MANIFEST" not in plain["env"]
    with pytest.raises(ConfigError, match="neither an http"):
        build_request(TemplateInputs(manifest="./ignition.yaml"))
