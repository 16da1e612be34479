"""End to end against the fakes: spec → resolve → fetch → place, in process."""

import asyncio
import io
import json

import pytest

from fakes.civitai import CivitaiFile
from fakes.content import model_bytes, sha256
from fakes.services import Fakes
from helpers import (
    FAST_RETRY,
    PLENTY_OF_DISK,
    by_name,
    files_under,
    provision_now,
    serve_catalog,
    staging_leftovers,
)
from ignition.pipeline import provision
from ignition.progress import FileProgress, RunDisplay
from ignition.report import ModelOutcome, ProvisionReport

SEED_HF = "flux1-dev,clip_l,t5xxl_fp16,ae"


def test_seed_example_lands_every_file_verified_in_its_folder(fakes: Fakes) -> None:
    published = serve_catalog(fakes, "flux1-dev", "clip_l", "t5xxl_fp16", "ae")
    fakes.civitai.add(128713, model_type="Checkpoint")
    fakes.civitai.add(62833, model_type="LORA")

    report = provision_now(
        fakes, civitai="128713,62833", hf=SEED_HF, civitai_token=fakes.civitai.token
    )

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == [
        "checkpoints/model_128713.safetensors",
        "diffusion_models/flux1-dev.safetensors",
        "loras/model_62833.safetensors",
        "text_encoders/clip_l.safetensors",
        "text_encoders/t5xxl_fp16.safetensors",
        "vae/ae.safetensors",
    ]
    placed = fakes.models_dir / "vae" / "ae.safetensors"
    assert placed.read_bytes() == published["ae"]
    assert by_name(report)["ae"].sha256 == sha256(published["ae"])
    assert {o.status for o in report.outcomes} == {"ok"}
    assert staging_leftovers(fakes.models_dir) == []
    # The CivitAI token went to CivitAI and never followed the redirect to storage.
    assert fakes.civitai.counters.authorization_seen
    assert fakes.storage.counters.authorization_seen == []


