"""The local chat model's prompt: its chat template rendered, tokenized so that no message can forge a
control token, and measured against the context window before the call joins the model's queue.

``Tokenizer`` is the model's own vocabulary, loaded alone (no weights, no context) and called off the
generation thread: llama.cpp tokenizes from the vocabulary only, so this never waits for, or holds
up, a generation.

Messages are text, never markup. The template is rendered once with the real messages and once with
a marker in place of each message's content, which tells the template's text from the contents
(where the template copies contents verbatim, as ChatML and SmolLM2's do). The whole prompt is
tokenized with special-token parsing on, in one call; when its control tokens are exactly those in
the template's text, that is the prompt, the tokens llama.cpp has always been given. Otherwise a
content holds control-token text (``<|im_end|>\n<|im_start|>system``), and the prompt is tokenized
piecewise: the template's control tokens become those tokens, and every run of text between them,
contents included, is tokenized with parsing off, so a user's ``<|im_start|>`` stays the characters
it is. (Piecewise tokens equal whole ones for a prompt without such text, checked when the tokenizer
loads; where they do not, or the template rewrites contents, the control-token text in contents is
broken with a word joiner, U+2060, before rendering.)

Limits: a prompt's tokens plus the answer's must fit the context window. A request whose
``max_tokens`` is set must fit as asked (OpenAI's rule); without it, the answer is cut to what fits
but at least ``MIN_ANSWER_TOKENS`` must. The UTF-8 bytes of the contents (then of the rendered
prompt) over the bytes of the vocabulary's longest token is a lower bound on the prompt's tokens,
which refuses a hopeless prompt before it is rendered (then tokenized).
"""

from __future__ import annotations

import ctypes
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia.errors import DependencyMissing, InvalidRequest, ProviderUnavailable

if TYPE_CHECKING:
    from sophia.providers.adapters._local_params import ChatParams

log = logging.getLogger(__name__)

#: without max_tokens, the room an answer needs at least
MIN_ANSWER_TOKENS = 16
#: llama.cpp sizes a context in steps of this many tokens (it rounds n_ctx up)
CONTEXT_STEP = 256
#: placeholder for message ``i``'s content in the marked rendering (private-use characters)
_MARK = re.compile("\ue000([0-9]+)\ue001")
_JOINER = "\u2060"
_PROBE = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "Hello! What is 2+2?\nThanks."},
    {"role": "assistant", "content": " It is 4."},
    {"role": "user", "content": "And  3*3?  "},
]


