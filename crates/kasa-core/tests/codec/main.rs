//! Whatever the public constructors can build, the codec reads back: generators build every
//! command kind of every domain (and every wrapper a command can wear: a session, a key of each
//! scope) only through the constructors, from arbitrary Unicode at and over each text's bounds,
//! phone numbers as people type them, bounded lists and ledger records with arbitrary fields.
//! Any list of such commands round-trips through the journal payload, and each one encodes
//! within its [`Command::encoded_bytes_max`], which the sequencer trusts to keep a batch under
//! the frame limit. The constructors refuse exactly what their documented rules refuse.
//!
//! Random batches from the same generators (with small pools of ids, tokens and numbers, so
//! that some commands find their users and sessions) are applied to a state whose snapshot,
//! taken before every batch, restores to the same hash, keeps the invariants, and answers the
//! next batch with the same outcomes, events and hash.
//!
//! A kind table with an exhaustive `match` (no `_` arm) names every variant: a variant added
//! without a name does not compile, and one added with a name but without a generator fails
//! `every_command_kind_round_trips_through_the_codec`.

use kasa_core::codec;
use kasa_core::command::{PAYLOAD_MAGIC, SMALL_COMMAND_BYTES_MAX};
use kasa_core::idempotency::{IdempotencyKey, IdempotencyKeyRule, KeyScope};
use kasa_core::ledger::{Command as LedgerCommand, Outcome as LedgerOutcome, Record, Records, RECORD_BYTES};
use kasa_core::limits::{Tier, TierLimits};
use kasa_core::merchant::EventTypes;
use kasa_core::merchant::{
    parse_brn, Brn, BusinessName, CaptureMethod, CodeCharge, Command as MerchantCommand, DisplayName, ItemName,
    KeyCommand, KeyPrefix, Mcc, MerchantStatus, OrderId, RefundReason, ReturnUrl, Scan, Scopes, SealedSecret,
    SettlementAccount, WebhookCommand, WebhookUrl, APPROVAL_SECONDS_DEFAULT, FEE_BPS_MAX,
};
use kasa_core::money::{Amount, Currency};
use kasa_core::outbox::{Command as OutboxCommand, ConsumerName, ConsumerNameRule};
use kasa_core::partner::Command as PartnerCommand;
use kasa_core::text::{BoundedVec, Text, TextRule};
use kasa_core::wallet::command::{BankCodeRule, Last4Rule, MemoRule, NameRule, PinHashRule, ReasonRule};
use kasa_core::wallet::{
    BankCode, BankResult, CodeProof, Command as WalletCommand, Direction, FundingKind, Last4, Memo, Name,
    Outcome as WalletOutcome, Phone, PinHash, Reason, Recipient, SealedAccountNumber, Share, MEMO_CHARS_MAX,
    NAME_CHARS_MAX, SHARES_MAX,
};
use kasa_core::{
    decode_commands, encode_commands, Account, AccountFlags, Batch, Command, Inner, Keyed, Outcome, SessionCommand,
    State, Transfer, TransferFlags, ITEMS_PER_COMMAND_MAX,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;
use std::fmt::Debug;

/// The longest reason, in characters (documented on [`Reason`]; the crate has no constant).
const REASON_CHARS_MAX: usize = 200;
const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;
/// The first batch of the snapshot property: 2027-01-15, far from any edge of time.
const T0: u64 = 1_800_000_000 * SECOND;

mod generators;
use generators::*;

// ---------------------------------------------------------------------------------------------
// The codec.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_commands_round_trip_within_their_byte_bounds(commands in vec(any_command(&Fields::arbitrary()), 0..=12)) {
        let mut payload = Vec::new();
        encode_commands(&commands, &mut payload);
        prop_assert_eq!(&payload[..4], &PAYLOAD_MAGIC[..]);
        prop_assert_eq!(&payload[4..], &codec::encode(&commands)[..], "the magic, then the commands' encoding");
        prop_assert_eq!(decode_commands(&payload), Ok(commands.clone()));
        for command in &commands {
            let bytes = codec::encode(command).len();
            prop_assert!(
                bytes <= command.encoded_bytes_max(),
                "{} encodes to {bytes} bytes, over its bound of {}", kind(command), command.encoded_bytes_max()
            );
        }
    }
}

