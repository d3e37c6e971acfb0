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
            account_number: format!("100000000{}", i + 1).into(),
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

/// The session token of bench user `user_id`, derived from the bench secret, so that the
/// benchmark client can authenticate as any seeded user without a login (and its Argon2 cost)
/// per user. Only `seed_bench` creates sessions this way.
pub fn bench_token(secret: &[u8; 32], user_id: u64) -> String {
    let derived = blake3::keyed_hash(secret, &user_id.to_le_bytes());
    format!("kasa_s_{}", kasa_engine::hex(derived.as_bytes()))
}

/// The phone number of bench user `i` (from 0): `+8210` and eight digits.
pub fn bench_phone(i: u64) -> String {
    format!("+8210{:08}", 10_000_000 + i)
}

/// The balance bench user `i` starts with: user 0 is at the basic cap (so that sends to it
/// hit the recipient's limit), the others 10,000 to 109,000 won.
pub fn bench_balance(i: u64) -> u64 {
    if i == 0 {
        500_000
    } else {
        10_000 + (i % 100) * 1_000
    }
}

/// Seeds `users` benchmark users on an empty state, each with a bank account, a settled
/// top-up and a session whose token is [`bench_token`]. **For `kasa bench wallet` only**:
/// anyone who knows the secret can act as these users, so it refuses a state that has users.
pub async fn seed_bench(engine: &Engine, pins: &PinHasher, users: u64, secret: &[u8; 32]) -> Result<(), String> {
    if engine.read(|s| s.wallets().users_count()).await.map_err(|e| e.to_string())? > 0 {
        return Err("--bench-seed needs an empty data directory".into());
    }
    // One Argon2 hash for everyone: the seed measures nothing, the benchmark measures sends.
    let pin_hash = pins.hash(DEMO_PIN.to_string()).await.map_err(|p| p.detail)?;
    let chunk = 512u64;
    let mut start = 0;
    while start < users {
        let end = (start + chunk).min(users);
        let tasks: Vec<_> = (start..end)
            .map(|i| {
                let pin_hash = pin_hash.clone();
                let secret = *secret;
                async move {
                    let sign_up = Command::SignUp { phone: bench_phone(i), name: format!("bench {i}"), pin_hash };
                    let WalletOutcome::SignedUp(Ok(user_id)) = wallet(engine, sign_up).await? else {
                        return Err(format!("bench sign-up {i} failed"));
                    };
                    let link = Command::LinkBankAccount {
                        user_id,
                        bank_code: "088".into(),
                        account_number: format!("{:012}", user_id).into(),
                        holder_name: "bench".into(),
                    };
                    let WalletOutcome::BankAccountLinked(Ok(bank_account_id)) = wallet(engine, link).await? else {
                        return Err(format!("bench bank account {i} failed"));
                    };
                    let amount = bench_balance(i);
                    let start = Command::StartFunding {
                        user_id,
                        bank_account_id,
                        kind: FundingKind::TopUp,
                        amount,
                        pin_ok: None,
                    };
                    let WalletOutcome::FundingStarted(Ok(funding_id)) = wallet(engine, start).await? else {
                        return Err(format!("bench top-up {i} failed"));
                    };
                    wallet(engine, Command::SettleFunding { funding_id, approved: true }).await?;
                    let token_hash = crate::pin::token_hash(bench_token(&secret, user_id).as_bytes());
                    let open = Command::OpenSession { user_id, token_hash, pin_ok: true, ttl_seconds: 24 * 3600 };
                    wallet(engine, open).await?;
                    Ok(())
                }
            })
            .collect();
        for result in futures_join_all(tasks).await {
            result?;
        }
        start = end;
    }
    Ok(())
}

/// Runs futures concurrently on the current task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}
