//! Crash safety of the whole write path (core + journal) on fault-injecting storage.
//!
//! For a ledger workload and a wallet workload (with merchants' and partners' commands), crash
//! at every mutating storage call in turn; after each crash, restart the disk as a power loss
//! would leave it, recover, and check that every acknowledged batch is there, no partial batch
//! is, the invariants hold (both ledgers, and every domain against the books: wallets,
//! merchants' payments, partners' FX positions and accounts), and the state hash equals a
//! clean replay of the same batches. Also: a full disk rejects a batch cleanly and the engine
//! carries on; a failed sync is fatal and recovery keeps only what was synced.

use kasa_core::ledger::{Account, AccountFlags, Transfer, TransferFlags};
use kasa_core::Command;
use kasa_engine::{CommitError, Writer, WriterOptions};
use kasa_journal::{FaultStorage, Options};

const SECOND: u64 = 1_000_000_000;
const START: u64 = 1_800_000_000 * SECOND;

fn options() -> WriterOptions {
    // Small segments so that the workload rolls over several times, and a snapshot every few
    // batches so that crashes also land inside snapshot writes.
    WriterOptions {
        journal: Options { segment_bytes_max: 4096, ..Options::default() },
        snapshot_interval_bytes: 3000,
        cold: None,
    }
}

/// Smaller segments and snapshots for the wallet workload, whose frames are small.
fn small_options() -> WriterOptions {
    WriterOptions {
        journal: Options { segment_bytes_max: 1024, ..Options::default() },
        snapshot_interval_bytes: 700,
        cold: None,
    }
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
    batches.push((START, vec![Command::create_accounts(accounts)]));
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
    batches.push((START + SECOND / 2, vec![Command::create_transfers(large)]));
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
        batches.push((now, vec![Command::create_transfers(transfers), Command::create_transfers(second)]));
        // An empty batch in between lets pending transfers expire by engine time.
        batches.push((now + SECOND + SECOND / 2, vec![]));
    }
    batches
}

