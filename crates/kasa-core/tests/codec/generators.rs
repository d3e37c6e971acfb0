//! Generators for the codec tests: every command kind, built only through the public
//! constructors, and the kind table that names every variant.

use super::*;

// ---------------------------------------------------------------------------------------------
// Kinds: one name per variant, from exhaustive matches.

/// Defines `$name_of`, an exhaustive `match` from a variant of `$ty` to its kind name (no `_`
/// arm: a new variant does not compile until it is named here), and `$all`, every name, which
/// the coverage test holds the generators against.
macro_rules! kinds {
    ($name_of:ident, $all:ident, $ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        pub fn $name_of(value: &$ty) -> &'static str {
            match value {
                $($ty::$variant { .. } => $name,)+
            }
        }
        pub const $all: &[&str] = &[$($name),+];
    };
}

kinds!(command_kind, COMMAND_KINDS, Command {
    Ledger => "ledger", Wallet => "wallet", AsSession => "as_session", Keyed => "keyed", Outbox => "outbox",
    Merchant => "merchant", Partner => "partner",
});
kinds!(inner_kind, INNER_KINDS, Inner {
    Ledger => "ledger", Wallet => "wallet", AsSession => "as_session", Merchant => "merchant", Partner => "partner",
});
kinds!(scope_kind, SCOPE_KINDS, KeyScope {
    Operator => "operator", Session => "session", Anonymous => "anonymous", ApiKey => "api_key",
});
kinds!(ledger_kind, LEDGER_KINDS, LedgerCommand {
    CreateAccounts => "create_accounts", CreateTransfers => "create_transfers",
});
kinds!(outbox_kind, OUTBOX_KINDS, OutboxCommand { AdvanceCursor => "advance_cursor" });
kinds!(wallet_kind, WALLET_KINDS, WalletCommand {
    StartVerification => "start_verification",
    SignUp => "sign_up",
    OpenSession => "open_session",
    CloseSession => "close_session",
    ResetPin => "reset_pin",
    SetTier => "set_tier",
    SetTierLimits => "set_tier_limits",
    SetWithdrawalFee => "set_withdrawal_fee",
    UnlockPin => "unlock_pin",
    SetPinFreeAmount => "set_pin_free_amount",
    LinkBankAccount => "link_bank_account",
    StartFunding => "start_funding",
    SettleFunding => "settle_funding",
    Send => "send",
    CancelRemittance => "cancel_remittance",
    RequestMoney => "request_money",
    SplitBill => "split_bill",
    AnswerRequest => "answer_request",
    Adjust => "adjust",
    IssuePaymentCode => "issue_payment_code",
});

kinds!(merchant_kind, MERCHANT_KINDS, MerchantCommand {
    CreateMerchant => "create_merchant",
    SetMerchantStatus => "set_merchant_status",
    CreateStore => "create_store",
    CreateApiKey => "create_api_key",
    RevokeApiKey => "revoke_api_key",
    KeysUsed => "keys_used",
    AsKey => "as_key",
    AnswerPayment => "answer_payment",
    SettlePayout => "settle_payout",
    RecordDeliveries => "record_deliveries",
    PayByQr => "pay_by_qr",
    ChargeCode => "charge_code",
    StartImport => "start_import",
    ImportRows => "import_rows",
});

kinds!(partner_kind, PARTNER_KINDS, PartnerCommand {
    CreatePartner => "create_partner",
    SetPartnerStatus => "set_partner_status",
    AddKey => "add_key",
    RevokeKey => "revoke_key",
    LoadRates => "load_rates",
    CreateQuote => "create_quote",
    Pay => "pay",
    CancelPayment => "cancel_payment",
    Refund => "refund",
    CloseWindow => "close_window",
    SettleWindow => "settle_window",
    PayOverseas => "pay_overseas",
    ResolveOverseas => "resolve_overseas",
    RefundOverseas => "refund_overseas",
    RecordNotified => "record_notified",
});

/// The full kind of a command, wrappers first: `keyed.session.as_session.send`.
pub fn kind(command: &Command) -> String {
    let rest = match command {
        Command::Ledger(c) => ledger_kind(c).to_string(),
        Command::Wallet(c) => wallet_kind(c).to_string(),
        Command::AsSession(s) => wallet_kind(&s.command).to_string(),
        Command::Keyed(k) => format!("{}.{}", scope_kind(&k.scope), inner_path(&k.command)),
        Command::Outbox(c) => outbox_kind(c).to_string(),
        Command::Merchant(c) => merchant_kind(c).to_string(),
        Command::Partner(c) => partner_kind(c).to_string(),
    };
    format!("{}.{rest}", command_kind(command))
}

pub fn inner_path(inner: &Inner) -> String {
    let rest = match inner {
        Inner::Ledger(c) => ledger_kind(c),
        Inner::Wallet(c) => wallet_kind(c),
        Inner::AsSession(s) => wallet_kind(&s.command),
        Inner::Merchant(c) => merchant_kind(c),
        Inner::Partner(c) => partner_kind(c),
    };
    format!("{}.{rest}", inner_kind(inner))
}

/// Every full kind the tables allow: each domain's kinds bare, as a session's and under a key
/// of each scope.
pub fn all_kinds() -> BTreeSet<String> {
    fn held_by(wrapper: &str) -> &'static [&'static str] {
        match wrapper {
            "ledger" => LEDGER_KINDS,
            "wallet" | "as_session" => WALLET_KINDS,
            "outbox" => OUTBOX_KINDS,
            "merchant" => MERCHANT_KINDS,
            "partner" => PARTNER_KINDS,
            other => panic!("the test does not know what a `{other}` command holds: extend `all_kinds`"),
        }
    }
    let mut all = BTreeSet::new();
    for top in COMMAND_KINDS {
        if *top == "keyed" {
            for scope in SCOPE_KINDS {
                for inner in INNER_KINDS {
                    all.extend(held_by(inner).iter().map(|k| format!("keyed.{scope}.{inner}.{k}")));
                }
            }
        } else {
            all.extend(held_by(top).iter().map(|k| format!("{top}.{k}")));
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Inputs as they reach the constructors.

/// Characters that may appear in text shown to people: ASCII, Latin-1, Hangul (3 bytes in
/// UTF-8), emoji (4 bytes), blank ones (space, U+3000) and anything else Unicode has that is
/// not a control character.
pub fn shown_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        3 => proptest::char::range('가', '힣'),
        2 => proptest::char::range('\u{1F300}', '\u{1FAFF}'),
        1 => proptest::char::range('\u{A0}', '\u{FF}'),
        1 => any::<char>().prop_map(|c| if c.is_control() { '\u{FFFD}' } else { c }),
        1 => proptest::sample::select(vec![' ', '\u{3000}', '\u{200B}']),
    ]
}

