//! Counters and histograms that the sequencer updates and the HTTP layer renders as
//! Prometheus text. Plain atomics with relaxed ordering: a scrape may see a batch counted in
//! one metric and not yet in another, which is fine for monitoring and costs nothing on the
//! write path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fixed-bucket histogram (cumulative on render, as Prometheus expects).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths of the unit, so that it fits an integer atomic.
    sum_micro: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micro.fetch_add((value * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micro.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Batch commit latency buckets, in seconds: from 100 µs (a small batch on a fast disk) to
/// 1 s (something is wrong).
const LATENCY_BOUNDS_S: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Events per batch buckets.
const BATCH_EVENTS_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 8190.0, 16384.0, 32768.0];

/// Everything the engine measures.
#[derive(Debug)]
pub struct Metrics {
    /// Batches committed (written, synced and applied).
    pub batches_total: AtomicU64,
    /// Commands committed.
    pub commands_total: AtomicU64,
    /// Events (accounts and transfers, created or failed) committed.
    pub events_total: AtomicU64,
    /// Requests rejected because the queue was full.
    pub rejected_busy_total: AtomicU64,
    /// Batches rejected because the disk was full.
    pub rejected_storage_full_total: AtomicU64,
    /// Requests waiting for the sequencer.
    pub queue_depth: AtomicU64,
    /// Bytes in the journal.
    pub journal_bytes: AtomicU64,
    /// Transfers whose records are in the embedded store, not in memory.
    pub cold_transfers: AtomicU64,
    /// Balance log entries in the embedded store, not in memory.
    pub cold_balances: AtomicU64,
    /// Pages of cold transfers and balances read from the embedded store.
    pub cold_reads_total: AtomicU64,
    /// 1 once a write to the embedded store failed (transfers then stay in memory).
    pub cold_store_failed: AtomicU64,
    /// Accounts in the ledger.
    pub accounts: AtomicU64,
    /// Transfers in the ledger.
    pub transfers: AtomicU64,
    /// Snapshots written since start.
    pub snapshots_total: AtomicU64,
    /// The last frame synced and applied (on a follower: taken from the primary).
    pub committed_seq: AtomicU64,
    /// 1 while this server follows a primary, 0 for a primary.
    pub follower: AtomicU64,
    /// On a follower: the primary's committed seq, as of its last answer.
    pub follower_primary_seq: AtomicU64,
    /// On a follower: 1 while its last request to the primary succeeded.
    pub follower_connected: AtomicU64,
    /// On a follower: connections to the primary that failed or broke.
    pub follower_reconnects_total: AtomicU64,
    /// 1 while answers wait for a follower to have their batch (`--sync-followers 1`).
    pub sync_followers: AtomicU64,
    /// Answers of committed batches waiting for a follower.
    pub sync_held_answers: AtomicU64,
    /// When the oldest held batch was committed, in Unix nanoseconds (0: none held).
    pub sync_oldest_held_at_ns: AtomicU64,
    /// The highest frame a follower said it has synced (its last poll's `after`).
    pub sync_follower_seq: AtomicU64,
    /// Time from the start of the journal write to the end of apply, per batch.
    pub commit_latency_seconds: Histogram,
    /// Events per batch.
    pub batch_events: Histogram,
    /// How long the writer paused to start a snapshot (the rest is written on its own thread).
    pub snapshot_pause_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            batches_total: AtomicU64::new(0),
            commands_total: AtomicU64::new(0),
            events_total: AtomicU64::new(0),
            rejected_busy_total: AtomicU64::new(0),
            rejected_storage_full_total: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            cold_transfers: AtomicU64::new(0),
            cold_balances: AtomicU64::new(0),
            cold_reads_total: AtomicU64::new(0),
            cold_store_failed: AtomicU64::new(0),
            accounts: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
            snapshots_total: AtomicU64::new(0),
            committed_seq: AtomicU64::new(0),
            follower: AtomicU64::new(0),
            follower_primary_seq: AtomicU64::new(0),
            follower_connected: AtomicU64::new(0),
            follower_reconnects_total: AtomicU64::new(0),
            sync_followers: AtomicU64::new(0),
            sync_held_answers: AtomicU64::new(0),
            sync_oldest_held_at_ns: AtomicU64::new(0),
            sync_follower_seq: AtomicU64::new(0),
            commit_latency_seconds: Histogram::new(LATENCY_BOUNDS_S),
            batch_events: Histogram::new(BATCH_EVENTS_BOUNDS),
            snapshot_pause_seconds: Histogram::new(LATENCY_BOUNDS_S),
        }
    }
}

