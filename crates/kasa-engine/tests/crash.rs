//! Crash safety of the whole write path (core + journal) on fault-injecting storage.
//!
//! For a ledger workload and a wallet workload, crash at every mutating storage call in turn;
//! after each crash, restart the disk as a power loss would leave it, recover, and check that
//! every acknowledged batch is there, no partial batch is, the ledger and wallet invariants
//! hold, and the state hash equals a clean replay of the same batches. Also: a full disk rejects a batch cleanly and the engine
//! carries on; a failed sync is fatal and recovery keeps only what was synced.

use kasa_core::{Account, AccountFlags, Command, Transfer, TransferFlags};
use kasa_engine::{CommitError, Writer, WriterOptions};
use kasa_journal::{FaultStorage, Options};

const SECOND: u64 = 1_000_000_000;
const START: u64 = 1_800_000_000 * SECOND;

fn options() -> WriterOptions {
    // Small segments so that the workload rolls over several times, and a snapshot every few
    // batches so that crashes also land inside snapshot writes.
    WriterOptions { journal: Options { segment_bytes_max: 4096, ..Options::default() }, snapshot_interval_bytes: 3000 }
}

/// Smaller segments and snapshots for the wallet workload, whose frames are small.
fn small_options() -> WriterOptions {
    WriterOptions { journal: Options { segment_bytes_max: 1024, ..Options::default() }, snapshot_interval_bytes: 700 }
}

