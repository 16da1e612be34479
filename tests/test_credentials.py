import stat
from pathlib import Path

from ignition import credentials
from ignition.settings import load_settings


def test_generated_password_is_stored_root_only_and_reused(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path)
    first = credentials.filebrowser_password(settings)
    again = credentials.filebrowser_password(settings)
    assert first.generated and not again.generated
    assert first.value == again.value and len(first.value) == 24
    path = credentials.secrets_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.value not in repr(first)


def test_given_password_wins_and_is_not_written(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path, filebrowser_password="correct horse")
    assert credentials.filebrowser_password(settings).value == "correct horse"
    assert credentials.comfyui_password(settings).value == "correct horse"
    assert not credentials.secrets_file(settings).exists()


def test_api_token_is_long_and_header_safe(tmp_path: Path) -> None:
    token = credentials.comfyui_api_token(load_settings(workspace=tmp_path)).value
    assert len(token) == 48
    assert all(c.isalnum() or c in "-_" for c in token)


def test_a_stale_world_readable_temporary_cannot_leak_the_secrets(tmp_path: Path) -> None:
    # What the old writer left after a crash (a fixed name, made 0666 by a neighbour): the new
    # secrets must never be written into it, nor end up readable by others.
    settings = load_settings(workspace=tmp_path)
    path = credentials.secrets_file(settings)
    path.parent.mkdir(parents=True)
    stale = path.with_suffix(".tmp")
    stale.write_text("{}")
    stale.chmod(0o666)
    secret = credentials.filebrowser_password(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.value in path.read_text()
    assert secret.value not in stale.read_text()
