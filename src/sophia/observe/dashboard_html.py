"""The dashboard's HTML: the page around the charts, the headline figures, alerts, the dearest
requests, the trace waterfall, the sign-in and message pages (``sophia.observe.dashboard`` serves them).
Everything a caller or a ledger row wrote is escaped; there is no script and no external asset."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from sophia.observe import dashboard_data as figures
from sophia.observe.dashboard_charts import Chart

if TYPE_CHECKING:
    from sophia.observe.spans import StoredSpan

REFRESH_SECONDS = 60
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


# -- HTML ------------------------------------------------------------------------------------------

_E = html.escape

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;background:#f4f5f7}
header{background:#1f2937;color:#fff;padding:14px 28px;display:flex;align-items:center;gap:24px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600;letter-spacing:.3px}
header nav a{color:#cbd5e1;text-decoration:none;margin-right:10px;padding:3px 9px;border-radius:12px}
header nav a.on{background:#374151;color:#fff}
header .meta{margin-left:auto;color:#9ca3af;font-size:12px;display:flex;gap:14px;align-items:center}
header form{margin:0}
button{font:inherit;cursor:pointer;border:1px solid #4b5563;background:#374151;color:#e5e7eb;border-radius:6px;padding:3px 10px}
main{padding:20px 28px 40px;max-width:1640px;margin:0 auto}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:14px;margin-bottom:10px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi b{display:block;font-size:24px;font-weight:600;margin-top:2px}
.kpi span{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.kpi.alert b{color:#c62828}
h2{font-size:15px;color:#374151;margin:26px 0 10px;text-transform:uppercase;letter-spacing:.6px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06);overflow:hidden}
.card svg{max-width:100%;height:auto;display:block;overflow:visible}
.card p.cap{color:#6b7280;font-size:12px;margin:6px 0 0}
ul.alerts{list-style:none;padding:0;margin:0}
ul.alerts li{background:#fff;border-left:4px solid #f9a825;border-radius:6px;padding:8px 12px;margin-bottom:8px}
ul.alerts li.page{border-color:#c62828}
.muted{color:#6b7280}
table{border-collapse:collapse;width:100%;font-size:12px}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1565c0}
details{background:#fff;border-radius:8px;padding:8px 12px;margin-bottom:6px}
summary{cursor:pointer}
code{font-size:12px;word-break:break-all}
.login{max-width:440px;margin:80px auto;background:#fff;border-radius:12px;padding:28px;box-shadow:0 2px 8px rgba(0,0,0,.08)}
.login input{width:100%;font:inherit;padding:8px;border:1px solid #cbd5e1;border-radius:6px;margin:8px 0 12px}
.login button{background:#1f2937;color:#fff;padding:7px 16px}
.error{color:#c62828}
footer{color:#9ca3af;font-size:12px;padding:0 28px 24px;max-width:1640px;margin:0 auto}
"""


def _doc(title: str, body: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<link rel="icon" href="data:,">{meta}<title>{_E(title)}</title><style>{CSS}</style></head>'
        f"<body>{body}</body></html>"
    )


def dollars(nanos: int) -> str:
    """Integer nano-dollars as dollars, for display: cents from a dollar up, four places below."""
    usd = nanos / 1_000_000_000
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:,.4f}"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    return "just now" if seconds < 60 else f"{seconds / 60:.0f} min ago"


