"""The Anthropic Messages wire adapter: OpenAI chat-completions in, ``POST {base}/messages``, OpenAI out.

Request: system/developer messages become the top-level ``system``; tool calls and tool results
become ``tool_use`` / ``tool_result`` blocks; same-role turns are merged (Anthropic requires them
to alternate). Parameters Anthropic cannot honour and whose loss would change the answer (``n>1``,
``logprobs``, ``temperature>1``, audio, …) are refused with ``InvalidRequest`` naming the parameter;
soft hints with no Anthropic equivalent (``seed``, penalties, ``store``, …) are dropped. The answer
and its stream are translated back in ``_anthropic_stream``.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING, Any

import orjson

from sophia.errors import ConfigError, InvalidRequest, ProviderError, ProviderUnavailable
from sophia.httpclient import HTTPClient, Response
from sophia.providers.adapters._anthropic_stream import AnthropicStream, convert_usage, finish_reason
from sophia.providers.adapters._http import (
    keyed,
    listing_target,
    open_post,
    probe_listing,
    read_body,
    request_headers,
)
from sophia.providers.base import JSON, Adapter, CallOptions, ChunkStream, Completion, ModelInfo, Usage

if TYPE_CHECKING:
    from sophia.providers.base import Vendor
    from sophia.settings import ProviderSettings, Settings

#: Anthropic requires ``max_tokens``; used when the request sets neither max_tokens nor max_completion_tokens
DEFAULT_MAX_TOKENS = 4096

JSON_ONLY = (
    "Respond only with a single valid JSON object. "
    "Do not add any other text and do not wrap it in a code block."
)

_TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}


# -- request: OpenAI -> Anthropic ---------------------------------------------------------------


def to_messages_request(request: JSON, upstream: str, *, stream: bool) -> JSON:
    """The Anthropic Messages body for an OpenAI chat-completions ``request``."""
    _refuse_unsupported(request)
    system, messages = _conversation(request.get("messages"))
    instruction = _format_instruction(request.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})
    body: JSON = {"model": upstream, "messages": messages, "max_tokens": _max_tokens(request)}
    if system:
        body["system"] = system
    body.update(_sampling(request))
    body.update(_tools(request))
    if request.get("user"):
        body["metadata"] = {"user_id": str(request["user"])}
    if stream:
        body["stream"] = True
    return body


def _refuse_unsupported(request: JSON) -> None:
    refused = (
        ("n", request.get("n") not in (None, 1), "n > 1 (several choices)"),
        ("logprobs", bool(request.get("logprobs")), "logprobs"),
        ("top_logprobs", bool(request.get("top_logprobs")), "top_logprobs"),
        ("logit_bias", bool(request.get("logit_bias")), "logit_bias"),
        ("audio", request.get("audio") is not None, "audio output"),
        ("modalities", "audio" in (request.get("modalities") or ()), "audio output"),
        ("web_search_options", request.get("web_search_options") is not None, "web_search_options"),
        (
            "functions",
            bool(request.get("functions") or request.get("function_call")),
            "functions (use tools)",
        ),
    )
    for param, bad, what in refused:
        if bad:
            raise InvalidRequest(f"Anthropic models do not support {what}", param=param)


def _conversation(messages: Any) -> tuple[list[JSON], list[JSON]]:
    """(system blocks, alternating user/assistant turns) from OpenAI ``messages``."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    system: list[JSON] = []
    turns: list[JSON] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role, content, param = message.get("role"), message.get("content"), f"messages[{i}].content"
        if role in ("system", "developer"):
            system.extend(_text_blocks(content, param))
            continue
        if role == "user":
            blocks = _user_blocks(content, param)
        elif role == "assistant":
            blocks = _text_blocks(content, param) + _tool_uses(message.get("tool_calls"), i)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, i)]
        else:
            raise InvalidRequest(
                f"messages[{i}] has the unsupported role {role!r}", param=f"messages[{i}].role"
            )
        if not blocks:
            continue  # Anthropic refuses empty turns; an empty one carries nothing
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest(
            "messages need at least one non-empty user or assistant message", param="messages"
        )
    return system, turns


