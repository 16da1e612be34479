"""Every failure a user can cause, named after the user's situation.

    IgnitionError                  code, message, hint (what to do next)
    ├── ConfigError                a setting or flag is unusable
    ├── SpecError                  a model entry cannot be parsed (bad id, unknown short name)
    │   └── DuplicateEntryError    the same file listed twice (harmless: fetched once)
    ├── ResolveError               the source cannot tell us which bytes to fetch
    │   ├── ModelNotFoundError     404/410, unknown id, missing file in a repo
    │   ├── TokenMissingError      login required / token invalid
    │   ├── GatedModelError        HF licence not accepted
    │   ├── EarlyAccessError       CivitAI early access
    │   ├── UnsupportedModelError  not model weights (workflow, poses, archive …)
    │   ├── RateLimitedError       429 beyond our retry budget
    │   ├── PackNotFoundError      a node pack id, repo or git ref that does not exist
    │   └── PackVersionRefusedError  a registry version that is not active (banned, flagged …)
    ├── FetchError                 bytes could not be fetched or are wrong
    │   ├── ChecksumMismatchError
    │   ├── SizeMismatchError
    │   ├── NotAModelError         an HTML/JSON page where weights were expected
    │   ├── DiskFullError
    │   ├── TransferStalledError
    │   ├── TransferFailedError    the server kept failing (cuts, 5xx, 429) beyond the retry budget
    │   └── SourceChangedError     the file on the server changed under a partial download
    ├── PlaceError                 the verified file cannot be moved into place
    │   ├── UnsafeArchiveError     a node pack archive with an entry that would land outside it
    │   └── RequirementsError      a node pack's Python requirements or install.py failed
    │       └── RequirementsConflictError  they cannot be met beside the pinned torch
    └── DeployError                RunPod's API did not take the template (`template --deploy`)
        ├── ApiKeyRejectedError    401/403: RUNPOD_API_KEY missing, wrong or lacking access
        ├── TemplateRejectedError  400/422: RunPod's validation message
        └── RunPodUnreachableError no answer: network, DNS, TLS, timeout

Codes are stable (they appear in `--json` output); `hint` always says what the user can do.
"""

from __future__ import annotations

from typing import ClassVar


class IgnitionError(Exception):
    code: ClassVar[str] = "IGN000"
    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(IgnitionError):
    code = "IGN100"


class SpecError(IgnitionError):
    code = "IGN200"
    default_hint = "check the spelling of the entry; `ignition catalog` lists the short names"
    # Set by the parser: which list ("civitai" | "huggingface") and which entry, for reports.
    source: str = ""
    entry: str = ""


class DuplicateEntryError(SpecError):
    code = "IGN201"
    default_hint = "remove one of the two entries"


class MissingSourceError(SpecError):
    """A workflow names a model file but says nowhere where to get it."""

    code = "IGN202"


class ResolveError(IgnitionError):
    code = "IGN300"


class ModelNotFoundError(ResolveError):
    code = "IGN301"


class TokenMissingError(ResolveError):
    code = "IGN302"


class GatedModelError(ResolveError):
    code = "IGN303"


class EarlyAccessError(ResolveError):
    code = "IGN304"


class UnsupportedModelError(ResolveError):
    code = "IGN305"


class RateLimitedError(ResolveError):
    code = "IGN306"
    default_hint = "the server keeps answering 429; wait a few minutes and run again"


class FetchError(IgnitionError):
    code = "IGN400"


class ChecksumMismatchError(FetchError):
    code = "IGN401"
    default_hint = "the download was corrupted twice; run again, and report it if it persists"


class SizeMismatchError(FetchError):
    code = "IGN402"
    default_hint = "the connection delivered a different size than announced; run again"


class NotAModelError(FetchError):
    code = "IGN403"


class DiskFullError(FetchError):
    code = "IGN404"
    default_hint = "free disk space or use a bigger volume, then run again"


class TransferStalledError(FetchError):
    code = "IGN405"
    default_hint = "the server stopped sending data; run again (partial data is kept and resumed)"


class TransferFailedError(FetchError):
    code = "IGN406"
    default_hint = "the server kept failing; run again later (partial data is kept and resumed)"


class SourceChangedError(FetchError):
    code = "IGN407"
    default_hint = "the file changed on the server while it was downloading; run again"


class PlaceError(IgnitionError):
    code = "IGN500"


class DeployError(IgnitionError):
    code = "IGN600"


class ApiKeyRejectedError(DeployError):
    code = "IGN601"
    default_hint = (
        "check RUNPOD_API_KEY: create a key with read/write access under Settings → API Keys "
        "in the RunPod console"
    )


class TemplateRejectedError(DeployError):
    code = "IGN602"
    default_hint = "RunPod's message names the field: change the flag that sets it and run again"


class RunPodUnreachableError(DeployError):
    code = "IGN603"
    default_hint = "check the network connection and RUNPOD_API_URL, then run again"


# --- custom node packs ---------------------------------------------------------------------------


class PackNotFoundError(ResolveError):
    code = "IGN310"


class PackVersionRefusedError(ResolveError):
    code = "IGN311"
    default_hint = "pin another version (`id@X.Y.Z`); the registry lists the active ones"


class UnsafeArchiveError(PlaceError):
    code = "IGN501"
    default_hint = "the pack's archive is malformed or hostile; report it to its author"


class RequirementsError(PlaceError):
    code = "IGN510"
    default_hint = "see the pip/uv message above; fix or remove the pack, then run again"


class RequirementsConflictError(RequirementsError):
    code = "IGN511"
    default_hint = (
        "the pack needs a torch (or torchvision/torchaudio) other than the installed one, "
        "which Ignition never replaces; pin another version of the pack or remove it"
    )