/// Every kind of command of every domain, bare, as a session's and under a key of each scope,
/// comes out of the generators (the arbitrary ones and the lively ones of the snapshot
/// property), and round-trips through the codec alone and in one payload.
#[test]
fn every_command_kind_round_trips_through_the_codec() {
    let expected = all_kinds();
    for list in [COMMAND_KINDS, INNER_KINDS, SCOPE_KINDS, LEDGER_KINDS, WALLET_KINDS, OUTBOX_KINDS] {
        assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), list.len(), "a kind name is used twice: {list:?}");
    }
    let mut runner = TestRunner::deterministic();
    for fields in [Fields::arbitrary(), Fields::lively()] {
        let strategies = command_kinds(&fields);
        let mut seen = BTreeSet::new();
        let mut payload_commands = Vec::new();
        for strategy in &strategies {
            let first = kind(&strategy.new_tree(&mut runner).expect("a command").current());
            for _ in 0..4 {
                let command = strategy.new_tree(&mut runner).expect("a command").current();
                assert_eq!(kind(&command), first, "one strategy, one kind");
                let bytes = codec::encode(&command);
                assert!(bytes.len() <= command.encoded_bytes_max(), "{first}: {} bytes", bytes.len());
                assert_eq!(codec::decode::<Command>(&bytes).as_ref(), Ok(&command), "{first}");
                payload_commands.push(command);
            }
            seen.insert(first);
        }
        assert_eq!(seen.len(), strategies.len(), "two strategies make the same kind");
        assert_eq!(seen, expected, "the generators and the kind tables disagree");
        let mut payload = Vec::new();
        encode_commands(&payload_commands, &mut payload);
        assert_eq!(decode_commands(&payload), Ok(payload_commands));
    }
}

/// Checks that `Text<R>` accepts `input` exactly when `documented` says its rule does, and
/// keeps it unchanged.
fn agrees<R: TextRule>(input: &str, documented: bool) -> Result<(), TestCaseError> {
    let built = Text::<R>::new(input);
    prop_assert_eq!(built.is_ok(), documented, "{} {:?}: {:?}", R::WHAT, input, built.as_ref().err());
    if let Ok(text) = built {
        prop_assert_eq!(text.as_str(), input);
    }
    Ok(())
}

fn chars_within(s: &str, max: usize) -> bool {
    s.chars().count() <= max
}