/// A deterministic wallet workload: verifications and sign-ups (one claiming money held for
/// its number), sessions, bank accounts, top-ups approved and declined, a withdrawal the bank
/// never answers (expired by the rail), remittances to users and to a number without a wallet,
/// a cancelled hold and one returned after 48 hours, a money request paid and one declined, a
/// split bill, keyed commands, a session's command, an adjustment, tier and fee changes, and a
/// consumer cursor. Each command moves money together with its domain change, so a crash
/// anywhere must leave both or neither.
fn wallet_workload() -> Vec<(u64, Vec<Command>)> {
    use kasa_core::command::{Inner, Keyed, SessionCommand};
    use kasa_core::idempotency::{IdempotencyKey, KeyScope};
    use kasa_core::limits::{Tier, TierLimits};
    use kasa_core::money::Amount;
    use kasa_core::text::BoundedVec;
    use kasa_core::wallet::{
        self, BankResult, CodeProof, Direction, FundingKind, Memo, Name, Phone, PinHash, Reason, Recipient,
        SealedAccountNumber, Share,
    };
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let phone = |raw: &str| Phone::parse(raw).unwrap();
    let code_hash = |p: &Phone| *blake3::hash(format!("{}:123456", p.as_str()).as_bytes()).as_bytes();
    let won = Amount::new;
    let w = Command::Wallet;
    let verify = |n: u8, raw: &str| {
        w(wallet::Command::StartVerification { id: [n; 16], phone: phone(raw), code_hash: code_hash(&phone(raw)) })
    };
    let sign_up = |n: u8, raw: &str| {
        w(wallet::Command::SignUp {
            phone: phone(raw),
            name: Name::new("사용자").unwrap(),
            pin_hash: PinHash::new(HASH).unwrap(),
            proof: CodeProof { verification_id: [n; 16], code_hash: code_hash(&phone(raw)) },
        })
    };
    let link = |user_id: u64| {
        let number = format!("11012345678{user_id}");
        w(wallet::Command::LinkBankAccount {
            user_id,
            bank_code: wallet::BankCode::new("088").unwrap(),
            account_number: SealedAccountNumber {
                ciphertext: BoundedVec::new(number.as_bytes().to_vec()).unwrap(),
                lookup: *blake3::hash(number.as_bytes()).as_bytes(),
                last4: wallet::Last4::new(&number[number.len() - 4..]).unwrap(),
            },
            holder_name: Name::new("x").unwrap(),
        })
    };
    let fund = |user_id: u64, kind: FundingKind, amount: u64| wallet::Command::StartFunding {
        user_id,
        bank_account_id: user_id,
        kind,
        amount: won(amount),
        pin_ok: Some(true),
    };
    let settle = |funding_id: u64, result: BankResult| w(wallet::Command::SettleFunding { funding_id, result });
    let send = |from_user: u64, to: Recipient, amount: u64| wallet::Command::Send {
        from_user,
        to,
        amount: won(amount),
        memo: Memo::new("점심").unwrap(),
        pin_ok: Some(true),
    };
    let to_phone = |raw: &str| Recipient::Phone(phone(raw));
    let keyed = |command: wallet::Command| {
        Command::Keyed(Box::new(Keyed {
            scope: KeyScope::Operator,
            key: IdempotencyKey::new("retry-1").unwrap(),
            request_hash: [7; 32],
            command: Inner::Wallet(command),
        }))
    };
    let mut t = START;
    let mut next = || {
        t += SECOND;
        t
    };
    let mut batches = vec![
        (next(), vec![verify(1, "010-1000-0001"), verify(2, "010-1000-0002"), verify(3, "010-1000-0003")]),
        (next(), vec![sign_up(1, "010-1000-0001"), sign_up(2, "010-1000-0002"), sign_up(3, "010-1000-0003")]),
        (
            next(),
            vec![
                w(wallet::Command::OpenSession { user_id: 1, token_hash: [1; 32], pin_ok: true, ttl_seconds: 3600 }),
                w(wallet::Command::OpenSession { user_id: 2, token_hash: [2; 32], pin_ok: false, ttl_seconds: 3600 }),
                link(1),
                link(2),
                link(3),
            ],
        ),
        (next(), vec![w(fund(1, FundingKind::TopUp, 300_000)), w(fund(2, FundingKind::TopUp, 200_000))]),
        (next(), vec![w(fund(3, FundingKind::TopUp, 1_013))]),
        (
            next(),
            vec![settle(1, BankResult::Approved), settle(2, BankResult::Approved), settle(3, BankResult::Declined)],
        ),
        (next(), vec![w(send(1, Recipient::User(2), 12_000)), w(send(2, to_phone("010-1000-0004"), 7_000))]),
        (next(), vec![w(send(1, to_phone("010-1000-0005"), 3_000)), w(send(3, Recipient::User(1), 1))]),
        (
            next(),
            vec![w(wallet::Command::CancelRemittance { user_id: 1, remittance_id: 3 }), verify(4, "010-1000-0004")],
        ),
        (next(), vec![sign_up(4, "010-1000-0004")]),
        (
            next(),
            vec![
                w(wallet::Command::RequestMoney {
                    requester: 1,
                    from: Recipient::User(2),
                    amount: won(5_000),
                    memo: Memo::new("커피").unwrap(),
                }),
                w(wallet::Command::RequestMoney {
                    requester: 2,
                    from: Recipient::User(1),
                    amount: won(9_000),
                    memo: Memo::new("").unwrap(),
                }),
                w(wallet::Command::SplitBill {
                    requester: 1,
                    total: won(30_001),
                    shares: BoundedVec::new(vec![
                        Share { payer: Recipient::User(2), amount: won(10_000) },
                        Share { payer: Recipient::User(4), amount: won(10_000) },
                    ])
                    .unwrap(),
                    memo: Memo::new("저녁").unwrap(),
                }),
            ],
        ),
        (
            next(),
            vec![
                w(wallet::Command::AnswerRequest { payer: 2, request_id: 1, pay: true, pin_ok: None }),
                w(wallet::Command::AnswerRequest { payer: 1, request_id: 2, pay: false, pin_ok: None }),
                w(wallet::Command::AnswerRequest { payer: 2, request_id: 3, pay: true, pin_ok: None }),
            ],
        ),
        (
            next(),
            vec![
                keyed(send(1, Recipient::User(3), 4_000)),
                keyed(send(1, Recipient::User(3), 4_000)),
                Command::AsSession(SessionCommand { token_hash: [1; 32], command: send(0, Recipient::User(2), 500) }),
            ],
        ),
        (
            next(),
            vec![
                w(fund(2, FundingKind::Withdrawal, 20_000)),
                w(wallet::Command::SetTier { user_id: 2, tier: Tier::Verified }),
            ],
        ),
        (
            next(),
            vec![
                w(wallet::Command::SetTierLimits {
                    tier: Tier::Basic,
                    limits: TierLimits { balance_cap: won(400_000), daily_outgoing: won(300_000) },
                }),
                w(wallet::Command::SetWithdrawalFee { fee: won(300) }),
                w(wallet::Command::UnlockPin { user_id: 2 }),
                w(wallet::Command::SetPinFreeAmount { user_id: 1, amount: won(10_000) }),
                w(wallet::Command::CloseSession { token_hash: [1; 32] }),
                w(wallet::Command::Adjust {
                    user_id: 3,
                    amount: won(50),
                    direction: Direction::Credit,
                    reason: Reason::new("goodwill").unwrap(),
                }),
            ],
        ),
        (next(), merchant_commands()),
        (next(), payment_money_commands()),
        (next(), instore_commands()),
        (next(), partner_commands(START)),
        (next(), import_commands()),
    ];
    // The bank never answered the withdrawal: the rail gives up and its money comes back.
    batches.push((t + 61 * SECOND, vec![settle(4, BankResult::Expired)]));
    batches.push((t + 62 * SECOND, vec![w(send(2, Recipient::User(1), 1_000))]));
    // A hold that nobody claims, and its return 48 hours later.
    batches.push((t + 63 * SECOND, vec![w(send(1, to_phone("010-1000-0009"), 2_000))]));
    let returned = t + 63 * SECOND + 48 * 3600 * SECOND + 1;
    batches.push((returned, vec![]));
    // More after it, so that snapshots (and the indexes rebuilt from them) see the return.
    for i in 1..=4 {
        batches.push((
            returned + i * SECOND,
            vec![w(send(1, Recipient::User(2), 100)), w(send(2, Recipient::User(1), 100))],
        ));
    }
    // A withdrawal with the 300 won fee, paid out: the fee moves to fee income.
    batches.push((returned + 5 * SECOND, vec![w(fund(1, FundingKind::Withdrawal, 1_000))]));
    batches.push((returned + 6 * SECOND, vec![settle(5, BankResult::Approved)]));
    // A consumer that handled every event so far.
    let consumer = kasa_core::outbox::ConsumerName::new("bank_rail").unwrap();
    batches.push((
        returned + 7 * SECOND,
        vec![Command::Outbox(kasa_core::outbox::Command::AdvanceCursor { consumer, to: 3 })],
    ));
    // Payment 5's 7 days to capture run out: the books void it, and a send comes after.
    let capture_expired = t + 8 * 24 * 3600 * SECOND;
    batches.push((capture_expired, vec![]));
    batches.push((capture_expired + SECOND, vec![w(send(2, Recipient::User(1), 100))]));
    // The days' payout runs made merchant 1's payout (its balance: 1,000 + 1,000 captured,
    // 50 in fees, 1,400 refunded, 35 of the fees returned): the bank pays it.
    let settle_payout = |payout_id: u64| {
        Command::Merchant(kasa_core::merchant::Command::SettlePayout { payout_id, result: BankResult::Approved })
    };
    batches.push((capture_expired + 2 * SECOND, vec![settle_payout(1), settle_payout(2)]));
    batches
}

