//! Banks behind one trait, [`BankRail`]: a request to move money (idempotent by Kasa's
//! reference: asked twice, a bank moves the money once and gives the same answer) and an
//! inquiry by reference (did you take it, and how did it end?). The bank rail consumer
//! (`consumers::bank`) drives both from the outbox.
//!
//! The rail shipped (and started by default) is [`SandboxBank`], a **sandbox inside the
//! process** for development and tests. Like a real bank it remembers what it decided, in a
//! file of its own (`sandbox-bank.log` in the data directory, synced before it answers), so
//! a Kasa restart at any moment finds the same answers there. It answers after a configurable
//! latency, declines amounts ending in 13, and never takes amounts ending in 99 (they are
//! lost on the way: an inquiry says it never saw them); both endings are configurable. For
//! tests of the rail it can also refuse a repeated reference, as some banks do, so that only
//! an inquiry tells what became of a request (see [`Sandbox::refuse_repeats`]).

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// What Kasa asks a bank.
#[derive(Clone, Debug)]
pub struct BankRequest {
    /// Kasa's reference: the same for every retry of one funding.
    pub reference: String,
    /// True for a top-up (pull money from the user's bank account), false for a withdrawal.
    pub top_up: bool,
    /// Minor units of `currency`.
    pub amount: u64,
    /// The currency: won for users' fundings and merchants' payouts, a partner's window's
    /// currency for its settlement.
    pub currency: kasa_core::money::Currency,
    /// The 3-digit bank code.
    pub bank_code: String,
    /// The account number (personal data: its `Debug` prints `***`).
    pub account_number: crate::Secret,
}

/// How a request ended, as the bank says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BankDecision {
    /// The money moved.
    Approved,
    /// The bank refused.
    Declined,
}

/// What an inquiry finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inquiry {
    /// The bank took the request and decided.
    Decided(BankDecision),
    /// The bank never took a request with this reference.
    NotFound,
}

/// A future answer; `None` when the bank does not answer (in time, or at all).
pub type Answer<T> = Pin<Box<dyn Future<Output = Option<T>> + Send>>;

/// A way to move money between Kasa and users' bank accounts.
pub trait BankRail: Send + Sync + 'static {
    /// Asks the bank to move money; idempotent by `request.reference`.
    fn request(&self, request: BankRequest) -> Answer<BankDecision>;
    /// Asks the bank what became of the request with this reference.
    fn inquire(&self, reference: &str) -> Answer<Inquiry>;
}

/// What the sandbox remembers of a reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Record {
    Approved,
    Declined,
}

/// The in-process sandbox bank. See the module documentation for its rules. Cheap to clone.
#[derive(Clone)]
pub struct SandboxBank(std::sync::Arc<Sandbox>);

/// What a [`SandboxBank`] shares between its clones.
pub struct Sandbox {
    /// How long it takes to answer.
    pub latency: Duration,
    /// Amounts whose decimal digits end with this are declined (empty: none).
    pub decline_ending: String,
    /// Amounts whose decimal digits end with this are never taken (empty: none).
    pub no_answer_ending: String,
    /// Whether a request with a reference already decided is declined as a duplicate (as
    /// banks that refuse a repeated transfer number do) instead of answered with the
    /// decision. A rail that asked again instead of inquiring after a restart would then
    /// take an approved request for a declined one, which is what the test of the rail's
    /// restart needs to see (the default, answering again, would hide it).
    pub refuse_repeats: bool,
    /// The file it remembers its decisions in (`None`: memory only, for tests).
    path: Option<PathBuf>,
    decided: Mutex<HashMap<String, Record>>,
}

impl std::ops::Deref for SandboxBank {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl SandboxBank {
    /// A sandbox that remembers its decisions in `path` (created if missing), with the
    /// given latency, endings and answer to repeats.
    pub fn open(
        path: Option<PathBuf>,
        latency: Duration,
        decline_ending: &str,
        no_answer_ending: &str,
        refuse_repeats: bool,
    ) -> std::io::Result<Self> {
        let mut decided = HashMap::new();
        if let Some(path) = &path {
            if path.exists() {
                for line in std::fs::read_to_string(path)?.lines() {
                    // A torn last line (a crash while writing) is not a decision: ignore it.
                    match line.split_once(' ') {
                        Some((reference, "approved")) => decided.insert(reference.to_string(), Record::Approved),
                        Some((reference, "declined")) => decided.insert(reference.to_string(), Record::Declined),
                        _ => None,
                    };
                }
            }
        }
        Ok(SandboxBank(std::sync::Arc::new(Sandbox {
            latency,
            decline_ending: decline_ending.to_string(),
            no_answer_ending: no_answer_ending.to_string(),
            refuse_repeats,
            path,
            decided: Mutex::new(decided),
        })))
    }
}

impl Sandbox {
    /// The sandbox's decision for an amount: `Some(approved?)`, or `None` (never taken). The
    /// no-answer ending wins if both match.
    pub fn decide(&self, amount: u64) -> Option<BankDecision> {
        let digits = amount.to_string();
        let ends = |ending: &str| !ending.is_empty() && digits.ends_with(ending);
        if ends(&self.no_answer_ending) {
            None
        } else if ends(&self.decline_ending) {
            Some(BankDecision::Declined)
        } else {
            Some(BankDecision::Approved)
        }
    }