fn no_control(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The rules as the types document them, restated independently of the code.
    #[test]
    fn text_constructors_refuse_exactly_what_their_documented_rules_refuse(
        name in text(NAME_CHARS_MAX),
        memo in text(MEMO_CHARS_MAX),
        reason in text(REASON_CHARS_MAX),
        pin_hash in pin_hash_input(),
        bank_code in bank_code_input(),
        last4 in last4_input(),
        key in key_input(),
        consumer in consumer_input(),
    ) {
        // "1 to 50 characters, not blank, no control characters".
        agrees::<NameRule>(&name, !name.trim().is_empty() && chars_within(&name, NAME_CHARS_MAX) && no_control(&name))?;
        // "up to 100 characters, no control characters".
        agrees::<MemoRule>(&memo, chars_within(&memo, MEMO_CHARS_MAX) && no_control(&memo))?;
        // "1 to 200 characters, no control characters" (and, like a name, not blank).
        let documented = !reason.trim().is_empty() && chars_within(&reason, REASON_CHARS_MAX) && no_control(&reason);
        agrees::<ReasonRule>(&reason, documented)?;
        // A PHC string: `$` first, ASCII, at most 256 bytes.
        agrees::<PinHashRule>(&pin_hash, pin_hash.starts_with('$') && pin_hash.is_ascii() && pin_hash.len() <= 256)?;
        agrees::<BankCodeRule>(&bank_code, digits(&bank_code, 3))?;
        agrees::<Last4Rule>(&last4, digits(&last4, 4))?;
        // "1 to 255 printable ASCII characters".
        let documented = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
        agrees::<IdempotencyKeyRule>(&key, documented)?;
        // "1 to 32 characters of a-z, 0-9 and _".
        let documented = (1..=32).contains(&consumer.len())
            && consumer.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        agrees::<ConsumerNameRule>(&consumer, documented)?;
    }

    #[test]
    fn bounded_lists_refuse_exactly_what_is_over_their_bound(bytes in vec(any::<u8>(), 0..=66), shares in 0..=SHARES_MAX + 2) {
        prop_assert_eq!(BoundedVec::<u8, 64>::new(bytes.clone()).is_ok(), bytes.len() <= 64);
        let share = Share { payer: Recipient::User(1), amount: Amount::new(1) };
        prop_assert_eq!(BoundedVec::<Share, SHARES_MAX>::new(vec![share; shares]).is_ok(), shares <= SHARES_MAX);
    }

    /// Input of more than 32 bytes is refused whatever it says; what parses is stored as `+` and
    /// 8 to 15 digits, which parses back to itself and through the codec.
    #[test]
    fn phone_numbers_parse_to_a_stored_form_that_reads_back(input in phone_input(), padding in " {0,24}") {
        let input = format!("{input}{padding}");
        let parsed = Phone::parse(&input);
        if input.len() > 32 {
            prop_assert!(parsed.is_err(), "{} bytes of input accepted", input.len());
        }
        if let Ok(phone) = parsed {
            let digits = phone.as_str().strip_prefix('+').expect("a leading +");
            prop_assert!((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()), "{:?}", phone.as_str());
            prop_assert_eq!(Phone::from_e164(phone.as_str()), Ok(phone.clone()));
            prop_assert_eq!(codec::decode::<Phone>(&codec::encode(&phone)), Ok(phone));
        }
    }
}