def test_a_second_run_downloads_nothing(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    fakes.civitai.add(1)
    first = provision_now(fakes, civitai="1", hf="clip_l,ae")
    assert first.ok
    served = fakes.storage.counters.bytes_served
    storage_requests = sum(fakes.storage.counters.requests.values())

    second = provision_now(fakes, civitai="1", hf="clip_l,ae")

    assert second.ok
    assert [o.status for o in second.outcomes] == ["skipped"] * 3
    assert fakes.storage.counters.bytes_served == served
    assert sum(fakes.storage.counters.requests.values()) == storage_requests


def test_a_wrong_file_already_in_place_is_replaced(fakes: Fakes) -> None:
    published = serve_catalog(fakes, "clip_l")
    target = fakes.models_dir / "text_encoders" / "clip_l.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * len(published["clip_l"]))  # right size, wrong bytes

    report = provision_now(fakes, hf="clip_l")

    assert report.ok
    assert target.read_bytes() == published["clip_l"]


def test_a_repo_gives_its_root_weight_files_only(fakes: Fakes) -> None:
    fakes.hf.page_size = 2  # several pages: Link rel="next" must be followed
    fakes.hf.add(
        "black-forest-labs/FLUX.1-dev",
        {
            "flux1-dev.safetensors": model_bytes("dev"),
            "ae.safetensors": model_bytes("ae"),
            "model_index.json": b"{}",
            "README.md": b"# hi",
            "transformer/diffusion_pytorch_model.safetensors": model_bytes("t"),
            "vae/diffusion_pytorch_model.safetensors": model_bytes("v"),
        },
    )

    report = provision_now(fakes, hf="black-forest-labs/FLUX.1-dev")

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == [
        "diffusion_models/flux1-dev.safetensors",
        "vae/ae.safetensors",
    ]


def test_a_repo_without_root_weights_fails_listing_candidates(fakes: Fakes) -> None:
    fakes.hf.add(
        "o/diffusers-only",
        {"unet/diffusion_pytorch_model.safetensors": model_bytes("u"), "README.md": b"x"},
    )
    report = provision_now(fakes, hf="o/diffusers-only")
    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    assert "unet/diffusion_pytorch_model.safetensors" in (outcome.error or "")
    assert outcome.code == "IGN301"


def test_folders_come_from_override_repo_path_and_default(fakes: Fakes) -> None:
    fakes.hf.add(
        "o/r",
        {
            "split_files/text_encoders/te.safetensors": model_bytes("te"),
            "mystery.safetensors": model_bytes("m"),
            "legacy.safetensors": model_bytes("l"),
            "config.yaml": b"a: 1\n",
        },
        small=frozenset({"config.yaml"}),
    )
    fakes.civitai.add(5, model_type="UNet")

    report = provision_now(
        fakes,
        civitai="5:unet",
        hf="o/r/split_files/text_encoders/te.safetensors o/r/mystery.safetensors "
        "o/r/legacy.safetensors:clip o/r/config.yaml:configs",
    )

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == [
        "checkpoints/mystery.safetensors",
        "configs/config.yaml",
        "diffusion_models/model_5.safetensors",
        "text_encoders/legacy.safetensors",
        "text_encoders/te.safetensors",
    ]
    assert "no folder known" in by_name(report)["o/r/mystery.safetensors"].warnings[0]


def test_civitai_file_type_wins_and_names_are_sanitised(fakes: Fakes) -> None:
    data = model_bytes("vae-in-checkpoint")
    fakes.civitai.add(
        7,
        model_type="Checkpoint",
        files=[
            CivitaiFile(70, "model.safetensors", model_bytes("m"), primary=True),
            CivitaiFile(
                71, "../../.\x07sneaky/..\\vae.safetensors", data, type="VAE", primary=False
            ),
        ],
    )
    report = provision_now(fakes, civitai="https://civitai.com/api/download/models/7?fileId=71")
    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == ["vae/vae.safetensors"]


def test_a_model_url_without_version_takes_the_newest(fakes: Fakes) -> None:
    fakes.civitai.add(10, model_id=4384)
    fakes.civitai.add(12, model_id=4384)
    report = provision_now(fakes, civitai="https://civitai.com/models/4384/dreamshaper")
    assert report.ok
    assert files_under(fakes.models_dir) == ["checkpoints/model_12.safetensors"]


def test_bad_entries_are_reported_together_and_good_ones_still_fetched(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    fakes.civitai.add(3)
    report = provision_now(fakes, civitai="12a,,3,3", hf="no-such-model,clip_l")

    assert not report.ok
    statuses = [(o.name, o.status) for o in report.outcomes]
    assert ("12a", "failed") in statuses
    assert ("3", "duplicate") in statuses
    assert ("no-such-model", "failed") in statuses
    assert files_under(fakes.models_dir) == [
        "checkpoints/model_3.safetensors",
        "text_encoders/clip_l.safetensors",
    ]


@pytest.mark.parametrize(
    ("setup", "expected_code", "expected_text"),
    [
        ({"login_required": True}, "IGN302", "set CIVITAI_TOKEN"),
        ({"early_access_deadline": "2026-12-24T00:00:00Z"}, "IGN304", "2026-12-24"),
        ({"gone": True}, "IGN301", "removed"),
        ({"archived": True}, "IGN301", "archived"),
    ],
)
def test_civitai_failures_say_what_to_do(
    fakes: Fakes, setup: dict[str, object], expected_code: str, expected_text: str
) -> None:
    fakes.civitai.add(9, **setup)
    report = provision_now(fakes, civitai="9")
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.code) == ("failed", expected_code), outcome.error
    # Said in the message or in the hint (kept apart: `--json` has both fields).
    assert expected_text in f"{outcome.error} — {outcome.hint}"
    assert files_under(fakes.models_dir) == []
    assert staging_leftovers(fakes.models_dir) == []


def test_an_unknown_civitai_id_is_not_found(fakes: Fakes) -> None:
    (outcome,) = provision_now(fakes, civitai="999").outcomes
    assert outcome.code == "IGN301"
    assert "modelVersionId" in (outcome.hint or "")


def test_login_required_works_with_the_token(fakes: Fakes) -> None:
    fakes.civitai.add(9, login_required=True)
    report = provision_now(fakes, civitai="9", civitai_token=fakes.civitai.token)
    assert report.ok
    assert fakes.storage.counters.authorization_seen == []


def test_a_workflow_is_refused_clearly(fakes: Fakes) -> None:
    fakes.civitai.add(
        11, model_type="Workflows", files=[CivitaiFile(110, "flow.zip", b"PK\x03\x04")]
    )
    (outcome,) = provision_now(fakes, civitai="11").outcomes
    assert outcome.code == "IGN305"
    assert "not model weights" in (outcome.error or "")


def test_gated_repo_asks_to_accept_the_licence(fakes: Fakes) -> None:
    fakes.hf.add("bfl/gated", {"w.safetensors": model_bytes("g")}, gated=True)
    (anonymous,) = provision_now(fakes, hf="bfl/gated/w.safetensors").outcomes
    assert anonymous.code == "IGN303"
    assert "bfl/gated is gated" in (anonymous.error or "")
    assert anonymous.hint == f"accept the license at {fakes.hf.url}/bfl/gated and set HF_TOKEN"
    (not_granted,) = provision_now(
        fakes, hf="bfl/gated/w.safetensors", hf_token="hf_someone_else"
    ).outcomes
    assert not_granted.code == "IGN303"
    granted = provision_now(
        fakes, hf="bfl/gated/w.safetensors", hf_token="hf_granted_secret_token_42"
    )
    assert granted.ok
    assert fakes.storage.counters.authorization_seen == []


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("nobody/nothing/x.safetensors", "does not exist, or is private"),
        ("o/r/missing.safetensors", "has no file 'missing.safetensors'"),
        ("o/r@v9/w.safetensors", "no revision 'v9'"),
    ],
)
def test_hf_not_found_errors(fakes: Fakes, entry: str, text: str) -> None:
    fakes.hf.add("o/r", {"w.safetensors": model_bytes("w")})
    (outcome,) = provision_now(fakes, hf=entry).outcomes
    assert outcome.code == "IGN301"
    assert text in (outcome.error or "")


