"""Versioned prompt files shipped in workers/prompts/."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ChartPrompt:
    """The texts sent to the model for a chart analysis."""

    version: str
    system: str
    user_with_question: str
    user_without_question: str

    def user_text(self, caption: str | None) -> str:
        """Return the user message text, with the trader's caption when there is one."""
        if caption and caption.strip():
            return self.user_with_question.format(caption=caption.strip())
        return self.user_without_question


def load_prompt(name: str = "chart_analysis.v1.toml") -> ChartPrompt:
    """Load a prompt file from workers/prompts/."""
    text = resources.files("workers.prompts").joinpath(name).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return ChartPrompt(
        version=data["version"],
        system=data["system"].strip(),
        user_with_question=data["user_with_question"].strip(),
        user_without_question=data["user_without_question"].strip(),
    )