/// What a state hash does not cover: the views read through derived indexes (each user's
/// history, and money requests per role), which recovery rebuilds rather than reads.
fn views(state: &kasa_core::State) -> String {
    use kasa_core::wallet::{HistoryCursor, RequestRole};
    let wallets = state.wallets();
    (1..=wallets.users_count() as u64)
        .map(|user| {
            let history = state.history(user, HistoryCursor::default(), 1000);
            let asked = wallets.list_requests(user, RequestRole::Payer, 0, 1000, |_| true).items;
            let made = wallets.list_requests(user, RequestRole::Requester, 0, 1000, |_| true).items;
            format!("{user}: {history:?} {asked:?} {made:?}\n")
        })
        .collect()
}

/// Every event in the writer's event log, after making the pending ones durable.
fn logged_events(writer: &mut Writer<FaultStorage>) -> Vec<kasa_core::event::Event> {
    writer.flush_events().expect("flush events");
    let log = writer.event_log();
    assert_eq!(log.last_seq(), writer.state().outbox().last_seq(), "the event log ends where the state's events do");
    let mut events = Vec::new();
    loop {
        let page = log.read(events.last().map_or(0, |e: &kasa_core::event::Event| e.seq), 1000).unwrap();
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    events
}

/// The state hash, the views and the events of a clean run of the first `count` batches.
type Expected = ([u8; 32], String, Vec<kasa_core::event::Event>);

fn clean_run(options: fn() -> WriterOptions, batches: &[(u64, Vec<Command>)], count: usize) -> Expected {
    let disk = FaultStorage::new(0);
    let (mut writer, _) = Writer::recover(disk.clone(), disk, options()).expect("empty disk recovers");
    for (now, commands) in &batches[..count] {
        writer.commit(commands.clone(), *now).expect("clean commit");
    }
    (writer.state().hash(), views(writer.state()), logged_events(&mut writer))
}

/// Runs the workload on `disk` until the first failure; returns how many batches were
/// acknowledged (their commit returned Ok).
fn run_until_failure(options: fn() -> WriterOptions, disk: &FaultStorage, batches: &[(u64, Vec<Command>)]) -> usize {
    let Ok((mut writer, _)) = Writer::recover(disk.clone(), disk.clone(), options()) else { return 0 };
    let mut acknowledged = 0;
    for (i, (now, commands)) in batches.iter().enumerate() {
        if writer.commit(commands.clone(), *now).is_err() {
            break;
        }
        acknowledged += 1;
        // Events are made durable every other batch, so that crashes also find some waiting.
        if i % 2 == 1 && writer.flush_events().is_err() {
            break;
        }
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
    let disk = FaultStorage::new(0);
    let (mut writer, _) = Writer::recover(disk.clone(), disk, options()).unwrap();
    for (now, commands) in &batches {
        writer.commit(commands.clone(), *now).unwrap();
    }
    let wallets = writer.state().wallets();
    assert_eq!(wallets.users_count(), 4);
    let balance = |user: u64| {
        let a = writer.state().books().account(kasa_core::wallet::wallet_account_id(user)).unwrap();
        (a.credits_posted - a.debits_posted, a.debits_pending)
    };
    // User 1: 300,000 - 12,000 (sent) + 5,000 (request paid) + 10,000 (split share paid)
    // - 4,000 (keyed, once) - 500 + 1,000 - 1,300 (withdrawal and fee) + 100; the 3,000 held
    // for a number was cancelled.
    assert_eq!(balance(1), (298_300, 0), "less a 1,000 won withdrawal and its 300 won fee");
    // User 2: 200,000 + 12,000 - 7,000 (held, then claimed by user 4) - 5,000 - 10,000 + 500
    // - 1,000 - 100; the 20,000 withdrawal expired unanswered and gave its money back.
    assert_eq!(balance(2), (189_400, 0));
    // User 3: 4,050 (the declined top-up brought nothing; an operator credited 50), less
    // payment 3 (1,000) and the 1,000 captured of payment 4, plus refunds of 400 and 1,000;
    // payment 5's reservation was voided when its 7 days ran out; then in store: 300 by the
    // static code (100 refunded), 500 by the one-sale code once, 200 by the payment code once;
    // abroad, 0.50 dollar for 708 won (1,400 less 1 %, rounded up) of which 0.40 came back at
    // its rate (566 won, rounded down), and a second that was canceled.
    assert_eq!(balance(3), (3_450 - 300 + 100 - 500 - 200 - 708 + 566, 0));
    let partners = writer.state().partners();
    let abroad = |id: u64| partners.overseas_payment(id).map(|p| (p.status.name(), p.krw_refunded.minor()));
    assert_eq!((abroad(1), abroad(2)), (Some(("succeeded", 566)), Some(("failed", 0))));
    let merchants = writer.state().merchants();
    let status = |id: u64| merchants.payment(id).map(|p| (p.status.name(), p.cancel_reason.map(|r| r.name())));
    assert_eq!(status(3), Some(("succeeded", None)));
    assert_eq!(status(5), Some(("canceled", Some("capture_expired"))));
    assert_eq!(status(6), Some(("canceled", Some("declined"))));
    let channel = |id: u64| merchants.payment(id).map(|p| (p.channel.name(), p.status.name()));
    // The second charge of the payment code made no payment: 10 is the partner's first.
    assert_eq!(
        [channel(7), channel(8), channel(9), channel(10), channel(11), channel(12), channel(13)],
        [
            Some(("static_qr", "succeeded")),
            Some(("dynamic_qr", "succeeded")),
            Some(("payment_code", "succeeded")),
            Some(("partner", "succeeded")),
            Some(("partner", "succeeded")),
            Some(("partner", "succeeded")),
            None
        ]
    );
    // On the merchant's side a partner's cancel is a refund of the whole payment.
    let refunded = |id: u64| merchants.payment(id).map(|p| p.refunded.minor());
    assert_eq!([refunded(10), refunded(11), refunded(12)], [Some(3_000), Some(20_000), Some(0)]);
    // The partner's window, at 188.595 won a yuan: 53.03 (quoted), 106.05 and 26.52 yuan
    // paid, with Kasa's fees of 1 % rounded down (53, 106, 26); 30 % of the first refunded at
    // its rate (15.90, and 15.9 of its fee taken back, rounded up: 16) and the second canceled
    // (106.05, fee 106 back).
    let window = writer
        .state()
        .partners()
        .window(1)
        .cloned()
        .map(|w| (w.status.name(), w.payments, w.refunds, w.paid, w.refunded, w.fees, w.net()));
    assert_eq!(
        window,
        Some(("settled", 3, 2, 5_303 + 10_605 + 2_652, 1_590 + 10_605, 53 + 106 + 26 - 16 - 106, 6_302))
    );
    assert_eq!(merchants.payment(3).map(|p| p.refunded.minor()), Some(400), "the refund past the capture was refused");
    let payout = |id: u64| merchants.payout(id).map(|p| (p.merchant_id, p.amount.minor(), p.status.name()));
    // Merchant 3's, of the partner's payments: 35,000 won less fees of 2.5 % (875), less
    // 23,000 refunded with their share of the fees (575).
    assert_eq!(payout(1), Some((3, 35_000 - 875 - 23_000 + 575, "paid")));
    // 585 online, and in store: 300 - 8 (fee) - 100 + 2 (the refund's share of the fee),
    // 500 - 13, 200 - 5.
    assert_eq!(payout(2), Some((1, 585 + 194 + 487 + 195, "paid")));
    let balance_1 = writer.state().books().account(kasa_core::chart::MERCHANT_BALANCE.id(1)).unwrap();
    assert_eq!(balance_1.credits_posted, balance_1.debits_posted, "paid out to the won");
    assert_eq!(balance(4), (7_000, 0), "the held remittance was claimed at sign-up");
    let fee_income = kasa_core::chart::FEE_INCOME.system_id(kasa_core::money::Currency::KRW);
    let fees = writer.state().books().account(fee_income).unwrap();
    // The withdrawal's 300 and 25 on each payment's 1,000 captured, 8, 13 and 5 in store, 875
    // on the partner's; refunds gave back 10, 25, 2 and 575.
    assert_eq!((fees.credits_posted, fees.debits_posted), (350 + 8 + 13 + 5 + 875, 35 + 2 + 575));
    assert_eq!(writer.state().outbox().cursor("bank_rail"), 3);
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
            let (mut writer, _) = Writer::recover(restarted.clone(), restarted.clone(), options())
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
            assert!(
                logged_events(&mut writer) == expected.2,
                "crash at call {crash_at} (seed {seed}): the event log differs from a clean run's events"
            );
            // The recovered engine accepts the rest of the workload.
            for (now, commands) in &batches[recovered..] {
                writer.commit(commands.clone(), *now).expect("commit after recovery");
            }
            let expected = hashes[batches.len()].get_or_insert_with(|| clean_run(options, batches, batches.len()));
            let state = (writer.state().hash(), views(writer.state()));
            assert!((state.0, state.1, logged_events(&mut writer)) == *expected, "the rest of the workload differs");
        }
    }
}

