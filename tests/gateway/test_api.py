"""The typed Python API: ``complete`` and ``embed_texts`` return objects, not OpenAI wire bytes."""

from __future__ import annotations

import orjson
import pytest

from fakes.upstream import FakeUpstream
from sophia.accounts.ledger import Ledger
from sophia.errors import BudgetExceeded, PermissionDenied, ProviderError
from sophia.gateway.api import ChatAnswer, Result
from sophia.gateway.engine import Gateway
from sophia.providers.base import ModelInfo, Usage


async def test_complete_returns_the_answer_and_what_it_cost(gateway: Gateway) -> None:
    secret, _ = await gateway.accounts.keys.create(name="bi", team="sales")
    key = await gateway.authenticate(f"Bearer {secret}")
    answer = await gateway.complete(
        [{"role": "user", "content": "Which region converts best?"}],
        key=key,
        model="vllm/priced",
        max_tokens=20,
        metadata={"task_type": "bi"},
    )
    assert isinstance(answer, ChatAnswer)
    assert answer.text and answer.finish_reason == "stop" and answer.tool_calls is None
    assert (answer.model, answer.provider, answer.requested, answer.cache) == (
        "vllm/priced",
        "vllm",
        "vllm/priced",
        "miss",
    )
    assert answer.cost_usd > 0 and answer.prompt_tokens > 0 and answer.request_id.startswith("req_")
    ledger: Ledger = gateway.accounts.ledger
    row = await ledger.find(answer.request_id)
    assert row is not None and row["team"] == "sales" and row["served_model"] == "vllm/priced"


async def test_embed_texts_returns_one_vector_per_text_in_order(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    result = await gateway.embed_texts(
        ["first", "second", "third"], key=None, model="openai/text-embedding-3-small"
    )
    assert len(result.vectors) == 3 and result.dimensions == len(result.vectors[0]) > 0
    assert result.model == "openai/text-embedding-3-small" and result.requested == result.model


async def test_the_typed_api_goes_through_admission(gateway: Gateway) -> None:
    secret, _ = await gateway.accounts.keys.create(
        name="narrow", allowed_models=["ollama/*"], budget_daily_usd=0
    )
    key = await gateway.authenticate(f"Bearer {secret}")
    with pytest.raises(PermissionDenied):
        await gateway.complete([{"role": "user", "content": "hi"}], key=key, model="vllm/ok")
    with pytest.raises(BudgetExceeded):
        await gateway.complete([{"role": "user", "content": "hi"}], key=key, model="ollama/ok")


def test_a_body_that_is_not_a_completion_is_a_provider_error() -> None:
    info = ModelInfo(
        id="vllm/odd", provider="vllm", upstream="odd", input_price=0.0, output_price=0.0, context_window=8
    )
    bad = Result(b"[1, 2]", info, Usage(), 0.0, 1, "", "req_1")
    with pytest.raises(ProviderError, match="not a JSON object"):
        ChatAnswer.of(bad, "vllm/odd")
    empty = Result(orjson.dumps({"choices": []}), info, Usage(), 0.0, 1, "", "req_2")
    assert ChatAnswer.of(empty, "vllm/odd").text == ""
