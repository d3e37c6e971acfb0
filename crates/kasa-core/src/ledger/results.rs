//! Result codes of `create_accounts` and `create_transfers`: one per item, listed in about the
//! order in which the ledger checks them (the first failing check wins; post and void run their
//! own checks after `flags_are_mutually_exclusive`), with stable snake_case names. The HTTP
//! layer maps them to status codes; nothing here knows about HTTP.
//!
//! Results are never written to disk (replay recomputes them), but both the names and the
//! numbers (a variant's position, used by the binary API) are public: append new codes at the
//! end, never rename or reorder. So the declaration order is not always the precedence order:
//! codes added later (`id_reserved`, `pending_id_reserved`, `id_already_failed`) say in their
//! doc comment where they are checked, and a code the ledger no longer returns stays, marked so.
//!
//! The names, and which check wins when several fail, are TigerBeetle's (0.16 and later); the
//! few places where Kasa differs are listed in `docs/api.md`.

macro_rules! result_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every variant, in precedence order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable snake_case name.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }
    };
}

result_enum! {
    /// The outcome of creating one account.
    CreateAccountResult {
        /// Created.
        Ok = "ok",
        /// Another account in the same linked chain failed.
        LinkedEventFailed = "linked_event_failed",
        /// The last account of the batch has the `linked` flag: the chain is never closed.
        LinkedEventChainOpen = "linked_event_chain_open",
        /// The engine assigns timestamps.
        TimestampMustBeZero = "timestamp_must_be_zero",
        /// The `reserved` field must be zero.
        ReservedField = "reserved_field",
        /// An unknown flag bit is set.
        ReservedFlag = "reserved_flag",
        /// Id 0 is reserved.
        IdMustNotBeZero = "id_must_not_be_zero",
        /// Id 2^128-1 is reserved.
        IdMustNotBeIntMax = "id_must_not_be_int_max",
        /// An account with this id exists with other flags.
        ExistsWithDifferentFlags = "exists_with_different_flags",
        /// An account with this id exists with another `user_data_128`.
        ExistsWithDifferentUserData128 = "exists_with_different_user_data_128",
        /// An account with this id exists with another `user_data_64`.
        ExistsWithDifferentUserData64 = "exists_with_different_user_data_64",
        /// An account with this id exists with another `user_data_32`.
        ExistsWithDifferentUserData32 = "exists_with_different_user_data_32",
        /// An account with this id exists on another ledger.
        ExistsWithDifferentLedger = "exists_with_different_ledger",
        /// An account with this id exists with another code.
        ExistsWithDifferentCode = "exists_with_different_code",
        /// An identical account exists: a retry, nothing changed.
        Exists = "exists",
        /// `debits_must_not_exceed_credits` and `credits_must_not_exceed_debits` together.
        FlagsAreMutuallyExclusive = "flags_are_mutually_exclusive",
        /// Balances start at zero.
        DebitsPendingMustBeZero = "debits_pending_must_be_zero",
        /// Balances start at zero.
        DebitsPostedMustBeZero = "debits_posted_must_be_zero",
        /// Balances start at zero.
        CreditsPendingMustBeZero = "credits_pending_must_be_zero",
        /// Balances start at zero.
        CreditsPostedMustBeZero = "credits_posted_must_be_zero",
        /// Ledger 0 is reserved.
        LedgerMustNotBeZero = "ledger_must_not_be_zero",
        /// Code 0 is reserved.
        CodeMustNotBeZero = "code_must_not_be_zero",
        /// No longer returned (Kasa 0.1 reserved ids with the top bit set for its own
        /// accounts; they now live in books of their own, and every id is the client's).
        IdReserved = "id_reserved",
    }
}

