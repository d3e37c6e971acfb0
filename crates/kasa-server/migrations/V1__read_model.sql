-- The PostgreSQL read model (docs/read-model.md). Rows are derived from Kasa's committed state
-- and fed by the event outbox; nothing here is the source of truth, and `kasa read-model
-- rebuild` can always make it again. Plain SQL that PostgreSQL, CockroachDB and YugabyteDB
-- all take: no sequences, no triggers, no LISTEN/NOTIFY, no advisory locks; every write is
-- an upsert (INSERT ... ON CONFLICT) keyed by Kasa's own ids. Times are nanoseconds since the
-- Unix epoch (BIGINT), money is integer minor units, 128-bit ledger values are NUMERIC(39,0).

-- How far the rows are: one row, written in the same transaction as the rows it covers.
CREATE TABLE read_model_cursor (
    id INT PRIMARY KEY,
    -- Every event up to this seq is reflected.
    event_seq BIGINT NOT NULL,
    -- The operators' ledger: accounts and transfers copied, by position in creation order.
    ledger_accounts BIGINT NOT NULL,
    ledger_transfers BIGINT NOT NULL,
    -- The engine time of the last event applied (0: none).
    event_time BIGINT NOT NULL
);
INSERT INTO read_model_cursor (id, event_seq, ledger_accounts, ledger_transfers, event_time) VALUES (1, 0, 0, 0, 0);

CREATE TABLE merchants (
    id BIGINT PRIMARY KEY,
    business_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    brn TEXT NOT NULL,
    mcc TEXT NOT NULL,
    fee_bps INT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL
);

CREATE TABLE payments (
    id BIGINT PRIMARY KEY,
    merchant_id BIGINT NOT NULL,
    store_id BIGINT,
    order_id TEXT NOT NULL,
    item_name TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    captured_minor BIGINT NOT NULL,
    fee_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    fee_refunded_minor BIGINT NOT NULL,
    refunds INT NOT NULL,
    status TEXT NOT NULL,
    cancel_reason TEXT,
    capture_method TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    approved_at BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    -- The KST day (days since 1970-01-01 in Korea) of its creation, for daily reports.
    day_kst INT NOT NULL
);
-- A merchant's payments newest first (search by status and time too), and by order id.
CREATE INDEX payments_by_merchant ON payments (merchant_id, created_at DESC, id DESC);
CREATE INDEX payments_by_order ON payments (merchant_id, order_id);
-- Reports by day.
CREATE INDEX payments_by_day ON payments (day_kst, merchant_id);

-- A wallet user's history as GET /v1/me/transactions shows it, one row per entry. An entry is
-- named by where it comes from, which never changes: its time (the time of the transfer it
-- shows, or of a hold's return by its timeout), its rank (1 for an entry of a transfer, 0 for
-- a return by the timeout, which comes after a transfer's entry of the same time, newest
-- first) and its object. Its kind may change (a hold for a number becomes `sent` once the
-- number's new wallet claims it), so the kind is not in the key.
CREATE TABLE user_transactions (
    user_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    rank SMALLINT NOT NULL,
    object_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    credit BOOLEAN NOT NULL,
    -- The entry as the API renders it (JSON text).
    body TEXT NOT NULL,
    -- Newest first, a page at a time: the key's order is the page's.
    PRIMARY KEY (user_id, ts, rank, object_id)
);

-- The operators' ledger (the TigerBeetle-compatible API).
CREATE TABLE ledger_accounts (
    id NUMERIC(39, 0) PRIMARY KEY,
    debits_pending NUMERIC(39, 0) NOT NULL,
    debits_posted NUMERIC(39, 0) NOT NULL,
    credits_pending NUMERIC(39, 0) NOT NULL,
    credits_posted NUMERIC(39, 0) NOT NULL,
    user_data_128 NUMERIC(39, 0) NOT NULL,
    user_data_64 NUMERIC(20, 0) NOT NULL,
    user_data_32 BIGINT NOT NULL,
    ledger BIGINT NOT NULL,
    code INT NOT NULL,
    flags INT NOT NULL,
    "timestamp" BIGINT NOT NULL
);

CREATE TABLE ledger_transfers (
    id NUMERIC(39, 0) PRIMARY KEY,
    debit_account_id NUMERIC(39, 0) NOT NULL,
    credit_account_id NUMERIC(39, 0) NOT NULL,
    amount NUMERIC(39, 0) NOT NULL,
    pending_id NUMERIC(39, 0) NOT NULL,
    user_data_128 NUMERIC(39, 0) NOT NULL,
    user_data_64 NUMERIC(20, 0) NOT NULL,
    user_data_32 BIGINT NOT NULL,
    timeout BIGINT NOT NULL,
    ledger BIGINT NOT NULL,
    code INT NOT NULL,
    flags INT NOT NULL,
    "timestamp" BIGINT NOT NULL
);
CREATE INDEX ledger_transfers_by_debit ON ledger_transfers (debit_account_id, "timestamp");
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers (credit_account_id, "timestamp");
