"""OTLP for Sophia's own spans: a direct protobuf encoder and HTTP / gRPC senders.

The OpenTelemetry SDK's encoder builds a protobuf object per attribute (about 65 µs a span here,
more than the gateway spends on a request), so the spans built from the ledger are written straight
to the OTLP wire format instead (``opentelemetry/proto/trace/v1/trace.proto``, stable since OTLP 1.0):
constant key/value pairs are encoded once and reused. Spans of third-party instrumentation keep the
SDK's own exporters. ``tests/observe/test_tracing.py`` decodes what this writes with the official
``opentelemetry-proto`` classes, and ``test_phoenix_export.py`` sends it to a real Phoenix.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from sophia.timeparse import retry_after

log = logging.getLogger(__name__)

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS = {"unset": 0, "ok": 1, "error": 2}
_FLAGS = b"\x85\x01" + struct.pack("<I", 0x101)  # field 16 (fixed32): sampled, is_remote known (false)
_Q = struct.Struct("<Q")
_D = struct.Struct("<d")
_CACHE_MAX = 16384
RETRIES = 3


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _any(value: Any) -> bytes:
    """An ``AnyValue``'s fields."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _D.pack(value)
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, list | tuple):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any(item)) for item in value))
    return _field(b"\x0a", str(value).encode())


class Encoder:
    """Spans (``SpanData``) to an ``ExportTraceServiceRequest``, reusing encoded constant attributes."""

    def __init__(self, resource: Mapping[str, Any], scope: tuple[str, str]) -> None:
        self._cache: dict[tuple[bytes, str, Any], bytes] = {}
        resource_body = b"".join(self._kv(b"\x0a", key, value) for key, value in resource.items())
        self._resource = _field(b"\x0a", resource_body)
        self._scope = _field(b"\x0a", _field(b"\x0a", scope[0].encode()) + _field(b"\x12", scope[1].encode()))

    def _kv(self, tag: bytes, key: str, value: Any) -> bytes:
        """One ``KeyValue`` as the field ``tag`` (strings, bools and small ints remembered)."""
        cacheable = type(value) in (str, bool) and (type(value) is bool or len(value) <= 128)
        if cacheable:
            found = self._cache.get((tag, key, value))
            if found is not None:
                return found
        encoded = _field(tag, _field(b"\x0a", key.encode()) + _field(b"\x12", _any(value)))
        if cacheable:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[(tag, key, value)] = encoded
        return encoded

    def span(self, data: Any) -> bytes:
        kv = self._kv
        parts = [
            b"\x0a\x10" + data.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + data.span_id.to_bytes(8, "big"),
        ]
        if data.parent_id:
            parts.append(b"\x22\x08" + data.parent_id.to_bytes(8, "big"))
        parts.append(_field(b"\x2a", data.name.encode()))
        parts.append(b"\x30" + bytes((KIND.get(data.kind, 1),)))
        parts.append(b"\x39" + _Q.pack(data.start_ns))
        parts.append(b"\x41" + _Q.pack(data.end_ns))
        parts.extend(kv(b"\x4a", key, value) for key, value in data.attributes.items())
        for name, at, attributes in data.events:
            event = b"\x09" + _Q.pack(at) + _field(b"\x12", name.encode())
            event += b"".join(kv(b"\x1a", key, value) for key, value in attributes.items())
            parts.append(_field(b"\x5a", event))
        status = _field(b"\x12", data.status_message.encode()) if data.status_message else b""
        parts.append(_field(b"\x7a", status + b"\x18" + bytes((STATUS.get(data.status, 0),))))
        parts.append(_FLAGS)
        return _field(b"\x12", b"".join(parts))

    def request(self, spans: Iterable[Any]) -> bytes:
        """An ``ExportTraceServiceRequest`` holding ``spans`` (one resource, one scope)."""
        scope_spans = _field(b"\x12", self._scope + b"".join(self.span(data) for data in spans))
        return _field(b"\x0a", self._resource + scope_spans)


class Sender(Protocol):
    def send(self, body: bytes) -> bool: ...

    def close(self) -> None: ...


class HttpSender:
    """OTLP/HTTP (binary protobuf): retried on 429, 502-504 and connection errors, honouring Retry-After."""

    def __init__(self, endpoint: str, headers: Mapping[str, str], *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.client = httpx.Client(
            timeout=timeout, headers={**headers, "content-type": "application/x-protobuf"}, trust_env=False
        )

    def send(self, body: bytes) -> bool:
        for attempt in range(RETRIES + 1):
            delay = _backoff(attempt)
            try:
                response = self.client.post(self.endpoint, content=body)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code not in (429, 502, 503, 504):
                    break
                delay = min(retry_after(response.headers.get("retry-after")) or delay, 30.0)
            if attempt < RETRIES:
                time.sleep(delay)
        log.warning("OTLP export to %s failed: %s", _host(self.endpoint), problem)
        return False

    def close(self) -> None:
        self.client.close()


class GrpcSender:
    """OTLP/gRPC: the collector's Export method with the encoded request as is (no second encoding)."""

    RETRYABLE = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED")

    def __init__(self, endpoint: str, headers: Mapping[str, str], *, timeout: float = 10.0) -> None:
        import grpc

        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 4317)}"
        self.endpoint = target
        if parts.scheme == "https":
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
        else:
            self.channel = grpc.insecure_channel(target)
        self.call = self.channel.unary_unary(GRPC_METHOD)  # bytes in, bytes out
        self.metadata = [(name.lower(), value) for name, value in headers.items()]
        self.timeout = timeout
        self._grpc = grpc

    def send(self, body: bytes) -> bool:
        problem = ""
        for attempt in range(RETRIES + 1):
            try:
                self.call(body, metadata=self.metadata, timeout=self.timeout)
                return True
            except self._grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                problem = code.name if code is not None else type(exc).__name__
                if problem not in self.RETRYABLE:
                    break
            if attempt < RETRIES:
                time.sleep(_backoff(attempt))
        log.warning("OTLP export to %s failed: %s", self.endpoint, problem)
        return False

    def close(self) -> None:
        self.channel.close()


def _backoff(attempt: int) -> float:
    return min(0.5 * 2**attempt, 8.0) * random.uniform(0.5, 1.5)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
