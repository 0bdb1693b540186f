"""What the semantic cache compares: the user content of a conversation, as one short text.

The choice, and why:

* **The last user turn, in full**, is the question being asked. It is what the verifier was
  trained on (single questions), and what decides whether two requests want the same answer.
* **Earlier user turns, briefly**: at most ``EARLIER_TURNS`` of them, each clipped to
  ``EARLIER_CHARS`` characters, placed before the last turn. A follow-up such as "and in Python?"
  only means something with what came before; the clipped context keeps two follow-ups to
  different conversations apart without drowning the question in history.
* **The number of user turns is part of the namespace** (see ``keys.py``), so a follow-up is never
  compared with a first question, and the verifier sees like with like.
* **Assistant turns are left out** (they are sampled and vary between otherwise identical
  conversations), and so is the system prompt (it is in the namespace, compared exactly).
* **Tool results make a conversation ineligible** for semantic reuse: the answer depends on data
  the user text does not show. Such requests still use the exact cache.

Text parts of multi-part content are joined; images and audio make a turn ineligible too (the
text alone does not say what was asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EARLIER_TURNS = 2
EARLIER_CHARS = 200
#: a longer question is cut here (MiniLM reads 256 word pieces; the verifier was trained on short ones)
MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class UserText:
    """The text to embed, how many user turns it came from, and whether semantic reuse is allowed."""

    text: str
    turns: int
    eligible: bool
    reason: str = ""


def content_text(content: Any) -> str | None:
    """The text of a message's content (a string or a list of parts); None if it holds non-text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                return None
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                return None
        return "\n".join(texts)
    return None


def user_text(messages: Any) -> UserText:
    """The semantic cache's text for a chat ``messages`` list."""
    if not isinstance(messages, list):
        return UserText("", 0, False, "no messages")
    turns: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            return UserText("", 0, False, "malformed message")
        role = message.get("role")
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            return UserText("", 0, False, "tool results")
        if role != "user":
            continue
        text = content_text(message.get("content"))
        if text is None:
            return UserText("", 0, False, "non-text content")
        turns.append(" ".join(text.split()))
    if not turns or not turns[-1]:
        return UserText("", len(turns), False, "no user text")
    earlier = [t[:EARLIER_CHARS] for t in turns[:-1][-EARLIER_TURNS:] if t]
    text = "\n".join([*earlier, turns[-1][:MAX_CHARS]])
    return UserText(text, len(turns), True)