def _parts(content: Any, param: str) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise InvalidRequest(f"{param} must be a string or an array of content parts", param=param)


def _text_blocks(content: Any, param: str) -> list[JSON]:
    blocks = []
    for j, part in enumerate(_parts(content, param)):
        if part.get("type") not in ("text", "refusal"):
            raise InvalidRequest(f"{param}[{j}] must be a text part here", param=f"{param}[{j}]")
        text = part.get("text") or part.get("refusal")
        if text:
            blocks.append({"type": "text", "text": str(text)})
    return blocks


def _user_blocks(content: Any, param: str) -> list[JSON]:
    blocks: list[JSON] = []
    for j, part in enumerate(_parts(content, param)):
        kind, where = part.get("type"), f"{param}[{j}]"
        if kind == "text":
            blocks.extend(_text_blocks([part], param))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append({"type": "image", "source": _image_source(url, where)})
        elif kind == "file":
            blocks.append(_document(part.get("file"), where))
        else:
            raise InvalidRequest(
                f"Anthropic models do not accept {kind!r} content parts", param=f"{where}.type"
            )
    return blocks


def _image_source(url: Any, param: str) -> JSON:
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    if isinstance(url, str) and url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, *flags = header.split(";")
        if comma and media_type and "base64" in flags:
            return {"type": "base64", "media_type": media_type, "data": data}
    raise InvalidRequest(f"{param} needs an http(s) URL or a base64 data: URL", param=f"{param}.image_url")


def _document(file: Any, param: str) -> JSON:
    data = file.get("file_data") if isinstance(file, dict) else None
    prefix = "data:application/pdf;base64,"
    if not isinstance(data, str) or not data.startswith(prefix):
        raise InvalidRequest(
            f"{param}: only inline PDF files (file_data) reach Anthropic", param=f"{param}.file"
        )
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": data[len(prefix) :]},
    }


def _tool_uses(calls: Any, i: int) -> list[JSON]:
    blocks = []
    for j, call in enumerate(calls or ()):
        param = f"messages[{i}].tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id") or not function.get("name"):
            raise InvalidRequest(f"{param} needs an id and a function name", param=param)
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except (orjson.JSONDecodeError, TypeError):
            arguments = None
        if not isinstance(arguments, dict):
            raise InvalidRequest(
                f"{param}.function.arguments must be a JSON object", param=f"{param}.function.arguments"
            )
        blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments})
    return blocks


def _tool_result(message: JSON, i: int) -> JSON:
    if not message.get("tool_call_id"):
        raise InvalidRequest(f"messages[{i}] (tool) needs tool_call_id", param=f"messages[{i}].tool_call_id")
    result: JSON = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            result["content"] = content
    elif blocks := _text_blocks(content, f"messages[{i}].content"):
        result["content"] = blocks
    return result


def _format_instruction(response_format: Any) -> str | None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is None or kind == "text":
        return None
    if kind == "json_object":
        return JSON_ONLY
    schema = response_format.get("json_schema") if kind == "json_schema" else None
    if isinstance(schema, dict) and isinstance(schema.get("schema"), dict):
        return f"{JSON_ONLY} It must conform to this JSON Schema: {orjson.dumps(schema['schema']).decode()}"
    raise InvalidRequest("response_format must be text, json_object or json_schema", param="response_format")


def _max_tokens(request: JSON) -> int:
    for param in ("max_completion_tokens", "max_tokens"):
        value = request.get(param)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"{param} must be a positive integer", param=param)
        return value
    return DEFAULT_MAX_TOKENS


def _sampling(request: JSON) -> JSON:
    out: JSON = {}
    temperature = request.get("temperature")
    if temperature is not None:
        if (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not 0 <= temperature <= 1
        ):
            raise InvalidRequest(
                "temperature must be between 0 and 1 for Anthropic models", param="temperature"
            )
        out["temperature"] = temperature
    for param in ("top_p", "top_k"):
        if request.get(param) is not None:
            out[param] = request[param]
    stop = request.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("stop must be a string or an array of strings", param="stop")
        out["stop_sequences"] = stop
    return out


