//! How far Kasa's notifications to each partner have gone (`notifyPayment`, sent by the
//! server's `consumers/partner_notify.rs`): per partner, the seq of the last event of the event
//! log that was notified or is not for it. The consumer records it with
//! [`Command::RecordNotified`](super::Command::RecordNotified), so a restart goes on from it.
//!
//! One position per partner, not one consumer cursor: a partner that does not answer holds up
//! only its own notifications, and the others' positions still move. Positions only move
//! forward; a position for an unknown partner is ignored. Nothing here checks a position
//! against the event log: the consumer is Kasa's own, and a position too far only skips
//! notifications, it never moves money.
//!
//! Deliberately not here: what a notification says, the signature and the retries (the
//! server's).

use super::Partners;
use serde::{Deserialize, Serialize};

/// The most partners' positions one command records (the consumer sends more in several).
pub const NOTIFY_PROGRESS_MAX: usize = 64;

/// One partner's notification position, as the consumer records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyProgress {
    /// Which partner.
    pub partner_id: u64,
    /// Every event up to this seq was notified to it (or is not for it).
    pub notified_through: u64,
}

impl Partners {
    /// Records the consumer's positions; returns how many moved.
    pub(super) fn record_notified(&mut self, progress: &[NotifyProgress]) -> u32 {
        let mut moved = 0;
        for p in progress {
            if self.partner(p.partner_id).is_none() {
                continue;
            }
            let at = self.notified.get(&p.partner_id).copied().unwrap_or(0);
            if p.notified_through > at {
                self.notified.insert(p.partner_id, p.notified_through);
                moved += 1;
            }
        }
        moved
    }

    /// Every event up to this seq was notified to partner `partner_id` (0: none yet).
    pub fn notified_through(&self, partner_id: u64) -> u64 {
        self.notified.get(&partner_id).copied().unwrap_or(0)
    }
}