result_enum! {
    /// The outcome of creating one transfer.
    CreateTransferResult {
        /// Created.
        Ok = "ok",
        /// Another transfer in the same linked chain failed.
        LinkedEventFailed = "linked_event_failed",
        /// The last transfer of the batch has the `linked` flag: the chain is never closed.
        LinkedEventChainOpen = "linked_event_chain_open",
        /// The engine assigns timestamps.
        TimestampMustBeZero = "timestamp_must_be_zero",
        /// An unknown flag bit is set.
        ReservedFlag = "reserved_flag",
        /// Id 0 is reserved.
        IdMustNotBeZero = "id_must_not_be_zero",
        /// Id 2^128-1 is reserved.
        IdMustNotBeIntMax = "id_must_not_be_int_max",
        /// A transfer with this id exists with other flags.
        ExistsWithDifferentFlags = "exists_with_different_flags",
        /// A transfer with this id exists with another `pending_id`.
        ExistsWithDifferentPendingId = "exists_with_different_pending_id",
        /// A transfer with this id exists with another timeout.
        ExistsWithDifferentTimeout = "exists_with_different_timeout",
        /// A transfer with this id exists with another debit account.
        ExistsWithDifferentDebitAccountId = "exists_with_different_debit_account_id",
        /// A transfer with this id exists with another credit account.
        ExistsWithDifferentCreditAccountId = "exists_with_different_credit_account_id",
        /// A transfer with this id exists with another amount.
        ExistsWithDifferentAmount = "exists_with_different_amount",
        /// A transfer with this id exists with another `user_data_128`.
        ExistsWithDifferentUserData128 = "exists_with_different_user_data_128",
        /// A transfer with this id exists with another `user_data_64`.
        ExistsWithDifferentUserData64 = "exists_with_different_user_data_64",
        /// A transfer with this id exists with another `user_data_32`.
        ExistsWithDifferentUserData32 = "exists_with_different_user_data_32",
        /// A transfer with this id exists on another ledger.
        ExistsWithDifferentLedger = "exists_with_different_ledger",
        /// A transfer with this id exists with another code.
        ExistsWithDifferentCode = "exists_with_different_code",
        /// An identical transfer exists: a retry, no money moved.
        Exists = "exists",
        /// Flags that cannot be combined (pending with post, post with void, ...).
        FlagsAreMutuallyExclusive = "flags_are_mutually_exclusive",
        /// Account id 0 is reserved.
        DebitAccountIdMustNotBeZero = "debit_account_id_must_not_be_zero",
        /// Account id 2^128-1 is reserved.
        DebitAccountIdMustNotBeIntMax = "debit_account_id_must_not_be_int_max",
        /// Account id 0 is reserved.
        CreditAccountIdMustNotBeZero = "credit_account_id_must_not_be_zero",
        /// Account id 2^128-1 is reserved.
        CreditAccountIdMustNotBeIntMax = "credit_account_id_must_not_be_int_max",
        /// A transfer moves value between two different accounts.
        AccountsMustBeDifferent = "accounts_must_be_different",
        /// Only post and void name a pending transfer.
        PendingIdMustBeZero = "pending_id_must_be_zero",
        /// Post and void must name a pending transfer.
        PendingIdMustNotBeZero = "pending_id_must_not_be_zero",
        /// Id 2^128-1 is reserved.
        PendingIdMustNotBeIntMax = "pending_id_must_not_be_int_max",
        /// A transfer cannot resolve itself.
        PendingIdMustBeDifferent = "pending_id_must_be_different",
        /// Only pending transfers expire.
        TimeoutReservedForPendingTransfer = "timeout_reserved_for_pending_transfer",
        /// Closing transfers must be pending, so that voiding them reopens the account.
        ClosingTransferMustBePending = "closing_transfer_must_be_pending",
        /// No longer returned: zero-amount transfers are allowed, as in TigerBeetle 0.16 and
        /// later. Kept so that the numbers of the codes after it do not change.
        AmountMustNotBeZero = "amount_must_not_be_zero",
        /// Ledger 0 is reserved.
        LedgerMustNotBeZero = "ledger_must_not_be_zero",
        /// Code 0 is reserved.
        CodeMustNotBeZero = "code_must_not_be_zero",
        /// No account has the debit account id.
        DebitAccountNotFound = "debit_account_not_found",
        /// No account has the credit account id.
        CreditAccountNotFound = "credit_account_not_found",
        /// Both accounts must be on the same ledger.
        AccountsMustHaveTheSameLedger = "accounts_must_have_the_same_ledger",
        /// The transfer's ledger must be the accounts' ledger.
        TransferMustHaveTheSameLedgerAsAccounts = "transfer_must_have_the_same_ledger_as_accounts",
        /// The debit account is closed.
        DebitAccountAlreadyClosed = "debit_account_already_closed",
        /// The credit account is closed.
        CreditAccountAlreadyClosed = "credit_account_already_closed",
        /// No transfer has the pending id.
        PendingTransferNotFound = "pending_transfer_not_found",
        /// The transfer named by the pending id is not a pending transfer.
        PendingTransferNotPending = "pending_transfer_not_pending",
        /// The debit account differs from the pending transfer's.
        PendingTransferHasDifferentDebitAccountId = "pending_transfer_has_different_debit_account_id",
        /// The credit account differs from the pending transfer's.
        PendingTransferHasDifferentCreditAccountId = "pending_transfer_has_different_credit_account_id",
        /// The ledger differs from the pending transfer's.
        PendingTransferHasDifferentLedger = "pending_transfer_has_different_ledger",
        /// The code differs from the pending transfer's.
        PendingTransferHasDifferentCode = "pending_transfer_has_different_code",
        /// A post cannot move more than was reserved.
        ExceedsPendingTransferAmount = "exceeds_pending_transfer_amount",
        /// A void must name the whole pending amount (or 0 for it).
        PendingTransferHasDifferentAmount = "pending_transfer_has_different_amount",
        /// The pending transfer was already posted.
        PendingTransferAlreadyPosted = "pending_transfer_already_posted",
        /// The pending transfer was already voided.
        PendingTransferAlreadyVoided = "pending_transfer_already_voided",
        /// The pending transfer timed out and its reservation was released.
        PendingTransferExpired = "pending_transfer_expired",
        /// The debit account's pending debits would overflow.
        OverflowsDebitsPending = "overflows_debits_pending",
        /// The credit account's pending credits would overflow.
        OverflowsCreditsPending = "overflows_credits_pending",
        /// The debit account's posted debits would overflow.
        OverflowsDebitsPosted = "overflows_debits_posted",
        /// The credit account's posted credits would overflow.
        OverflowsCreditsPosted = "overflows_credits_posted",
        /// The debit account's pending plus posted debits would overflow.
        OverflowsDebits = "overflows_debits",
        /// The credit account's pending plus posted credits would overflow.
        OverflowsCredits = "overflows_credits",
        /// The expiry time would overflow.
        OverflowsTimeout = "overflows_timeout",
        /// The debit account's debits would exceed its credits (insufficient funds).
        ExceedsCredits = "exceeds_credits",
        /// The credit account's credits would exceed its debits.
        ExceedsDebits = "exceeds_debits",
        /// No longer returned (Kasa 0.1 reserved ids with the top bit set for its own
        /// transfers; they now live in books of their own, and every id is the client's).
        IdReserved = "id_reserved",
        /// No longer returned (see `IdReserved`): Kasa's own pending transfers are in its
        /// books, out of the ledger API's reach.
        PendingIdReserved = "pending_id_reserved",
        /// An earlier transfer with this id failed with a transient result (see
        /// [`CreateTransferResult::is_transient`]), so this id can never succeed: retrying it
        /// later, when the state may have changed, must not move money the first attempt did
        /// not. Checked where `exists` is, right after the id checks.
        IdAlreadyFailed = "id_already_failed",
    }
}