def test_429_bursts_are_waited_out(fakes: Fakes) -> None:
    fakes.civitai.add(4)
    fakes.civitai.throttle.remaining["/api/download/models/4"] = 3
    report = provision_now(fakes, civitai="4")
    assert report.ok
    assert fakes.civitai.counters.requests["/api/download/models/4"] == 4


def test_429_forever_fails_as_rate_limited(fakes: Fakes) -> None:
    fakes.civitai.add(4)
    fakes.civitai.throttle.remaining["/api/download/models/4"] = 100
    (outcome,) = provision_now(fakes, civitai="4").outcomes
    assert outcome.code == "IGN306"
    assert fakes.civitai.counters.requests["/api/download/models/4"] == 6


def test_wrong_bytes_fail_after_one_retry_and_leave_nothing(fakes: Fakes) -> None:
    data = model_bytes("w")
    fakes.civitai.add(6, files=[CivitaiFile(60, "w.safetensors", data, published_sha256="ab" * 32)])
    fakes.hf.add("o/r", {"c.safetensors": model_bytes("c")}, corrupt=frozenset({"c.safetensors"}))

    report = provision_now(fakes, civitai="6", hf="o/r/c.safetensors")

    assert [o.code for o in report.outcomes] == ["IGN401", "IGN401"]
    assert fakes.storage.counters.requests["/blobs/cv-60"] == 2
    assert files_under(fakes.models_dir) == []
    assert staging_leftovers(fakes.models_dir) == []


