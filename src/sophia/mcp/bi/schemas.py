"""Arguments and results of the Business Intelligence tools (agents read these schemas: keep them terse)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, WithJsonSchema, model_validator

from sophia.mcp.tools import Input, Output

Name = Annotated[str, Field(max_length=200)]
Grain = Literal["day", "week", "month", "quarter", "year"]
#: A page of rows, one array of cells per row in the order of ``columns``. The published schema says
#: only "an array": every SDK client validates each result against the tool's output schema, and
#: one that described each row (``items: {"type": "array"}``) made jsonschema visit all 200 rows of a
#: page (1-2 ms a call, more than the server spends on a result-cache hit). The server still
#: checks the shape (pydantic) before anything is sent.
Rows = Annotated[
    list[list[Any]],
    WithJsonSchema({"type": "array", "description": "One array of cells per row, in the order of columns."}),
]


class Column(Output):
    name: str
    type: str


class TableColumn(Column):
    nullable: bool | None = None


# -- datasets and SQL -------------------------------------------------------------------------------


class NoArgs(Input):
    pass


class TableInfo(Output):
    name: str
    rows: int | None = None
    columns: int
    description: str | None = None


class DatasetsOut(Output):
    dialect: str
    tables: list[TableInfo]
    metrics: int
    documents: int | None = None


class DescribeIn(Input):
    table: Name = Field(description="Table name (list_datasets).")
    sample_rows: int = Field(5, ge=0, le=50, description="Sample rows.")


class DescribeOut(Output):
    name: str
    rows: int | None = None
    columns: list[TableColumn]
    sample: list[dict[str, Any]]


class RunSqlIn(Input):
    sql: str = Field(
        min_length=1, max_length=20_000, description="One read-only statement (SELECT/WITH/EXPLAIN…)."
    )
    limit: int | None = Field(None, ge=1, le=10_000, description="Rows per page (default 200).")
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the previous page.")


class TableResult(Output):
    columns: list[Column]
    rows: Rows
    row_count: int
    truncated: bool
    next_cursor: str | None = None
    sql: str
    elapsed_ms: float
    cache: str


# -- metrics ----------------------------------------------------------------------------------------


class MetricsIn(Input):
    search: str | None = Field(None, max_length=200, description="Text to match.")


class MetricItem(Output):
    name: str
    label: str | None = None
    type: str
    description: str | None = None
    dimensions: list[str] = Field(default_factory=list)


class MetricsOut(Output):
    metrics: list[MetricItem]


Where = Annotated[str, Field(max_length=500)]


class MetricQueryIn(Input):
    metrics: list[Name] = Field(min_length=1, max_length=10, description="Metric names (list_metrics).")
    group_by: list[Name] = Field(
        default_factory=list, max_length=6, description="e.g. account__region, metric_time__quarter."
    )
    where: list[Where] = Field(
        default_factory=list, max_length=20, description="e.g. account__segment = 'Enterprise'"
    )
    start: date | None = Field(None, description="From this day (inclusive).")
    end: date | None = Field(None, description="Before this day.")
    grain: Grain | None = Field(None, description="Group by metric_time at this grain.")
    order: list[Name] = Field(default_factory=list, max_length=6, description="'-x': descending.")
    limit: int | None = Field(None, ge=1, le=10_000)


class MetricsResult(TableResult):
    metrics: list[str]
    group_by: list[str]


class KpiIn(Input):
    period: Literal["month", "quarter", "year"] = "quarter"
    end: date | None = Field(None, description="A day of the period (default: last complete one).")
    metrics: list[Name] | None = Field(None, max_length=12, description="Default: the headline metrics.")


class KpiRow(Output):
    metric: str
    current: float | None = None
    previous: float | None = None
    change_pct: float | None = None


class KpiOut(Output):
    period: str
    previous_period: str
    rows: list[KpiRow]
    markdown: str

    def render(self) -> str:
        return self.markdown


# -- documents --------------------------------------------------------------------------------------


class SearchIn(Input):
    query: str = Field(min_length=1, max_length=2_000)
    k: int = Field(5, ge=1, le=50)
    mode: Literal["hybrid", "text", "vector"] = "hybrid"
    account_id: int | None = None
    rep_id: int | None = None
    call_id: int | None = None
    kind: str | None = Field(None, max_length=40)
    source: str | None = Field(None, max_length=200)
    speaker_role: Literal["rep", "prospect"] | None = None
    date_from: date | None = None
    date_to: date | None = None


class Citation(Output):
    document_id: str
    title: str | None = None
    source: str | None = None
    speakers: list[str] = Field(default_factory=list)
    turn_start: int | None = None
    turn_end: int | None = None
    start_seconds: float | None = None
    quote: str


class Hit(Output):
    score: float
    citation: Citation
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchOut(Output):
    hits: list[Hit]


# -- ask, chart -------------------------------------------------------------------------------------


class AskIn(Input):
    question: str = Field(min_length=1, max_length=2_000)
    allow_model: bool = True


class AskOut(Output):
    route: Literal["metrics", "metrics_via_model", "sql_via_model", "abstained"]
    answer: str
    abstained: bool
    reason: str | None = None
    query_metrics: dict[str, Any] | None = None
    sql: str | None = None
    columns: list[Column] = Field(default_factory=list)
    rows: Rows = Field(default_factory=list)
    model_calls: int = 0
    cost_usd: float = 0.0

    def render(self) -> str:
        return self.answer


class ChartIn(Input):
    sql: str | None = Field(None, max_length=20_000)
    metrics: list[Name] | None = Field(None, max_length=10)
    group_by: list[Name] = Field(default_factory=list, max_length=6)
    where: list[Where] = Field(default_factory=list, max_length=20)
    grain: Grain | None = None
    mark: Literal["bar", "line", "area", "point"] | None = None
    x: str | None = Field(None, max_length=200)
    y: str | None = Field(None, max_length=200)
    color: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=200)
    png: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ChartIn:
        if (self.sql is None) == (self.metrics is None):
            raise ValueError("give exactly one of `sql` or `metrics`")
        return self


class ChartOut(Output):
    spec: dict[str, Any]
    sql: str
    points: int
    _png: bytes | None = PrivateAttr(None)

    def images(self) -> list[tuple[str, bytes]]:
        return [("image/png", self._png)] if self._png else []
