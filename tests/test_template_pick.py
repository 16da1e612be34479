"""Picking the template's models at a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from ignition.catalog import load_catalog
from ignition.template.pick import pick_models


class Terminal:
    """Scripted answers in, everything said recorded."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.said: list[str] = []

    def ask(self, prompt: str) -> str:
        self.said.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def say(self, text: str) -> None:
        self.said.append(text)


def number_of(name: str) -> str:
    return str(list(load_catalog()).index(name) + 1)


def test_numbers_pick_catalog_names_and_other_entries_pass_through() -> None:
    terminal = Terminal(f"{number_of('flux1-dev')}, {number_of('ae')} owner/repo", "128713")
    assert pick_models(terminal.ask, terminal.say) == ("128713", "flux1-dev,ae,owner/repo")
    assert any("clip_l" in line for line in terminal.said)  # the catalog was shown


def test_bad_answers_are_explained_and_asked_again() -> None:
    terminal = Terminal("999, nope", "clip_l", "abc", "")
    assert pick_models(terminal.ask, terminal.say) == ("", "clip_l")
    said = "\n".join(terminal.said)
    assert "999 is not a number from the list" in said
    assert "unknown short name 'nope'" in said
    assert "CivitAI entry 'abc' is not a model-version id" in said


def test_closed_input_means_no_models() -> None:
    assert pick_models(Terminal().ask, Terminal().say) == ("", "")


def run_at_terminal(tmp_path: Path, typed: str, *flags: str) -> tuple[int, bytes, bytes]:
    """`ignition template` with a real pseudo-terminal as stdin and `typed` typed into it."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_MODELS")}
    command = [sys.executable, "-m", "ignition", "template", "--output-dir", str(tmp_path)]
    try:
        process = subprocess.Popen(
            [*command, *flags],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.write(controller, typed.encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, out, err


def test_the_command_asks_when_stdin_is_a_terminal(tmp_path: Path) -> None:
    code, out, err = run_at_terminal(tmp_path, f"{number_of('clip_l')}\n46846\n")
    assert code == 0, err
    assert b"Hugging Face models from Ignition's catalog:" in out
    env = json.loads((tmp_path / "runpod-template.json").read_text(encoding="utf-8"))["env"]
    assert env["HUGGINGFACE_MODELS"] == "clip_l"
    assert env["CIVITAI_MODELS"] == "46846"


def test_no_input_never_asks(tmp_path: Path) -> None:
    code, out, err = run_at_terminal(tmp_path, "", "--no-input")
    assert code == 0, err
    assert b"catalog" not in out
