//! `kasa serve --demo`: seeds an empty data directory with three wallet users who have
//! linked bank accounts and money, so that the README's tour can log in and send at once; and
//! `--bench-seed` for `kasa bench wallet`. The seed goes through the same commands as real
//! requests (a phone verification, sign-up, link, top-up settled by the bank's answer), so it
//! is journaled like everything else and `kasa verify` checks it.

use crate::AppState;
use kasa_core::idempotency::KeyScope;
use kasa_core::limits::Tier;
use kasa_core::money::Amount;
use kasa_core::wallet::{BankCode, BankResult, CodeProof, Command, FundingKind, Name, Outcome, Phone, PinHash};

/// The demo users: phone, name, tier, balance in won. Every PIN is [`DEMO_PIN`].
pub const DEMO_USERS: &[(&str, &str, Tier, u64)] = &[
    ("010-0000-0001", "김민지", Tier::Verified, 300_000),
    ("010-0000-0002", "이준호", Tier::Basic, 100_000),
    ("010-0000-0003", "박서연", Tier::Basic, 50_000),
];
/// The PIN of every demo user.
pub const DEMO_PIN: &str = "135790";

async fn wallet(app: &AppState, command: Command) -> Result<Outcome, String> {
    app.wallet(KeyScope::Operator, command).await.map_err(|p| p.detail)
}

/// Signs a user up through a verification whose code the seed knows (the same two commands
/// as `POST /v1/phone-verifications` and `POST /v1/users`); returns the user id.
pub async fn sign_up(app: &AppState, phone: &Phone, name: &str, pin_hash: &PinHash, salt: u64) -> Result<u64, String> {
    let code = "000000";
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&salt.to_le_bytes());
    id[8..].copy_from_slice(b"kasaseed");
    let code_hash = app.keys.code_hash(phone, code);
    match wallet(app, Command::StartVerification { id, phone: phone.clone(), code_hash }).await? {
        Outcome::VerificationStarted(Ok(_)) => {}
        other => return Err(format!("seed verification of {phone:?} failed: {other:?}")),
    }
    let name = Name::new(name).map_err(|e| e.to_string())?;
    let proof = CodeProof { verification_id: id, code_hash };
    match wallet(app, Command::SignUp { phone: phone.clone(), name, pin_hash: pin_hash.clone(), proof }).await? {
        Outcome::SignedUp(Ok(user)) => Ok(user.id),
        other => Err(format!("seed sign-up of {phone:?} failed: {other:?}")),
    }
}

/// Links a bank account and tops the wallet up with `balance` won, settled as the bank would.
async fn fund(app: &AppState, user_id: u64, account: &str, holder: &str, balance: u64) -> Result<(), String> {
    let bank_account_id = link(app, user_id, account, holder).await?;
    top_up(app, user_id, bank_account_id, balance).await
}

/// Links a bank account (sealed, as `POST /v1/me/bank-accounts` does); returns its id.
pub async fn link(app: &AppState, user_id: u64, account: &str, holder: &str) -> Result<u64, String> {
    let bank_code = BankCode::new("088").map_err(|e| e.to_string())?;
    let account_number = app.keys.seal(&bank_code, account).map_err(|e| e.to_string())?;
    let holder_name = Name::new(holder).map_err(|e| e.to_string())?;
    match wallet(app, Command::LinkBankAccount { user_id, bank_code, account_number, holder_name }).await? {
        Outcome::BankAccountLinked(Ok(b)) => Ok(b.id),
        other => Err(format!("seed bank account of user {user_id} failed: {other:?}")),
    }
}

/// Tops the wallet up with `balance` won from a linked account, settled as the bank would
/// (the funding's start and the bank's answer: two commands).
pub async fn top_up(app: &AppState, user_id: u64, bank_account_id: u64, balance: u64) -> Result<(), String> {
    let start = Command::StartFunding {
        user_id,
        bank_account_id,
        kind: FundingKind::TopUp,
        amount: Amount::new(balance),
        pin_ok: None,
    };
    let funding_id = match wallet(app, start).await? {
        Outcome::FundingStarted(Ok(f)) => f.id,
        other => return Err(format!("seed top-up of user {user_id} failed: {other:?}")),
    };
    wallet(app, Command::SettleFunding { funding_id, result: BankResult::Approved }).await?;
    Ok(())
}