def page(data: dict[str, Any], charts: list[Chart], svgs: list[str]) -> str:
    t = data["totals"]
    rate = t["cache_hit_rate"]
    alerts = data["alerts"]
    kpis = [
        ("Spend today (UTC)", dollars(t["spend_today_nanos"]), ""),
        (f"Spend, last {data['window']}", dollars(t["cost_nanos"]), ""),
        (f"Requests, last {data['window']}", f"{t['requests']:,}", ""),
        ("Cache hit rate", "-" if rate is None else f"{rate:.1%}", ""),
        ("Saved by the cache", dollars(t["saved_nanos"]), ""),
        ("Saved by the router", dollars(data["router"]["saved_nanos"]), ""),
        (
            "Active alerts",
            str(t["active_alerts"]) if alerts["monitor_running"] else "-",
            " alert" if t["active_alerts"] else "",
        ),
    ]
    head = "".join(f'<div class="kpi{cls}"><span>{_E(k)}</span><b>{_E(v)}</b></div>' for k, v, cls in kpis)
    sections: dict[str, list[str]] = {}
    for i, (chart, svg) in enumerate(zip(charts, svgs, strict=True)):
        caption = f'<p class="cap">{_E(chart.caption)}</p>' if chart.caption else ""
        sections.setdefault(chart.section, []).append(
            f'<figure class="card chart" id="{_E(chart.id)}" data-chart="{i}" style="margin:0">{svg}{caption}</figure>'
        )
    body = [_alerts(alerts)]
    for section, cards in sections.items():
        body.append(f'<h2>{_E(section)}</h2><div class="grid">{"".join(cards)}</div>')
        if section == "Requests":
            body.append(_expensive_list(data["expensive"]))
    windows = "".join(
        f'<a href="/dashboard?window={w}"{" class=on" if w == data["window"] else ""}>{w}</a>'
        for w in figures.WINDOWS
    )
    header = (
        f'<header><h1>Sophia</h1><nav>{windows}</nav><div class="meta">'
        f"<span>updated {_when(data['generated_at'])} · refreshes every {REFRESH_SECONDS}s</span>"
        '<form method="post" action="/dashboard/logout"><button>Sign out</button></form></div></header>'
    )
    footer = (
        "<footer>Money is the ledger's integer nano-dollars, summed as integers; the same figures as JSON: "
        f'<a href="/dashboard/data?window={data["window"]}">/dashboard/data</a>.</footer>'
    )
    return _doc(
        "Sophia dashboard",
        f'{header}<main><div class="kpis">{head}</div>{"".join(body)}</main>{footer}',
        refresh=True,
    )


def _alerts(alerts: dict[str, Any]) -> str:
    if not alerts["monitor_running"]:
        return '<h2>Active alerts</h2><p class="muted">Monitor not running: alerts are judged by <code>sophia run</code>.</p>'
    if not alerts["active"]:
        return '<h2>Active alerts</h2><p class="muted">None: every objective is within its error budget.</p>'
    items = "".join(
        f'<li class="{_E(a["severity"])}"><b>{_E(a["severity"].upper())}</b> {_E(a["slo"])}: {_E(a["detail"])}'
        + (
            f' <span class="muted">since {_when(a["since"])}</span>'
            if isinstance(a["since"], int | float)
            else ""
        )
        + "</li>"
        for a in alerts["active"]
    )
    return f'<h2>Active alerts</h2><ul class="alerts">{items}</ul>'


def _expensive_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = "".join(
        "<tr>"
        f"<td>{_E(_when(r['ts']))}</td><td><code>{_E(r['request_id'])}</code></td><td>{_E(r['team'])}</td>"
        f"<td>{_E(r['model'])}</td><td class=num>{_E(dollars(r['cost_nanos']))}</td>"
        f"<td class=num>{r['tokens']:,}</td><td class=num>{r['latency_ms']:,.0f} ms</td><td>"
        + (
            f'<a href="/dashboard/traces/{_E(r["trace_id"])}">trace</a>'
            if r["trace_id"] and TRACE_ID.match(r["trace_id"])
            else '<span class="muted">no trace</span>'
        )
        + "</td></tr>"
        for r in rows
    )
    return (
        '<div class="card" style="margin-top:16px"><table><tr><th>when</th><th>request</th><th>team</th>'
        f"<th>model</th><th>cost</th><th>tokens</th><th>latency</th><th></th></tr>{lines}</table></div>"
    )


