"""The demo warehouse: deterministic, referentially whole, coherent money, and the four questions of
docs/business-intelligence.md have real answers in it (checked on small scales)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sophia.errors import InvalidRequest
from sophia.warehouse.demo import TABLES, build_duckdb, transcript_documents
from sophia.warehouse.demo.build import ORDER_BY
from sophia.warehouse.demo.common import COMPETITORS, END, PMS_VENDORS, REGIONS, START

#: (table, column) -> (parent table, parent column); NULLs are allowed where the contract says NULL
FOREIGN_KEYS = [
    ("reps", "team_id", "teams", "team_id"),
    ("accounts", "owner_rep_id", "reps", "rep_id"),
    ("contacts", "account_id", "accounts", "account_id"),
    ("deals", "account_id", "accounts", "account_id"),
    ("deals", "rep_id", "reps", "rep_id"),
    ("calls", "deal_id", "deals", "deal_id"),
    ("calls", "account_id", "accounts", "account_id"),
    ("calls", "rep_id", "reps", "rep_id"),
    ("calls", "contact_id", "contacts", "contact_id"),
    ("call_transcript_turns", "call_id", "calls", "call_id"),
    ("call_objections", "call_id", "calls", "call_id"),
    ("support_tickets", "account_id", "accounts", "account_id"),
    ("subscriptions", "account_id", "accounts", "account_id"),
    ("mrr_monthly", "account_id", "accounts", "account_id"),
    ("invoices", "account_id", "accounts", "account_id"),
    ("payments", "invoice_id", "invoices", "invoice_id"),
    ("payments", "account_id", "accounts", "account_id"),
    ("product_usage", "account_id", "accounts", "account_id"),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "small.duckdb"
    build_duckdb(path, scale=0.02, seed=7)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A tenth-scale warehouse (200 accounts), opened read-only."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    counts = build_duckdb(path, scale=0.1, seed=0)
    with duckdb.connect(str(path), read_only=True) as con:
        assert counts == {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]
        yield con


def table_hashes(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT md5(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY {ORDER_BY[table]})) FROM {table} AS t"
            ).fetchone()[0]  # type: ignore[index]
            for table in TABLES
        }


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_same_scale_and_seed_give_the_same_rows(small: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.duckdb"
    build_duckdb(again, scale=0.02, seed=7)
    first = table_hashes(small)
    assert table_hashes(again) == first
    other = tmp_path / "other.duckdb"
    build_duckdb(other, scale=0.02, seed=8)
    different = {t for t, h in table_hashes(other).items() if h != first[t]}
    assert different >= {"accounts", "deals", "product_usage", "call_transcript_turns"}


def test_build_replaces_the_file_atomically_and_refuses_a_bad_scale(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"not a database")
    progress: list[tuple[str, float]] = []
    counts = build_duckdb(path, scale=0.01, progress=lambda step, done: progress.append((step, done)))
    assert counts["accounts"] == 20 and counts["product_usage"] > 1_000
    assert [p[1] for p in progress] == sorted(p[1] for p in progress) and progress[-1] == ("done", 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]
    with pytest.raises(InvalidRequest, match="scale"):
        build_duckdb(path, scale=0)
    with duckdb.connect(str(path), read_only=True) as con:
        assert scalar(con, "SELECT count(*) FROM accounts") == 20


def test_row_counts_and_contract_value_sets(demo: duckdb.DuckDBPyConnection) -> None:
    assert scalar(demo, "SELECT count(*) FROM accounts") == 200
    assert scalar(demo, "SELECT count(*) FROM calls WHERE has_transcript") == 68
    assert scalar(demo, "SELECT count(*) FROM product_usage") > 100_000  # ~1.5M at scale 1
    checks = {
        "SELECT DISTINCT region FROM accounts": set(REGIONS),
        "SELECT DISTINCT pms_vendor FROM accounts": set(PMS_VENDORS),
        "SELECT DISTINCT segment FROM accounts": {"SMB", "Mid-Market", "Enterprise"},
        "SELECT DISTINCT competitor FROM deals WHERE competitor IS NOT NULL": set(COMPETITORS),
        "SELECT DISTINCT deal_type FROM deals": {"new", "expansion", "renewal"},
        "SELECT DISTINCT call_type FROM calls": {"discovery", "demo", "negotiation", "check_in", "renewal"},
        "SELECT DISTINCT category FROM call_objections": {
            "price",
            "integration",
            "ai_adoption",
            "security",
            "timing",
            "competitor",
        },
        "SELECT DISTINCT feature FROM product_usage": {
            "leasing_ai",
            "maintenance",
            "payments",
            "screening",
            "reporting",
            "resident_portal",
        },
        "SELECT DISTINCT status FROM invoices": {"paid", "open", "overdue", "void"},
    }
    for sql, expected in checks.items():
        assert {r[0] for r in demo.execute(sql).fetchall()} == expected, sql
    stages = {r[0] for r in demo.execute("SELECT DISTINCT stage FROM deals").fetchall()}
    assert (
        {"closed_won", "closed_lost"}
        < stages
        <= {
            "prospecting",
            "discovery",
            "demo",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        }
    )
    wrong_segment = """SELECT count(*) FROM accounts WHERE segment <> CASE WHEN portfolio_units < 1000 THEN 'SMB'
        WHEN portfolio_units < 10000 THEN 'Mid-Market' ELSE 'Enterprise' END"""
    assert scalar(demo, wrong_segment) == 0
    for table, column in [
        ("deals", "created_on"),
        ("calls", "started_at"),
        ("product_usage", "usage_date"),
        ("invoices", "issued_on"),
        ("support_tickets", "opened_at"),
    ]:
        low, high = demo.execute(f"SELECT min({column})::DATE, max({column})::DATE FROM {table}").fetchone()  # type: ignore[misc]
        assert low >= START and high <= END, table


def test_every_foreign_key_resolves(demo: duckdb.DuckDBPyConnection) -> None:
    for table, column, parent, key in FOREIGN_KEYS:
        orphans = f"""SELECT count(*) FROM {table} c WHERE c.{column} IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})"""
        assert scalar(demo, orphans) == 0, f"{table}.{column}"
    turnless = """SELECT count(*) FROM call_objections o WHERE NOT EXISTS (SELECT 1 FROM call_transcript_turns t
        WHERE t.call_id = o.call_id AND t.turn = o.turn AND t.speaker_role = 'prospect')"""
    assert scalar(demo, turnless) == 0
    foreign_contact = (
        "SELECT count(*) FROM calls c JOIN contacts k USING (contact_id) WHERE k.account_id <> c.account_id"
    )
    assert scalar(demo, foreign_contact) == 0


def test_mrr_movements_add_up_and_follow_the_subscriptions(demo: duckdb.DuckDBPyConnection) -> None:
    broken = """SELECT count(*) FROM mrr_monthly WHERE ending_mrr <> starting_mrr + new_mrr + expansion_mrr
        - contraction_mrr - churned_mrr OR day(month) <> 1 OR least(starting_mrr, new_mrr, expansion_mrr,
        contraction_mrr, churned_mrr, ending_mrr) < 0"""
    assert scalar(demo, broken) == 0
    chained = """SELECT count(*) FROM mrr_monthly m JOIN mrr_monthly p ON p.account_id = m.account_id
        AND p.month = m.month - INTERVAL 1 MONTH WHERE p.ending_mrr <> m.starting_mrr"""
    assert scalar(demo, chained) == 0
    off_subscriptions = """SELECT count(*) FROM mrr_monthly m WHERE m.ending_mrr <> (SELECT coalesce(sum(s.mrr), 0)
        FROM subscriptions s WHERE s.account_id = m.account_id AND s.started_on <= last_day(m.month)
        AND (s.ended_on IS NULL OR s.ended_on > last_day(m.month)))"""
    assert scalar(demo, off_subscriptions) == 0
    movements = demo.execute(
        "SELECT sum(new_mrr), sum(expansion_mrr), sum(contraction_mrr), sum(churned_mrr) FROM mrr_monthly"
    ).fetchone()
    assert movements is not None and all(value > 0 for value in movements)


def test_customers_churn_and_usage_are_coherent(demo: duckdb.DuckDBPyConnection) -> None:
    assert scalar(demo, "SELECT count(*) FROM accounts WHERE churned_on IS NOT NULL") > 5
    incoherent = [
        # every customer has a subscription, prospects have none, churned customers keep none open
        """SELECT count(*) FROM accounts a WHERE (became_customer_on IS NOT NULL) <>
            EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.account_id)""",
        "SELECT count(*) FROM accounts WHERE churned_on < became_customer_on OR became_customer_on IS NULL AND churned_on IS NOT NULL",
        """SELECT count(*) FROM subscriptions s JOIN accounts a USING (account_id) WHERE a.churned_on IS NOT NULL
            AND (s.ended_on IS NULL OR s.ended_on > a.churned_on)""",
        # a won new deal makes the customer on its close date; renewals lost are churns
        """SELECT count(*) FROM deals d JOIN accounts a USING (account_id) WHERE d.deal_type = 'new'
            AND d.stage = 'closed_won' AND a.became_customer_on <> d.closed_on""",
        """SELECT count(*) FROM deals d JOIN accounts a USING (account_id) WHERE d.deal_type = 'renewal'
            AND d.stage = 'closed_lost' AND a.churned_on IS DISTINCT FROM d.closed_on""",
        """SELECT count(*) FROM deals d WHERE d.deal_type = 'expansion' AND d.stage = 'closed_won' AND NOT EXISTS
            (SELECT 1 FROM subscriptions s WHERE s.account_id = d.account_id AND s.plan = d.product
             AND s.started_on = d.closed_on)""",
        "SELECT count(*) FROM deals WHERE (closed_on IS NULL) <> (stage NOT IN ('closed_won', 'closed_lost'))",
        "SELECT count(*) FROM deals WHERE lost_reason IS NOT NULL AND stage <> 'closed_lost'",
        # usage only while a customer, none after the churn
        """SELECT count(*) FROM product_usage u JOIN accounts a USING (account_id) WHERE a.became_customer_on IS NULL
            OR u.usage_date < a.became_customer_on OR u.usage_date >= a.churned_on""",
        "SELECT count(*) FROM product_usage WHERE events <= 0 OR active_users <= 0 OR active_users > events",
        "SELECT count(*) FROM support_tickets WHERE resolved_at < opened_at OR (resolved_at IS NULL) <> (status IN ('open', 'pending'))",
        "SELECT count(*) FROM reps WHERE left_on <= hired_on",
    ]
    for sql in incoherent:
        assert scalar(demo, sql) == 0, sql


def test_invoices_are_monthly_and_payments_settle_them(demo: duckdb.DuckDBPyConnection) -> None:
    unbilled = """SELECT count(*) FROM mrr_monthly m WHERE m.ending_mrr > 0 AND NOT EXISTS (SELECT 1 FROM invoices i
        WHERE i.account_id = m.account_id AND i.issued_on = last_day(m.month) AND i.amount = m.ending_mrr)"""
    assert scalar(demo, unbilled) == 0
    settled = """SELECT i.status, count(*) FILTER (WHERE coalesce(p.paid, 0) = i.amount),
        count(*) FILTER (WHERE coalesce(p.paid, 0) < i.amount), count(*) FILTER (WHERE p.last > DATE '2026-11-30')
        FROM invoices i LEFT JOIN (SELECT invoice_id, sum(amount) paid, max(paid_on) last FROM payments GROUP BY 1) p
        USING (invoice_id) GROUP BY 1"""
    rows = {status: (full, short, late) for status, full, short, late in demo.execute(settled).fetchall()}
    assert rows["paid"][1] == 0 and rows["paid"][0] > 1000
    assert all(short > 0 and full == 0 for status, (full, short, _) in rows.items() if status != "paid")
    assert all(late == 0 for _, _, late in rows.values())
    assert (
        scalar(
            demo,
            "SELECT count(*) FROM payments p JOIN invoices i USING (invoice_id) WHERE p.paid_on < i.issued_on",
        )
        == 0
    )


def test_transcripts_name_the_speakers_and_ground_their_objections(demo: duckdb.DuckDBPyConnection) -> None:
    shape = demo.execute(
        """SELECT min(n), max(n), bool_and(increasing), bool_and(inside) FROM (
            SELECT t.call_id, count(*) n, bool_and(t.start_seconds > coalesce(prev, -1)) increasing,
                   bool_and(t.start_seconds < c.duration_seconds) inside
            FROM (SELECT *, lag(start_seconds) OVER (PARTITION BY call_id ORDER BY turn) prev
                  FROM call_transcript_turns) t JOIN calls c USING (call_id) GROUP BY t.call_id)"""
    ).fetchone()
    assert shape is not None and shape[0] >= 15 and shape[1] <= 40 and shape[2] and shape[3]
    assert (
        scalar(
            demo,
            "SELECT count(*) FROM calls c WHERE c.has_transcript <> EXISTS "
            "(SELECT 1 FROM call_transcript_turns t WHERE t.call_id = c.call_id)",
        )
        == 0
    )
    misnamed = """SELECT count(*) FROM call_transcript_turns t JOIN calls c USING (call_id)
        JOIN reps r ON r.rep_id = c.rep_id JOIN contacts k ON k.contact_id = c.contact_id
        WHERE t.speaker_name <> CASE t.speaker_role WHEN 'rep' THEN r.name WHEN 'prospect' THEN k.name END"""
    assert scalar(demo, misnamed) == 0
    assert (
        scalar(demo, "SELECT count(*) FROM call_transcript_turns WHERE text LIKE '%{%' OR text LIKE '%}%'")
        == 0
    )
    named = """SELECT count(*) FILTER (WHERE t.text NOT LIKE '%' || o.competitor || '%'),
        count(*) FILTER (WHERE o.competitor IS DISTINCT FROM d.competitor), count(*)
        FROM call_objections o JOIN call_transcript_turns t USING (call_id, turn) JOIN calls c USING (call_id)
        LEFT JOIN deals d ON d.deal_id = c.deal_id WHERE o.competitor IS NOT NULL"""
    assert demo.execute(named).fetchone() == (
        0,
        0,
        scalar(demo, "SELECT count(competitor) FROM call_objections"),
    )
    assert (
        scalar(
            demo, "SELECT count(*) FROM call_objections WHERE category = 'competitor' AND competitor IS NULL"
        )
        == 0
    )
    distinct = """SELECT count(DISTINCT t.text) * 1.0 / count(*) FROM call_objections o
        JOIN call_transcript_turns t USING (call_id, turn)"""
    assert scalar(demo, distinct) > 0.8  # type: ignore[operator]  # objections are worded differently each time


def test_transcript_documents_carry_turns_and_metadata(
    demo: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "w.duckdb"
    build_duckdb(path, scale=0.01, seed=3)
    documents = list(transcript_documents(path))
    with duckdb.connect(str(path), read_only=True) as con:
        calls = con.execute(
            "SELECT call_id, account_id, rep_id FROM calls WHERE has_transcript ORDER BY 1"
        ).fetchall()
        turns = scalar(con, "SELECT count(*) FROM call_transcript_turns")
        first_turn = con.execute(
            "SELECT * FROM call_transcript_turns ORDER BY call_id, turn LIMIT 1"
        ).fetchone()
    assert [d["id"] for d in documents] == [f"call-{c[0]}" for c in calls]
    assert sum(len(d["turns"]) for d in documents) == turns
    doc = documents[0]
    assert doc["kind"] == "transcript" and doc["metadata"]["account_name"] in doc["title"]
    assert set(doc["metadata"]) == {
        "account_id",
        "account_name",
        "rep_id",
        "rep_name",
        "call_id",
        "deal_id",
        "date",
        "call_type",
        "pms_vendor",
        "region",
        "segment",
    }
    assert (doc["metadata"]["account_id"], doc["metadata"]["rep_id"]) == calls[0][1:]
    assert START.isoformat() <= doc["metadata"]["date"] <= END.isoformat()
    assert first_turn is not None
    assert doc["turns"][0] == dict(
        zip(("turn", "speaker", "role", "start_seconds", "text"), first_turn[1:], strict=True)
    )
