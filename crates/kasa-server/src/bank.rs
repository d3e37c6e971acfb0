//! Banks behind one trait, [`BankRail`]. The implementation shipped (and started by default)
//! is [`SandboxBank`], a **sandbox inside the process** for development and tests: it answers
//! after a configurable latency, declines amounts ending in 13, and never answers amounts
//! ending in 99 (so that the reservation times out). A real bank adapter implements the same
//! trait. The answer enters the state as a `SettleFunding` command like any other request, so a
//! replay never calls the bank again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What Kasa asks a bank.
#[derive(Clone, Debug)]
pub struct BankRequest {
    /// The funding's id (Kasa's reference at the bank).
    pub funding_id: u64,
    /// True for a top-up (pull money from the user's bank account), false for a withdrawal.
    pub top_up: bool,
    /// Won.
    pub amount: u64,
    /// The 3-digit bank code.
    pub bank_code: String,
}

/// A bank's answer: `Some(true)` approved, `Some(false)` declined, `None` no answer.
pub type BankAnswer = Pin<Box<dyn Future<Output = Option<bool>> + Send>>;

/// A way to move money between Kasa and users' bank accounts.
pub trait BankRail: Send + Sync + 'static {
    /// Asks the bank; the future resolves with its answer, or `None` if it never answers.
    fn request(&self, request: BankRequest) -> BankAnswer;
}

/// The in-process sandbox bank. See the module documentation for its rules.
#[derive(Clone, Debug)]
pub struct SandboxBank {
    /// How long it takes to answer.
    pub latency: Duration,
}

impl BankRail for SandboxBank {
    fn request(&self, request: BankRequest) -> BankAnswer {
        let latency = self.latency;
        Box::pin(async move {
            match request.amount % 100 {
                99 => None,
                13 => {
                    tokio::time::sleep(latency).await;
                    Some(false)
                }
                _ => {
                    tokio::time::sleep(latency).await;
                    Some(true)
                }
            }
        })
    }
}
