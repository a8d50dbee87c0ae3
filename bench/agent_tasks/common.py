"""The format of an agent-benchmark task: a domain (instruction, functions, optional knowledge base) and
tasks over it, each checked by code."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Param", "Function", "Domain", "Task", "CATEGORIES", "key"]

# what a task exercises; the report gives a success rate per category
CATEGORIES = (
    "one",  # one call answers it
    "several",  # the same tool once per item the user named (or the knowledge base listed)
    "chain",  # a second call takes its argument from the first call's result (search → id → reserve)
    "kb",  # the answer is in the knowledge base
    "kb+tool",  # the knowledge base names what a tool must then look up
    "smalltalk",  # greetings, thanks, general knowledge: no call
    "missing",  # a required value the user never gave: the answer asks for it, no call is made
    "failing",  # the tool fails: the answer says so and invents nothing
)


def key(text: str) -> str:
    """Loose comparison of names: case, width-insensitive spaces."""
    return " ".join(str(text).strip().lower().split())


@dataclass(frozen=True)
class Param:
    type: str = "string"  # string | number | integer | boolean
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class Function:
    """A business function the agent may call. ``fn`` takes the parameters as keyword arguments and returns
    a JSON-able value or raises (the agent sees the error as its observation)."""

    name: str
    fn: Callable[..., Any]
    description: str
    params: Mapping[str, Param]


@dataclass(frozen=True)
class Domain:
    name: str
    instruction: str  # the agent's instruction, as a user would write it
    functions: tuple[Function, ...]
    documents: tuple[str, ...] = ()  # the knowledge base (attached when not empty): one text per document
    kb_description: str = ""  # what the knowledge base holds (the agent's KB description)


@dataclass(frozen=True)
class Task:
    domain: Domain
    question: str
    category: str
    # each expected call: (function name, argument subset). A string value may list alternatives "a|b";
    # numbers compare as numbers; strings compare by ``key``.
    calls: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # each entry: one of these strings must be in the answer
    facts: tuple[tuple[str, ...], ...] = ()
    # strings the answer must not contain (an invented value, a wrong number)
    absent: tuple[str, ...] = ()
    # functions that must not be called ("missing": the one whose value the user did not give)
    forbid: tuple[str, ...] = ()
    # True: no action call at all may be made (small talk)
    no_calls: bool = False
    # True: the knowledge base must be looked up (a knowledgeBaseLookupInput in the trace)
    kb: bool = False
    # earlier turns of the same session: (question, answer)
    history: tuple[tuple[str, str], ...] = ()
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")

    @property
    def lang(self) -> str:
        return "ja" if re.search(r"[\u3040-\u30ff\u3400-\u9fff]", self.question) else "en"