/// Any character at all, control characters (tab, newline, NUL, DEL, NEL) one time in four.
pub fn any_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![3 => shown_char(), 1 => proptest::sample::select(vec!['\t', '\n', '\0', '\u{7F}', '\u{85}'])]
}

/// Strings of up to `max_chars + 2` characters (mostly without control characters, or few
/// would be valid), and strings of exactly `max_chars` and `max_chars + 1` four-byte
/// characters: at and just over a bound in characters and in bytes.
pub fn text(max_chars: usize) -> BoxedStrategy<String> {
    let wide = proptest::char::range('\u{1F300}', '\u{1FAFF}');
    prop_oneof![
        4 => vec(shown_char(), 0..=max_chars + 2).prop_map(String::from_iter),
        1 => vec(any_char(), 0..=max_chars + 2).prop_map(String::from_iter),
        1 => vec(wide, max_chars..=max_chars + 1).prop_map(String::from_iter),
    ]
    .boxed()
}

pub fn pin_hash_input() -> BoxedStrategy<String> {
    prop_oneof![
        "\\$argon2id\\$v=19\\$m=[0-9]{1,6},t=[0-9],p=[0-9]\\$[A-Za-z0-9+/]{0,64}\\$[A-Za-z0-9+/]{0,64}",
        "\\$[\\x00-\\x7F]{0,257}",
        text(8),
    ]
    .boxed()
}

pub fn bank_code_input() -> BoxedStrategy<String> {
    prop_oneof![3 => "[0-9]{3}", 1 => "[0-9]{2,4}", 1 => text(4)].boxed()
}

pub fn last4_input() -> BoxedStrategy<String> {
    prop_oneof![3 => "[0-9]{4}", 1 => "[0-9]{3,5}", 1 => text(5)].boxed()
}

pub fn key_input() -> BoxedStrategy<String> {
    prop_oneof!["[!-~]{1,255}", "[!-~]{254,256}", "[ -~]{0,4}", text(8)].boxed()
}

pub fn consumer_input() -> BoxedStrategy<String> {
    prop_oneof!["[a-z0-9_]{1,32}", "[a-z0-9_]{31,33}", text(8)].boxed()
}