def _tools(request: JSON) -> JSON:
    tools = request.get("tools")
    if not tools:
        return {}  # tool_choice / parallel_tool_calls mean nothing without tools
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    specs = []
    for j, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequest(f"tools[{j}] must be a function tool with a name", param=f"tools[{j}]")
        spec: JSON = {"name": function["name"]}
        if function.get("description"):
            spec["description"] = function["description"]
        spec["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        specs.append(spec)
    choice = _tool_choice(request.get("tool_choice"))
    if request.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return {"tools": specs, "tool_choice": choice} if choice else {"tools": specs}


def _tool_choice(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    function = (
        choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    )
    if isinstance(function, dict) and function.get("name"):
        return {"type": "tool", "name": function["name"]}
    raise InvalidRequest("tool_choice must be auto, required, none or a named function", param="tool_choice")


# -- response: Anthropic -> OpenAI --------------------------------------------------------------


def to_chat_completion(message: JSON, model_id: str, created: int) -> tuple[JSON, Usage]:
    """The OpenAI ``chat.completion`` object and Sophia's usage for an Anthropic ``message``."""
    texts, calls = [], []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            call = {
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": arguments},
            }
            calls.append(call)
    reply: JSON = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    usage, usage_json = convert_usage(message.get("usage"))
    body = {
        "id": f"chatcmpl-{message.get('id', '')}",
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": usage_json,
    }
    return body, usage


# -- the adapter --------------------------------------------------------------------------------


class AnthropicAdapter(Adapter):
    protocol = "anthropic"

    def __init__(self, vendor: Vendor, config: ProviderSettings, settings: Settings) -> None:
        super().__init__(vendor, config, settings)
        base = (config.base_url or vendor.base_url or "").rstrip("/")
        if not base:
            raise ConfigError(f"provider {vendor.name!r} needs providers.{vendor.name}.base_url")
        self.base = base
        self.messages_url = f"{base}/messages"
        self._client: HTTPClient | None = None
        self.rekey(config)

    def rekey(self, config: ProviderSettings) -> None:
        super().rekey(config)
        self.headers = request_headers(self.vendor, config)
        self.messages_target = HTTPClient.target(self.messages_url, self.headers)
        self.listing_target = listing_target(self.base, self.headers)

    async def start(self, client: HTTPClient) -> None:
        self._client = client

    async def probe(self, options: CallOptions) -> str | None:
        """Anthropic's ``GET /v1/models`` with the calls' key and version header (no tokens); not asked
        without a key."""
        if not keyed(self.vendor, self.headers):
            return None
        return await probe_listing(self._client, self.listing_target, options, self.vendor.name)

    async def _open(self, body: JSON, model: ModelInfo, options: CallOptions) -> Response:
        if self._client is None:
            raise ProviderUnavailable(
                f"{self.vendor.name} is not started", provider=self.vendor.name, model=model.id
            )
        payload = orjson.dumps(body)
        return await open_post(
            self._client, self.messages_target, payload, options, self.vendor.name, model.id
        )

    async def chat(self, model: ModelInfo, request: JSON, options: CallOptions) -> Completion:
        body = to_messages_request(request, model.upstream, stream=False)
        resp = await self._open(body, model, options)
        raw = await read_body(resp, options, self.vendor.name, model.id)
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "message":
            raise ProviderError(
                f"{self.vendor.name} answered {model.id} with an unexpected body",
                provider=self.vendor.name,
                model=model.id,
            )
        out, usage = to_chat_completion(message, model.id, int(time()))
        return Completion(orjson.dumps(out), usage)

    async def chat_stream(self, model: ModelInfo, request: JSON, options: CallOptions) -> ChunkStream:
        body = to_messages_request(request, model.upstream, stream=True)
        resp = await self._open(body, model, options)
        return AnthropicStream(resp, model, options, self.vendor.name, int(time()))
