//! Banks behind one trait, [`BankRail`]. The implementation shipped (and started by default)
//! is [`SandboxBank`], a **sandbox inside the process** for development and tests: it answers
//! after a configurable latency, declines amounts ending in 13, and never answers amounts
//! ending in 99 (so that the reservation times out); both endings are configurable. A real bank adapter implements the same
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
    /// Amounts whose decimal digits end with this are declined (empty: none).
    pub decline_ending: String,
    /// Amounts whose decimal digits end with this are never answered (empty: none).
    pub no_answer_ending: String,
}

impl Default for SandboxBank {
    fn default() -> Self {
        SandboxBank { latency: Duration::from_millis(200), decline_ending: "13".into(), no_answer_ending: "99".into() }
    }
}

impl SandboxBank {
    /// The sandbox's answer to an amount: `Some(true)` approve, `Some(false)` decline, `None`
    /// no answer. The no-answer ending wins if both match.
    pub fn answer(&self, amount: u64) -> Option<bool> {
        let digits = amount.to_string();
        let ends = |ending: &str| !ending.is_empty() && digits.ends_with(ending);
        if ends(&self.no_answer_ending) {
            None
        } else {
            Some(!ends(&self.decline_ending))
        }
    }
}

impl BankRail for SandboxBank {
    fn request(&self, request: BankRequest) -> BankAnswer {
        let latency = self.latency;
        let answer = self.answer(request.amount);
        Box::pin(async move {
            answer?;
            tokio::time::sleep(latency).await;
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SandboxBank;

    #[test]
    fn the_sandbox_answers_by_the_amount_s_last_digits() {
        let bank = SandboxBank::default();
        assert_eq!((bank.answer(1_000), bank.answer(1_013), bank.answer(10_099)), (Some(true), Some(false), None));
        let bank =
            SandboxBank { decline_ending: "7".into(), no_answer_ending: String::new(), ..SandboxBank::default() };
        assert_eq!(
            (bank.answer(1_013), bank.answer(1_007), bank.answer(10_099)),
            (Some(true), Some(false), Some(true))
        );
    }
}