#[test]
fn a_full_disk_rejects_the_batch_cleanly_and_the_engine_carries_on() {
    let batches = workload();
    let disk = FaultStorage::new(9);
    let (mut writer, _) =
        Writer::recover(disk.clone(), disk.clone(), WriterOptions { snapshot_interval_bytes: 0, ..options() }).unwrap();
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
    let restarted = disk.restart();
    let (recovered, _) = Writer::recover(restarted.clone(), restarted, options()).unwrap();
    assert_eq!(recovered.last_seq(), 2);
    assert_eq!(recovered.state().hash(), hash);
}

#[test]
fn a_failed_sync_is_fatal_and_recovery_keeps_what_was_synced() {
    let batches = workload();
    let disk = FaultStorage::new(11);
    let (mut writer, _) =
        Writer::recover(disk.clone(), disk.clone(), WriterOptions { snapshot_interval_bytes: 0, ..options() }).unwrap();
    writer.commit(batches[0].1.clone(), batches[0].0).unwrap();
    let synced = writer.state().hash();
    disk.fail_next_sync();
    assert!(matches!(writer.commit(batches[1].1.clone(), batches[1].0), Err(CommitError::Fatal(_))));
    // Poisoned: nothing more is acknowledged, even if the disk would now work.
    assert!(matches!(writer.commit(batches[1].1.clone(), batches[1].0), Err(CommitError::Fatal(_))));
    let restarted = disk.restart();
    let (recovered, _) = Writer::recover(restarted.clone(), restarted, options()).unwrap();
    assert!(recovered.last_seq() <= 2);
    if recovered.last_seq() == 1 {
        assert_eq!(recovered.state().hash(), synced);
    }
    recovered.state().check_invariants().unwrap();
}