/// Seeds the demo users unless there are users already. Returns how many it created.
pub async fn seed(app: &AppState) -> Result<usize, String> {
    if app.engine.read(|s| s.wallets().users_count()).await.map_err(|e| e.to_string())? > 0 {
        return Ok(0);
    }
    let pin_hash =
        PinHash::new(app.pins.hash(DEMO_PIN.to_string()).await.map_err(|p| p.detail)?).map_err(|e| e.to_string())?;
    for (i, &(phone, name, tier, balance)) in DEMO_USERS.iter().enumerate() {
        let phone = Phone::parse(phone).map_err(|e| e.to_string())?;
        let user_id = sign_up(app, &phone, name, &pin_hash, i as u64).await?;
        wallet(app, Command::SetTier { user_id, tier }).await?;
        fund(app, user_id, &format!("100000000{}", i + 1), name, balance).await?;
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
    format!("+8210{:08}", 20_000_000 + i)
}

/// The balance bench user `i` starts with: user 0 is at the basic cap (so that sends to it
/// meet the recipient's limit), the others 10,000 to 109,000 won.
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
pub async fn seed_bench(app: &AppState, users: u64, secret: &[u8; 32]) -> Result<(), String> {
    if app.engine.read(|s| s.wallets().users_count()).await.map_err(|e| e.to_string())? > 0 {
        return Err("--bench-seed needs an empty data directory".into());
    }
    seed_bench_users(app, 0..users, secret).await.map(drop)
}

/// The PIN hash every bench user has: one Argon2 hash for everyone (the seed measures
/// nothing).
pub async fn bench_pin_hash(app: &AppState) -> Result<PinHash, String> {
    PinHash::new(app.pins.hash(DEMO_PIN.to_string()).await.map_err(|p| p.detail)?).map_err(|e| e.to_string())
}

/// Members seeded at once: enough to keep the sequencer's batches full while each waits
/// for its journal sync (each member is six commands one after the other), and within the
/// engine's queue (4,096).
const SEEDING_IN_FLIGHT: u64 = 3_072;

/// Seeds bench users `range` (phones and names by index, the balance by the id the sign-up
/// gave: [`bench_balance`]`(id - 1)`, so that id 1 is the one at the cap whatever order the
/// sign-ups commit in): up to [`SEEDING_IN_FLIGHT`] at a time, each signed up, linked, topped
/// up and given a session. Returns their ids in the order of `range`.
pub async fn seed_bench_users(
    app: &AppState,
    range: std::ops::Range<u64>,
    secret: &[u8; 32],
) -> Result<Vec<u64>, String> {
    let pin_hash = bench_pin_hash(app).await?;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(range.start));
    let tasks: Vec<_> = (0..SEEDING_IN_FLIGHT.min(range.end - range.start))
        .map(|_| {
            let (app, pin_hash, secret, next, end) = (app.clone(), pin_hash.clone(), *secret, next.clone(), range.end);
            tokio::spawn(async move {
                let mut seeded = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= end {
                        return Ok::<_, String>(seeded);
                    }
                    seeded.push((i, seed_bench_user(&app, i, &pin_hash, &secret).await?));
                }
            })
        })
        .collect();
    let mut ids = Vec::with_capacity((range.end - range.start) as usize);
    for task in tasks {
        ids.extend(task.await.map_err(|e| format!("a seeding task failed: {e}"))??);
    }
    ids.sort_unstable();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// Seeds bench user `i`: sign-up, bank account, top-up, session.
async fn seed_bench_user(app: &AppState, i: u64, pin_hash: &PinHash, secret: &[u8; 32]) -> Result<u64, String> {
    let phone = Phone::parse(&bench_phone(i)).map_err(|e| e.to_string())?;
    let user_id = sign_up(app, &phone, &format!("bench {i}"), pin_hash, 1_000 + i).await?;
    fund(app, user_id, &format!("{:012}", user_id), "bench", bench_balance(user_id - 1)).await?;
    let token_hash = crate::pin::token_hash(bench_token(secret, user_id).as_bytes());
    let open = Command::OpenSession { user_id, token_hash, pin_ok: true, ttl_seconds: 24 * 3600 };
    wallet(app, open).await?;
    Ok(user_id)
}