impl CreateAccountResult {
    /// Whether the item left the account in place: created now or before.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Ok | Self::Exists)
    }
}

impl CreateTransferResult {
    /// Whether the item left the transfer in place: created now or before.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Ok | Self::Exists)
    }

    /// Whether the result depends on the state at the time (an account or pending transfer
    /// that does not exist yet, a balance, a closed account) rather than on the transfer
    /// alone, so that the same transfer could succeed later. `create_transfers` remembers the
    /// ids of such failures and answers `id_already_failed` to them from then on. The list is
    /// TigerBeetle's: an expired pending transfer or an overflow is final, not transient.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::DebitAccountNotFound
                | Self::CreditAccountNotFound
                | Self::PendingTransferNotFound
                | Self::ExceedsCredits
                | Self::ExceedsDebits
                | Self::DebitAccountAlreadyClosed
                | Self::CreditAccountAlreadyClosed
        )
    }
}

/// Whether a pending transfer is still open, and if not, how it was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PendingStatus {
    /// Reserved, waiting for a post, a void or its timeout.
    Pending = 1,
    /// Resolved by a post.
    Posted = 2,
    /// Resolved by a void.
    Voided = 3,
    /// Resolved by its timeout.
    Expired = 4,
}

impl PendingStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Posted => "posted",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    /// Decodes the snapshot byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Pending),
            2 => Some(Self::Posted),
            3 => Some(Self::Voided),
            4 => Some(Self::Expired),
            _ => None,
        }
    }
}
