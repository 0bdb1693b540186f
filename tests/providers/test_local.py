"""The local adapter: SmolLM2 on llama.cpp in-process for chat, the numpy MiniLM for embeddings.

Requests are refused before any model loads when they ask for what the local model cannot do.
The ``local_model`` tests run the real bundled GGUF (one Llama per module, small max_tokens,
greedy decoding so that answers are reproducible) and check every answer with the openai
package's own response types.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from sophia.embedder import get_encoder
from sophia.embedder.minilm import get_minilm
from sophia.errors import ConfigError, DependencyMissing, InvalidRequest, ProviderTimeout, ProviderUnavailable
from sophia.providers.adapters.local import LocalAdapter, LocalChunkStream, chat_model_path
from sophia.providers.base import CallOptions
from sophia.providers.local import VENDOR
from sophia.settings import ProviderSettings, Settings, load_settings

CHAT_MODEL = next(m for m in VENDOR.model_infos() if m.id == "local")
EMBED_MODEL = next(m for m in VENDOR.model_infos() if m.id == "local/all-minilm-l6-v2")
OPTIONS = CallOptions(timeout=30.0, first_byte_timeout=30.0)
STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to code."}]
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def make_adapter(settings: Settings | None = None) -> LocalAdapter:
    return LocalAdapter(VENDOR, ProviderSettings(), settings or load_settings())


@pytest.fixture
def adapter() -> LocalAdapter:
    """An adapter whose chat model is never loaded (validation and embedding tests)."""
    return make_adapter()


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAdapter]:
    """One adapter, and so one loaded Llama, shared by the module's local_model tests."""
    home = tmp_path_factory.mktemp("sophia-home")
    with (
        pytest.MonkeyPatch.context() as mp
    ):  # the per-test isolation (conftest) is not active at module scope
        for name in [n for n in os.environ if n.startswith("SOPHIA_")]:
            mp.delenv(name)
        mp.setenv("SOPHIA_HOME", str(home))
        mp.chdir(home)
        settings = load_settings(local={"context_window": 256})
    adapter = make_adapter(settings)
    yield adapter
    asyncio.run(adapter.close())


def chat_body(messages: list[dict[str, Any]] = HELLO, **params: Any) -> dict[str, Any]:
    return {"model": "smollm2-135m-instruct", "messages": messages, "temperature": 0, **params}


async def complete(adapter: LocalAdapter, **params: Any) -> ChatCompletion:
    result = await adapter.chat(CHAT_MODEL, chat_body(**params), OPTIONS)
    answer = ChatCompletion.model_validate_json(result.body)
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
    )
    return answer


async def events(stream: LocalChunkStream) -> list[dict[str, Any]]:
    out = []
    async for event in stream:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        assert event != b"data: [DONE]\n\n"
        data = orjson.loads(event[6:])
        ChatCompletionChunk.model_validate(data)
        out.append(data)
    return out