    /// Records a decision durably (appended and synced) before it is told to anyone.
    fn remember(&self, reference: &str, decision: BankDecision) -> std::io::Result<Record> {
        let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&known) = decided.get(reference) {
            return Ok(known);
        }
        let record = match decision {
            BankDecision::Approved => Record::Approved,
            BankDecision::Declined => Record::Declined,
        };
        if let Some(path) = &self.path {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            let word = if record == Record::Approved { "approved" } else { "declined" };
            writeln!(file, "{reference} {word}")?;
            file.sync_data()?;
        }
        decided.insert(reference.to_string(), record);
        Ok(record)
    }

    fn known(&self, reference: &str) -> Option<Record> {
        self.decided.lock().unwrap_or_else(|p| p.into_inner()).get(reference).copied()
    }
}

fn decision(record: Record) -> BankDecision {
    match record {
        Record::Approved => BankDecision::Approved,
        Record::Declined => BankDecision::Declined,
    }
}

impl BankRail for SandboxBank {
    fn request(&self, request: BankRequest) -> Answer<BankDecision> {
        let bank = self.clone();
        Box::pin(async move {
            let record = match bank.known(&request.reference) {
                // A duplicate, refused: nothing moves, and the answer is not the decision.
                Some(_) if bank.refuse_repeats => Record::Declined,
                Some(known) => known,
                None => {
                    // Lost on the way: the bank never sees it, and never answers.
                    let decided = bank.decide(request.amount)?;
                    match bank.remember(&request.reference, decided) {
                        Ok(record) => record,
                        Err(error) => {
                            tracing::warn!(%error, "the sandbox bank could not record a decision; no answer");
                            return None;
                        }
                    }
                }
            };
            tokio::time::sleep(bank.latency).await;
            Some(decision(record))
        })
    }

    fn inquire(&self, reference: &str) -> Answer<Inquiry> {
        let found = self.known(reference);
        let latency = self.latency;
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            Some(match found {
                Some(record) => Inquiry::Decided(decision(record)),
                None => Inquiry::NotFound,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_decides_by_the_amount_s_last_digits() {
        let bank = SandboxBank::open(None, Duration::ZERO, "13", "99", false).unwrap();
        assert_eq!(
            (bank.decide(1_000), bank.decide(1_013), bank.decide(10_099)),
            (Some(BankDecision::Approved), Some(BankDecision::Declined), None)
        );
    }

    #[tokio::test]
    async fn decisions_are_remembered_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("kasa-sandbox-bank-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sandbox-bank.log");
        let _ = std::fs::remove_file(&path);
        let bank = SandboxBank::open(Some(path.clone()), Duration::ZERO, "13", "99", false).unwrap();
        let request = |reference: &str, amount| BankRequest {
            reference: reference.into(),
            top_up: true,
            amount,
            currency: kasa_core::money::Currency::KRW,
            bank_code: "088".into(),
            account_number: crate::Secret::new("1234567890".into()),
        };
        assert_eq!(bank.request(request("f-1", 1_000)).await, Some(BankDecision::Approved));
        assert_eq!(bank.request(request("f-2", 1_013)).await, Some(BankDecision::Declined));
        let again = SandboxBank::open(Some(path.clone()), Duration::ZERO, "", "", false).unwrap();
        assert_eq!(again.inquire("f-1").await, Some(Inquiry::Decided(BankDecision::Approved)));
        assert_eq!(again.inquire("f-2").await, Some(Inquiry::Decided(BankDecision::Declined)));
        assert_eq!(again.inquire("f-3").await, Some(Inquiry::NotFound));
        // A retry of a decided reference gets the same answer, whatever the amount says now.
        assert_eq!(again.request(request("f-2", 1_000)).await, Some(BankDecision::Declined));
        // One that refuses repeats declines a retry of an approved reference, and only an
        // inquiry tells the decision; a new reference is decided as ever.
        let strict = SandboxBank::open(Some(path.clone()), Duration::ZERO, "13", "99", true).unwrap();
        assert_eq!(strict.request(request("f-1", 1_000)).await, Some(BankDecision::Declined));
        assert_eq!(strict.inquire("f-1").await, Some(Inquiry::Decided(BankDecision::Approved)));
        assert_eq!(strict.request(request("f-4", 1_000)).await, Some(BankDecision::Approved));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