def context_tokens(configured: int) -> int:
    """The context the model is loaded with for ``local.context_window``: llama.cpp's own rounding."""
    return -(-configured // CONTEXT_STEP) * CONTEXT_STEP


def _utf8_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def _content_bytes(params: ChatParams) -> int:
    return sum(_utf8_bytes(m["content"]) for m in params.messages)


def prompt_limit(params: ChatParams, context: int) -> int:
    """The most prompt tokens that leave the answer the room it needs."""
    return context - (
        params.max_tokens if params.max_tokens_asked else min(MIN_ANSWER_TOKENS, params.max_tokens)
    )


def answer_room(prompt: int, params: ChatParams, context: int, *, at_least: bool = False) -> int:
    """The most tokens the answer may take after ``prompt`` tokens; InvalidRequest (400,
    ``context_length_exceeded``) when the call cannot fit. ``at_least``: ``prompt`` is a lower bound."""
    n = f"at least {prompt}" if at_least else str(prompt)
    if params.max_tokens_asked:
        if prompt + params.max_tokens <= context:
            return params.max_tokens
        total = f"at least {prompt + params.max_tokens}" if at_least else str(prompt + params.max_tokens)
        raise _too_long(
            f"This model's maximum context length is {context} tokens. However, you requested {total} "
            f"tokens ({n} in the messages, {params.max_tokens} in the completion). "
            "Please reduce the length of the messages or completion."
        )
    room, needed = context - prompt, min(MIN_ANSWER_TOKENS, params.max_tokens)
    if room >= needed:
        return min(params.max_tokens, room)
    short = f", which leaves {room} for the answer (at least {needed} are needed)" if room > 0 else ""
    raise _too_long(
        f"This model's maximum context length is {context} tokens. However, your messages resulted "
        f"in {n} tokens{short}. Please reduce the length of the messages."
    )


def _too_long(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="context_length_exceeded", param="messages")


class Tokenizer:
    """The chat model's vocabulary and chat template; safe to call from any one thread at a time."""

    def __init__(self, path: Path) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter
        except ImportError:
            raise DependencyMissing(
                "llama-cpp-python", extra="local", purpose="the local chat model"
            ) from None
        self._lib = llama_cpp
        if logging.getLogger("llama-cpp-python").level == logging.NOTSET:
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # as Llama(verbose=False)
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise ProviderUnavailable(f"cannot read the vocabulary of {path.name}", provider="local")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        gated = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
        self.specials: dict[str, int] = {}  # control-token text -> id: what parse_special turns on
        longest = 1
        for token in range(llama_cpp.llama_vocab_n_tokens(self._vocab)):
            piece = self.piece(token)
            longest = max(longest, len(piece))
            if llama_cpp.llama_vocab_get_attr(self._vocab, token) & gated and piece:
                self.specials.setdefault(piece.decode("utf-8", "replace"), token)
        #: the most bytes of text one token stands for
        self.longest_token = longest
        by_length = sorted(self.specials, key=len, reverse=True)  # llama.cpp matches the longest first
        self._special = re.compile("|".join(map(re.escape, by_length))) if by_length else None
        eos, bos = llama_cpp.llama_vocab_eos(self._vocab), llama_cpp.llama_vocab_bos(self._vocab)
        template = llama_cpp.llama_model_chat_template(self._model, None)
        self._formatter: Any = Jinja2ChatFormatter(  # typed for llama_cpp's message TypedDicts
            template=template.decode() if template else CHATML_CHAT_TEMPLATE,
            eos_token=self.piece(eos).decode("utf-8", "replace") if eos >= 0 else "",
            bos_token=self.piece(bos).decode("utf-8", "replace") if bos >= 0 else "",
        )
        self._control = frozenset(self.specials.values())
        probe = self.render(_PROBE)
        parts = self._parts(_PROBE, probe)
        #: piecewise tokenization gives this model's usual tokens (else control text in contents is escaped)
        self.piecewise = parts is not None and self._piecewise(parts, None) == self.tokenize(
            probe, special=True
        )
        if not self.piecewise:
            log.warning("%s: piecewise prompts differ from whole ones; escaping control text instead", path)

    def close(self) -> None:
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None

    # -- llama.cpp ---------------------------------------------------------------------------------

    def piece(self, token: int) -> bytes:
        """The bytes of one token (a control token as its text)."""
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        return buf.raw[:n]

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        data = text.encode("utf-8", "replace")
        size = len(data) + 8  # a token holds at least one byte
        buf = (self._lib.llama_token * size)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), buf, size, False, special)
        if n < 0:
            size = -n
            buf = (self._lib.llama_token * size)()
            n = self._lib.llama_tokenize(self._vocab, data, len(data), buf, size, False, special)
        return list(buf[:n])

    # -- prompts ---------------------------------------------------------------------------------

    def render(self, messages: list[dict[str, str]]) -> str:
        try:
            return str(self._formatter(messages=messages).prompt)
        except ValueError as exc:  # the template's raise_exception(): e.g. roles out of order
            raise InvalidRequest(
                f"the local model's chat template refused the messages: {exc}", param="messages"
            ) from None

    def at_least(self, params: ChatParams) -> int:
        """A lower bound on the prompt's tokens, from the size of its contents alone."""
        return -(-_content_bytes(params) // self.longest_token)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt's tokens, in which no message content is read as a control token."""
        tokens, _ = self.measure(messages, limit=None)
        assert tokens is not None
        return tokens

    def measure(self, messages: list[dict[str, str]], limit: int | None) -> tuple[list[int] | None, int]:
        """(the prompt's tokens, how many) or, once it is clear that they are over ``limit``, (None, a
        lower bound over it): from the rendered prompt's size, or from tokenizing it only that far."""
        text = self.render(messages)
        if limit is not None:
            floor = -(-_utf8_bytes(text) // self.longest_token)
            if floor > limit:
                return None, floor  # e.g. a flood of empty messages: the template's text alone
        parts = self._parts(messages, text)
        if parts is not None:
            # Usually no content holds control-token text: then tokenizing the whole prompt (one call)
            # yields exactly the template's control tokens, and those tokens are the answer.
            tokens = self.tokenize(text, special=True)
            if [t for t in tokens if t in self._control] == self._template_controls(parts):
                return tokens, len(tokens)
            if self.piecewise:
                tokens = self._piecewise(parts, limit)
                over = limit is not None and len(tokens) > limit
                return (None, len(tokens)) if over else (tokens, len(tokens))
        escaped = [{**m, "content": self._escape(m["content"])} for m in messages]
        tokens = self.tokenize(self.render(escaped), special=True)
        return tokens, len(tokens)

    def _escape(self, text: str) -> str:
        if self._special is None:
            return text
        return self._special.sub(lambda m: m[0][0] + _JOINER + m[0][1:], text)

    def _parts(self, messages: list[dict[str, str]], text: str) -> list[str] | None:
        """The rendered prompt as template text, content 0, template text, content 1, …, template text;
        None when the template does not copy the contents verbatim (it trims them, say)."""
        marked = self.render([{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)])
        parts = _MARK.split(marked)
        for k in range(1, len(parts), 2):
            parts[k] = messages[int(parts[k])]["content"]
        return parts if "".join(parts) == text else None

    def _template_controls(self, parts: list[str]) -> list[int]:
        if self._special is None:
            return []
        return [self.specials[m[0]] for part in parts[::2] for m in self._special.finditer(part)]

    def _piecewise(self, parts: list[str], limit: int | None) -> list[int]:
        """Control tokens where the template put them and the text between them, contents included,
        tokenized as text (stopping once over ``limit``)."""
        tokens: list[int] = []
        run: list[str] = []
        for k, part in enumerate(parts):
            if k % 2 or self._special is None:  # a message's content: text, whatever it holds
                run.append(part)
                continue
            at = 0
            for found in self._special.finditer(part):
                run.append(part[at : found.start()])
                tokens += self.tokenize("".join(run), special=False)
                tokens.append(self.specials[found[0]])
                run, at = [], found.end()
                if limit is not None and len(tokens) > limit:
                    return tokens  # enough to know it cannot fit
            run.append(part[at:])
        tokens += self.tokenize("".join(run), special=False)
        return tokens