/// The names of the event log's segment files on `disk`.
fn event_segments(disk: &mut FaultStorage) -> Vec<String> {
    use kasa_journal::Storage;
    disk.list().unwrap().into_iter().filter(|name| name.starts_with("records-")).collect()
}

#[test]
fn a_lost_event_log_is_derived_again_from_the_journal_even_behind_a_snapshot() {
    use kasa_journal::Storage;
    let batches = wallet_workload();
    let mut disk = FaultStorage::new(21);
    let (mut writer, _) = Writer::recover(disk.clone(), disk.clone(), small_options()).unwrap();
    for (now, commands) in &batches {
        writer.commit(commands.clone(), *now).unwrap();
        if writer.snapshot_due() {
            writer.snapshot().unwrap().expect("a snapshot was written");
        }
    }
    writer.snapshot().unwrap();
    let expected = logged_events(&mut writer);
    assert!(expected.len() > 20, "the workload emits events: {}", expected.len());
    drop(writer);
    // The event log is gone (a lost directory, say): the snapshot alone cannot give its
    // events back, so recovery replays the journal from frame 1.
    for name in event_segments(&mut disk) {
        disk.remove(&name).unwrap();
    }
    disk.sync_dir().unwrap();
    let restarted = disk.restart();
    let (mut writer, report) = Writer::recover(restarted.clone(), restarted, small_options()).unwrap();
    assert_eq!(report.snapshot_seq, None, "the snapshot is skipped when the log is behind it");
    assert_eq!(report.events_derived, expected.len() as u64);
    assert!(logged_events(&mut writer) == expected);
}

#[test]
fn events_of_frames_the_journal_does_not_have_are_cut() {
    let batches = wallet_workload();
    // A longer history's event log, next to a journal that holds only part of it (a data
    // directory restored from two backups taken at different times, say).
    let longer = FaultStorage::new(22);
    let (mut writer, _) = Writer::recover(longer.clone(), longer.clone(), small_options()).unwrap();
    for (now, commands) in &batches {
        writer.commit(commands.clone(), *now).unwrap();
    }
    writer.flush_events().unwrap();
    drop(writer);
    let mut disk = FaultStorage::new(23);
    let (mut writer, _) = Writer::recover(disk.clone(), disk.clone(), small_options()).unwrap();
    for (now, commands) in &batches[..8] {
        writer.commit(commands.clone(), *now).unwrap();
    }
    let expected = logged_events(&mut writer);
    drop(writer);
    for name in event_segments(&mut disk) {
        use kasa_journal::Storage;
        disk.remove(&name).unwrap();
    }
    for name in event_segments(&mut longer.clone()) {
        disk.set_file_bytes(&name, longer.file_bytes(&name).unwrap());
    }
    kasa_journal::Storage::sync_dir(&mut disk).unwrap();
    let restarted = disk.restart();
    let (mut writer, report) = Writer::recover(restarted.clone(), restarted, small_options()).unwrap();
    assert!(report.events_cut.is_some(), "the cut is reported");
    assert!(logged_events(&mut writer) == expected);
    // And the log goes on from there.
    writer.commit(batches[8].1.clone(), batches[8].0).unwrap();
    assert_eq!(logged_events(&mut writer).len(), writer.state().outbox().last_seq() as usize);
}

#[test]
fn a_snapshot_is_written_while_batches_go_on() {
    let batches = workload();
    let disk = FaultStorage::new(24);
    let options = WriterOptions { snapshot_interval_bytes: 0, ..options() };
    let (mut writer, _) = Writer::recover(disk.clone(), disk.clone(), options.clone()).unwrap();
    for (now, commands) in &batches[..10] {
        writer.commit(commands.clone(), *now).unwrap();
    }
    let as_of = (writer.last_seq(), writer.state().hash());
    assert!(writer.start_snapshot().unwrap());
    assert!(!writer.start_snapshot().unwrap(), "one snapshot at a time");
    // Batches commit while the snapshot thread writes; the snapshot holds the state as of
    // its start, not theirs.
    for (now, commands) in &batches[10..] {
        writer.commit(commands.clone(), *now).unwrap();
    }
    let report = writer.poll_snapshot(true).expect("a snapshot in flight").unwrap();
    assert_eq!(report.seq, as_of.0);
    let hash = writer.state().hash();
    drop(writer);
    let restarted = disk.restart();
    let (recovered, report) = Writer::recover(restarted.clone(), restarted, options).unwrap();
    assert_eq!(report.snapshot_seq, Some(as_of.0));
    assert_eq!(report.frames_replayed, batches.len() as u64 - as_of.0);
    assert_eq!(recovered.state().hash(), hash);
    // The snapshot itself holds exactly the state at its seq.
    let journal_disk = recovered.into_storage().0;
    let reader =
        kasa_journal::open_snapshot(kasa_journal::Storage::try_clone(&journal_disk).unwrap(), as_of.0).unwrap();
    let len = reader.info().payload_bytes;
    assert_eq!(kasa_core::State::decode_snapshot_from(reader, len).unwrap().hash(), as_of.1);
}