impl Metrics {
    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64, &str); 22] = [
            ("kasa_batches_total", "Batches committed.", &self.batches_total, "counter"),
            ("kasa_commands_total", "Commands committed.", &self.commands_total, "counter"),
            ("kasa_events_total", "Accounts and transfers processed.", &self.events_total, "counter"),
            ("kasa_rejected_busy_total", "Requests rejected with a full queue.", &self.rejected_busy_total, "counter"),
            (
                "kasa_rejected_storage_full_total",
                "Batches rejected with a full disk.",
                &self.rejected_storage_full_total,
                "counter",
            ),
            ("kasa_snapshots_total", "Snapshots written since start.", &self.snapshots_total, "counter"),
            ("kasa_queue_depth", "Requests waiting for the sequencer.", &self.queue_depth, "gauge"),
            ("kasa_journal_bytes", "Bytes in the journal.", &self.journal_bytes, "gauge"),
            (
                "kasa_cold_transfers",
                "Transfers (both ledgers) whose records are in the embedded store, not in memory.",
                &self.cold_transfers,
                "gauge",
            ),
            (
                "kasa_cold_balances",
                "Entries of the balance log (both ledgers) in the embedded store, not in memory.",
                &self.cold_balances,
                "gauge",
            ),
            (
                "kasa_cold_reads_total",
                "Pages of cold transfers and balances read from the embedded store.",
                &self.cold_reads_total,
                "counter",
            ),
            (
                "kasa_cold_store_failed",
                "1 once a write to the embedded store failed: transfers and balances stay in memory from then on.",
                &self.cold_store_failed,
                "gauge",
            ),
            ("kasa_accounts", "Accounts in the ledger.", &self.accounts, "gauge"),
            ("kasa_transfers", "Transfers in the ledger.", &self.transfers, "gauge"),
            ("kasa_committed_seq", "The last journal frame synced and applied.", &self.committed_seq, "gauge"),
            ("kasa_follower", "1 while this server follows a primary.", &self.follower, "gauge"),
            (
                "kasa_follower_primary_seq",
                "The primary's committed seq as of its last answer (followers).",
                &self.follower_primary_seq,
                "gauge",
            ),
            (
                "kasa_follower_connected",
                "1 while the follower's last request to its primary succeeded.",
                &self.follower_connected,
                "gauge",
            ),
            (
                "kasa_follower_reconnects_total",
                "Connections to the primary that failed or broke.",
                &self.follower_reconnects_total,
                "counter",
            ),
            (
                "kasa_sync_followers",
                "1 while answers wait for a follower to have their batch.",
                &self.sync_followers,
                "gauge",
            ),
            (
                "kasa_sync_held_answers",
                "Answers of committed batches waiting for a follower.",
                &self.sync_held_answers,
                "gauge",
            ),
            (
                "kasa_sync_follower_seq",
                "The highest frame a follower said it has synced.",
                &self.sync_follower_seq,
                "gauge",
            ),
        ];
        for (name, help, value, kind) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
        let lag = self.follower_primary_seq.load(Relaxed).saturating_sub(self.committed_seq.load(Relaxed));
        let _ = writeln!(
            out,
            "# HELP kasa_follower_lag_frames Frames the primary had committed that this follower has not (0 on a primary).\n\
             # TYPE kasa_follower_lag_frames gauge\nkasa_follower_lag_frames {}",
            if self.follower.load(Relaxed) == 1 { lag } else { 0 }
        );
        // Computed at the scrape, so that an answer stuck for good shows a growing age.
        let held_at = self.sync_oldest_held_at_ns.load(Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let age = if held_at == 0 { 0.0 } else { now.saturating_sub(held_at) as f64 / 1e9 };
        let _ = writeln!(
            out,
            "# HELP kasa_sync_held_oldest_seconds How long the oldest held answer has waited for a follower (0: none).\n\
             # TYPE kasa_sync_held_oldest_seconds gauge\nkasa_sync_held_oldest_seconds {age}"
        );
        self.commit_latency_seconds.render(
            &mut out,
            "kasa_commit_latency_seconds",
            "Journal write, sync and apply time per batch.",
        );
        self.batch_events.render(&mut out, "kasa_batch_events", "Events per batch.");
        self.snapshot_pause_seconds.render(
            &mut out,
            "kasa_snapshot_pause_seconds",
            "How long the writer paused to start a snapshot.",
        );
        out
    }
}
