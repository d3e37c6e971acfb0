//! Text messages behind one trait, [`SmsGateway`]. The one shipped is [`SandboxSms`], a
//! sandbox inside the process for development and tests: it delivers nothing, keeps the last
//! [`SANDBOX_MESSAGES_MAX`] messages in memory, and lets operators read them
//! (`GET /v1/admin/sandbox/sms?phone=...`) to learn the codes. A real gateway adapter
//! implements the same trait.

use kasa_core::wallet::Phone;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Messages the sandbox keeps: enough for any test or demo, bounded against a flood.
pub const SANDBOX_MESSAGES_MAX: usize = 1_000;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[error("the SMS gateway refused the message: {0}")]
pub struct SmsError(pub String);

/// A gateway's answer.
pub type SmsResult = Pin<Box<dyn Future<Output = Result<(), SmsError>> + Send>>;

/// A way to send text messages.
pub trait SmsGateway: Send + Sync + 'static {
    /// Sends `text` to `phone`. `code` is the verification code in it, which a sandbox may
    /// keep for operators and a real gateway must not log.
    fn send(&self, phone: &Phone, text: String, code: &str) -> SmsResult;
}

/// A message the sandbox kept.
#[derive(Clone, Debug)]
pub struct SandboxMessage {
    /// To whom.
    pub phone: Phone,
    /// The text.
    pub text: String,
    /// The verification code in it.
    pub code: String,
    /// When (engine time is not known here: wall clock, nanoseconds).
    pub sent_at: u64,
    /// Its number in the sandbox, from 1: the cursor of a listing.
    pub seq: u64,
}

/// The in-process sandbox gateway.
#[derive(Default)]
pub struct SandboxSms {
    messages: Mutex<VecDeque<SandboxMessage>>,
}

impl SandboxSms {
    /// Messages to `phone` (or to anyone) older than message `before` (0: from the newest),
    /// newest first, at most `limit`.
    pub fn messages(&self, phone: Option<&Phone>, before: u64, limit: usize) -> Vec<SandboxMessage> {
        let messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        messages
            .iter()
            .rev()
            .filter(|m| (before == 0 || m.seq < before) && phone.is_none_or(|p| &m.phone == p))
            .take(limit)
            .cloned()
            .collect()
    }
}

impl SmsGateway for SandboxSms {
    fn send(&self, phone: &Phone, text: String, code: &str) -> SmsResult {
        let sent_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() == SANDBOX_MESSAGES_MAX {
            messages.pop_front();
        }
        let seq = messages.back().map_or(1, |m| m.seq + 1);
        messages.push_back(SandboxMessage { phone: phone.clone(), text, code: code.to_string(), sent_at, seq });
        Box::pin(async { Ok(()) })
    }
}