/// Merchants: onboarding (one refused for its repeated number), a store, keys (one revoked,
/// one used), a suspension.
fn merchant_commands() -> Vec<Command> {
    use kasa_core::merchant::{self, parse_brn, DisplayName, KeyPrefix, Mcc, MerchantStatus, Scopes};
    use kasa_core::text::BoundedVec;
    use kasa_core::wallet::{BankCode, Last4, Name, SealedAccountNumber};
    let m = Command::Merchant;
    let onboard = |brn: &str| {
        m(merchant::Command::CreateMerchant {
            business_name: merchant::BusinessName::new("주식회사 카사").unwrap(),
            display_name: DisplayName::new("카사").unwrap(),
            brn: parse_brn(brn).unwrap(),
            mcc: Mcc::parse("5812").unwrap(),
            fee_bps: 250,
            settlement: Box::new(merchant::SettlementAccount {
                bank_code: BankCode::new("088").unwrap(),
                account_number: SealedAccountNumber {
                    ciphertext: BoundedVec::new(b"sealed".to_vec()).unwrap(),
                    lookup: [3; 32],
                    last4: Last4::new("0003").unwrap(),
                },
                holder_name: Name::new("카사").unwrap(),
            }),
        })
    };
    let key = |n: u8| {
        m(merchant::Command::CreateApiKey {
            merchant_id: 1,
            name: DisplayName::new("server").unwrap(),
            scopes: Scopes::named("payments:write").unwrap().with(Scopes::named("refunds:write").unwrap()),
            prefix: KeyPrefix::new(format!("kasa_sk_0000000{n}")).unwrap(),
            key_hash: [n; 32],
        })
    };
    vec![
        onboard("120-81-47521"),
        onboard("220-81-62517"),
        onboard("1208147521"),
        m(merchant::Command::CreateStore { merchant_id: 1, name: DisplayName::new("강남점").unwrap() }),
        key(1),
        key(2),
        m(merchant::Command::RevokeApiKey { merchant_id: 1, key_id: 1 }),
        m(merchant::Command::KeysUsed { uses: BoundedVec::new(vec![(2, START)]).unwrap() }),
        m(merchant::Command::SetMerchantStatus { merchant_id: 2, status: MerchantStatus::Suspended }),
        pay("order-1", 60),
        pay("order-2", 600),
        pay("order-2", 600),
        m(merchant::Command::AsKey {
            key_hash: [2; 32],
            command: merchant::KeyCommand::CancelPayment { payment_id: 2 },
        }),
        m(merchant::Command::AsKey {
            key_hash: [1; 32],
            command: merchant::KeyCommand::CancelPayment { payment_id: 1 },
        }),
    ]
}

/// A payment by merchant 1's live key; the first of the workload expires in a later batch.
fn pay(order: &str, expires_in_seconds: u32) -> Command {
    pay_with(order, expires_in_seconds, 4_500, kasa_core::merchant::CaptureMethod::Automatic)
}

fn pay_with(
    order: &str,
    expires_in_seconds: u32,
    amount: u64,
    capture_method: kasa_core::merchant::CaptureMethod,
) -> Command {
    use kasa_core::merchant::{self, ItemName, KeyCommand, OrderId};
    Command::Merchant(merchant::Command::AsKey {
        key_hash: [2; 32],
        command: KeyCommand::CreatePayment {
            store_id: Some(1),
            order_id: OrderId::new(order).unwrap(),
            item_name: ItemName::new("커피").unwrap(),
            amount: kasa_core::money::Amount::new(amount),
            capture_method,
            expires_in_seconds,
            return_url: None,
        },
    })
}

/// A payment's money: user 3 approves an automatic payment (3) and two manual ones (4, 5),
/// declines one (6); merchant 1 captures part of 4 and refunds part of 3 and 4 (with their
/// fees); 5 is never captured, and its 7 days run out in a later batch.
fn payment_money_commands() -> Vec<Command> {
    use kasa_core::merchant::{self, CaptureMethod, KeyCommand, RefundReason};
    let key = |command: KeyCommand| Command::Merchant(merchant::Command::AsKey { key_hash: [2; 32], command });
    let answer = |payment_id: u64, approve: bool| {
        Command::Merchant(merchant::Command::AnswerPayment {
            token_hash: [5; 32],
            payment_id,
            approve,
            pin_ok: Some(true),
        })
    };
    let refund = |payment_id: u64, amount: u64| {
        key(KeyCommand::RefundPayment {
            payment_id,
            amount: kasa_core::money::Amount::new(amount),
            reason: RefundReason::new("품절").unwrap(),
        })
    };
    vec![
        Command::Wallet(kasa_core::wallet::Command::OpenSession {
            user_id: 3,
            token_hash: [5; 32],
            pin_ok: true,
            ttl_seconds: 3600,
        }),
        pay_with("order-3", 600, 1_000, CaptureMethod::Automatic),
        pay_with("order-4", 600, 1_200, CaptureMethod::Manual),
        pay_with("order-5", 600, 800, CaptureMethod::Manual),
        pay_with("order-6", 600, 700, CaptureMethod::Automatic),
        answer(3, true),
        answer(4, true),
        answer(5, true),
        answer(6, false),
        key(KeyCommand::CapturePayment { payment_id: 4, amount: Some(kasa_core::money::Amount::new(1_000)) }),
        refund(3, 400),
        refund(4, 1_000),
        refund(3, 601),
    ]
}

