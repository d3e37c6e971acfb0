//! `kasa serve --demo`: seeds an empty data directory with three wallet users who have
//! linked bank accounts and money, so that the README's tour can log in and send at once.
//! The seed goes through the same commands as real requests (sign-up, link, top-up settled
//! by the bank), so it is journaled like everything else and `kasa verify` checks it.

use crate::pin::PinHasher;
use kasa_core::wallet::{FundingKind, Tier, WalletOutcome};
use kasa_core::{Command, Outcome};
use kasa_engine::Engine;

/// The demo users: phone, name, tier, balance in won. Every PIN is 123456.
pub const DEMO_USERS: &[(&str, &str, Tier, u64)] = &[
    ("010-0000-0001", "김민지", Tier::Verified, 300_000),
    ("010-0000-0002", "이준호", Tier::Basic, 100_000),
    ("010-0000-0003", "박서연", Tier::Basic, 50_000),
];
/// The PIN of every demo user.
pub const DEMO_PIN: &str = "123456";

async fn wallet(engine: &Engine, command: Command) -> Result<WalletOutcome, String> {
    match engine.submit(command).await.map_err(|e| e.to_string())? {
        Outcome::Wallet(outcome) => Ok(outcome),
        other => Err(format!("unexpected outcome {other:?}")),
    }
}

/// Seeds the demo users unless there are users already. Returns how many it created.
pub async fn seed(engine: &Engine, pins: &PinHasher) -> Result<usize, String> {
    if engine.read(|s| s.wallets().users_count()).await.map_err(|e| e.to_string())? > 0 {
        return Ok(0);
    }
    for (i, &(phone, name, tier, balance)) in DEMO_USERS.iter().enumerate() {
        let pin_hash = pins.hash(DEMO_PIN.to_string()).await.map_err(|p| p.detail)?;
        let WalletOutcome::SignedUp(Ok(user_id)) =
            wallet(engine, Command::SignUp { phone: phone.into(), name: name.into(), pin_hash }).await?
        else {
            return Err(format!("demo sign-up of {phone} failed"));
        };
        wallet(engine, Command::SetTier { user_id, tier }).await?;
        let link = Command::LinkBankAccount {
            user_id,
            bank_code: "088".into(),
            account_number: format!("100000000{}", i + 1),
            holder_name: name.into(),
        };
        let WalletOutcome::BankAccountLinked(Ok(bank_account_id)) = wallet(engine, link).await? else {
            return Err(format!("demo bank account of {phone} failed"));
        };
        let start =
            Command::StartFunding { user_id, bank_account_id, kind: FundingKind::TopUp, amount: balance, pin_ok: None };
        let WalletOutcome::FundingStarted(Ok(funding_id)) = wallet(engine, start).await? else {
            return Err(format!("demo top-up of {phone} failed"));
        };
        wallet(engine, Command::SettleFunding { funding_id, approved: true }).await?;
    }
    Ok(DEMO_USERS.len())
}