def test_a_web_page_instead_of_weights_is_detected(fakes: Fakes) -> None:
    page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    fakes.civitai.add(8, files=[CivitaiFile(80, "m.safetensors", page)])
    (outcome,) = provision_now(fakes, civitai="8").outcomes
    assert outcome.code == "IGN403"
    assert files_under(fakes.models_dir) == []


def test_disk_preflight_fails_early_with_numbers(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    fakes.civitai.add(1)
    report = provision_now(fakes, civitai="1", hf="clip_l", free_bytes=lambda _: 5_000_000)
    assert [o.code for o in report.outcomes] == ["IGN404", "IGN404"]
    assert "0.01 GB is free" in (report.outcomes[0].error or "")
    assert "short by 0.26 GB" in (report.outcomes[0].error or "")
    assert fakes.storage.counters.requests == {}


def test_dry_run_plans_without_fetching(fakes: Fakes) -> None:
    published = serve_catalog(fakes, "clip_l")
    fakes.civitai.add(1)
    report = provision_now(fakes, civitai="1", hf="clip_l", dry_run=True)
    assert report.ok
    assert [o.status for o in report.outcomes] == ["planned", "planned"]
    assert by_name(report)["clip_l"].size == len(published["clip_l"])
    assert fakes.storage.counters.requests == {}
    assert files_under(fakes.models_dir) == []


def test_two_sources_for_one_destination_conflict(fakes: Fakes) -> None:
    fakes.hf.add("a/one", {"same.safetensors": model_bytes("1")})
    fakes.hf.add("b/two", {"same.safetensors": model_bytes("2")})
    report = provision_now(fakes, hf="a/one/same.safetensors:loras b/two/same.safetensors:loras")
    assert [o.status for o in report.outcomes] == ["ok", "failed"]
    assert "both want loras/same.safetensors" in (report.outcomes[1].error or "")


def test_the_status_file_records_the_run(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    provision_now(fakes, hf="clip_l,nope")
    status = json.loads((fakes.tmp_path / "run" / "downloads.json").read_text())
    assert status["phase"] == "done"
    assert status["ok"] is False
    assert {m["name"]: m["status"] for m in status["models"]} == {
        "nope": "failed",
        "clip_l": "ok",
    }


def test_a_dropped_connection_is_resumed_where_it_broke(fakes: Fakes) -> None:
    size = len(fakes.civitai.add(2).files[0].data)
    fakes.storage.faults.cut_at = [size // 2]
    report = provision_now(fakes, civitai="2")
    assert report.ok, report.outcomes[0].error
    assert fakes.storage.counters.requests["/blobs/cv-20"] == 2
    assert fakes.storage.counters.bytes_served == size
    assert staging_leftovers(fakes.models_dir) == []


def test_a_connection_that_keeps_dropping_fails_cleanly_and_the_rerun_resumes(
    fakes: Fakes,
) -> None:
    size = len(fakes.civitai.add(2).files[0].data)
    fakes.storage.faults.cut_at = [size // 2]
    fakes.storage.faults.drops, fakes.storage.faults.after_requests = 1000, 1
    (outcome,) = provision_now(fakes, civitai="2").outcomes
    assert outcome.code == "IGN406", outcome.error
    assert files_under(fakes.models_dir) == []
    # Only the partial and its record stay, outside the model folders, for the next run.
    assert [name.split(".", 1)[1] for name in staging_leftovers(fakes.models_dir)] == [
        "part",
        "part.json",
    ]

    fakes.storage.faults.drops = 0
    assert provision_now(fakes, civitai="2").ok
    assert fakes.storage.counters.bytes_served == size
    assert staging_leftovers(fakes.models_dir) == []


def test_storage_hiccups_are_retried(fakes: Fakes) -> None:
    fakes.civitai.add(2)
    fakes.storage.faults.statuses = [503, 503]
    assert provision_now(fakes, civitai="2").ok


def test_a_renamed_repo_is_followed_by_its_relative_redirect(fakes: Fakes) -> None:
    fakes.hf.add("old/name", {}, moved_to="new/name")
    fakes.hf.add("new/name", {"w.safetensors": model_bytes("w")})
    report = provision_now(fakes, hf="old/name/w.safetensors:loras")
    assert report.ok, report.outcomes[0].error
    assert report.outcomes[0].sha256 == sha256(model_bytes("w"))


def test_a_browser_user_agent_gets_the_login_page_and_it_is_caught(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The classic bug: a browser-like UA turns CivitAI's 401 into a redirect to an HTML page.
    monkeypatch.setattr("ignition._http.client.USER_AGENT", "Mozilla/5.0 (X11; Linux) Chrome/120")
    fakes.civitai.add(9, login_required=True)
    (outcome,) = provision_now(fakes, civitai="9").outcomes
    assert outcome.code == "IGN403"
    assert "html" in (outcome.error or "")
    assert fakes.civitai.counters.requests["/login"] == 1
    assert files_under(fakes.models_dir) == []


def test_two_runs_at_once_fetch_each_file_once(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    fakes.civitai.add(1)

    async def both() -> list[ProvisionReport]:
        settings = fakes.settings(civitai_models="1", huggingface_models="clip_l,ae")
        runs = [provision(settings, retry=FAST_RETRY, free_bytes=PLENTY_OF_DISK) for _ in range(2)]
        return list(await asyncio.gather(*runs))

    first, second = asyncio.run(both())
    assert first.ok and second.ok
    statuses = sorted(o.status for o in first.outcomes + second.outcomes)
    assert statuses == ["ok"] * 3 + ["skipped"] * 3
    assert sum(fakes.storage.counters.requests.values()) == 3


def test_a_gated_repo_listing_fails_at_download_with_the_licence_hint(fakes: Fakes) -> None:
    fakes.hf.add("bfl/gated", {"flux1-dev.safetensors": model_bytes("g")}, gated=True)
    (outcome,) = provision_now(fakes, hf="bfl/gated").outcomes
    assert outcome.code == "IGN303"
    assert "accept the license at" in (outcome.hint or "")
    assert staging_leftovers(fakes.models_dir) == []


def test_an_unreachable_source_fails_its_entries_only(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    report = provision_now(fakes, civitai="1", hf="clip_l", civitai_endpoint="http://127.0.0.1:9")
    failed, ok = report.outcomes
    assert (failed.status, failed.code) == ("failed", "IGN300")
    assert "cannot reach the source" in (failed.error or "")
    assert ok.status == "ok"


def test_model_folders_never_hold_bytes_in_flight(fakes: Fakes) -> None:
    fakes.civitai.add(1, files=[CivitaiFile(10, "big.safetensors", model_bytes("b", 3_000_000))])
    seen_while_fetching: list[list[str]] = []

    class Watching(RunDisplay):
        def transfer(self, outcome: ModelOutcome) -> FileProgress:
            progress = super().transfer(outcome)
            original = progress.advance

            def advance(n_bytes: int) -> None:
                seen_while_fetching.append(files_under(fakes.models_dir))
                original(n_bytes)

            progress.advance = advance  # type: ignore[method-assign]
            return progress

    display = Watching(None, stream=io.StringIO(), tty=False)
    settings = fakes.settings(civitai_models="1")
    report = asyncio.run(
        provision(settings, display=display, retry=FAST_RETRY, free_bytes=PLENTY_OF_DISK)
    )
    assert report.ok
    assert len(seen_while_fetching) > 1
    assert all(listing == [] for listing in seen_while_fetching)
    assert files_under(fakes.models_dir) == ["checkpoints/big.safetensors"]