/// A deterministic workload: accounts, then plain, pending (with timeouts), posted, voided,
/// linked and failing transfers, with time moving so that some pending transfers expire.
fn workload() -> Vec<(u64, Vec<Command>)> {
    let mut batches = Vec::new();
    let accounts = (1..=6u128)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            flags: AccountFlags(if id <= 3 { AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS } else { 0 }),
            ..Default::default()
        })
        .collect();
    batches.push((START, vec![Command::CreateAccounts(accounts)]));
    // One batch large enough to apply while the disk syncs (the parallel path of `commit`).
    let large = (0..1100u128)
        .map(|i| Transfer {
            id: 1_000_000 + i,
            debit_account_id: 4 + i % 3,
            credit_account_id: 1 + i % 3,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .collect();
    batches.push((START + SECOND / 2, vec![Command::CreateTransfers(large)]));
    let mut id = 100u128;
    for round in 0..12u64 {
        let mut transfers = Vec::new();
        for k in 0..4u128 {
            id += 1;
            let debit = 4 + (k % 3);
            let credit = 1 + ((k + round as u128) % 3);
            transfers.push(Transfer {
                id,
                debit_account_id: debit,
                credit_account_id: credit,
                amount: 10 + k,
                ledger: 1,
                code: 1,
                ..Default::default()
            });
        }
        id += 1;
        let pending_id = id;
        transfers.push(Transfer {
            id,
            debit_account_id: 1 + (round as u128 % 3),
            credit_account_id: 5,
            amount: 7,
            ledger: 1,
            code: 1,
            timeout: 1 + (round % 3) as u32,
            flags: TransferFlags(TransferFlags::PENDING),
            ..Default::default()
        });
        id += 1;
        transfers.push(Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 6,
            amount: 1_000_000,
            ledger: 1,
            code: 1,
            ..Default::default()
        });
        let mut second = Vec::new();
        id += 1;
        let flags =
            if round % 2 == 0 { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        second.push(Transfer {
            id,
            pending_id,
            flags: TransferFlags(flags | TransferFlags::LINKED),
            ..Default::default()
        });
        id += 1;
        second.push(Transfer {
            id,
            debit_account_id: 2,
            credit_account_id: 4,
            amount: 3,
            ledger: 1,
            code: 1,
            ..Default::default()
        });
        let now = START + (round + 1) * SECOND * 2;
        batches.push((now, vec![Command::CreateTransfers(transfers), Command::CreateTransfers(second)]));
        // An empty batch in between lets pending transfers expire by engine time.
        batches.push((now + SECOND + SECOND / 2, vec![]));
    }
    batches
}

/// A deterministic wallet workload: sign-ups (one claiming money held for its number),
/// sessions, bank accounts, top-ups approved and declined, a withdrawal left to expire,
/// remittances to users and to a number without a wallet, a cancelled hold, a money request
/// paid and one declined, a split bill, keyed commands with their stored answers, and tier
/// changes. Each command moves money together with its domain change, so a crash anywhere must
/// leave both or neither.
fn wallet_workload() -> Vec<(u64, Vec<Command>)> {
    use kasa_core::wallet::{FundingKind, Recipient, Tier};
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let sign_up =
        |phone: &str| Command::SignUp { phone: phone.into(), name: "사용자".into(), pin_hash: HASH.into() };
    let link = |user_id: u64| Command::LinkBankAccount {
        user_id,
        bank_code: "088".into(),
        account_number: format!("11012345678{user_id}").into(),
        holder_name: "x".into(),
    };
    let fund = |user_id: u64, kind: FundingKind, amount: u64| Command::StartFunding {
        user_id,
        bank_account_id: user_id,
        kind,
        amount,
        pin_ok: Some(true),
    };
    let send = |from_user: u64, to: Recipient, amount: u64| Command::Send {
        from_user,
        to,
        amount,
        memo: "점심".into(),
        pin_ok: Some(true),
    };
    let mut t = START;
    let mut next = || {
        t += SECOND;
        t
    };
    let mut batches = vec![
        (next(), vec![sign_up("010-1000-0001"), sign_up("010-1000-0002"), sign_up("010-1000-0003")]),
        (
            next(),
            vec![
                Command::OpenSession { user_id: 1, token_hash: [1; 32], pin_ok: true, ttl_seconds: 3600 },
                Command::OpenSession { user_id: 2, token_hash: [2; 32], pin_ok: false, ttl_seconds: 3600 },
                link(1),
                link(2),
                link(3),
            ],
        ),
        (next(), vec![fund(1, FundingKind::TopUp, 300_000), fund(2, FundingKind::TopUp, 200_000)]),
        (next(), vec![fund(3, FundingKind::TopUp, 1_013)]),
        (
            next(),
            vec![
                Command::SettleFunding { funding_id: 1, approved: true },
                Command::SettleFunding { funding_id: 2, approved: true },
                Command::SettleFunding { funding_id: 3, approved: false },
            ],
        ),
        (next(), vec![send(1, Recipient::User(2), 12_000), send(2, Recipient::Phone("010-1000-0004".into()), 7_000)]),
        (next(), vec![send(1, Recipient::Phone("010-1000-0005".into()), 3_000), send(3, Recipient::User(1), 1)]),
        (next(), vec![Command::CancelRemittance { user_id: 1, remittance_id: 3 }, sign_up("010-1000-0004")]),
        (
            next(),
            vec![
                Command::RequestMoney { requester: 1, from: Recipient::User(2), amount: 5_000, memo: "커피".into() },
                Command::RequestMoney { requester: 2, from: Recipient::User(1), amount: 9_000, memo: String::new() },
                Command::SplitBill {
                    requester: 1,
                    total: 30_001,
                    shares: vec![(Recipient::User(2), 10_000), (Recipient::User(4), 10_000)],
                    memo: "저녁".into(),
                },
            ],
        ),
        (
            next(),
            vec![
                Command::AnswerRequest { payer: 2, request_id: 1, pay: true, pin_ok: None },
                Command::AnswerRequest { payer: 1, request_id: 2, pay: false, pin_ok: None },
                Command::AnswerRequest { payer: 2, request_id: 3, pay: true, pin_ok: None },
            ],
        ),
        (
            next(),
            vec![
                Command::Keyed {
                    scope: 1,
                    key: "retry-1".into(),
                    request_hash: [7; 32],
                    command: Box::new(send(1, Recipient::User(3), 4_000)),
                },
                Command::Keyed {
                    scope: 1,
                    key: "retry-1".into(),
                    request_hash: [7; 32],
                    command: Box::new(send(1, Recipient::User(3), 4_000)),
                },
                Command::StoreResponse { scope: 1, key: "retry-1".into(), status: 201, body: b"{}".to_vec() },
                Command::AsSession { token_hash: [1; 32], command: Box::new(send(1, Recipient::User(2), 500)) },
            ],
        ),
        (next(), vec![fund(2, FundingKind::Withdrawal, 20_000), Command::SetTier { user_id: 2, tier: Tier::Verified }]),
        (
            next(),
            vec![
                Command::SetTierLimits { tier: Tier::Basic, balance_cap: 400_000, daily_outgoing: 300_000 },
                Command::SetFees { withdrawal_fee: 300 },
                Command::UnlockPin { user_id: 2 },
                Command::SetPinFreeAmount { user_id: 1, amount: 10_000 },
                Command::CloseSession { token_hash: [1; 32] },
            ],
        ),
    ];
    // Past the 60 s bank timeout: the unanswered withdrawal expires and gives its money back.
    batches.push((t + 61 * SECOND, vec![]));
    batches.push((t + 62 * SECOND, vec![send(2, Recipient::User(1), 1_000)]));
    // A hold that nobody claims, and its return 48 hours later.
    batches.push((t + 63 * SECOND, vec![send(1, Recipient::Phone("010-1000-0009".into()), 2_000)]));
    let returned = t + 63 * SECOND + 48 * 3600 * SECOND + 1;
    batches.push((returned, vec![]));
    // More after it, so that snapshots (and the indexes rebuilt from them) see the return.
    for i in 1..=4 {
        batches.push((returned + i * SECOND, vec![send(1, Recipient::User(2), 100), send(2, Recipient::User(1), 100)]));
    }
    // A withdrawal with the 300 won fee, paid out: the fee moves to fee income.
    batches.push((returned + 5 * SECOND, vec![fund(1, FundingKind::Withdrawal, 1_000)]));
    batches.push((returned + 6 * SECOND, vec![Command::SettleFunding { funding_id: 5, approved: true }]));
    batches
}

/// What a state hash does not cover: the views read through derived indexes (each user's
/// history, and money requests per role), which recovery rebuilds rather than reads.
fn views(state: &kasa_core::State) -> String {
    use kasa_core::wallet::{HistoryCursor, RequestRole};
    let wallets = state.wallets();
    (1..=wallets.users_count() as u64)
        .map(|user| {
            let history = wallets.history(state.ledger(), user, HistoryCursor::default(), 1000);
            let asked = wallets.requests().list(user, RequestRole::Payer, 0, 1000, |_| true).items;
            let made = wallets.requests().list(user, RequestRole::Requester, 0, 1000, |_| true).items;
            format!("{user}: {history:?} {asked:?} {made:?}\n")
        })
        .collect()
}

/// The state hash and the views of a clean run of the first `count` batches.
fn clean_run(options: fn() -> WriterOptions, batches: &[(u64, Vec<Command>)], count: usize) -> ([u8; 32], String) {
    let (mut writer, _) = Writer::recover(FaultStorage::new(0), options()).expect("empty disk recovers");
    for (now, commands) in &batches[..count] {
        writer.commit(commands.clone(), *now).expect("clean commit");
    }
    (writer.state().hash(), views(writer.state()))
}

/// Runs the workload on `disk` until the first failure; returns how many batches were
/// acknowledged (their commit returned Ok).
fn run_until_failure(options: fn() -> WriterOptions, disk: &FaultStorage, batches: &[(u64, Vec<Command>)]) -> usize {
    let Ok((mut writer, _)) = Writer::recover(disk.clone(), options()) else { return 0 };
    let mut acknowledged = 0;
    for (now, commands) in batches {
        if writer.commit(commands.clone(), *now).is_err() {
            break;
        }
        acknowledged += 1;
        if writer.snapshot_due() && writer.snapshot().is_err() {
            break;
        }
    }
    acknowledged
}

#[test]
fn crash_at_every_storage_call_loses_no_acknowledged_batch() {
    crash_at_every_storage_call(options, &workload());
}

#[test]
fn crash_at_every_storage_call_during_wallet_commands_leaves_each_whole_or_absent() {
    let batches = wallet_workload();
    // The workload does what it says: every command that should succeed did.
    let (mut writer, _) = Writer::recover(FaultStorage::new(0), options()).unwrap();
    for (now, commands) in &batches {
        writer.commit(commands.clone(), *now).unwrap();
    }
    let wallets = writer.state().wallets();
    assert_eq!(wallets.users_count(), 4);
    let balance = |user: u64| {
        let a = writer.state().ledger().account(kasa_core::wallet::wallet_account_id(user)).unwrap();
        (a.credits_posted - a.debits_posted, a.debits_pending)
    };
    // User 1: 300,000 - 12,000 (sent) + 5,000 (request paid) + 10,000 (split share paid)
    // - 4,000 (keyed, once) - 500 + 1,000 - 1,300 (withdrawal and fee); the 3,000 held for a
    // number was cancelled.
    assert_eq!(balance(1), (298_200, 0), "less a 1,000 won withdrawal and its 300 won fee");
    // User 2: 200,000 + 12,000 - 7,000 (held, then claimed by user 4) - 5,000 - 10,000 + 500
    // - 1,000; the 20,000 withdrawal expired unanswered and gave its money back.
    assert_eq!(balance(2), (189_500, 0));
    assert_eq!(balance(3), (4_000, 0), "the declined top-up brought nothing");
    assert_eq!(balance(4), (7_000, 0), "the held remittance was claimed at sign-up");
    let fees = writer.state().ledger().account(kasa_core::wallet::funding::fee_income_account_id()).unwrap();
    assert_eq!(fees.credits_posted, 300);
    crash_at_every_storage_call(small_options, &batches);
}

fn crash_at_every_storage_call(options: fn() -> WriterOptions, batches: &[(u64, Vec<Command>)]) {
    let total_calls = {
        let disk = FaultStorage::new(1);
        assert_eq!(run_until_failure(options, &disk, batches), batches.len());
        disk.calls()
    };
    assert!(total_calls >= 2 * batches.len() as u64, "the workload makes {total_calls} storage calls");
    eprintln!("workload: {} batches, {total_calls} storage calls", batches.len());
    let mut hashes = vec![None; batches.len() + 1];
    for crash_at in 1..=total_calls {
        for seed in [crash_at, crash_at * 7 + 3] {
            let disk = FaultStorage::new(seed);
            disk.crash_after_calls(crash_at);
            let acknowledged = run_until_failure(options, &disk, batches);
            let restarted = disk.restart();
            let (writer, _) = Writer::recover(restarted.clone(), options())
                .unwrap_or_else(|e| panic!("crash at call {crash_at} (seed {seed}): recovery failed: {e}"));
            let recovered = writer.last_seq() as usize;
            assert!(
                recovered >= acknowledged,
                "crash at call {crash_at} (seed {seed}): {acknowledged} batches acknowledged, {recovered} recovered"
            );
            assert!(
                recovered <= acknowledged + 1,
                "crash at call {crash_at} (seed {seed}): {recovered} recovered but only {acknowledged} acknowledged"
            );
            writer.state().check_invariants().unwrap_or_else(|e| panic!("crash at call {crash_at}: {e}"));
            let expected = hashes[recovered].get_or_insert_with(|| clean_run(options, batches, recovered));
            assert_eq!(
                writer.state().hash(),
                expected.0,
                "crash at call {crash_at} (seed {seed}): state differs from a clean replay"
            );
            assert_eq!(views(writer.state()), expected.1, "crash at call {crash_at} (seed {seed}): views differ");
            // The recovered engine accepts the rest of the workload.
            let mut writer = writer;
            for (now, commands) in &batches[recovered..] {
                writer.commit(commands.clone(), *now).expect("commit after recovery");
            }
            let expected = hashes[batches.len()].get_or_insert_with(|| clean_run(options, batches, batches.len()));
            assert_eq!((writer.state().hash(), views(writer.state())), *expected);
        }
    }
}

#[test]
fn a_full_disk_rejects_the_batch_cleanly_and_the_engine_carries_on() {
    let batches = workload();
    let disk = FaultStorage::new(9);
    let (mut writer, _) =
        Writer::recover(disk.clone(), WriterOptions { snapshot_interval_bytes: 0, ..options() }).unwrap();
    writer.commit(batches[0].1.clone(), batches[0].0).unwrap();
    let before = writer.state().hash();
    disk.disk_full_after_bytes(writer.journal_bytes() + 100);
    match writer.commit(batches[1].1.clone(), batches[1].0) {
        Err(CommitError::StorageFull) => {}
        other => panic!("expected StorageFull, found {other:?}"),
    }
    assert_eq!(writer.state().hash(), before, "a rejected batch changed the state");
    disk.clear_disk_full();
    writer.commit(batches[1].1.clone(), batches[1].0).unwrap();
    let hash = writer.state().hash();
    let (recovered, _) = Writer::recover(disk.restart(), options()).unwrap();
    assert_eq!(recovered.last_seq(), 2);
    assert_eq!(recovered.state().hash(), hash);
}

#[test]
fn a_failed_sync_is_fatal_and_recovery_keeps_what_was_synced() {
    let batches = workload();
    let disk = FaultStorage::new(11);
    let (mut writer, _) =
        Writer::recover(disk.clone(), WriterOptions { snapshot_interval_bytes: 0, ..options() }).unwrap();
    writer.commit(batches[0].1.clone(), batches[0].0).unwrap();
    let synced = writer.state().hash();
    disk.fail_next_sync();
    assert!(matches!(writer.commit(batches[1].1.clone(), batches[1].0), Err(CommitError::Fatal(_))));
    // Poisoned: nothing more is acknowledged, even if the disk would now work.
    assert!(matches!(writer.commit(batches[1].1.clone(), batches[1].0), Err(CommitError::Fatal(_))));
    let (recovered, _) = Writer::recover(disk.restart(), options()).unwrap();
    assert!(recovered.last_seq() <= 2);
    if recovered.last_seq() == 1 {
        assert_eq!(recovered.state().hash(), synced);
    }
    recovered.state().check_invariants().unwrap();
}