/// The largest value of each wallet command kind: every text at its byte bound in four-byte
/// characters, every number at its maximum, 50 shares for the longest phone number.
fn largest_wallet_commands() -> Vec<WalletCommand> {
    use WalletCommand as W;
    let emoji = |n: usize| "😀".repeat(n);
    let name = Name::new(emoji(NAME_CHARS_MAX)).expect("50 characters");
    let memo = Memo::new(emoji(MEMO_CHARS_MAX)).expect("100 characters");
    let reason = Reason::new(emoji(REASON_CHARS_MAX)).expect("200 characters");
    let pin_hash = PinHash::new(format!("${}", "a".repeat(PinHashRule::MAX_BYTES - 1))).expect("256 bytes");
    assert_eq!(name.as_str().len(), NameRule::MAX_BYTES, "the longest name is at the byte bound");
    assert_eq!(memo.as_str().len(), MemoRule::MAX_BYTES, "the longest memo is at the byte bound");
    assert_eq!(reason.as_str().len(), ReasonRule::MAX_BYTES, "the longest reason is at the byte bound");
    let phone = Phone::parse("+123456789012345").expect("15 digits");
    let proof = CodeProof { verification_id: [0xFF; 16], code_hash: [0xFF; 32] };
    let (id, amount, token_hash) = (u64::MAX, Amount::MAX, [0xFF; 32]);
    let to = Recipient::Phone(phone.clone());
    let shares = BoundedVec::new(vec![Share { payer: to.clone(), amount }; SHARES_MAX]).expect("50 shares");
    let account_number = SealedAccountNumber {
        ciphertext: BoundedVec::new(vec![0xFF; 64]).expect("64 bytes"),
        lookup: [0xFF; 32],
        last4: Last4::new("9999").expect("4 digits"),
    };
    let limits = TierLimits { balance_cap: amount, daily_outgoing: amount };
    vec![
        W::StartVerification { id: [0xFF; 16], phone: phone.clone(), code_hash: [0xFF; 32] },
        W::SignUp { phone: phone.clone(), name: name.clone(), pin_hash: pin_hash.clone(), proof },
        W::OpenSession { user_id: id, token_hash, pin_ok: true, ttl_seconds: u32::MAX },
        W::CloseSession { token_hash },
        W::ResetPin { phone, proof, pin_hash },
        W::SetTier { user_id: id, tier: Tier::Verified },
        W::SetTierLimits { tier: Tier::Verified, limits },
        W::SetWithdrawalFee { fee: amount },
        W::UnlockPin { user_id: id },
        W::SetPinFreeAmount { user_id: id, amount },
        W::LinkBankAccount {
            user_id: id,
            bank_code: BankCode::new("999").expect("3 digits"),
            account_number,
            holder_name: name,
        },
        W::StartFunding { user_id: id, bank_account_id: id, kind: FundingKind::Withdrawal, amount, pin_ok: Some(true) },
        W::SettleFunding { funding_id: id, result: BankResult::Approved },
        W::Send { from_user: id, to: to.clone(), amount, memo: memo.clone(), pin_ok: Some(true) },
        W::CancelRemittance { user_id: id, remittance_id: id },
        W::RequestMoney { requester: id, from: to, amount, memo: memo.clone() },
        W::SplitBill { requester: id, total: amount, shares, memo },
        W::AnswerRequest { payer: id, request_id: id, pay: true, pin_ok: Some(true) },
        W::Adjust { user_id: id, amount, direction: Direction::Debit, reason },
        W::IssuePaymentCode { user_id: id, pin_ok: Some(true) },
    ]
}

/// The largest chunk of an import: 1,000 rows with every text at its byte bound in four-byte
/// characters (partner ids are ASCII) and the largest numbers.
fn largest_import_chunk() -> kasa_core::merchant::Command {
    use kasa_core::merchant::{
        BusinessName, City, CountryCode, DisplayName, ImportChunk, ImportEntry, ImportRow, Mcc, PartnerId, QrPayload,
        ROWS_PER_CHUNK_MAX,
    };
    let wide = |chars: usize| "🌏".repeat(chars);
    let row = ImportRow {
        partner_merchant_id: PartnerId::new("~".repeat(64)).unwrap(),
        business_name: BusinessName::new(wide(100)).unwrap(),
        display_name: DisplayName::new(wide(50)).unwrap(),
        brn: kasa_core::merchant::parse_brn("120-81-47521").unwrap(),
        mcc: Mcc::parse("9999").unwrap(),
        store_id: PartnerId::new("~".repeat(64)).unwrap(),
        store_name: DisplayName::new(wide(50)).unwrap(),
        qr_payload: QrPayload::new(wide(512)).unwrap(),
        country: CountryCode::new("KR").unwrap(),
        city: City::new(wide(50)).unwrap(),
    };
    let entries = vec![ImportEntry::Row(Box::new(row)); ROWS_PER_CHUNK_MAX];
    assert!(
        BoundedVec::<ImportEntry, ROWS_PER_CHUNK_MAX>::new([entries.clone(), entries[..1].to_vec()].concat()).is_err()
    );
    kasa_core::merchant::Command::ImportRows(Box::new(ImportChunk {
        import_id: u64::MAX,
        first_row: u32::MAX,
        entries: BoundedVec::new(entries).unwrap(),
    }))
}