/// A partner's import of three rows (a merchant created, merchant 1 merged, a row refused at
/// the door) in two chunks, the second sent twice (refused as out of order).
fn import_commands() -> Vec<Command> {
    use kasa_core::merchant::{
        self, BusinessName, City, CountryCode, DisplayName, ImportChunk, ImportEntry, ImportField, ImportRow, Mcc,
        PartnerId, PartnerName, QrPayload,
    };
    use kasa_core::text::BoundedVec;
    let row = |id: &str, brn: &str| {
        ImportEntry::Row(Box::new(ImportRow {
            partner_merchant_id: PartnerId::new(id).unwrap(),
            business_name: BusinessName::new("最佳运输").unwrap(),
            display_name: DisplayName::new("最佳运输").unwrap(),
            brn: merchant::parse_brn(brn).unwrap(),
            mcc: Mcc::parse("4111").unwrap(),
            store_id: PartnerId::new(id).unwrap(),
            store_name: DisplayName::new("명동점").unwrap(),
            qr_payload: QrPayload::new("000201010211").unwrap(),
            country: CountryCode::new("KR").unwrap(),
            city: City::new("서울").unwrap(),
        }))
    };
    let chunk = |first_row: u32, entries: Vec<ImportEntry>| {
        let chunk = ImportChunk { import_id: 1, first_row, entries: BoundedVec::new(entries).unwrap() };
        Command::Merchant(merchant::Command::ImportRows(Box::new(chunk)))
    };
    let start = merchant::Command::StartImport { partner: PartnerName::new("alipay").unwrap(), key: [9; 32], rows: 3 };
    vec![
        Command::Merchant(start),
        chunk(0, vec![row("AP-1", "304-87-00790"), row("AP-2", "120-81-47521")]),
        chunk(2, vec![ImportEntry::Refused(ImportField::Brn)]),
        chunk(2, vec![ImportEntry::Refused(ImportField::Brn)]),
    ]
}

/// In-store payments by user 3 at merchant 1's store: a static code (payment 7), a one-sale
/// code (8) paid once and scanned again, a payment code issued with the PIN and charged
/// twice (9, then refused), a refund of the first.
fn instore_commands() -> Vec<Command> {
    use kasa_core::merchant::{self, CodeCharge, KeyCommand, OrderId, RefundReason, Scan};
    use kasa_core::money::Amount;
    let key = |command: KeyCommand| Command::Merchant(merchant::Command::AsKey { key_hash: [2; 32], command });
    let scan =
        |scan: Scan| Command::Merchant(merchant::Command::PayByQr { token_hash: [5; 32], scan, pin_ok: Some(true) });
    let charge = |order: &str| {
        let charge = CodeCharge {
            user_id: 3,
            counter: 1,
            store_id: 1,
            order_id: OrderId::new(order).unwrap(),
            item_name: None,
            amount: Amount::new(200),
        };
        Command::Merchant(merchant::Command::ChargeCode { key_hash: [2; 32], charge: Box::new(charge) })
    };
    let name = || merchant::DisplayName::new("카사").unwrap();
    let one_sale = Scan::Dynamic { payment_id: 8, store_id: 1, amount: Some(Amount::new(500)), merchant_name: name() };
    vec![
        scan(Scan::Static { store_id: 1, amount: Amount::new(300), merchant_name: name() }),
        key(KeyCommand::CreateStoreQr {
            store_id: 1,
            order_id: OrderId::new("till-1").unwrap(),
            item_name: None,
            amount: Amount::new(500),
            expires_in_seconds: 300,
        }),
        scan(one_sale.clone()),
        scan(one_sale),
        Command::Wallet(kasa_core::wallet::Command::IssuePaymentCode { user_id: 3, pin_ok: Some(true) }),
        charge("pos-1"),
        charge("pos-2"),
        key(KeyCommand::RefundPayment {
            payment_id: 7,
            amount: Amount::new(100),
            reason: RefundReason::new("품절").unwrap(),
        }),
    ]
}

