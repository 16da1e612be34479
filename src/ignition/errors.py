"""Every failure a user can cause, named after the user's situation.

    IgnitionError                  code, message, hint (what to do next)
    ├── ConfigError                a setting or flag is unusable
    │   ├── ManifestError          ignition.yaml is unreadable or malformed
    │   └── LockfileError          ignition.lock is unreadable, malformed or does not fit
    ├── SpecError                  a model entry cannot be parsed (bad id, unknown short name)
    │   ├── DuplicateEntryError    the same file listed twice (harmless: fetched once)
    │   └── MissingSourceError     a workflow needs a file and says nowhere where to get it
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
    │   ├── SourceChangedError     the file on the server changed under a partial download
    │   └── ChangedSinceLockedError  the source now serves other bytes than ignition.lock pins
    ├── PlaceError                 the verified file cannot be moved into place
    │   ├── UnsafeArchiveError     a node pack archive with an entry that would land outside it
    │   └── RequirementsError      a node pack's Python requirements or install.py failed
    │       └── RequirementsConflictError  they cannot be met beside the pinned torch
    ├── PrivateAddressError        a URL (or a redirect) leads to a loopback/private address
    ├── DeployError                RunPod's API did not take the template (`template --deploy`)
    │   ├── ApiKeyRejectedError    401/403: RUNPOD_API_KEY missing, wrong or lacking access
    │   ├── TemplateRejectedError  400/422: RunPod's validation message
    │   └── RunPodUnreachableError no answer: network, DNS, TLS, timeout
    └── JobError                   a serverless job failed (`details`: the lines behind it)
        ├── JobInputError          the job's input is unusable (no workflow, bad image, UI format)
        ├── JobModelError          a model the job asked for could not be provided
        ├── WorkflowRejectedError  ComfyUI's validation refused the workflow (node, class, input)
        ├── WorkflowFailedError    a node failed while the workflow ran
        ├── ComfyUIDownError       ComfyUI is not up, or crashed during the job
        ├── JobTimeoutError        IGNITION_JOB_TIMEOUT_S passed; the prompt was interrupted
        └── OutputUploadError      an output could not be read or uploaded to S3

Codes are stable (they appear in `--json` output); `hint` always says what the user can do.
`message` and `hint` are kept apart: records and `--json` carry them as two fields, the CLI prints
the hint on its own line. `str()` joins them ("message — hint") for log lines only.
"""

from __future__ import annotations

from typing import ClassVar, Literal


class IgnitionError(Exception):
    code: ClassVar[str] = "IGN000"
    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        """The one-line form for logs: the message, then the hint."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(IgnitionError):
    code = "IGN100"


class ManifestError(ConfigError):
    code = "IGN110"
    default_hint = "fix ignition.yaml (docs/manifest.md describes every key)"


class LockfileError(ConfigError):
    code = "IGN111"
    default_hint = "write it again with `ignition lock`"


class SpecError(IgnitionError):
    code = "IGN200"
    default_hint = "check the spelling of the entry; `ignition catalog` lists the short names"
    # Set by the parser: which list and which entry, for reports.
    source: Literal["civitai", "huggingface"] = "civitai"
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


class ChangedSinceLockedError(FetchError):
    code = "IGN408"
    default_hint = (
        "the upstream file is not the one locked; if the new bytes are wanted, run "
        "`ignition lock` again and commit the new lock"
    )


class PlaceError(IgnitionError):
    code = "IGN500"


class PrivateAddressError(IgnitionError):
    """Refused before connecting: a public URL, or a redirect from one, that resolves to an
    address on this machine or its network (loopback, RFC 1918, link-local such as the cloud
    metadata service 169.254.169.254). Such a link in a workflow or a redirect could otherwise
    make the pod fetch from its own services."""

    code = "IGN409"
    default_hint = (
        "if this address is meant (a mirror on your own network), set "
        "IGNITION_ALLOW_PRIVATE_URLS=1 and run again"
    )


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


class JobError(IgnitionError):
    """A serverless job's failure: returned as `{"error": str(self), "details": self.details}`."""

    code = "IGN700"

    def __init__(
        self, message: str, *, hint: str | None = None, details: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.details = details or []


class JobInputError(JobError):
    code = "IGN701"
    default_hint = "fix the job's input (see docs/serverless.md for its fields) and send it again"


class JobModelError(JobError):
    code = "IGN702"


class WorkflowRejectedError(JobError):
    code = "IGN703"
    default_hint = "fix the named inputs, or provide the missing model or node, and send it again"


class WorkflowFailedError(JobError):
    code = "IGN704"


class ComfyUIDownError(JobError):
    code = "IGN705"
    default_hint = "read ComfyUI's last lines above; the worker restarts ComfyUI after a crash"


class JobTimeoutError(JobError):
    code = "IGN706"
    default_hint = "raise IGNITION_JOB_TIMEOUT_S, or send a lighter workflow"


class OutputUploadError(JobError):
    code = "IGN707"
    default_hint = "check BUCKET_ENDPOINT_URL and the bucket credentials"


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
