"""Choosing the template's models at a terminal: catalog entries by number, CivitAI ids typed in.

`ignition template` asks only when stdin is a terminal and no model list came from a flag or the
environment. Every answer goes through the parser `ignition download` uses; a bad answer is
explained and asked again, so the template never carries an entry the pod would refuse.
"""

from __future__ import annotations

from collections.abc import Callable

from ignition.catalog import CatalogEntry, load_catalog
from ignition.spec import parse_specs
from ignition.spec.entries import split_entries

Ask = Callable[[str], str]
Say = Callable[[str], None]


def pick_models(ask: Ask, say: Say) -> tuple[str, str]:
    """Ask for both lists; returns (CIVITAI_MODELS, HUGGINGFACE_MODELS) values."""
    entries = list(load_catalog().values())
    say("Hugging Face models from Ignition's catalog:")
    width = max(len(entry.name) for entry in entries)
    for number, entry in enumerate(entries, start=1):
        say(f"{number:>4}  {entry.name:<{width}}  {entry.description}")
    huggingface = _ask_until_valid(
        ask,
        say,
        "Numbers or names (also owner/repo or URLs), comma-separated; Enter for none: ",
        lambda answer: _hugging_face_answer(answer, entries),
    )
    civitai = _ask_until_valid(
        ask,
        say,
        "CivitAI model-version ids or URLs, comma-separated; Enter for none: ",
        _civitai_answer,
    )
    return civitai, huggingface


def _ask_until_valid(
    ask: Ask, say: Say, prompt: str, translate: Callable[[str], tuple[str, list[str]]]
) -> str:
    while True:
        try:
            answer = ask(prompt)
        except EOFError:  # input closed: nothing more will come, so nothing was picked
            return ""
        models, problems = translate(answer)
        if not problems:
            return models
        for problem in problems:
            say(f"  {problem}")


def _civitai_answer(answer: str) -> tuple[str, list[str]]:
    models = ",".join(entry for entry in split_entries(answer) if entry)
    return models, [error.message for error in parse_specs(models, "").errors]


def _hugging_face_answer(answer: str, entries: list[CatalogEntry]) -> tuple[str, list[str]]:
    """Numbers become catalog names; anything else is an entry of its own."""
    picked: list[str] = []
    problems: list[str] = []
    for token in (e for e in split_entries(answer) if e):
        if not token.isdigit():
            picked.append(token)
        elif 1 <= int(token) <= len(entries):
            picked.append(entries[int(token) - 1].name)
        else:
            problems.append(f"{token} is not a number from the list (1-{len(entries)})")
    models = ",".join(picked)
    return models, problems + [error.message for error in parse_specs("", models).errors]
