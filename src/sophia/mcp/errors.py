"""The MCP edge of the exception tree: every failure becomes a tool error an agent can act on.

``describe(exc)`` is the one table. A tool error is a ``CallToolResult`` with ``isError`` and a
message that says what went wrong and what to do next; never a protocol error, a stack trace or
a secret (credential-shaped strings are masked even in our own messages).
"""

from __future__ import annotations

from pydantic import ValidationError

from sophia.errors import (
    AuthenticationError,
    BudgetExceeded,
    DependencyMissing,
    ModelNotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RequestError,
    SophiaError,
    StorageError,
)
from sophia.secrets.mask import mask_credentials

#: class -> (ledger status, what to do next); the most specific class in the MRO wins
_TABLE: dict[type[SophiaError], tuple[int, str]] = {
    AuthenticationError: (401, "Check the Sophia API key this client sends."),
    PermissionDenied: (403, "Ask an admin for a key that allows it, or use another tool or model."),
    ModelNotFound: (404, "Call list_models to see the models and aliases you can use."),
    RateLimited: (429, "Wait a little and call again."),
    BudgetExceeded: (429, "The key's spend budget is used up; ask an admin to raise it."),
    RequestError: (400, "Fix the arguments and call again."),
    ProviderError: (502, "Try again, or pick another model (list_models shows each model's health)."),
    DependencyMissing: (500, ""),  # its message already names the install command
    StorageError: (503, "Sophia's database is unavailable; try again shortly."),
    SophiaError: (500, ""),
}
#: error code -> hint, where the code knows better than the class (these messages say what to do)
_CODE_HINTS = {"confirmation_required": "", "not_confirmed": ""}


def redact(text: str) -> str:
    """A message with every known secret value (in any encoding) and credential-shaped string masked."""
    return mask_credentials(text)


def describe(exc: SophiaError) -> tuple[int, str]:
    """(ledger status, message for the agent) for an error Sophia raised on purpose."""
    status, hint = 500, ""
    for cls in type(exc).__mro__:
        entry = _TABLE.get(cls)
        if entry is not None:
            status, hint = entry
            break
    hint = _CODE_HINTS.get(exc.code, hint)
    if isinstance(exc, RateLimited) and exc.retry_after:
        hint = f"Wait {exc.retry_after:.0f} s and call again."
    message = exc.message.rstrip()
    if hint and not message.endswith((".", "!", "?", ")", "`")):
        message += "."
    return status, redact(f"{message} {hint}".strip())


def invalid_arguments(tool: str, exc: ValidationError) -> str:
    """Which arguments are wrong and why, without echoing the values (they may be large or private)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown argument")
        else:
            problems.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - len(problems)
    tail = f" (and {more} more)" if more > 0 else ""
    return redact(
        f"Invalid arguments for {tool}: {'; '.join(problems)}{tail}. "
        "The tool's input schema in tools/list says what it takes."
    )
