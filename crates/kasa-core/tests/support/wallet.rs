//! Wallet helpers for the state machine tests: every command through `State::apply`, as the
//! HTTP layer would build it (a verification before a sign-up, a sealed account number).

use super::Harness;
use kasa_core::money::Amount;
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{
    self, AdjustError, AdjustmentView, BankResult, CancelError, CodeProof, Command, Direction, Entry, FundingError,
    FundingKind, FundingView, HistoryCursor, Memo, Name, Outcome, Phone, PinHash, PinResetError, Reason, Recipient,
    RemittanceView, RequestError, RequestView, SealedAccountNumber, SendError, SessionError, Share, SignUpError,
    SplitBillView, UserError, UserView, VerificationError, VerificationView,
};
use kasa_core::State;

/// A PIN hash as the HTTP layer makes them (a PHC string).
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

pub fn phone(raw: &str) -> Phone {
    Phone::parse(raw).expect("a valid phone number")
}

pub fn memo(text: &str) -> Memo {
    Memo::new(text).expect("a valid memo")
}

/// Applies one wallet command and returns its outcome.
pub fn wallet(h: &mut Harness, command: Command) -> Outcome {
    match h.apply(vec![kasa_core::Command::Wallet(command)]).remove(0) {
        kasa_core::Outcome::Wallet(outcome) => outcome,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The code hash the HTTP layer would compute for `code` sent to `phone`.
pub fn code_hash(phone: &Phone, code: &str) -> [u8; 32] {
    *blake3::hash(format!("{}:{code}", phone.as_str()).as_bytes()).as_bytes()
}

/// Starts a verification with code `123456` and returns the proof of it.
pub fn verify(h: &mut Harness, number: &Phone) -> CodeProof {
    let id = *blake3::hash(format!("{}{}", number.as_str(), h.now).as_bytes()).as_bytes();
    let id: [u8; 16] = id[..16].try_into().unwrap();
    let started =
        wallet(h, Command::StartVerification { id, phone: number.clone(), code_hash: code_hash(number, "123456") });
    assert!(matches!(started, Outcome::VerificationStarted(Ok(_))), "{started:?}");
    CodeProof { verification_id: id, code_hash: code_hash(number, "123456") }
}

/// `won` won.
pub fn won(won: u64) -> Amount {
    Amount::new(won)
}

/// A verification id made from a small number.
pub fn verification_id(n: u8) -> [u8; 16] {
    [n; 16]
}

/// Starts a verification with id `id` for `code` sent to `number`.
pub fn start_verification(
    h: &mut Harness,
    id: [u8; 16],
    number: &Phone,
    code: &str,
) -> Result<VerificationView, VerificationError> {
    match wallet(h, Command::StartVerification { id, phone: number.clone(), code_hash: code_hash(number, code) }) {
        Outcome::VerificationStarted(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The proof a user gives by typing `code` for verification `id` of `number`.
pub fn proof(id: [u8; 16], number: &Phone, code: &str) -> CodeProof {
    CodeProof { verification_id: id, code_hash: code_hash(number, code) }
}

/// Signs `number` up with `proof`.
pub fn sign_up_with(h: &mut Harness, number: &Phone, proof: CodeProof) -> Result<UserView, SignUpError> {
    let command = Command::SignUp {
        phone: number.clone(),
        name: Name::new("김민지").unwrap(),
        pin_hash: PinHash::new(HASH).unwrap(),
        proof,
    };
    match wallet(h, command) {
        Outcome::SignedUp(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Resets the PIN of `number` to `pin_hash` with `proof`.
pub fn reset_pin(h: &mut Harness, number: &Phone, proof: CodeProof, pin_hash: &str) -> Result<UserView, PinResetError> {
    let command = Command::ResetPin { phone: number.clone(), proof, pin_hash: PinHash::new(pin_hash).unwrap() };
    match wallet(h, command) {
        Outcome::PinReset(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// A login attempt with token hash `[token; 32]`, for an hour.
pub fn login(h: &mut Harness, user_id: u64, token: u8, pin_ok: bool) -> Result<u64, SessionError> {
    match wallet(h, Command::OpenSession { user_id, token_hash: [token; 32], pin_ok, ttl_seconds: 3600 }) {
        Outcome::SessionOpened(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Applies a command that answers `UserChanged` (tier, unlock, PIN-free amount).
pub fn user_changed(h: &mut Harness, command: Command) -> Result<UserView, UserError> {
    match wallet(h, command) {
        Outcome::UserChanged(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Sets the withdrawal fee.
pub fn set_fee(h: &mut Harness, fee: u64) -> Result<Amount, UserError> {
    match wallet(h, Command::SetWithdrawalFee { fee: won(fee) }) {
        Outcome::WithdrawalFeeSet(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// An operator's adjustment.
pub fn adjust(
    h: &mut Harness,
    user_id: u64,
    amount: u64,
    direction: Direction,
    reason: &str,
) -> Result<AdjustmentView, AdjustError> {
    let command = Command::Adjust { user_id, amount: won(amount), direction, reason: Reason::new(reason).unwrap() };
    match wallet(h, command) {
        Outcome::Adjusted(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The sender cancels a held remittance.
pub fn cancel(h: &mut Harness, user_id: u64, remittance_id: u64) -> Result<RemittanceView, CancelError> {
    match wallet(h, Command::CancelRemittance { user_id, remittance_id }) {
        Outcome::RemittanceCancelled(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Asks `from` for `amount` won.
pub fn request(h: &mut Harness, requester: u64, from: Recipient, amount: u64) -> Result<RequestView, RequestError> {
    match wallet(h, Command::RequestMoney { requester, from, amount: won(amount), memo: memo("커피") }) {
        Outcome::MoneyRequested(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The payer pays (`pay`) or declines a request.
pub fn answer(
    h: &mut Harness,
    payer: u64,
    request_id: u64,
    pay: bool,
    pin_ok: Option<bool>,
) -> Result<RequestView, RequestError> {
    match wallet(h, Command::AnswerRequest { payer, request_id, pay, pin_ok }) {
        Outcome::RequestAnswered(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Splits a bill of `total` won into shares.
pub fn split(
    h: &mut Harness,
    requester: u64,
    total: u64,
    shares: Vec<(Recipient, u64)>,
) -> Result<SplitBillView, RequestError> {
    let shares = shares.into_iter().map(|(payer, amount)| Share { payer, amount: won(amount) }).collect();
    let command = Command::SplitBill {
        requester,
        total: won(total),
        shares: BoundedVec::new(shares).unwrap(),
        memo: memo("회식"),
    };
    match wallet(h, command) {
        Outcome::BillSplit(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Up to `limit` entries of a user's history from `cursor` on.
pub fn history(state: &State, user_id: u64, cursor: HistoryCursor, limit: usize) -> Vec<Entry> {
    state.history(user_id, cursor, limit)
}

/// What the wallet may spend: posted balance less pending debits.
pub fn available(h: &Harness, user_id: u64) -> u128 {
    let (posted, pending) = balance(h, user_id);
    posted - pending
}

/// What the user sent out on the KST day of the harness's clock.
pub fn outgoing_today(h: &Harness, user_id: u64) -> Amount {
    h.state.limits().outgoing_today(user_id, h.now)
}

/// Verifies the number and signs it up.
pub fn sign_up(h: &mut Harness, raw: &str) -> Result<u64, SignUpError> {
    let number = phone(raw);
    let proof = verify(h, &number);
    let command = Command::SignUp {
        phone: number,
        name: Name::new("김민지").unwrap(),
        pin_hash: PinHash::new(HASH).unwrap(),
        proof,
    };
    match wallet(h, command) {
        Outcome::SignedUp(result) => result.map(|u: UserView| u.id),
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// A sealed account number as the HTTP layer would make it (the test does not encrypt).
pub fn sealed(number: &str) -> SealedAccountNumber {
    SealedAccountNumber {
        ciphertext: BoundedVec::new(number.as_bytes().to_vec()).unwrap(),
        lookup: *blake3::hash(number.as_bytes()).as_bytes(),
        last4: wallet::Last4::new(&number[number.len() - 4..]).unwrap(),
    }
}

/// Links a bank account.
pub fn link(h: &mut Harness, user_id: u64, number: &str) -> Result<u64, wallet::LinkError> {
    let command = Command::LinkBankAccount {
        user_id,
        bank_code: wallet::BankCode::new("088").unwrap(),
        account_number: sealed(number),
        holder_name: Name::new("김민지").unwrap(),
    };
    match wallet(h, command) {
        Outcome::BankAccountLinked(r) => r.map(|b| b.id),
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Starts a top-up or withdrawal from the user's first bank account.
pub fn start(
    h: &mut Harness,
    user_id: u64,
    bank_account_id: u64,
    kind: FundingKind,
    amount: u64,
    pin_ok: Option<bool>,
) -> Result<FundingView, FundingError> {
    let command = Command::StartFunding { user_id, bank_account_id, kind, amount: Amount::new(amount), pin_ok };
    match wallet(h, command) {
        Outcome::FundingStarted(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Records the bank's answer.
pub fn settle(h: &mut Harness, funding_id: u64, result: BankResult) -> Option<FundingView> {
    match wallet(h, Command::SettleFunding { funding_id, result }) {
        Outcome::FundingSettled(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Signs a user up, links a bank account and tops it up with `amount` won (approved).
pub fn funded(h: &mut Harness, raw: &str, amount: u64) -> u64 {
    let id = sign_up(h, raw).expect("sign-up");
    let bank = link(h, id, &format!("{:010}", 1_000_000_000 + id)).expect("link");
    let f = start(h, id, bank, FundingKind::TopUp, amount, None).expect("top-up");
    settle(h, f.id, BankResult::Approved);
    id
}

/// Sends money.
pub fn send(
    h: &mut Harness,
    from: u64,
    to: Recipient,
    amount: u64,
    pin_ok: Option<bool>,
) -> Result<RemittanceView, SendError> {
    let command = Command::Send { from_user: from, to, amount: Amount::new(amount), memo: memo("밥값"), pin_ok };
    match wallet(h, command) {
        Outcome::Sent(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The wallet's (posted balance, pending debits).
pub fn balance(h: &Harness, user_id: u64) -> (u128, u128) {
    let a = h.state.books().account(wallet::wallet_account_id(user_id)).unwrap();
    (a.credits_posted - a.debits_posted, a.debits_pending)
}