# -- refused before anything loads ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"42": 5}}, "logit_bias"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "ten"}, "max_completion_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"seed": 1.5}, "seed"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}]}, "messages"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages",
        ),
    ],
)
async def test_parameters_that_cannot_be_honoured_are_refused(
    adapter: LocalAdapter, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await adapter.chat(CHAT_MODEL, chat_body(**params), OPTIONS)
    assert err.value.param == param
    assert adapter._engine._llama is None  # refused before the model was loaded


async def test_the_embedding_model_does_not_chat(adapter: LocalAdapter) -> None:
    with pytest.raises(InvalidRequest, match="chat"):
        await adapter.chat(EMBED_MODEL, chat_body(), OPTIONS)
    with pytest.raises(InvalidRequest, match="embeddings"):
        await adapter.embed(CHAT_MODEL, {"input": "hi"}, OPTIONS)


async def test_missing_llama_cpp_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp -> ImportError
    adapter = make_adapter()
    with pytest.raises(DependencyMissing, match=r"sophia\[local\]"):
        await adapter.chat(CHAT_MODEL, chat_body(), OPTIONS)
    await adapter.close()


async def test_a_configured_model_file_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    adapter = make_adapter(load_settings(local={"chat_model_path": str(tmp_path / "nope.gguf")}))
    with pytest.raises(ConfigError, match=r"nope\.gguf"):
        await adapter.chat(CHAT_MODEL, chat_body(), OPTIONS)
    await adapter.close()


def test_the_default_model_is_the_bundled_gguf() -> None:
    path = chat_model_path(load_settings().local)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()


# -- embeddings --------------------------------------------------------------------------------------


async def test_embeddings_are_openai_shaped_with_real_usage(adapter: LocalAdapter) -> None:
    texts = ["How do I reset my password?", "The new movie is awesome!"]
    result = await adapter.embed(EMBED_MODEL, {"model": "all-minilm-l6-v2", "input": texts}, OPTIONS)
    answer = CreateEmbeddingResponse.model_validate_json(result.body)
    assert answer.object == "list" and answer.model == "local/all-minilm-l6-v2"
    assert [d.index for d in answer.data] == [0, 1]
    vectors = np.array([d.embedding for d in answer.data], dtype=np.float32)
    assert vectors.shape == (2, 384)
    # the process's encoder (onnxruntime int8 when installed), close to the float32 reference
    np.testing.assert_allclose(vectors, get_encoder().encode(texts), atol=1e-6)
    assert (np.einsum("ij,ij->i", vectors, get_minilm().encode(texts)) > 0.97).all()
    tokens = get_minilm().count_tokens(texts)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == tokens
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (tokens, 0)


async def test_a_single_string_input_gives_one_vector(adapter: LocalAdapter) -> None:
    result = await adapter.embed(EMBED_MODEL, {"input": "hello world", "dimensions": 384}, OPTIONS)
    data = orjson.loads(result.body)["data"]
    assert len(data) == 1 and len(data[0]["embedding"]) == 384


async def test_base64_embeddings_decode_to_the_float_ones(adapter: LocalAdapter) -> None:
    request = {"input": ["one", "two"]}
    floats = orjson.loads((await adapter.embed(EMBED_MODEL, request, OPTIONS)).body)["data"]
    b64 = orjson.loads(
        (await adapter.embed(EMBED_MODEL, {**request, "encoding_format": "base64"}, OPTIONS)).body
    )
    for plain, packed in zip(floats, b64["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(packed["embedding"]), dtype="<f4")
        np.testing.assert_allclose(decoded, np.array(plain["embedding"], dtype=np.float32), rtol=1e-6)


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": "x", "dimensions": 256}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
async def test_bad_embedding_requests_are_refused(
    adapter: LocalAdapter, request_body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await adapter.embed(EMBED_MODEL, request_body, OPTIONS)
    assert err.value.param == param


# -- chat on the real model ----------------------------------------------------------------------------


@pytest.mark.local_model
async def test_chat_answers_with_openai_json_and_the_models_own_token_counts(llm: LocalAdapter) -> None:
    import llama_cpp

    answer = await complete(llm, max_tokens=12)
    assert answer.id.startswith("chatcmpl-") and answer.object == "chat.completion"
    assert answer.model == "local"
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    # llama-cpp-python's own chat completion, on its own Llama, counts and says the same
    path = chat_model_path(llm.settings.local)
    own = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False)
    try:
        ref = own.create_chat_completion(HELLO, temperature=0, max_tokens=12)
    finally:
        own.close()
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == ref["usage"]["prompt_tokens"]
    assert answer.usage.completion_tokens == ref["usage"]["completion_tokens"] == 12
    assert answer.usage.total_tokens == ref["usage"]["total_tokens"]
    assert choice.message.content == ref["choices"][0]["message"]["content"]
    assert choice.finish_reason == ref["choices"][0]["finish_reason"] == "length"


@pytest.mark.local_model
async def test_max_tokens_and_max_completion_tokens_are_honoured(llm: LocalAdapter) -> None:
    for params in (
        {"max_tokens": 5},
        {"max_completion_tokens": 5},
        {"max_tokens": 50, "max_completion_tokens": 5},
    ):
        answer = await complete(llm, messages=STORY, **params)
        assert answer.usage is not None and answer.usage.completion_tokens == 5
        assert answer.choices[0].finish_reason == "length"


@pytest.mark.local_model
async def test_stop_sequences_end_the_answer_before_them(llm: LocalAdapter) -> None:
    full = (await complete(llm, messages=STORY, max_tokens=30)).choices[0].message.content
    assert full is not None
    stop = full.split()[8]  # a word from the middle of the greedy answer
    answer = await complete(llm, messages=STORY, max_tokens=30, stop=["never-appears", stop])
    assert answer.choices[0].message.content == full[: full.index(stop)]
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.local_model
async def test_a_seed_makes_sampling_repeatable(llm: LocalAdapter) -> None:
    params = {"messages": STORY, "max_tokens": 12, "temperature": 1.0, "top_p": 1.0}
    first, again = [(await complete(llm, seed=7, **params)).choices[0].message.content for _ in range(2)]
    assert first == again


@pytest.mark.local_model
async def test_json_mode_answers_valid_json(llm: LocalAdapter) -> None:
    messages = [{"role": "user", "content": "Give me a JSON object describing a cat with a name and an age."}]
    answer = await complete(llm, messages=messages, max_tokens=80, response_format={"type": "json_object"})
    assert answer.choices[0].finish_reason == "stop"
    assert isinstance(orjson.loads(answer.choices[0].message.content or ""), dict)


@pytest.mark.local_model
async def test_a_json_schema_the_grammar_cannot_express_is_an_invalid_request(llm: LocalAdapter) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frobnicate"}}}
    with pytest.raises(InvalidRequest) as err:
        await llm.chat(CHAT_MODEL, chat_body(response_format=schema), OPTIONS)
    assert err.value.param == "response_format"


@pytest.mark.local_model
async def test_the_stream_is_openai_chunks_with_a_final_usage_chunk(llm: LocalAdapter) -> None:
    stream = await llm.chat_stream(CHAT_MODEL, chat_body(max_tokens=12), OPTIONS)
    assert isinstance(stream, LocalChunkStream)
    chunks = await events(stream)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1 and {c["model"] for c in chunks} == {"local"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": stream.usage.prompt_tokens,
        "completion_tokens": 12,
        "total_tokens": stream.usage.prompt_tokens + 12,
    }
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == (await complete(llm, max_tokens=12)).choices[0].message.content


@pytest.mark.local_model
async def test_without_include_usage_there_is_no_usage_chunk_but_usage_is_counted(llm: LocalAdapter) -> None:
    options = CallOptions(timeout=30.0, first_byte_timeout=30.0, include_usage=False)
    stream = await llm.chat_stream(CHAT_MODEL, chat_body(max_tokens=4), options)
    chunks = await events(stream)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert stream.usage.completion_tokens == 4 and stream.usage.prompt_tokens > 0


@pytest.mark.local_model
async def test_aclose_stops_generation_within_a_token_or_so(llm: LocalAdapter) -> None:
    stream = await llm.chat_stream(CHAT_MODEL, chat_body(STORY, max_tokens=200), OPTIONS)
    for _ in range(3):
        await stream.__anext__()
    await stream.aclose()  # returns once the worker thread has let go
    assert stream.usage.completion_tokens < 20
    started = time.monotonic()
    answer = await complete(llm, max_tokens=2)  # the worker is free for the next request at once
    assert answer.usage is not None and answer.usage.completion_tokens == 2
    assert time.monotonic() - started < 5


@pytest.mark.local_model
async def test_cancelling_the_consumer_stops_generation(llm: LocalAdapter) -> None:
    stream = await llm.chat_stream(CHAT_MODEL, chat_body(STORY, max_tokens=200), OPTIONS)
    assert isinstance(stream, LocalChunkStream)

    async def consume() -> None:
        async for _ in stream:  # cancelled while it waits for the next token
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = stream._job
    assert job.future is not None
    await asyncio.wait_for(asyncio.wrap_future(job.future), 5)
    assert job.completion_tokens < 200


@pytest.mark.local_model
async def test_a_stream_dropped_without_aclose_still_stops(llm: LocalAdapter) -> None:
    stream = await llm.chat_stream(CHAT_MODEL, chat_body(STORY, max_tokens=200), OPTIONS)
    assert isinstance(stream, LocalChunkStream)
    await stream.__anext__()
    job = stream._job
    del stream
    gc.collect()
    assert job.future is not None
    await asyncio.wait_for(asyncio.wrap_future(job.future), 5)
    assert job.completion_tokens < 200


@pytest.mark.local_model
async def test_a_timeout_stops_generation_and_is_a_provider_timeout(llm: LocalAdapter) -> None:
    with pytest.raises(ProviderTimeout):
        await llm.chat(
            CHAT_MODEL, chat_body(STORY, max_tokens=200), CallOptions(timeout=0.3, first_byte_timeout=30)
        )
    answer = await complete(llm, max_tokens=1)  # and the model is free again
    assert answer.usage is not None and answer.usage.completion_tokens == 1


@pytest.mark.local_model
async def test_close_stops_running_and_queued_generations() -> None:
    adapter = make_adapter()
    running = await adapter.chat_stream(CHAT_MODEL, chat_body(STORY, max_tokens=200), OPTIONS)
    assert isinstance(running, LocalChunkStream)
    await running.__anext__()
    queued = asyncio.create_task(adapter.chat(CHAT_MODEL, chat_body(STORY, max_tokens=200), OPTIONS))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(adapter.close(), 5)
    assert running._job.completion_tokens < 200
    with pytest.raises(ProviderUnavailable, match="shut down"):  # cancelled before it started
        await asyncio.wait_for(queued, 1)
    with pytest.raises(ProviderUnavailable):
        await adapter.chat(CHAT_MODEL, chat_body(), OPTIONS)


@pytest.mark.local_model
async def test_concurrent_requests_queue_up_and_all_finish(llm: LocalAdapter) -> None:
    answers = await asyncio.gather(*(complete(llm, max_tokens=n) for n in (3, 5, 7)))
    assert [a.usage.completion_tokens for a in answers if a.usage] == [3, 5, 7]


@pytest.mark.local_model
async def test_a_prompt_longer_than_the_context_window_is_an_invalid_request(llm: LocalAdapter) -> None:
    messages = [{"role": "user", "content": "hello " * 400}]
    with pytest.raises(InvalidRequest) as err:
        await llm.chat(CHAT_MODEL, chat_body(messages), OPTIONS)
    assert err.value.code == "context_length_exceeded" and err.value.param == "messages"
    assert err.value.message.startswith("This model's maximum context length is 256 tokens.")
    with pytest.raises(InvalidRequest):
        await llm.chat_stream(CHAT_MODEL, chat_body(messages), OPTIONS)


@pytest.mark.local_model
async def test_without_max_tokens_the_answer_is_cut_to_what_fits(llm: LocalAdapter) -> None:
    messages = [{"role": "user", "content": "hello " * 200}]
    answer = await complete(llm, messages=messages)  # local.default_max_tokens (256) would not fit
    assert answer.usage is not None
    assert answer.usage.prompt_tokens + answer.usage.completion_tokens == 256
    assert answer.choices[0].finish_reason == "length"


@pytest.mark.local_model
async def test_max_tokens_beyond_the_window_is_refused_as_openai_does(llm: LocalAdapter) -> None:
    messages = [{"role": "user", "content": "hello " * 200}]
    with pytest.raises(InvalidRequest) as err:
        await complete(llm, messages=messages, max_tokens=100)
    assert err.value.code == "context_length_exceeded"
    prompt = (await complete(llm, messages=messages, max_tokens=1)).usage
    assert prompt is not None
    assert err.value.message == (
        "This model's maximum context length is 256 tokens. However, you requested "
        f"{prompt.prompt_tokens + 100} tokens ({prompt.prompt_tokens} in the messages, 100 in the "
        "completion). Please reduce the length of the messages or completion."
    )
