//! How a transfer whose id is taken compares with the stored one: `exists`, or the first
//! field that differs, as `exists_with_different_*`. TigerBeetle's rules (`create_transfer_exists`
//! and `post_or_void_pending_transfer_exists` in its `src/state_machine.zig`): flags, pending id
//! and timeout are compared first by the caller, because the flags decide how the rest compare.
//! This module does not look anything up; the ledger passes the transfers in.

use super::{CreateTransferResult, Transfer, TransferFlags, AMOUNT_MAX};

/// The first field in which `t` differs from `e`, a stored transfer that is neither a post
/// nor a void with the same flags, pending id and timeout. The amount of a balancing transfer
/// is an upper bound: a retry matches if it asks for at least what was moved.
pub(super) fn plain_difference(t: &Transfer, e: &Transfer) -> Option<CreateTransferResult> {
    use CreateTransferResult as R;
    let balancing = t.flags.has(TransferFlags::BALANCING_DEBIT) || t.flags.has(TransferFlags::BALANCING_CREDIT);
    let amount_differs = if balancing { t.amount < e.amount } else { t.amount != e.amount };
    let checks = [
        (t.debit_account_id != e.debit_account_id, R::ExistsWithDifferentDebitAccountId),
        (t.credit_account_id != e.credit_account_id, R::ExistsWithDifferentCreditAccountId),
        (amount_differs, R::ExistsWithDifferentAmount),
        (t.user_data_128 != e.user_data_128, R::ExistsWithDifferentUserData128),
        (t.user_data_64 != e.user_data_64, R::ExistsWithDifferentUserData64),
        (t.user_data_32 != e.user_data_32, R::ExistsWithDifferentUserData32),
        (t.ledger != e.ledger, R::ExistsWithDifferentLedger),
        (t.code != e.code, R::ExistsWithDifferentCode),
    ];
    checks.iter().find(|(differs, _)| *differs).map(|&(_, result)| result)
}

/// The first field in which the post or void `t` differs from `e`, the stored one with the same
/// flags and pending transfer `p`. Fields a post or void may leave out compare by what leaving
/// them out would have stored: accounts, ledger and code are `p`'s whatever was asked, so 0
/// matches; an amount of `AMOUNT_MAX` (post) or 0 (void) matches only if `e` moved all of `p`;
/// a user data field of 0 matches only if `e` inherited it, that is holds `p`'s value.
pub(super) fn resolution_difference(t: &Transfer, e: &Transfer, p: &Transfer) -> Option<CreateTransferResult> {
    use CreateTransferResult as R;
    let void = t.flags.has(TransferFlags::VOID_PENDING_TRANSFER);
    let whole = if void { t.amount == 0 } else { t.amount == AMOUNT_MAX };
    let amount_differs = if whole { e.amount != p.amount } else { t.amount != e.amount };
    let left_out_or = |asked: u128, stored: u128| asked != 0 && asked != stored;
    let inherited_or = |asked: u128, stored: u128, pending: u128| {
        if asked == 0 {
            stored != pending
        } else {
            asked != stored
        }
    };
    let checks = [
        (left_out_or(t.debit_account_id, e.debit_account_id), R::ExistsWithDifferentDebitAccountId),
        (left_out_or(t.credit_account_id, e.credit_account_id), R::ExistsWithDifferentCreditAccountId),
        (amount_differs, R::ExistsWithDifferentAmount),
        (inherited_or(t.user_data_128, e.user_data_128, p.user_data_128), R::ExistsWithDifferentUserData128),
        (
            inherited_or(t.user_data_64.into(), e.user_data_64.into(), p.user_data_64.into()),
            R::ExistsWithDifferentUserData64,
        ),
        (
            inherited_or(t.user_data_32.into(), e.user_data_32.into(), p.user_data_32.into()),
            R::ExistsWithDifferentUserData32,
        ),
        (left_out_or(t.ledger.into(), e.ledger.into()), R::ExistsWithDifferentLedger),
        (left_out_or(t.code.into(), e.code.into()), R::ExistsWithDifferentCode),
    ];
    checks.iter().find(|(differs, _)| *differs).map(|&(_, result)| result)
}
