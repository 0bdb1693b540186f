"""Who may do what: one table of operations behind every face (the admin API, the MCP tools, …).

A face names the operation it is about to do and asks here; it never tests ``key.admin`` itself, so
the HTTP admin API and an MCP tool cannot drift apart.

| operation                    | who may                         | a key that may not …                           |
|------------------------------|---------------------------------|------------------------------------------------|
| `keys.manage`                | admin keys                      | is refused                                     |
| `usage.all_teams`            | admin keys                      | sees its own team's usage (where a face can)   |
| `cache.stats.all_teams`      | admin keys                      | sees its own team's cache figures (same)       |
| `cache.purge.all_teams`      | admin keys                      | purges its own team's answers (same)           |
| `cache.bump`                 | admin keys                      | is refused                                     |
| `cache.report`               | admin keys                      | is refused                                     |
| `providers.health`           | admin keys                      | is refused                                     |
| `mcp.unattended_destructive` | keys whose metadata has         | must have a person confirm (elicitation), or  |
|                              | `mcp_unattended: true`          | the person runs the CLI command themselves     |

"Where a face can": a face that can narrow the answer to the caller's team asks ``team_scope``
(the MCP tools do); one that cannot asks ``require`` (the admin API answers 403). A caller without
a key (only where keys are not required) is no admin and belongs to the team ``default``, the team
its calls are booked to.

The last row is not an admin right: an admin key lets an agent see and purge everything, and still
does not let it confirm a destructive call for the person it works for. Only a key made for
unattended work (a CI job, a scheduled clean-up) carries ``metadata["mcp_unattended"]``: ``true``
(JSON true, or the string ``"true"``, the only form the admin API's string metadata can carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sophia.errors import PermissionDenied

if TYPE_CHECKING:
    from sophia.accounts.keys import KeyRecord

#: the team of a caller without a key (its calls and cache entries are booked there)
ANONYMOUS_TEAM = "default"
#: the key metadata entry that grants ``mcp.unattended_destructive``
UNATTENDED_FLAG = "mcp_unattended"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may do one operation: admin keys (``admin``) and/or keys flagged in their metadata."""

    what: str  # the operation in words, for refusals: "<what> needs …"
    admin: bool = True
    flag: str | None = None
    #: a key that may not is narrowed to its own team (by faces that can) instead of refused
    team_scoped: bool = False

    def needs(self) -> str:
        if self.flag is not None:
            return f"a key whose metadata has {self.flag}: true"
        return "an admin key"


RULES: dict[str, Rule] = {
    "keys.manage": Rule("managing API keys"),
    "usage.all_teams": Rule("reading every team's usage", team_scoped=True),
    "cache.stats.all_teams": Rule("reading every team's cache statistics", team_scoped=True),
    "cache.purge.all_teams": Rule("purging every team's cached answers", team_scoped=True),
    "cache.bump": Rule("bumping a data source's version"),
    "cache.report": Rule("reporting a false cache hit"),
    "providers.health": Rule("reading provider health"),
    "mcp.unattended_destructive": Rule(
        "a destructive MCP tool call that no person confirmed", admin=False, flag=UNATTENDED_FLAG
    ),
}


def _rule(operation: str) -> Rule:
    rule = RULES.get(operation)
    if rule is None:  # a typo in a face must not silently grant or refuse
        raise KeyError(f"no permission rule for {operation!r}; add it to sophia.accounts.permissions.RULES")
    return rule


def allows(key: KeyRecord | None, operation: str) -> bool:
    """Whether ``key`` (None: a caller without a key) may do ``operation`` in full."""
    rule = _rule(operation)
    if key is None:
        return False
    if rule.admin and key.admin:
        return True
    if rule.flag is None:
        return False
    value = key.metadata.get(rule.flag)
    return value is True or value == "true"  # not 1, "yes", "True": a flag is set on purpose


def require(key: KeyRecord | None, operation: str) -> None:
    """Return if ``key`` may do ``operation``; raise ``PermissionDenied`` (403) otherwise."""
    if not allows(key, operation):
        rule = _rule(operation)
        raise PermissionDenied(f"{rule.what} needs {rule.needs()}", code="permission_denied")


def team_scope(key: KeyRecord | None, operation: str) -> str | None:
    """None if ``key`` may do ``operation`` for every team, else the one team it may do it for.

    For operations that cannot be narrowed to a team this is ``require``: it raises.
    """
    if allows(key, operation):
        return None
    if not _rule(operation).team_scoped:
        require(key, operation)
    return key.team if key is not None else ANONYMOUS_TEAM
