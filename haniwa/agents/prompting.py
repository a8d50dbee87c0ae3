"""What the orchestration loop writes to the model: the prompt data files (``prompts/<lang>.toml``), the
system prompt, observations, and the answer that asks the user for a value.

The wording is data (the toml files); this module only fills it in.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from haniwa.agents.base import AgentSpec, Tool
from haniwa.agents.state import Lang, SessionState
from haniwa.agents.steps import render_tools

__all__ = ["language", "prompts", "system_prompt", "observation", "ask_user"]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


def language(text: str) -> Lang:
    """The prompt language for a question: Japanese when it has kana or kanji."""
    return "ja" if _CJK.search(text) else "en"


@functools.cache
def prompts(lang: Lang) -> dict[str, str]:
    """The prompt data file for ``lang`` (``prompts/<lang>.toml``)."""
    text = resources.files("haniwa.agents").joinpath("prompts", f"{lang}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def system_prompt(
    spec: AgentSpec, session: SessionState, memory: Sequence[str], lang: Lang, question: str
) -> str:
    """The orchestration template (the agent's override, else the data file's) with Bedrock's
    placeholders filled in."""
    p = prompts(lang)
    template = spec.prompt.template or p["orchestration"]
    attrs = session.prompt_session_attributes
    values = {
        "$instruction$": spec.instruction,
        "$tools$": render_tools(spec.tools),
        "$prompt_session_attributes$": p["session_attributes"].format(
            attributes="\n".join(f"- {k}: {v}" for k, v in attrs.items())
        )
        if attrs
        else "",
        "$memory_content$": p["memory"].format(summaries="\n".join(f"- {s}" for s in memory))
        if memory
        else "",
        "$question$": question,
        "$conversation_history$": "\n".join(f"{t.question}\n{t.answer}" for t in session.turns),
    }
    return re.sub(r"\$[a-z_]+\$", lambda m: values.get(m.group(0), m.group(0)), template).strip()


def observation(spec: AgentSpec, p: Mapping[str, str], tool: str, result: str, failed: bool) -> str:
    """An observation message: the result (after a failure, what to do about it), the agent's instruction
    again, and a reminder to finish what is left and then answer with the values (not with an overridden
    template: that one is the user's)."""
    text = p["observation"].format(tool=tool, result=result)
    if not spec.prompt.template:
        if failed:
            text += p["error_hint"]
        if spec.instruction:
            text += p["instruction"].format(instruction=spec.instruction)
        text += ("" if spec.instruction else "\n") + p["reminder"]
    return text


def ask_user(p: Mapping[str, str], tool: Tool, refused: Mapping[str, Any]) -> str:
    """The answer that asks the user for the values a call lacked (by their descriptions)."""
    what = {p_.name: p_.description or p_.name for p_ in tool.parameters}
    return p["ask_user"].format(values=p["and"].join(what[name] for name in refused))
