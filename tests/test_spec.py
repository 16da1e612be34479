import pytest

from ignition.errors import DuplicateEntryError, SpecError
from ignition.records import CivitaiRef, HuggingFaceRef
from ignition.spec import parse_specs


def civitai_one(entry: str) -> CivitaiRef:
    refs, errors = parse_specs(entry, "")
    assert errors == []
    (ref,) = refs
    assert isinstance(ref, CivitaiRef)
    return ref


def hf_one(entry: str) -> HuggingFaceRef:
    refs, errors = parse_specs("", entry)
    assert errors == [], [str(e) for e in errors]
    (ref,) = refs
    assert isinstance(ref, HuggingFaceRef)
    return ref


@pytest.mark.parametrize(
    ("entry", "version", "model", "file", "folder"),
    [
        ("128713", 128713, None, None, None),
        ("128713:checkpoints", 128713, None, None, "checkpoints"),
        ("https://civitai.com/models/4384?modelVersionId=128713", 128713, 4384, None, None),
        ("https://civitai.com/models/4384/dreamshaper", None, 4384, None, None),
        ("https://civitai.com/models/4384", None, 4384, None, None),
        ("civitai.com/models/4384/dreamshaper:loras", None, 4384, None, "loras"),
        ("https://civitai.com/api/download/models/128713", 128713, None, None, None),
        ("https://civitai.com/api/download/models/128713?fileId=99", 128713, None, 99, None),
        ("https://civitai.com/api/v1/model-versions/128713", 128713, None, None, None),
        (
            "http://127.0.0.1:8080/api/download/models/5:ultralytics/bbox",
            5,
            None,
            None,
            "ultralytics/bbox",
        ),
    ],
)
def test_civitai_forms(
    entry: str, version: int | None, model: int | None, file: int | None, folder: str | None
) -> None:
    ref = civitai_one(entry)
    assert (ref.version_id, ref.model_id, ref.file_id, ref.folder) == (
        version,
        model,
        file,
        folder,
    )


@pytest.mark.parametrize(
    ("entry", "repo", "path", "revision", "folder"),
    [
        ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-dev", None, "main", None),
        ("owner/repo@v2", "owner/repo", None, "v2", None),
        ("owner/repo/a/b/x.safetensors", "owner/repo", "a/b/x.safetensors", "main", None),
        ("owner/repo@abc123/x.safetensors:loras", "owner/repo", "x.safetensors", "abc123", "loras"),
        (
            "https://huggingface.co/owner/repo/resolve/main/split_files/vae/v.safetensors",
            "owner/repo",
            "split_files/vae/v.safetensors",
            "main",
            None,
        ),
        (
            "https://huggingface.co/owner/repo/resolve/main/v.safetensors?download=true",
            "owner/repo",
            "v.safetensors",
            "main",
            None,
        ),
        (
            "https://huggingface.co/owner/repo/blob/dev/v.safetensors:vae",
            "owner/repo",
            "v.safetensors",
            "dev",
            "vae",
        ),
        ("https://huggingface.co/owner/repo", "owner/repo", None, "main", None),
        ("https://huggingface.co/owner/repo/tree/v1", "owner/repo", None, "v1", None),
        ("huggingface.co/owner/repo/resolve/main/x.bin", "owner/repo", "x.bin", "main", None),
    ],
)
def test_huggingface_forms(
    entry: str, repo: str, path: str | None, revision: str, folder: str | None
) -> None:
    ref = hf_one(entry)
    assert (ref.repo, ref.path, ref.revision, ref.folder) == (repo, path, revision, folder)
    assert ref.catalog_name is None


def test_short_names_come_from_the_catalog() -> None:
    ref = hf_one("flux1-schnell")
    assert ref.catalog_name == "flux1-schnell"
    # The seed's old bug: flux1-schnell fetched the VAE.
    assert ref.path == "flux1-schnell.safetensors"
    assert ref.catalog_folder == "diffusion_models"
    assert hf_one("CLIP_L:clip").folder == "text_encoders"


def test_separators_are_commas_spaces_and_newlines() -> None:
    refs, errors = parse_specs("1, 2\n3 4,", "clip_l\nae , t5xxl_fp16")
    assert errors == []
    assert [r.text for r in refs] == ["1", "2", "3", "4", "clip_l", "ae", "t5xxl_fp16"]


def test_bad_entries_are_reported_together_and_good_ones_kept() -> None:
    refs, errors = parse_specs(
        "12a,,128713,https://civitai.com/models/x,https://civitai.com/images/5,128713",
        "nonexistent-model,clip_l,../evil,owner/repo/../x,"
        "https://huggingface.co/datasets/o/r,https://huggingface.co/CLIP_L",
    )
    assert [r.text for r in refs] == ["128713", "clip_l"]
    messages = [str(e) for e in errors]
    assert len(errors) == 9, messages
    assert all(isinstance(e, SpecError) for e in errors)
    assert "'12a'" in messages[0]
    assert "unknown short name 'nonexistent-model'" in " ".join(messages)
    assert isinstance(errors[3], DuplicateEntryError)


def test_doubled_and_trailing_commas_are_both_just_separators() -> None:
    assert parse_specs("1,,2,", ",clip_l,,ae,") == parse_specs("1,2", "clip_l,ae")


def test_the_same_file_written_two_ways_is_a_duplicate() -> None:
    refs, errors = parse_specs(
        "128713 https://civitai.com/models/1?modelVersionId=128713",
        "clip_l comfyanonymous/flux_text_encoders/clip_l.safetensors",
    )
    assert len(refs) == 2
    assert [type(e) for e in errors] == [DuplicateEntryError, DuplicateEntryError]


def test_empty_lists_give_nothing() -> None:
    assert parse_specs("", "  \n ") == ([], [])


def test_an_unknown_short_name_suggests_close_ones() -> None:
    _, (error,) = parse_specs("", "flux-dev")
    assert "did you mean flux1-dev" in str(error)


def test_folder_overrides_are_normalised_and_checked_at_parse_time() -> None:
    refs, errors = parse_specs("1:unet 2:x/../y", "clip_l:clip")
    assert [r.folder for r in refs] == ["diffusion_models", "text_encoders"]
    assert len(errors) == 1


def test_a_url_pasted_into_the_other_list_is_understood() -> None:
    refs, errors = parse_specs(
        "https://huggingface.co/o/r/resolve/main/x.safetensors",
        "https://civitai.com/models/1?modelVersionId=2:loras",
    )
    assert errors == []
    assert [type(r).__name__ for r in refs] == ["HuggingFaceRef", "CivitaiRef"]
    assert refs[1].folder == "loras"
