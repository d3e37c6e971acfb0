//! The PostgreSQL read model: Kasa's history, search and reports in PostgreSQL, for when one
//! machine's memory is not enough to answer them. This module is the PostgreSQL side: the
//! handle ([`ReadModel`]: where the database is, a connection for queries, how far the rows
//! are), the schema's migrations (`migrations/`, run with `refinery` at start), the rows one
//! round of the feed writes with its cursor in one transaction (`store.rs`), and the queries the
//! routes serve (`queries.rs`). The feed itself, which reads the event log and the state, is
//! an outbox consumer (`consumers/read_model.rs`).
//!
//! It does not hold the truth: every row is derived from committed state and can be made again
//! from the journal (`kasa read-model rebuild`). It uses only SQL that PostgreSQL, CockroachDB
//! and YugabyteDB share (upserts keyed by Kasa's ids, no sequences, no LISTEN/NOTIFY, no
//! advisory locks), and the link is plain TCP (no TLS): see `docs/read-model.md`.
//!
//! The database's URL may hold a password: it is kept as a [`Secret`] and never logged; logs
//! name the host, port and database only.

pub mod queries;
pub mod store;

use crate::Secret;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a failed attempt the query connection is tried again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The routes' connection, or when the last attempt to make one failed.
enum QuerySlot {
    Empty,
    Connected(Arc<Client>),
    Failed(std::time::Instant),
}

