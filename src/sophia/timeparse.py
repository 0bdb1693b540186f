"""Times as people and servers write them: ``7d``, ``24h``, ``2026-11-01`` on a command line, and the
``Retry-After`` header (seconds or an HTTP date) that providers, web sites and SaaS APIs send."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import time

from sophia.errors import InvalidRequest

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: the times a report can ask for: from 1970 to the year 9000 (datetime's own range, with room for zones)
EARLIEST, LATEST = 0.0, 221_845_392_000.0
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_since(text: str, now: float | None = None, param: str = "since") -> float:
    """Epoch seconds for ``7d`` (ago), ``today``, ``month`` (start of this UTC month) or an ISO date/time,
    between 1970 and the year 9000 (``InvalidRequest`` naming ``param`` otherwise)."""
    now = time() if now is None else now
    value = _parse(text, now, param)
    if not EARLIEST <= value <= LATEST:
        raise InvalidRequest(
            f"the time {text!r} is out of range: give one from 1970 to the year 9000", param=param
        )
    return value


def _parse(text: str, now: float, param: str) -> float:
    value = text.strip().lower()
    match = _RELATIVE.match(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    current = datetime.fromtimestamp(now, UTC)
    if value == "today":
        return current.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if value == "month":
        return current.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"cannot read the time {text!r}: use e.g. 30m, 24h, 7d, today, month or 2026-11-01", param=param
        ) from None


_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait: delay-seconds (RFC 9110 10.2.3; a decimal is
    accepted, as some APIs send one) or an HTTP date (0 once it has passed); None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if _SECONDS.match(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time() if now is None else now))