/// The largest command of each kind stays within its byte bound alone, as a session's command
/// and under the longest key of the largest scope, and wallet commands stay under the 3 KiB
/// that [`SMALL_COMMAND_BYTES_MAX`] documents. A ledger command of exactly 8,190 records with
/// every field at its maximum round-trips within its bound; one record more is refused.
#[test]
fn the_largest_command_of_each_kind_stays_within_its_bound() {
    let largest = largest_wallet_commands();
    let kinds: BTreeSet<_> = largest.iter().map(wallet_kind).collect();
    assert_eq!(kinds, WALLET_KINDS.iter().copied().collect(), "one largest command per wallet kind");
    let key = IdempotencyKey::new("~".repeat(IdempotencyKeyRule::MAX_BYTES)).expect("255 characters");
    let keyed = |command: Inner| {
        Command::Keyed(Box::new(Keyed {
            scope: KeyScope::Session([0xFF; 32]),
            key: key.clone(),
            request_hash: [0xFF; 32],
            command,
        }))
    };
    let session = |command: WalletCommand| SessionCommand { token_hash: [0xFF; 32], command };
    let mut commands = Vec::new();
    for w in largest {
        let bytes = codec::encode(&Command::Wallet(w.clone())).len();
        assert!(bytes < 3 * 1024, "{}: {bytes} bytes", wallet_kind(&w));
        commands.push(Command::Wallet(w.clone()));
        commands.push(Command::AsSession(session(w.clone())));
        commands.push(keyed(Inner::Wallet(w.clone())));
        commands.push(keyed(Inner::AsSession(session(w))));
    }
    commands.push(Command::Outbox(OutboxCommand::AdvanceCursor {
        consumer: ConsumerName::new("z".repeat(ConsumerNameRule::MAX_BYTES)).expect("32 characters"),
        to: u64::MAX,
    }));
    // Every byte 0xFF: every field of the record at its maximum.
    let account = Account::decode(&[0xFF; RECORD_BYTES]);
    let transfer = Transfer::decode(&[0xFF; RECORD_BYTES]);
    assert_eq!((account.id, account.timestamp, transfer.amount), (u128::MAX, u64::MAX, u128::MAX));
    assert!(Records::new(vec![account; ITEMS_PER_COMMAND_MAX + 1]).is_err(), "8,191 accounts refused");
    assert!(Records::new(vec![transfer; ITEMS_PER_COMMAND_MAX + 1]).is_err(), "8,191 transfers refused");
    let accounts = LedgerCommand::CreateAccounts(Records::new(vec![account; ITEMS_PER_COMMAND_MAX]).expect("8,190"));
    let transfers = LedgerCommand::CreateTransfers(Records::new(vec![transfer; ITEMS_PER_COMMAND_MAX]).expect("8,190"));
    commands.push(Command::Ledger(accounts.clone()));
    commands.push(Command::Ledger(transfers));
    commands.push(keyed(Inner::Ledger(accounts)));
    commands.push(Command::Merchant(largest_import_chunk()));
    for command in &commands {
        let bytes = codec::encode(command).len();
        assert!(
            bytes <= command.encoded_bytes_max(),
            "{}: {bytes} bytes, over {}",
            kind(command),
            command.encoded_bytes_max()
        );
        let chunk = matches!(command, Command::Merchant(kasa_core::merchant::Command::ImportRows(_)));
        if !matches!(command, Command::Ledger(_) | Command::Keyed(_)) && !chunk {
            assert!(bytes <= SMALL_COMMAND_BYTES_MAX, "{}: {bytes} bytes", kind(command));
        }
    }
    let mut payload = Vec::new();
    encode_commands(&commands, &mut payload);
    assert_eq!(decode_commands(&payload), Ok(commands));
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

/// A first batch that must succeed whole, so that the random batches after it find a ledger
/// of four accounts, two users with sessions (tokens `[1; 32]`, `[2; 32]`), a bank account
/// and a settled top-up each, and two more verifications waiting (numbers 3 and 4).
fn prelude() -> Batch {
    use WalletCommand as W;
    let mut commands = vec![Command::create_accounts(
        (1..=4).map(|id| Account { id, ledger: 1, code: 1, ..Default::default() }).collect(),
    )];
    for v in 0..4u8 {
        let phone = lively_phone(usize::from(v));
        commands.push(Command::Wallet(W::StartVerification { id: [v; 16], phone, code_hash: [v; 32] }));
    }
    for user in 1..=2u8 {
        let v = user - 1;
        commands.push(Command::Wallet(W::SignUp {
            phone: lively_phone(usize::from(v)),
            name: Name::new("김민지").expect("a name"),
            pin_hash: PinHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").expect("a PHC string"),
            proof: CodeProof { verification_id: [v; 16], code_hash: [v; 32] },
        }));
    }
    for user in 1..=2u8 {
        let user_id = u64::from(user);
        commands.extend(
            [
                W::OpenSession { user_id, token_hash: [user; 32], pin_ok: true, ttl_seconds: 3600 },
                W::LinkBankAccount {
                    user_id,
                    bank_code: BankCode::new("088").expect("3 digits"),
                    account_number: lively_account_number(user),
                    holder_name: Name::new("김민지").expect("a name"),
                },
                W::StartFunding {
                    user_id,
                    bank_account_id: user_id,
                    kind: FundingKind::TopUp,
                    amount: Amount::new(100_000),
                    pin_ok: None,
                },
                W::SettleFunding { funding_id: user_id, result: BankResult::Approved },
            ]
            .map(Command::Wallet),
        );
    }
    Batch { timestamp: T0, commands }
}

fn succeeded(outcome: &Outcome) -> bool {
    use WalletOutcome as W;
    match outcome {
        Outcome::Ledger(LedgerOutcome::Accounts(results)) => results.iter().all(|r| r.result.is_success()),
        Outcome::Wallet(o) => matches!(
            o,
            W::VerificationStarted(Ok(_))
                | W::SignedUp(Ok(_))
                | W::SessionOpened(Ok(_))
                | W::BankAccountLinked(Ok(_))
                | W::FundingStarted(Ok(_))
                | W::FundingSettled(Some(_))
        ),
        _ => false,
    }
}

/// Gaps between batches: within a second, minutes, and past a day (sessions, codes, holds,
/// pending transfers and idempotency keys expire).
fn gap() -> BoxedStrategy<u64> {
    prop_oneof![4 => 1..=1_000u64, 3 => SECOND..=120 * SECOND, 1 => HOUR..=30 * HOUR].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_restored_snapshot_has_the_same_hash_and_goes_on_the_same(
        batches in vec((gap(), vec(any_command(&Fields::lively()), 0..=6)), 1..=10),
    ) {
        let mut state = State::default();
        state.audit_limits(true);
        let outcomes = state.apply(&prelude()).expect("the prelude applies");
        prop_assert!(outcomes.iter().all(succeeded), "the prelude failed: {:?}", outcomes);
        prop_assert_eq!(state.wallets().users_count(), 2);
        for (gap, commands) in batches {
            let snapshot = state.encode_snapshot();
            let mut restored = State::decode_snapshot(&snapshot).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(restored.hash(), state.hash());
            prop_assert_eq!(restored.check_invariants(), Ok(()));
            restored.audit_limits(true);
            let batch = Batch { timestamp: state.last_timestamp() + gap, commands };
            let original = state.apply(&batch).expect("a batch after the last timestamp applies");
            let again = restored.apply(&batch).expect("a batch after the last timestamp applies");
            prop_assert_eq!(&again, &original);
            prop_assert_eq!(restored.take_events(), state.take_events());
            prop_assert_eq!(restored.hash(), state.hash());
            prop_assert_eq!(restored.check_invariants(), Ok(()));
            prop_assert_eq!(restored.take_limit_violation(), None);
            prop_assert_eq!(state.take_limit_violation(), None);
            // Go on from the restored state: the next snapshot is of a state that was restored.
            state = restored;
        }
    }
}