def login_page(message: str, *, signed_in: bool = False, first: bool = False) -> str:
    """The sign-in form, with why the last attempt was refused (none on a first visit)."""
    other = " with another key" if signed_in else ""
    error = "" if first else f'<p class="error">{_E(message)}</p>'
    body = (
        '<div class="login"><h1 style="margin-top:0">Sophia dashboard</h1>'
        f"{error}"
        f"<p>Sign in{other} with a key allowed to read every team's usage (an admin key). On the gateway's "
        "machine, <code>sophia keys local</code> prints the local admin key.</p>"
        '<form method="post" action="/dashboard/login"><label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required autofocus>'
        "<button>Sign in</button></form></div>"
    )
    return _doc("Sign in · Sophia dashboard", body)


def message_page(status: int, message: str) -> str:
    body = (
        f'<div class="login"><h1 style="margin-top:0">{status}</h1><p>{_E(message)}</p>'
        '<p><a href="/dashboard">Back to the dashboard</a></p></div>'
    )
    return _doc(f"{status} · Sophia dashboard", body)


def tree_order(spans: list[StoredSpan]) -> list[dict[str, Any]]:
    """Spans depth-first from the roots (children by start), each with its depth."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str | None, list[StoredSpan]] = {}
    for s in spans:
        parent = s.parent_id if s.parent_id in by_id else None
        children.setdefault(parent, []).append(s)
    out: list[dict[str, Any]] = []
    stack = [(s, 0) for s in sorted(children.get(None, []), key=lambda s: s.start_ns, reverse=True)]
    while stack:
        span, depth = stack.pop()
        out.append(
            {
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "kind": span.kind,
                "start_ns": span.start_ns,
                "end_ns": span.end_ns,
                "status": span.status,
                "attributes": span.attributes,
                "depth": depth,
            }
        )
        stack.extend(
            (c, depth + 1)
            for c in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns, reverse=True)
        )
    return out


def trace_page(trace_id: str, spans: list[dict[str, Any]], svg: str, booked: list[dict[str, Any]]) -> str:
    t0 = min(s["start_ns"] for s in spans)
    total = (max(s["end_ns"] for s in spans) - t0) / 1e6
    ledger = "".join(
        f"<tr><td><code>{_E(str(r['request_id']))}</code></td><td>{_E(_when(float(r['ts'])))}</td>"
        f"<td>{_E(str(r['team']))}</td><td>{_E(str(r['served_model'] or r['requested_model']))}</td>"
        f"<td class=num>{_E(dollars(int(r['cost_nanos'])))}</td><td class=num>{float(r['latency_ms']):,.0f} ms</td>"
        f"<td>{_E(str(r['outcome']))}</td></tr>"
        for r in booked
    )
    ledger_html = (
        '<div class="card"><table><tr><th>request</th><th>when</th><th>team</th><th>model</th><th>cost</th>'
        f"<th>latency</th><th>outcome</th></tr>{ledger}</table></div>"
        if booked
        else '<p class="muted">No ledger row names this trace.</p>'
    )
    details = "".join(
        f"<details><summary>{'&nbsp;' * 3 * s['depth']}<b>{_E(s['name'])}</b> "
        f"<span class=muted>{_E(s['kind'])} · {(s['end_ns'] - s['start_ns']) / 1e6:,.2f} ms · {_E(s['status'])} · "
        f"<code>{_E(s['span_id'])}</code></span></summary><table>"
        + "".join(
            f"<tr><td><code>{_E(str(k))}</code></td><td><code>{_E(_attr(v))}</code></td></tr>"
            for k, v in sorted(s["attributes"].items())
        )
        + "</table></details>"
        for s in spans
    )
    body = (
        '<header><h1>Sophia</h1><nav><a href="/dashboard">← dashboard</a></nav>'
        f'<div class="meta"><span>trace <code>{_E(trace_id)}</code></span></div></header><main>'
        f"<h2>Trace · {len(spans)} spans · {total:,.1f} ms</h2>"
        f'<figure class="card chart" id="waterfall" style="margin:0">{svg}</figure>'
        f"<h2>Booked in the ledger</h2>{ledger_html}<h2>Span attributes</h2>{details}</main>"
    )
    return _doc(f"Trace {trace_id[:8]} · Sophia", body)


def _attr(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= 2000 else text[:2000] + "…"
