-- The demo warehouse (docs/business-intelligence.md is the contract: names, types, value sets).
-- Portable DDL: the same text runs on DuckDB and PostgreSQL (one statement per ';').
-- Foreign keys are documented here, not declared: the warehouse is loaded in bulk and read only,
-- and the demo tests check that every one of them resolves.

-- a sales team
CREATE TABLE teams (
    team_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    manager_name VARCHAR NOT NULL
);

-- a sales rep (team_id -> teams)
CREATE TABLE reps (
    rep_id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    email VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    hired_on DATE NOT NULL,
    left_on DATE
);

-- a customer or prospect company (owner_rep_id -> reps)
CREATE TABLE accounts (
    account_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    portfolio_units INTEGER NOT NULL,
    property_count INTEGER NOT NULL,
    pms_vendor VARCHAR NOT NULL,
    owner_rep_id INTEGER NOT NULL,
    created_on DATE NOT NULL,
    became_customer_on DATE,
    churned_on DATE
);

-- a person at an account (account_id -> accounts)
CREATE TABLE contacts (
    contact_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    email VARCHAR NOT NULL,
    is_decision_maker BOOLEAN NOT NULL
);

-- an opportunity (account_id -> accounts, rep_id -> reps)
CREATE TABLE deals (
    deal_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    rep_id INTEGER NOT NULL,
    deal_type VARCHAR NOT NULL,
    product VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    created_on DATE NOT NULL,
    closed_on DATE,
    competitor VARCHAR,
    lost_reason VARCHAR
);

-- a sales call (deal_id -> deals, account_id -> accounts, rep_id -> reps, contact_id -> contacts)
CREATE TABLE calls (
    call_id INTEGER PRIMARY KEY,
    deal_id INTEGER,
    account_id INTEGER NOT NULL,
    rep_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_seconds INTEGER NOT NULL,
    call_type VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    has_transcript BOOLEAN NOT NULL
);

-- one speaker turn of a recorded call (call_id -> calls)
CREATE TABLE call_transcript_turns (
    call_id INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    speaker_name VARCHAR NOT NULL,
    speaker_role VARCHAR NOT NULL,
    start_seconds INTEGER NOT NULL,
    text VARCHAR NOT NULL,
    PRIMARY KEY (call_id, turn)
);

-- an objection raised in a call, at the turn that raises it ((call_id, turn) -> call_transcript_turns)
CREATE TABLE call_objections (
    call_id INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    category VARCHAR NOT NULL,
    competitor VARCHAR,
    PRIMARY KEY (call_id, turn, category)
);

-- a support ticket (account_id -> accounts)
CREATE TABLE support_tickets (
    ticket_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    priority VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    csat INTEGER
);

-- a subscription of a customer (account_id -> accounts)
CREATE TABLE subscriptions (
    subscription_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    plan VARCHAR NOT NULL,
    started_on DATE NOT NULL,
    ended_on DATE,
    mrr DECIMAL(12,2) NOT NULL
);

-- an account's recurring revenue in a month (account_id -> accounts); month is the first of the month
-- ending_mrr = starting_mrr + new_mrr + expansion_mrr - contraction_mrr - churned_mrr
CREATE TABLE mrr_monthly (
    account_id INTEGER NOT NULL,
    month DATE NOT NULL,
    starting_mrr DECIMAL(12,2) NOT NULL,
    new_mrr DECIMAL(12,2) NOT NULL,
    expansion_mrr DECIMAL(12,2) NOT NULL,
    contraction_mrr DECIMAL(12,2) NOT NULL,
    churned_mrr DECIMAL(12,2) NOT NULL,
    ending_mrr DECIMAL(12,2) NOT NULL,
    PRIMARY KEY (account_id, month)
);

-- an invoice (account_id -> accounts)
CREATE TABLE invoices (
    invoice_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    issued_on DATE NOT NULL,
    due_on DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status VARCHAR NOT NULL
);

-- a payment of an invoice (invoice_id -> invoices, account_id -> accounts)
CREATE TABLE payments (
    payment_id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    paid_on DATE NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    method VARCHAR NOT NULL
);

-- an account's use of a feature on a day (account_id -> accounts): the fact table
CREATE TABLE product_usage (
    usage_date DATE NOT NULL,
    account_id INTEGER NOT NULL,
    feature VARCHAR NOT NULL,
    events INTEGER NOT NULL,
    active_users INTEGER NOT NULL,
    PRIMARY KEY (account_id, usage_date, feature)
);
