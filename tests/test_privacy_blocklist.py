import pytest

from ignition.privacy.hosts import load_blocklist, parse_blocklist

# Hosts provisioning and the pod's tooling must keep reaching. "*." entries stand for every
# subdomain: the blocklist may hold neither the domain, a parent of it, nor a name under it.
NEEDED = [
    "civitai.com",
    "huggingface.co",
    "*.hf.co",
    "cdn-lfs.hf.co",
    "cas-bridge.xethub.hf.co",
    "us.aws.cdn.hf.co",
    "cdn-lfs.huggingface.co",
    "cdn-lfs-us-1.huggingface.co",
    "*.r2.cloudflarestorage.com",
    "*.backblazeb2.com",
    "pypi.org",
    "files.pythonhosted.org",
    "deb.debian.org",
    "github.com",
    "objects.githubusercontent.com",
    "raw.githubusercontent.com",
    "download.pytorch.org",
    "registry.npmjs.org",
    "api.runpod.io",
    "api.comfy.org",
]


def blocks(entry: str, needed: str) -> bool:
    name = needed.removeprefix("*.")
    if name == entry or name.endswith("." + entry):
        return True
    return needed.startswith("*.") and entry.endswith("." + name)


def test_the_packaged_blocklist_loads_and_names_comfy_clis_trackers() -> None:
    domains = load_blocklist()
    assert len(domains) == len(set(domains)) > 20
    assert {"api.mixpanel.com", "t.comfy.org", "us.i.posthog.com"} <= set(domains)


@pytest.mark.parametrize("needed", NEEDED)
def test_the_blocklist_never_blocks_a_host_provisioning_needs(needed: str) -> None:
    offending = [entry for entry in load_blocklist() if blocks(entry, needed)]
    assert offending == []


def test_the_check_itself_catches_parents_and_wildcard_children() -> None:
    assert blocks("hf.co", "cdn-lfs.hf.co")
    assert blocks("bucket.r2.cloudflarestorage.com", "*.r2.cloudflarestorage.com")
    assert not blocks("api.mixpanel.com", "huggingface.co")


def test_comments_blanks_and_case_are_ignored_and_junk_is_refused() -> None:
    assert parse_blocklist(["# source", "", "API.Example.com  # why", "api.example.com"]) == (
        "api.example.com",
    )
    with pytest.raises(ValueError, match="line 2"):
        parse_blocklist(["ok.example.com", "not a host"])