/// Why the read model could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The URL is not a PostgreSQL connection string (the URL itself is not repeated).
    #[error("the read model's URL is not a PostgreSQL URL (postgres://user@host:port/db)")]
    BadUrl,
    /// PostgreSQL could not be reached or refused a statement.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed.
    #[error("migrating the read model's schema: {0}")]
    Migration(#[from] refinery::Error),
    /// Another feeder moved the cursor (a second server on the same database, or a rebuild).
    #[error("the read model's cursor moved under this feed (is another server feeding it?)")]
    CursorMoved,
    /// A value does not fit its column (a bug: Kasa's values are bounded below it).
    #[error("a value does not fit its column: {0}")]
    OutOfRange(&'static str),
    /// A connection failed less than a second ago; not tried again yet.
    #[error("PostgreSQL could not be reached a moment ago")]
    Unreachable,
    /// The engine stopped.
    #[error("the engine stopped")]
    EngineStopped,
    /// The event log could not be read.
    #[error("{0}")]
    EventLog(#[from] kasa_engine::EventLogError),
}

/// How far the read model's rows are: written with them, in one transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Every event up to this seq is reflected.
    pub event_seq: u64,
    /// Accounts of the operators' ledger copied, by position.
    pub ledger_accounts: u64,
    /// Transfers of the operators' ledger copied, by position.
    pub ledger_transfers: u64,
    /// The engine time of the last event reflected (0: none).
    pub event_time: u64,
}

/// The read model of a server: where it is, a connection for queries, and how far the feed is.
pub struct ReadModel {
    config: tokio_postgres::Config,
    /// `host:port/database`, for logs and errors (never the user's password).
    target: String,
    /// The connection the routes query on (tokio-postgres pipelines concurrent queries on one
    /// connection); made again when it closes.
    query: tokio::sync::Mutex<QuerySlot>,
    /// The cursor last committed by the feed (or read at its start).
    applied_event_seq: AtomicU64,
    applied_event_time: AtomicU64,
    applied_ledger_transfers: AtomicU64,
    /// The head the feed last saw: the event log's last seq and the ledger's transfer count.
    head_event_seq: AtomicU64,
    head_ledger_transfers: AtomicU64,
    /// Whether the feed's last attempt to reach PostgreSQL worked.
    up: AtomicBool,
    /// Rounds committed and failures, for `/metrics`.
    rounds_total: AtomicU64,
    errors_total: AtomicU64,
}

impl ReadModel {
    /// The read model at `url` (nothing is connected yet).
    pub fn new(url: &Secret) -> Result<ReadModel, ReadModelError> {
        let mut config: tokio_postgres::Config = url.expose().parse().map_err(|_| ReadModelError::BadUrl)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("kasa");
        }
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default)"));
        Ok(ReadModel {
            config,
            target,
            query: tokio::sync::Mutex::new(QuerySlot::Empty),
            applied_event_seq: AtomicU64::new(0),
            applied_event_time: AtomicU64::new(0),
            applied_ledger_transfers: AtomicU64::new(0),
            head_event_seq: AtomicU64::new(0),
            head_ledger_transfers: AtomicU64::new(0),
            up: AtomicBool::new(false),
            rounds_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
        })
    }

    /// `host:port/database`: what logs may say about where the read model is.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A new connection (its driver runs on the current runtime until the client is dropped).
    pub async fn connect(&self) -> Result<Client, ReadModelError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            // The error, if any, is the one the client's next call returns.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Brings the schema up to date (every migration not yet applied, in order).
    pub async fn migrate(client: &mut Client) -> Result<(), ReadModelError> {
        embedded::migrations::runner().run_async(client).await?;
        Ok(())
    }

    /// The connection for queries, connected again if it closed. Within
    /// [`RECONNECT_AFTER`] of a failed attempt it fails at once: with PostgreSQL unreachable,
    /// requests must not queue behind connection attempts of up to [`CONNECT_TIMEOUT`] each.
    pub async fn query_client(&self) -> Result<Arc<Client>, ReadModelError> {
        let mut slot = self.query.lock().await;
        match &*slot {
            QuerySlot::Connected(client) if !client.is_closed() => return Ok(client.clone()),
            QuerySlot::Failed(at) if at.elapsed() < RECONNECT_AFTER => return Err(ReadModelError::Unreachable),
            _ => {}
        }
        match self.connect().await {
            Ok(client) => {
                let client = Arc::new(client);
                *slot = QuerySlot::Connected(client.clone());
                Ok(client)
            }
            Err(error) => {
                *slot = QuerySlot::Failed(std::time::Instant::now());
                Err(error)
            }
        }
    }

    /// Called by the feed after a round committed.
    pub(crate) fn committed(&self, cursor: Cursor) {
        self.applied_event_seq.store(cursor.event_seq, Ordering::Release);
        self.applied_event_time.store(cursor.event_time, Ordering::Release);
        self.applied_ledger_transfers.store(cursor.ledger_transfers, Ordering::Release);
        self.rounds_total.fetch_add(1, Ordering::Relaxed);
        self.up.store(true, Ordering::Release);
    }

    /// Called by the feed when it saw the head.
    pub(crate) fn saw_head(&self, event_seq: u64, ledger_transfers: u64) {
        self.head_event_seq.fetch_max(event_seq, Ordering::AcqRel);
        self.head_ledger_transfers.fetch_max(ledger_transfers, Ordering::AcqRel);
    }

    /// Called by the feed when PostgreSQL could not be reached or refused a round.
    pub(crate) fn failed(&self) {
        self.errors_total.fetch_add(1, Ordering::Relaxed);
        self.up.store(false, Ordering::Release);
    }

    /// Called by the feed when it reached PostgreSQL.
    pub(crate) fn reached(&self) {
        self.up.store(true, Ordering::Release);
    }

    /// The last event seq the feed committed.
    pub fn applied_event_seq(&self) -> u64 {
        self.applied_event_seq.load(Ordering::Acquire)
    }

    /// The Prometheus lines of the read model; `head` is the event log's last seq and `now`
    /// engine time.
    pub fn render_metrics(&self, head: u64, now: u64) -> String {
        let applied = self.applied_event_seq();
        let head = head.max(self.head_event_seq.load(Ordering::Acquire));
        let lag = head.saturating_sub(applied);
        let time = self.applied_event_time.load(Ordering::Acquire);
        // Seconds behind: how old the newest reflected event is, while events wait (0 when
        // the feed has everything).
        let behind_seconds = if lag == 0 || time == 0 { 0.0 } else { now.saturating_sub(time) as f64 / 1e9 };
        let transfers = self.applied_ledger_transfers.load(Ordering::Acquire);
        let transfers_lag = self.head_ledger_transfers.load(Ordering::Acquire).saturating_sub(transfers);
        let lines: [(&str, &str, &str, String); 7] = [
            ("kasa_read_model_applied_seq", "gauge", "The last event the read model reflects.", applied.to_string()),
            (
                "kasa_read_model_lag_events",
                "gauge",
                "Events published that the read model does not reflect yet.",
                lag.to_string(),
            ),
            (
                "kasa_read_model_lag_seconds",
                "gauge",
                "How old the newest reflected event is while events wait (0: caught up).",
                format!("{behind_seconds:.3}"),
            ),
            (
                "kasa_read_model_ledger_transfers",
                "gauge",
                "Transfers of the operators' ledger copied to the read model.",
                transfers.to_string(),
            ),
            (
                "kasa_read_model_lag_ledger_transfers",
                "gauge",
                "Transfers of the operators' ledger not copied yet.",
                transfers_lag.to_string(),
            ),
            (
                "kasa_read_model_up",
                "gauge",
                "1 if the feed reached PostgreSQL on its last try.",
                u8::from(self.up.load(Ordering::Acquire)).to_string(),
            ),
            (
                "kasa_read_model_errors_total",
                "counter",
                "Failed attempts to reach PostgreSQL or commit a round.",
                self.errors_total.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in lines {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}
