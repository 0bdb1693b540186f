"""Tools, tool sets and tool groups: what one MCP server offers, declared once and checked at import.

A *tool group* is one MCP server (``ai`` on 8091; ``data``, ``infra``, ``bi`` later), assembled from
*tool sets*, one per module of its package. A tool is an async function ``(ctx, args) -> output``
whose argument and result types are pydantic models::

    # sophia/mcp/bi/query.py
    tools = ToolSet()

    class QueryIn(Input):
        sql: str = Field(description="One read-only SQL statement.")

    class QueryOut(Output):
        rows: list[dict[str, Any]]

    @tools.tool(title="Run a read-only query", read_only=True, destructive=False,
                idempotent=True, open_world=False)
    async def query(ctx: ToolContext, args: QueryIn) -> QueryOut:
        \"\"\"Run one read-only SQL statement on the warehouse.\"\"\"

    # sophia/mcp/bi/__init__.py
    group = ToolGroup("bi", port=8094, title="Sophia Business Intelligence", instructions="…",
                      sets=[query.tools, metrics.tools])

A tool set knows no group, and a tool module imports nothing of its group, so a package has no
import cycle and nothing registers itself as a side effect of being imported.

The four annotations have no defaults, so every tool states them. A destructive tool's input
model must subclass ``Confirmable`` (it carries ``confirm``), and the tool must call
``await ctx.confirm(…)`` before it acts. A resource names the tools it belongs to: a key's tool
filter covers it through them. Schemas are generated once, flattened (no ``$ref``) and
stripped of pydantic's titles so that ``tools/list`` stays small.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool

if TYPE_CHECKING:
    from sophia.container import Service
    from sophia.mcp.context import ToolContext

ToolFn = Callable[["ToolContext", Any], Awaitable["Output"]]
ReadFn = Callable[["ToolContext"], Awaitable[str]]


class Input(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class Confirmable(Input):
    """Arguments of a destructive tool. ``confirm`` is the agent's word, not the user's: a client that
    can ask is always asked, and without one only a key made for unattended work may go ahead with it
    (``ToolContext.confirm``). A JSON boolean only: ``"yes"`` or ``1`` is an invalid argument, not a yes."""

    confirm: StrictBool = Field(
        False,
        description="Go ahead unasked: only for keys made for unattended work; a client that can ask the user asks.",
    )


class Output(BaseModel):
    """Base of every tool's result: ``structured()`` is the structured content, ``render()`` its text."""

    model_config = ConfigDict(extra="forbid")

    def structured(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def render(self) -> str:
        """A rendering for clients that read only text (default: the structured content as JSON)."""
        return orjson.dumps(self.structured()).decode()

    def images(self) -> list[tuple[str, bytes]]:
        """Pictures to show beside the text, as ``(mime type, bytes)`` (default: none; a chart's PNG)."""
        return []


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    title: str
    description: str
    fn: ToolFn
    input_model: type[Input]
    output_model: type[Output]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResourceDef:
    """A read-only document the server exposes (``resources/read``); ``read`` returns its text.

    ``tools`` names the tools whose information it republishes: a key's ``allowed_tools`` filter
    shows the resource (in ``resources/list`` and ``resources/read``) only when it allows one of them.
    """

    uri: str
    name: str
    title: str
    description: str
    mime_type: str
    read: ReadFn
    tools: tuple[str, ...]


@dataclass
class ToolSet:
    """Tools and resources declared together (one module of a server's package)."""

    tools: dict[str, Tool] = field(default_factory=dict)
    resources: dict[str, ResourceDef] = field(default_factory=dict)

    NAME_CHARS: ClassVar[frozenset[str]] = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

    def tool(
        self,
        *,
        title: str,
        read_only: bool,
        destructive: bool,
        idempotent: bool,
        open_world: bool,
        name: str | None = None,
    ) -> Callable[[ToolFn], ToolFn]:
        """Register ``async def fn(ctx, args: SomeInput) -> SomeOutput``; its docstring is the description."""

        def register(fn: ToolFn) -> ToolFn:
            self.add(
                fn,
                title=title,
                read_only=read_only,
                destructive=destructive,
                idempotent=idempotent,
                open_world=open_world,
                name=name,
            )
            return fn

        return register

    def add(
        self,
        fn: ToolFn,
        *,
        title: str,
        read_only: bool,
        destructive: bool,
        idempotent: bool,
        open_world: bool,
        name: str | None = None,
    ) -> Tool:
        tool_name = name or fn.__name__
        if not tool_name or not set(tool_name) <= self.NAME_CHARS:
            raise ValueError(f"tool name {tool_name!r} must be lower-case letters, digits and _")
        if tool_name in self.tools:
            raise ValueError(f"tool {tool_name} is registered twice")
        if read_only and destructive:
            raise ValueError(f"tool {tool_name}: a read-only tool cannot be destructive")
        params = list(inspect.signature(fn).parameters)
        in_model = _annotation(fn, params[1]) if len(params) == 2 else None
        out_model = _annotation(fn, "return")
        if not (isinstance(in_model, type) and issubclass(in_model, Input)):
            raise TypeError(f"tool {tool_name}: the second parameter must be annotated with an Input model")
        if not (isinstance(out_model, type) and issubclass(out_model, Output)):
            raise TypeError(f"tool {tool_name}: the return type must be an Output model")
        if destructive and not issubclass(in_model, Confirmable):
            raise TypeError(f"tool {tool_name} is destructive: its input model must subclass Confirmable")
        description = inspect.getdoc(fn)
        if not description:
            raise ValueError(f"tool {tool_name} needs a docstring: it is the description agents read")
        tool = Tool(
            name=tool_name,
            title=title,
            description=description,
            fn=fn,
            input_model=in_model,
            output_model=out_model,
            read_only=read_only,
            destructive=destructive,
            idempotent=idempotent,
            open_world=open_world,
            input_schema=compact_schema(in_model.model_json_schema()),
            output_schema=compact_schema(out_model.model_json_schema(mode="serialization"), output=True),
        )
        self.tools[tool_name] = tool
        return tool

    def resource(
        self,
        uri: str,
        *,
        name: str,
        title: str,
        description: str,
        tools: Iterable[str],
        mime_type: str = "application/json",
    ) -> Callable[[ReadFn], ReadFn]:
        """Register ``async def read(ctx) -> str`` as the resource ``uri``, readable by keys that may
        call one of ``tools`` (the tools whose information it carries; no default, like annotations)."""
        owners = tuple(tools)
        if not owners or isinstance(tools, str):
            raise ValueError(f"resource {uri}: name the tools it belongs to (a list, at least one)")

        def register(fn: ReadFn) -> ReadFn:
            if uri in self.resources:
                raise ValueError(f"resource {uri} is registered twice")
            self.resources[uri] = ResourceDef(uri, name, title, description, mime_type, fn, owners)
            return fn

        return register


class ToolGroup(ToolSet):
    """One MCP server: its name, default port, title and instructions, and the tool sets it serves."""

    def __init__(
        self,
        name: str,
        *,
        port: int,
        title: str,
        instructions: str = "",
        sets: Iterable[ToolSet] = (),
        start: Iterable[Service[Any]] = (),
    ) -> None:
        super().__init__()
        self.name, self.port, self.title, self.instructions = name, port, title, instructions
        #: services started with the server (not on first use): background work such as a crawl worker
        self.start = tuple(start)
        for part in sets:
            self.include(part)
        for resource in self.resources.values():
            unknown = [t for t in resource.tools if t not in self.tools]
            if unknown:
                raise ValueError(f"resource {resource.uri} belongs to unknown tool(s): {', '.join(unknown)}")

    def include(self, part: ToolSet) -> None:
        """Serve every tool and resource of ``part`` (a name may appear once in a group)."""
        for name, tool in part.tools.items():
            if name in self.tools:
                raise ValueError(f"tool {self.name}/{name} is registered twice")
            self.tools[name] = tool
        for uri, resource in part.resources.items():
            if uri in self.resources:
                raise ValueError(f"resource {uri} is registered twice")
            self.resources[uri] = resource


def _annotation(fn: Callable[..., Any], name: str) -> Any:
    """One parameter's annotation, evaluated alone (``ctx: ToolContext`` may be a TYPE_CHECKING-only name)."""
    value = fn.__annotations__.get(name)
    if isinstance(value, str):
        try:  # the module's own annotation text, evaluated as typing.get_type_hints does
            return eval(value, fn.__globals__)
        except NameError:
            return None
    return value


# -- schemas ------------------------------------------------------------------------------------------


def compact_schema(schema: dict[str, Any], *, output: bool = False) -> dict[str, Any]:
    """A JSON schema without ``$ref``/``$defs``, pydantic titles, or ``anyOf [X, null]`` on optional fields.

    Optional fields (those not in ``required``) simply lose their ``null`` arm: an absent field
    says the same, costs fewer tokens, and the strictest clients reject nullable unions (results
    are dumped without ``None`` values to match). An ``output`` schema also drops
    ``additionalProperties``: it only restates that results carry nothing else.
    """
    dropped = {"title", "$defs", *(("additionalProperties",) if output else ())}
    defs = schema.get("$defs", {})

    def walk(node: Any, optional: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            merged = {**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, optional)
        out: dict[str, Any] = {}
        required = set(node.get("required", ()))
        for key, value in node.items():
            if key in dropped:
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(prop, name not in required) for name, prop in value.items()}
            else:
                out[key] = walk(value)
        arms = out.get("anyOf")
        if optional and isinstance(arms, list):
            rest = [arm for arm in arms if arm != {"type": "null"}]
            if len(rest) < len(arms):
                del out["anyOf"]
                out = {**rest[0], **out} if len(rest) == 1 else {**out, "anyOf": rest}
                if out.get("default", 0) is None:
                    del out["default"]
        return out

    result = walk(schema)
    result.setdefault("type", "object")
    return dict(result)