/// Phone numbers as people type them: Korean mobiles with separators, `+82` with and without
/// the trunk 0, other countries' numbers, near misses, and arbitrary text.
pub fn phone_input() -> BoxedStrategy<String> {
    prop_oneof![
        3 => ("01[016789]", "[0-9]{3,4}", "[0-9]{4}", "[ .-]?").prop_map(|(a, b, c, sep)| format!("{a}{sep}{b}{sep}{c}")),
        2 => ("\\+82 ?0?1[016789]", "[0-9]{6,9}").prop_map(|(a, b)| format!("{a}{b}")),
        3 => "\\+[0-9 ()-]{6,20}",
        1 => "[0-9+ ().-]{0,40}",
        1 => text(20),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Values, built only through the public constructors (refused inputs are dropped).

pub fn name() -> BoxedStrategy<Name> {
    text(NAME_CHARS_MAX).prop_filter_map("a valid name", |s| Name::new(s).ok()).boxed()
}

pub fn memo() -> BoxedStrategy<Memo> {
    text(MEMO_CHARS_MAX).prop_filter_map("a valid memo", |s| Memo::new(s).ok()).boxed()
}

pub fn reason() -> BoxedStrategy<Reason> {
    text(REASON_CHARS_MAX).prop_filter_map("a valid reason", |s| Reason::new(s).ok()).boxed()
}

pub fn pin_hash() -> BoxedStrategy<PinHash> {
    pin_hash_input().prop_filter_map("a PHC string", |s| PinHash::new(s).ok()).boxed()
}

pub fn bank_code() -> BoxedStrategy<BankCode> {
    bank_code_input().prop_filter_map("a bank code", |s| BankCode::new(s).ok()).boxed()
}

pub fn last4() -> BoxedStrategy<Last4> {
    last4_input().prop_filter_map("four digits", |s| Last4::new(s).ok()).boxed()
}

pub fn key() -> BoxedStrategy<IdempotencyKey> {
    key_input().prop_filter_map("an idempotency key", |s| IdempotencyKey::new(s).ok()).boxed()
}

pub fn consumer() -> BoxedStrategy<ConsumerName> {
    consumer_input().prop_filter_map("a consumer name", |s| ConsumerName::new(s).ok()).boxed()
}

/// Mostly numbers valid by construction (a split bill may hold 50 of them, and every refused
/// input counts against proptest's budget of rejections), and sometimes any phone input.
pub fn phone() -> BoxedStrategy<Phone> {
    prop_oneof![
        2 => ("(010|\\+82 ?10|\\+82 ?010)", "[ -]?[0-9]{4}", "[ -]?[0-9]{4}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        1 => ("01[16789]", "[0-9]{7,8}").prop_map(|(a, b)| format!("{a}{b}")),
        2 => "\\+[1-79][0-9]{7,14}",
        1 => phone_input(),
    ]
    .prop_filter_map("a phone number", |s| Phone::parse(&s).ok())
    .boxed()
}

pub fn sealed() -> BoxedStrategy<SealedAccountNumber> {
    let ciphertext = vec(any::<u8>(), 0..=65).prop_filter_map("at most 64 bytes", |b| BoundedVec::new(b).ok());
    (ciphertext, any::<[u8; 32]>(), last4())
        .prop_map(|(ciphertext, lookup, last4)| SealedAccountNumber { ciphertext, lookup, last4 })
        .boxed()
}

/// Any `u64`, with the edges and small values more often than chance gives them.
pub fn u64_any() -> BoxedStrategy<u64> {
    prop_oneof![any::<u64>(), Just(0), Just(u64::MAX), 0..300u64].boxed()
}

pub fn u128_any() -> BoxedStrategy<u128> {
    prop_oneof![any::<u128>(), Just(0), Just(u128::MAX), 0..300u128].boxed()
}

pub fn any_account() -> BoxedStrategy<Account> {
    (vec(u128_any(), 6), u64_any(), u64_any(), any::<[u32; 3]>(), any::<[u16; 2]>())
        .prop_map(|(w, user_data_64, timestamp, [user_data_32, reserved, ledger], [code, flags])| Account {
            id: w[0],
            debits_pending: w[1],
            debits_posted: w[2],
            credits_pending: w[3],
            credits_posted: w[4],
            user_data_128: w[5],
            user_data_64,
            user_data_32,
            reserved,
            ledger,
            code,
            flags: AccountFlags(flags),
            timestamp,
        })
        .boxed()
}

pub fn any_transfer() -> BoxedStrategy<Transfer> {
    (vec(u128_any(), 6), u64_any(), u64_any(), any::<[u32; 3]>(), any::<[u16; 2]>())
        .prop_map(|(w, user_data_64, timestamp, [user_data_32, timeout, ledger], [code, flags])| Transfer {
            id: w[0],
            debit_account_id: w[1],
            credit_account_id: w[2],
            amount: w[3],
            pending_id: w[4],
            user_data_128: w[5],
            user_data_64,
            user_data_32,
            timeout,
            ledger,
            code,
            flags: TransferFlags(flags),
            timestamp,
        })
        .boxed()
}

/// Mostly a few records, sometimes up to `len_max`.
pub fn records<T: Record + Clone + Debug + 'static>(
    item: BoxedStrategy<T>,
    len_max: usize,
) -> BoxedStrategy<Records<T>> {
    prop_oneof![4 => vec(item.clone(), 0..=len_max.min(8)), 1 => vec(item, 0..=len_max)]
        .prop_map(|items| Records::new(items).expect("at most a few hundred records"))
        .boxed()
}

pub fn select<T: Clone + Debug + 'static>(values: &[T]) -> BoxedStrategy<T> {
    proptest::sample::select(values.to_vec()).boxed()
}

/// Where the fields of generated commands come from: anything the types allow (for the
/// codec), or small pools of ids, tokens and numbers that refer to each other (for the
/// state, so that some commands find their users, sessions, fundings and verifications).
pub struct Fields {
    id: BoxedStrategy<u64>,
    amount: BoxedStrategy<Amount>,
    token: BoxedStrategy<[u8; 32]>,
    phone: BoxedStrategy<Phone>,
    /// A verification as started: its id, phone and code hash.
    verification: BoxedStrategy<([u8; 16], Phone, [u8; 32])>,
    /// A phone and a proof of it.
    proof: BoxedStrategy<(Phone, CodeProof)>,
    account_number: BoxedStrategy<SealedAccountNumber>,
    ttl_seconds: BoxedStrategy<u32>,
    shares_max: usize,
    account: BoxedStrategy<Account>,
    transfer: BoxedStrategy<Transfer>,
    records_max: usize,
    key: BoxedStrategy<IdempotencyKey>,
    anonymous: BoxedStrategy<[u8; 16]>,
    request_hash: BoxedStrategy<[u8; 32]>,
    consumer: BoxedStrategy<ConsumerName>,
    cursor: BoxedStrategy<u64>,
}

/// Numbers of the lively pools: the first four sign up in the prelude or later, the others
/// receive held money.
pub const LIVELY_PHONES: [&str; 6] =
    ["010-1000-0001", "010-1000-0002", "010-1000-0003", "010-1000-0004", "+1 415 555 0100", "011-234-5678"];

pub fn lively_phone(i: usize) -> Phone {
    Phone::parse(LIVELY_PHONES[i]).expect("a valid number")
}

/// The bank account number `n` of the lively pool, sealed as the HTTP layer would (the test
/// does not encrypt).
pub fn lively_account_number(n: u8) -> SealedAccountNumber {
    SealedAccountNumber {
        ciphertext: BoundedVec::new(format!("{n:010}").into_bytes()).expect("10 bytes"),
        lookup: [n; 32],
        last4: Last4::new(format!("{n:04}")).expect("4 digits"),
    }
}

impl Fields {
    pub fn arbitrary() -> Fields {
        Fields {
            id: u64_any(),
            amount: u64_any().prop_map(Amount::new).boxed(),
            token: any::<[u8; 32]>().boxed(),
            phone: phone(),
            verification: (any::<[u8; 16]>(), phone(), any::<[u8; 32]>()).boxed(),
            proof: (phone(), any::<[u8; 16]>(), any::<[u8; 32]>())
                .prop_map(|(phone, verification_id, code_hash)| (phone, CodeProof { verification_id, code_hash }))
                .boxed(),
            account_number: sealed(),
            ttl_seconds: any::<u32>().boxed(),
            shares_max: SHARES_MAX,
            account: any_account(),
            transfer: any_transfer(),
            records_max: 300,
            key: key(),
            anonymous: any::<[u8; 16]>().boxed(),
            request_hash: any::<[u8; 32]>().boxed(),
            consumer: consumer(),
            cursor: u64_any(),
        }
    }

    /// Verification `v` (0 to 7) is for number `v % 4` with code hash `[v; 32]`; a proof gives
    /// the right code four times in five.
    pub fn lively() -> Fields {
        let af = [
            0,
            AccountFlags::HISTORY,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
        ];
        let tf =
            [0, 0, TransferFlags::PENDING, TransferFlags::POST_PENDING_TRANSFER, TransferFlags::VOID_PENDING_TRANSFER];
        Fields {
            id: prop_oneof![6 => 1..=3u64, 1 => Just(0u64), 1 => 4..=6u64].boxed(),
            amount: prop_oneof![4 => 0..=20_000u64, 1 => 20_000..=600_000u64].prop_map(Amount::new).boxed(),
            token: (1..=4u8).prop_map(|t| [t; 32]).boxed(),
            phone: (0..LIVELY_PHONES.len()).prop_map(lively_phone).boxed(),
            verification: (0..8u8).prop_map(|v| ([v; 16], lively_phone(usize::from(v % 4)), [v; 32])).boxed(),
            proof: (0..8u8, proptest::bool::weighted(0.8))
                .prop_map(|(v, right)| {
                    let code_hash = if right { [v; 32] } else { [!v; 32] };
                    (lively_phone(usize::from(v % 4)), CodeProof { verification_id: [v; 16], code_hash })
                })
                .boxed(),
            account_number: (0..4u8).prop_map(lively_account_number).boxed(),
            ttl_seconds: prop_oneof![1..=60u32, 3600..=7200u32].boxed(),
            shares_max: 3,
            account: (1..=6u128, select(&af), prop_oneof![4 => Just(1u32), 1 => Just(2u32)])
                .prop_map(|(id, flags, ledger)| Account {
                    id,
                    ledger,
                    code: 1,
                    flags: AccountFlags(flags),
                    ..Default::default()
                })
                .boxed(),
            transfer: (1..=12u128, 1..=6u128, 1..=6u128, 0..=1_000u128, select(&tf), 1..=12u128, 0..=3u32)
                .prop_map(|(id, debit_account_id, credit_account_id, amount, flags, pending_id, timeout)| {
                    // The shape each kind needs: only a pending transfer has a timeout, only a
                    // post or a void names the pending transfer it resolves.
                    let resolves =
                        flags & (TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER);
                    Transfer {
                        id,
                        debit_account_id,
                        credit_account_id,
                        amount,
                        pending_id: if resolves != 0 { pending_id } else { 0 },
                        timeout: if flags == TransferFlags::PENDING { timeout } else { 0 },
                        ledger: 1,
                        code: 1,
                        flags: TransferFlags(flags),
                        ..Default::default()
                    }
                })
                .boxed(),
            records_max: 4,
            key: select(&["k1", "k2", "k3"]).prop_map(|k| IdempotencyKey::new(k).expect("a key")).boxed(),
            anonymous: (0..2u8).prop_map(|n| [n; 16]).boxed(),
            request_hash: (0..2u8).prop_map(|n| [n; 32]).boxed(),
            consumer: select(&["bank_rail", "webhooks"]).prop_map(|c| ConsumerName::new(c).expect("a name")).boxed(),
            cursor: (0..=40u64).boxed(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands: one strategy per kind.

pub fn recipient(f: &Fields) -> BoxedStrategy<Recipient> {
    prop_oneof![f.id.clone().prop_map(Recipient::User), f.phone.clone().prop_map(Recipient::Phone)].boxed()
}

pub fn shares(f: &Fields) -> BoxedStrategy<BoundedVec<Share, SHARES_MAX>> {
    let share = (recipient(f), f.amount.clone()).prop_map(|(payer, amount)| Share { payer, amount });
    vec(share, 0..=f.shares_max + 1).prop_filter_map("at most 50 shares", |s| BoundedVec::new(s).ok()).boxed()
}

/// One strategy per wallet command kind, in the order of [`WALLET_KINDS`].
pub fn wallet_commands(f: &Fields) -> Vec<BoxedStrategy<WalletCommand>> {
    use WalletCommand as W;
    let pin_ok = || any::<Option<bool>>();
    let tier = || select(&Tier::ALL);
    vec![
        f.verification.clone().prop_map(|(id, phone, code_hash)| W::StartVerification { id, phone, code_hash }).boxed(),
        (f.proof.clone(), name(), pin_hash())
            .prop_map(|((phone, proof), name, pin_hash)| W::SignUp { phone, name, pin_hash, proof })
            .boxed(),
        (f.id.clone(), f.token.clone(), proptest::bool::weighted(0.9), f.ttl_seconds.clone())
            .prop_map(|(user_id, token_hash, pin_ok, ttl_seconds)| W::OpenSession {
                user_id,
                token_hash,
                pin_ok,
                ttl_seconds,
            })
            .boxed(),
        f.token.clone().prop_map(|token_hash| W::CloseSession { token_hash }).boxed(),
        (f.proof.clone(), pin_hash())
            .prop_map(|((phone, proof), pin_hash)| W::ResetPin { phone, proof, pin_hash })
            .boxed(),
        (f.id.clone(), tier()).prop_map(|(user_id, tier)| W::SetTier { user_id, tier }).boxed(),
        (tier(), f.amount.clone(), f.amount.clone())
            .prop_map(|(tier, balance_cap, daily_outgoing)| W::SetTierLimits {
                tier,
                limits: TierLimits { balance_cap, daily_outgoing },
            })
            .boxed(),
        f.amount.clone().prop_map(|fee| W::SetWithdrawalFee { fee }).boxed(),
        f.id.clone().prop_map(|user_id| W::UnlockPin { user_id }).boxed(),
        (f.id.clone(), f.amount.clone()).prop_map(|(user_id, amount)| W::SetPinFreeAmount { user_id, amount }).boxed(),
        (f.id.clone(), bank_code(), f.account_number.clone(), name())
            .prop_map(|(user_id, bank_code, account_number, holder_name)| W::LinkBankAccount {
                user_id,
                bank_code,
                account_number,
                holder_name,
            })
            .boxed(),
        (
            f.id.clone(),
            f.id.clone(),
            select(&[FundingKind::TopUp, FundingKind::Withdrawal]),
            f.amount.clone(),
            pin_ok(),
        )
            .prop_map(|(user_id, bank_account_id, kind, amount, pin_ok)| W::StartFunding {
                user_id,
                bank_account_id,
                kind,
                amount,
                pin_ok,
            })
            .boxed(),
        (f.id.clone(), select(&[BankResult::Approved, BankResult::Declined, BankResult::Expired]))
            .prop_map(|(funding_id, result)| W::SettleFunding { funding_id, result })
            .boxed(),
        (f.id.clone(), recipient(f), f.amount.clone(), memo(), pin_ok())
            .prop_map(|(from_user, to, amount, memo, pin_ok)| W::Send { from_user, to, amount, memo, pin_ok })
            .boxed(),
        (f.id.clone(), f.id.clone())
            .prop_map(|(user_id, remittance_id)| W::CancelRemittance { user_id, remittance_id })
            .boxed(),
        (f.id.clone(), recipient(f), f.amount.clone(), memo())
            .prop_map(|(requester, from, amount, memo)| W::RequestMoney { requester, from, amount, memo })
            .boxed(),
        (f.id.clone(), f.amount.clone(), shares(f), memo())
            .prop_map(|(requester, total, shares, memo)| W::SplitBill { requester, total, shares, memo })
            .boxed(),
        (f.id.clone(), f.id.clone(), any::<bool>(), pin_ok())
            .prop_map(|(payer, request_id, pay, pin_ok)| W::AnswerRequest { payer, request_id, pay, pin_ok })
            .boxed(),
        (f.id.clone(), f.amount.clone(), select(&[Direction::Credit, Direction::Debit]), reason())
            .prop_map(|(user_id, amount, direction, reason)| W::Adjust { user_id, amount, direction, reason })
            .boxed(),
        (f.id.clone(), pin_ok()).prop_map(|(user_id, pin_ok)| W::IssuePaymentCode { user_id, pin_ok }).boxed(),
    ]
}

/// Business registration numbers: mostly the valid ones of the test data, sometimes any ten
/// digits as people type them (about one in ten passes the check digit).
pub fn brn() -> BoxedStrategy<Brn> {
    const VALID: [&str; 6] =
        ["120-81-47521", "220-81-62517", "304-87-00790", "116-82-00276", "1348672683", "2098206382"];
    prop_oneof![
        3 => select(&VALID).prop_map(String::from),
        1 => "[0-9]{3}-?[0-9]{2}-?[0-9]{5}",
    ]
    .prop_filter_map("a valid number", |s| parse_brn(&s).ok())
    .boxed()
}

/// One strategy per merchant command kind, in the order of [`MERCHANT_KINDS`].
pub fn merchant_commands(f: &Fields) -> Vec<BoxedStrategy<MerchantCommand>> {
    use MerchantCommand as M;
    let display_name = || text(50).prop_filter_map("a display name", |s| DisplayName::new(s).ok()).boxed();
    let business_name = text(100).prop_filter_map("a business name", |s| BusinessName::new(s).ok());
    let mcc = "[0-9]{3,5}".prop_filter_map("four digits", |s| Mcc::parse(&s).ok());
    let fee_bps = prop_oneof![3 => 0..=FEE_BPS_MAX, 1 => any::<u16>()];
    let settlement =
        (bank_code(), f.account_number.clone(), name()).prop_map(|(bank_code, account_number, holder_name)| {
            Box::new(SettlementAccount { bank_code, account_number, holder_name })
        });
    let status = select(&[MerchantStatus::Active, MerchantStatus::Suspended, MerchantStatus::Closed]);
    let scopes = any::<u8>().prop_filter_map("known scopes", |b| Scopes::try_from(b).ok());
    let prefix = "kasa_sk_[A-Za-z0-9_]{7,9}".prop_filter_map("a key prefix", |s| KeyPrefix::new(s).ok());
    let uses = vec((f.id.clone(), u64_any()), 0..=65).prop_filter_map("at most 64 uses", |u| BoundedVec::new(u).ok());
    vec![
        (business_name, display_name(), brn(), mcc, fee_bps, settlement)
            .prop_map(|(business_name, display_name, brn, mcc, fee_bps, settlement)| M::CreateMerchant {
                business_name,
                display_name,
                brn,
                mcc,
                fee_bps,
                settlement,
            })
            .boxed(),
        (f.id.clone(), status).prop_map(|(merchant_id, status)| M::SetMerchantStatus { merchant_id, status }).boxed(),
        (f.id.clone(), display_name()).prop_map(|(merchant_id, name)| M::CreateStore { merchant_id, name }).boxed(),
        (f.id.clone(), display_name(), scopes, prefix, f.token.clone())
            .prop_map(|(merchant_id, name, scopes, prefix, key_hash)| M::CreateApiKey {
                merchant_id,
                name,
                scopes,
                prefix,
                key_hash,
            })
            .boxed(),
        (f.id.clone(), f.id.clone()).prop_map(|(merchant_id, key_id)| M::RevokeApiKey { merchant_id, key_id }).boxed(),
        uses.prop_map(|uses| M::KeysUsed { uses }).boxed(),
        (f.token.clone(), key_command(f)).prop_map(|(key_hash, command)| M::AsKey { key_hash, command }).boxed(),
        (f.token.clone(), f.id.clone(), any::<bool>(), proptest::option::of(any::<bool>()))
            .prop_map(|(token_hash, payment_id, approve, pin_ok)| M::AnswerPayment {
                token_hash,
                payment_id,
                approve,
                pin_ok,
            })
            .boxed(),
        (f.id.clone(), select(&[BankResult::Approved, BankResult::Declined, BankResult::Expired]))
            .prop_map(|(payout_id, result)| M::SettlePayout { payout_id, result })
            .boxed(),
        vec((f.id.clone(), f.id.clone(), any::<u64>()), 0..=65)
            .prop_filter_map("at most 64", |items| {
                let progress = items
                    .into_iter()
                    .map(|(endpoint_id, delivered_through, failing_since)| kasa_core::merchant::DeliveryProgress {
                        endpoint_id,
                        delivered_through,
                        failing_since,
                    })
                    .collect();
                BoundedVec::new(progress).ok()
            })
            .prop_map(|progress| M::RecordDeliveries { progress })
            .boxed(),
        (f.token.clone(), scan(f), proptest::option::of(any::<bool>()))
            .prop_map(|(token_hash, scan, pin_ok)| M::PayByQr { token_hash, scan, pin_ok })
            .boxed(),
        (
            f.token.clone(),
            f.id.clone(),
            any::<u32>(),
            f.id.clone(),
            order_id(),
            proptest::option::of(item_name()),
            f.amount.clone(),
        )
            .prop_map(|(key_hash, user_id, counter, store_id, order_id, item_name, amount)| M::ChargeCode {
                key_hash,
                charge: Box::new(CodeCharge { user_id, counter, store_id, order_id, item_name, amount }),
            })
            .boxed(),
        (partner_name(), f.token.clone(), prop_oneof![any::<u32>(), 0..=10u32])
            .prop_map(|(partner, key, rows)| M::StartImport { partner, key, rows })
            .boxed(),
        (f.id.clone(), 0..=12u32, vec(import_entry(), 0..=3))
            .prop_map(|(import_id, first_row, entries)| {
                let entries = BoundedVec::new(entries).expect("at most 3");
                M::ImportRows(Box::new(kasa_core::merchant::ImportChunk { import_id, first_row, entries }))
            })
            .boxed(),
    ]
}

/// One strategy per partner command kind, in the order of [`PARTNER_KINDS`].
pub fn partner_commands(f: &Fields) -> Vec<BoxedStrategy<PartnerCommand>> {
    use kasa_core::fx::{Rate, Side};
    use kasa_core::partner::{CustomerId, PartnerName, PartnerStatus, PayRequest, RequestId};
    use PartnerCommand as P;
    let currency = || select(&[Currency::KRW, Currency::CNY, Currency::USD, Currency::JPY]);
    let name = prop_oneof!["[a-z0-9][a-z0-9_-]{0,63}", text(8)]
        .prop_filter_map("a partner name", |s| PartnerName::new(s).ok());
    let request_id = || {
        prop_oneof![3 => "[!-~]{1,12}", 1 => "[!-~]{63,65}", 1 => text(8)]
            .prop_filter_map("a request id", |s| RequestId::new(s).ok())
            .boxed()
    };
    let customer_id = "[!-~]{1,64}".prop_filter_map("a customer id", |s| CustomerId::new(s).ok());
    let settlement =
        (bank_code(), f.account_number.clone(), self::name()).prop_map(|(bank_code, account_number, holder_name)| {
            Box::new(SettlementAccount { bank_code, account_number, holder_name })
        });
    let rate = (currency(), currency(), "[0-9]{1,12}(\\.[0-9]{1,10})?", 0..=1_000u32, f.ttl_seconds.clone())
        .prop_filter_map("a rate", |(base, quote, mid, spread, at)| {
            Rate::parse(&format!("{}/{}", base.code(), quote.code()), &mid, spread, u64::from(at) * SECOND).ok()
        });
    let rates = vec(rate, 0..=1_001).prop_filter_map("at most 1,000", |r| BoundedVec::new(r).ok());
    let side = prop_oneof![f.amount.clone().prop_map(Side::Sell), f.amount.clone().prop_map(Side::Buy)];
    let pay = (
        f.id.clone(),
        request_id(),
        customer_id,
        f.id.clone(),
        proptest::option::of(display_name()),
        f.amount.clone(),
        proptest::option::of(item_name()),
        proptest::option::of(f.id.clone()),
    )
        .prop_map(|(partner_id, request_id, customer_id, store_id, merchant_name, amount, item_name, quote_id)| {
            P::Pay(Box::new(PayRequest {
                partner_id,
                request_id,
                customer_id,
                store_id,
                merchant_name,
                amount,
                item_name,
                quote_id,
            }))
        });
    vec![
        (
            (name, currency(), currency(), any::<u16>(), settlement),
            proptest::option::of(
                prop_oneof!["https://[a-z]{1,12}\\.example/[!-~]{0,30}", "http://localhost:[0-9]{2,5}", text(10)]
                    .prop_filter_map("a URL", |s| WebhookUrl::new(s).ok()),
            ),
            any::<u16>(),
            (any::<u16>(), any::<u32>()),
        )
            .prop_map(|((name, home_currency, settlement_currency, fee_bps, settlement), endpoint, accepts, policy)| {
                P::CreatePartner {
                    name,
                    home_currency,
                    settlement_currency,
                    fee_bps,
                    settlement,
                    endpoint,
                    accepts: kasa_core::partner::Schemes(accepts),
                    policy: kasa_core::partner::CallPolicy {
                        inquire_every_seconds: policy.0,
                        inquire_for_seconds: policy.1,
                    },
                }
            })
            .boxed(),
        (f.id.clone(), select(&[PartnerStatus::Active, PartnerStatus::Suspended]))
            .prop_map(|(partner_id, status)| P::SetPartnerStatus { partner_id, status })
            .boxed(),
        (f.id.clone(), f.token.clone())
            .prop_map(|(partner_id, public_key)| P::AddKey { partner_id, public_key })
            .boxed(),
        (f.id.clone(), any::<u32>()).prop_map(|(partner_id, version)| P::RevokeKey { partner_id, version }).boxed(),
        rates.prop_map(|rates| P::LoadRates { rates }).boxed(),
        (f.id.clone(), currency(), currency(), side, f.ttl_seconds.clone())
            .prop_map(|(partner_id, sell, buy, side, expires_in_seconds)| P::CreateQuote {
                partner_id,
                sell,
                buy,
                side,
                expires_in_seconds,
            })
            .boxed(),
        pay.boxed(),
        (f.id.clone(), request_id())
            .prop_map(|(partner_id, request_id)| P::CancelPayment { partner_id, request_id })
            .boxed(),
        (f.id.clone(), request_id(), request_id(), f.amount.clone())
            .prop_map(|(partner_id, refund_request_id, request_id, amount)| P::Refund {
                partner_id,
                refund_request_id,
                request_id,
                amount,
            })
            .boxed(),
        f.id.clone().prop_map(|window_id| P::CloseWindow { window_id }).boxed(),
        (f.id.clone(), any::<bool>())
            .prop_map(|(window_id, succeeded)| P::SettleWindow { window_id, succeeded })
            .boxed(),
        (
            (f.token.clone(), f.id.clone(), any::<u16>(), proptest::option::of(any::<bool>())),
            ("[ -~]{1,40}", "[!-~]{1,30}", proptest::option::of(text(20)), currency()),
            (f.amount.clone(), f.id.clone()),
        )
            .prop_filter_map(
                "valid texts",
                |((token_hash, partner_id, scheme_bit, pin_ok), (code, name, city, currency), (amount, quote_id))| {
                    let request = kasa_core::partner::PayOverseasRequest {
                        partner_id,
                        scheme_bit,
                        code: kasa_core::partner::CodeText::new(code).ok()?,
                        merchant_name: kasa_core::partner::ForeignText::new(name).ok()?,
                        merchant_city: match city {
                            Some(c) => Some(kasa_core::partner::ForeignText::new(c).ok()?),
                            None => None,
                        },
                        currency,
                        amount,
                        quote_id,
                    };
                    Some(P::PayOverseas { token_hash, request: Box::new(request), pin_ok })
                },
            )
            .boxed(),
        (f.id.clone(), select(&kasa_core::partner::Step::ALL))
            .prop_map(|(payment_id, step)| P::ResolveOverseas { payment_id, step })
            .boxed(),
        (f.id.clone(), request_id(), f.id.clone(), currency(), f.amount.clone())
            .prop_map(|(partner_id, refund_request_id, payment_id, currency, amount)| {
                P::RefundOverseas(Box::new(kasa_core::partner::OverseasRefundRequest {
                    partner_id,
                    refund_request_id,
                    payment_id,
                    currency,
                    amount,
                }))
            })
            .boxed(),
        vec((f.id.clone(), any::<u64>()), 0..=65)
            .prop_filter_map("at most 64", |items| {
                let progress = items
                    .into_iter()
                    .map(|(partner_id, notified_through)| kasa_core::partner::NotifyProgress {
                        partner_id,
                        notified_through,
                    })
                    .collect();
                BoundedVec::new(progress).ok()
            })
            .prop_map(|progress| P::RecordNotified { progress })
            .boxed(),
    ]
}

fn partner_name() -> BoxedStrategy<kasa_core::merchant::PartnerName> {
    prop_oneof![3 => "[a-z0-9][a-z0-9_-]{0,10}", 1 => text(8)]
        .prop_filter_map("a partner name", |s| kasa_core::merchant::PartnerName::new(s).ok())
        .boxed()
}

fn partner_id() -> BoxedStrategy<kasa_core::merchant::PartnerId> {
    prop_oneof![3 => "[!-~]{1,12}", 1 => "[!-~]{63,65}", 1 => text(8)]
        .prop_filter_map("a partner id", |s| kasa_core::merchant::PartnerId::new(s).ok())
        .boxed()
}

/// A row of an import, or one refused at the door.
fn import_entry() -> BoxedStrategy<kasa_core::merchant::ImportEntry> {
    use kasa_core::merchant::{City, CountryCode, ImportEntry, ImportField, ImportRow, QrPayload};
    let mcc = "[0-9]{4}".prop_filter_map("four digits", |s| Mcc::parse(&s).ok());
    let qr = prop_oneof![3 => "[!-~]{1,40}", 1 => text(520)].prop_filter_map("a payload", |s| QrPayload::new(s).ok());
    let country = "[A-Za-z]{2}".prop_filter_map("a country", |s| CountryCode::new(s).ok());
    let city = text(50).prop_filter_map("a city", |s| City::new(s).ok());
    let names = (text(100).prop_filter_map("a business name", |s| BusinessName::new(s).ok()), display_name());
    let row = (partner_id(), names, brn(), mcc, partner_id(), display_name(), qr, country, city).prop_map(
        |(
            partner_merchant_id,
            (business_name, display_name),
            brn,
            mcc,
            store_id,
            store_name,
            qr_payload,
            country,
            city,
        )| {
            ImportEntry::Row(Box::new(ImportRow {
                partner_merchant_id,
                business_name,
                display_name,
                brn,
                mcc,
                store_id,
                store_name,
                qr_payload,
                country,
                city,
            }))
        },
    );
    prop_oneof![4 => row, 1 => select(&[ImportField::Line, ImportField::Brn, ImportField::QrPayload]).prop_map(ImportEntry::Refused)]
        .boxed()
}

/// What a user scanned: each kind alike.
fn scan(f: &Fields) -> BoxedStrategy<Scan> {
    prop_oneof![
        (f.id.clone(), f.amount.clone(), display_name()).prop_map(|(store_id, amount, merchant_name)| Scan::Static {
            store_id,
            amount,
            merchant_name
        }),
        (f.id.clone(), f.id.clone(), proptest::option::of(f.amount.clone()), display_name()).prop_map(
            |(payment_id, store_id, amount, merchant_name)| Scan::Dynamic {
                payment_id,
                store_id,
                amount,
                merchant_name
            }
        ),
    ]
    .boxed()
}

fn display_name() -> BoxedStrategy<DisplayName> {
    text(50).prop_filter_map("a display name", |s| DisplayName::new(s).ok()).boxed()
}

fn order_id() -> BoxedStrategy<OrderId> {
    prop_oneof![3 => "[!-~]{1,12}", 1 => "[!-~]{99,101}", 1 => text(8)]
        .prop_filter_map("an order id", |s| OrderId::new(s).ok())
        .boxed()
}

fn item_name() -> BoxedStrategy<ItemName> {
    text(100).prop_filter_map("an item name", |s| ItemName::new(s).ok()).boxed()
}

/// What an API key asks: each kind alike.
pub fn key_command(f: &Fields) -> BoxedStrategy<KeyCommand> {
    let return_url = proptest::option::of(
        prop_oneof!["https://[a-z.]{1,20}/[!-~]{0,30}", "http://localhost:[0-9]{2,5}/[a-z]{0,8}", text(8)]
            .prop_filter_map("a return URL", |s| ReturnUrl::new(s).ok()),
    );
    let capture = select(&[CaptureMethod::Automatic, CaptureMethod::Manual]);
    let expires = prop_oneof![Just(APPROVAL_SECONDS_DEFAULT), any::<u32>()];
    prop_oneof![
        (
            proptest::option::of(f.id.clone()),
            order_id(),
            item_name(),
            f.amount.clone(),
            capture,
            expires.clone(),
            return_url
        )
            .prop_map(
                |(store_id, order_id, item_name, amount, capture_method, expires_in_seconds, return_url)| {
                    KeyCommand::CreatePayment {
                        store_id,
                        order_id,
                        item_name,
                        amount,
                        capture_method,
                        expires_in_seconds,
                        return_url,
                    }
                }
            ),
        f.id.clone().prop_map(|payment_id| KeyCommand::CancelPayment { payment_id }),
        webhook_command(f).prop_map(KeyCommand::Webhook),
        (f.id.clone(), proptest::option::of(f.amount.clone()))
            .prop_map(|(payment_id, amount)| KeyCommand::CapturePayment { payment_id, amount }),
        (f.id.clone(), f.amount.clone(), text(200).prop_filter_map("a refund reason", |s| RefundReason::new(s).ok()))
            .prop_map(|(payment_id, amount, reason)| KeyCommand::RefundPayment { payment_id, amount, reason }),
        (f.id.clone(), order_id(), proptest::option::of(item_name()), f.amount.clone(), expires).prop_map(
            |(store_id, order_id, item_name, amount, expires_in_seconds)| KeyCommand::CreateStoreQr {
                store_id,
                order_id,
                item_name,
                amount,
                expires_in_seconds,
            }
        ),
    ]
    .boxed()
}

/// What a key asks of its webhook endpoints: each kind alike.
pub fn webhook_command(f: &Fields) -> BoxedStrategy<WebhookCommand> {
    let url = prop_oneof!["https://[a-z]{1,12}\\.example/[!-~]{0,30}", "https://10\\.[0-9]\\.0\\.1/", text(10)]
        .prop_filter_map("a webhook URL", |s| WebhookUrl::new(s).ok());
    let events = any::<u8>().prop_filter_map("known event types", |b| EventTypes::try_from(b).ok());
    let secret = || {
        vec(any::<u8>(), 0..=129)
            .prop_filter_map("at most 128 bytes", |b| BoundedVec::new(b).ok())
            .prop_map(|ciphertext| SealedSecret { ciphertext })
    };
    prop_oneof![
        (url, events, secret()).prop_map(|(url, events, secret)| WebhookCommand::Create { url, events, secret }),
        f.id.clone().prop_map(|endpoint_id| WebhookCommand::Delete { endpoint_id }),
        (f.id.clone(), secret()).prop_map(|(endpoint_id, secret)| WebhookCommand::RotateSecret { endpoint_id, secret }),
    ]
    .boxed()
}

pub fn ledger_commands(f: &Fields) -> Vec<BoxedStrategy<LedgerCommand>> {
    vec![
        records(f.account.clone(), f.records_max).prop_map(LedgerCommand::CreateAccounts).boxed(),
        records(f.transfer.clone(), f.records_max).prop_map(LedgerCommand::CreateTransfers).boxed(),
    ]
}

pub fn outbox_commands(f: &Fields) -> Vec<BoxedStrategy<OutboxCommand>> {
    vec![(f.consumer.clone(), f.cursor.clone())
        .prop_map(|(consumer, to)| OutboxCommand::AdvanceCursor { consumer, to })
        .boxed()]
}

pub fn scopes(f: &Fields) -> Vec<BoxedStrategy<KeyScope>> {
    vec![
        Just(KeyScope::Operator).boxed(),
        f.token.clone().prop_map(KeyScope::Session).boxed(),
        f.anonymous.clone().prop_map(KeyScope::Anonymous).boxed(),
        f.token.clone().prop_map(KeyScope::ApiKey).boxed(),
    ]
}

pub fn as_session(f: &Fields, command: BoxedStrategy<WalletCommand>) -> BoxedStrategy<SessionCommand> {
    (f.token.clone(), command).prop_map(|(token_hash, command)| SessionCommand { token_hash, command }).boxed()
}

pub fn inner_commands(f: &Fields) -> Vec<BoxedStrategy<Inner>> {
    let ledger = ledger_commands(f).into_iter().map(|s| s.prop_map(Inner::Ledger).boxed());
    let wallet = wallet_commands(f).into_iter().map(|s| s.prop_map(Inner::Wallet).boxed());
    let session = wallet_commands(f).into_iter().map(|s| as_session(f, s).prop_map(Inner::AsSession).boxed());
    let merchant = merchant_commands(f).into_iter().map(|s| s.prop_map(Inner::Merchant).boxed());
    let partner = partner_commands(f).into_iter().map(|s| s.prop_map(Inner::Partner).boxed());
    ledger.chain(wallet).chain(session).chain(merchant).chain(partner).collect()
}

pub fn keyed(f: &Fields, scope: BoxedStrategy<KeyScope>, inner: BoxedStrategy<Inner>) -> BoxedStrategy<Command> {
    (scope, f.key.clone(), f.request_hash.clone(), inner)
        .prop_map(|(scope, key, request_hash, command)| {
            Command::Keyed(Box::new(Keyed { scope, key, request_hash, command }))
        })
        .boxed()
}

/// One strategy per full kind (see [`all_kinds`]).
pub fn command_kinds(f: &Fields) -> Vec<BoxedStrategy<Command>> {
    let mut all: Vec<BoxedStrategy<Command>> = Vec::new();
    all.extend(ledger_commands(f).into_iter().map(|s| s.prop_map(Command::Ledger).boxed()));
    all.extend(wallet_commands(f).into_iter().map(|s| s.prop_map(Command::Wallet).boxed()));
    all.extend(wallet_commands(f).into_iter().map(|s| as_session(f, s).prop_map(Command::AsSession).boxed()));
    for scope in scopes(f) {
        all.extend(inner_commands(f).into_iter().map(|inner| keyed(f, scope.clone(), inner)));
    }
    all.extend(outbox_commands(f).into_iter().map(|s| s.prop_map(Command::Outbox).boxed()));
    all.extend(merchant_commands(f).into_iter().map(|s| s.prop_map(Command::Merchant).boxed()));
    all.extend(partner_commands(f).into_iter().map(|s| s.prop_map(Command::Partner).boxed()));
    all
}

/// Any command: each top-level kind alike, and within it each kind of its domain alike.
pub fn any_command(f: &Fields) -> BoxedStrategy<Command> {
    let wallet = || Union::new(wallet_commands(f)).boxed();
    prop_oneof![
        Union::new(ledger_commands(f)).prop_map(Command::Ledger),
        wallet().prop_map(Command::Wallet),
        as_session(f, wallet()).prop_map(Command::AsSession),
        keyed(f, Union::new(scopes(f)).boxed(), Union::new(inner_commands(f)).boxed()),
        Union::new(outbox_commands(f)).prop_map(Command::Outbox),
        Union::new(merchant_commands(f)).prop_map(Command::Merchant),
        Union::new(partner_commands(f)).prop_map(Command::Partner),
    ]
    .boxed()
}