/// A partner's payments at a merchant of its own (merchant 3, store 2): the partner (settling
/// in CNY, fee 1 %) with its key, a CNY/KRW rate, a quote; payments with the quote (p-1), at
/// the rate in force (p-2, p-3) and p-1 again (the first answer, nothing applied); a refund of
/// part of p-1 at its rate, a cancel of p-2; the window closed and settled by the bank. The
/// merchant's payments are 10 to 12.
fn partner_commands(rates_from: u64) -> Vec<Command> {
    use kasa_core::fx::{Rate, Side};
    use kasa_core::merchant::{self, parse_brn, BusinessName, DisplayName, Mcc, SettlementAccount};
    use kasa_core::money::{Amount, Currency};
    use kasa_core::partner::{self, CustomerId, PartnerName, PayRequest, RequestId};
    use kasa_core::text::BoundedVec;
    use kasa_core::wallet::{BankCode, Last4, Name, SealedAccountNumber};
    let p = Command::Partner;
    let account = || {
        Box::new(SettlementAccount {
            bank_code: BankCode::new("088").unwrap(),
            account_number: SealedAccountNumber {
                ciphertext: BoundedVec::new(b"sealed".to_vec()).unwrap(),
                lookup: [9; 32],
                last4: Last4::new("0009").unwrap(),
            },
            holder_name: Name::new("Partner Ltd").unwrap(),
        })
    };
    let pay = |request: &str, won: u64, quote_id: Option<u64>| {
        p(partner::Command::Pay(Box::new(PayRequest {
            partner_id: 1,
            request_id: RequestId::new(request).unwrap(),
            customer_id: CustomerId::new("2088101122334455").unwrap(),
            store_id: 2,
            merchant_name: Some(DisplayName::new("서울상점").unwrap()),
            amount: Amount::new(won),
            item_name: None,
            quote_id,
        })))
    };
    let abroad = || {
        p(partner::Command::PayOverseas {
            token_hash: [7; 32],
            request: Box::new(partner::PayOverseasRequest {
                partner_id: 1,
                scheme_bit: kasa_core::qr::Scheme::UnionPay.bit(),
                code: partner::CodeText::new("00020101021229...").unwrap(),
                merchant_name: partner::ForeignText::new("BEST TRANSPORT").unwrap(),
                merchant_city: None,
                currency: Currency::USD,
                amount: Amount::new(50),
                quote_id: 2,
            }),
            pin_ok: Some(true),
        })
    };
    vec![
        Command::Merchant(merchant::Command::CreateMerchant {
            business_name: BusinessName::new("주식회사 서울상점").unwrap(),
            display_name: DisplayName::new("서울상점").unwrap(),
            brn: parse_brn("120-81-00088").unwrap(),
            mcc: Mcc::parse("5812").unwrap(),
            fee_bps: 250,
            settlement: account(),
        }),
        Command::Merchant(merchant::Command::CreateStore {
            merchant_id: 3, name: DisplayName::new("명동점").unwrap()
        }),
        p(partner::Command::CreatePartner {
            name: PartnerName::new("alipay_plus").unwrap(),
            home_currency: Currency::CNY,
            settlement_currency: Currency::CNY,
            fee_bps: 100,
            settlement: account(),
            endpoint: Some(kasa_core::merchant::WebhookUrl::new("https://partner.example/kasa").unwrap()),
            accepts: partner::Schemes::named(&["unionpay"]).unwrap(),
            policy: partner::CallPolicy::default(),
        }),
        p(partner::Command::AddKey { partner_id: 1, public_key: [9; 32] }),
        p(partner::Command::LoadRates {
            rates: BoundedVec::new(vec![Rate::parse("CNY/KRW", "190.50", 100, rates_from).unwrap()]).unwrap(),
        }),
        p(partner::Command::CreateQuote {
            partner_id: 1,
            sell: Currency::CNY,
            buy: Currency::KRW,
            side: Side::Buy(Amount::new(10_000)),
            expires_in_seconds: 600,
        }),
        pay("p-1", 10_000, Some(1)),
        pay("p-2", 20_000, None),
        pay("p-3", 5_000, None),
        pay("p-1", 10_000, Some(1)),
        p(partner::Command::Refund {
            partner_id: 1,
            refund_request_id: RequestId::new("rf-1").unwrap(),
            request_id: RequestId::new("p-1").unwrap(),
            amount: Amount::new(3_000),
        }),
        p(partner::Command::CancelPayment { partner_id: 1, request_id: RequestId::new("p-2").unwrap() }),
        p(partner::Command::CloseWindow { window_id: 1 }),
        p(partner::Command::SettleWindow { window_id: 1, succeeded: true }),
        // User 3 pays abroad twice (0.50 dollar each): the partner pays the first, which it
        // then refunds in part; the second gets no answer and is canceled.
        Command::Wallet(kasa_core::wallet::Command::OpenSession {
            user_id: 3,
            token_hash: [7; 32],
            pin_ok: true,
            ttl_seconds: 3600,
        }),
        p(partner::Command::LoadRates {
            rates: BoundedVec::new(vec![Rate::parse("USD/KRW", "1400", 100, rates_from).unwrap()]).unwrap(),
        }),
        p(partner::Command::CreateQuote {
            partner_id: 1,
            sell: Currency::KRW,
            buy: Currency::USD,
            side: Side::Buy(Amount::new(50)),
            expires_in_seconds: 600,
        }),
        abroad(),
        abroad(),
        p(partner::Command::ResolveOverseas { payment_id: 1, step: partner::Step::Requested }),
        p(partner::Command::ResolveOverseas { payment_id: 1, step: partner::Step::Succeeded }),
        p(partner::Command::ResolveOverseas { payment_id: 2, step: partner::Step::NoAnswer }),
        p(partner::Command::ResolveOverseas { payment_id: 2, step: partner::Step::CancelRequested }),
        p(partner::Command::ResolveOverseas { payment_id: 2, step: partner::Step::Canceled }),
        p(partner::Command::RefundOverseas(Box::new(partner::OverseasRefundRequest {
            partner_id: 1,
            refund_request_id: RequestId::new("orf-1").unwrap(),
            payment_id: 1,
            currency: Currency::USD,
            amount: Amount::new(40),
        }))),
    ]
}
