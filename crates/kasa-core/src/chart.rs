//! Kasa's chart of accounts: the one registry of the account kinds and transfer kinds that
//! domain commands use in Kasa's own books, with their ledger codes and how their ids are
//! made. `docs/accounts.md` is checked against it by a test (`tests/chart.rs`).
//!
//! Kasa's books are a ledger of their own ([`crate::State::books`]), apart from the operators'
//! TigerBeetle-compatible ledger API: the two are separate id namespaces, so any id a client
//! picks is valid there and can never collide with a wallet, a system account or a domain
//! transfer, and no operator transfer can move money in or out of a wallet behind the
//! wallet's rules (operators adjust wallets with an audited wallet command instead).
//!
//! An id in the books is `kind << 64 | number`: the kind from this registry, and a number
//! that the kind defines (the user id for a wallet, the currency's numeric code for a system
//! account, the funding id for a funding's transfers).

use crate::ledger::{Account, AccountFlags, Ledger};
use crate::money::Currency;

/// A kind of account in Kasa's books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountKind {
    /// The kind number: the high 64 bits of the id.
    pub number: u64,
    /// The ledger account code.
    pub code: u16,
    /// A short name.
    pub name: &'static str,
    /// What the number in the id is.
    pub per: &'static str,
    /// The account's flags.
    pub flags: u16,
    /// What its balance means.
    pub meaning: &'static str,
}

/// A kind of transfer in Kasa's books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferKind {
    /// The kind number: the high 64 bits of the id.
    pub number: u64,
    /// The ledger transfer code (0 for posts and voids, which take their pending transfer's).
    pub code: u16,
    /// A short name.
    pub name: &'static str,
    /// What the number in the id is.
    pub per: &'static str,
    /// What it moves.
    pub meaning: &'static str,
}

/// A user's wallet: the money a user holds. It can never go negative, and keeps a balance
/// history for the user's transaction list.
pub const WALLET: AccountKind = AccountKind {
    number: 1,
    code: 1001,
    name: "wallet",
    per: "user id",
    flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY,
    meaning: "credit: the money the user holds",
};
/// The mirror of what Kasa holds at partner banks for its users.
pub const BANK_OMNIBUS: AccountKind = AccountKind {
    number: 2,
    code: 2001,
    name: "bank omnibus",
    per: "currency",
    flags: 0,
    meaning: "debit: the money Kasa holds at partner banks for its users",
};
/// Money sent to numbers without a wallet, waiting for them to sign up.
pub const REMITTANCE_HOLDING: AccountKind = AccountKind {
    number: 3,
    code: 2002,
    name: "remittance holding",
    per: "currency",
    flags: 0,
    meaning: "credit: money waiting for a number to sign up (zero once every claim is paid out)",
};
/// Fees Kasa earned.
pub const FEE_INCOME: AccountKind = AccountKind {
    number: 9,
    code: 2003,
    name: "fee income",
    per: "currency",
    flags: 0,
    meaning: "credit: fees Kasa earned (the money itself is still at the partner banks)",
};
/// The other side of operators' audited wallet adjustments.
pub const ADJUSTMENTS: AccountKind = AccountKind {
    number: 11,
    code: 2004,
    name: "operator adjustments",
    per: "currency",
    flags: 0,
    meaning: "debit: what operators credited to wallets, less what they debited",
};

/// What Kasa owes a merchant: captures less refunds, fees and payouts. It may go negative
/// (a refund after the money was paid out); the next payouts make it up first.
pub const MERCHANT_BALANCE: AccountKind = AccountKind {
    number: 13,
    code: 1002,
    name: "merchant balance",
    per: "merchant id",
    flags: 0,
    meaning: "credit: what Kasa owes the merchant (captures - refunds - fees - payouts)",
};

/// A partner wallet network's account in one currency: what it owes Kasa (debit) or Kasa
/// owes it (credit), netted by the settlement windows. Its id number is
/// [`partner_account_number`].
pub const PARTNER: AccountKind = AccountKind {
    number: 21,
    code: 1003,
    name: "partner",
    per: "partner id × 65,536 + currency",
    flags: 0,
    meaning: "debit: what the partner owes Kasa in the currency (payments - refunds - its fees - settlements)",
};
/// Kasa's foreign exchange position in one currency: every conversion passes through the
/// positions of its two currencies, a linked pair of transfers, never one transfer across
/// ledgers.
pub const FX_POSITION: AccountKind = AccountKind {
    number: 22,
    code: 2005,
    name: "FX position",
    per: "currency",
    flags: 0,
    meaning: "credit: the currency Kasa took in by conversions, less what it paid out",
};
/// What Kasa pays partners for the payments they bring.
pub const PARTNER_FEES: AccountKind = AccountKind {
    number: 23,
    code: 2006,
    name: "partner fees",
    per: "currency",
    flags: 0,
    meaning: "debit: fees Kasa owes partners on their payments, less those returned with refunds",
};

/// Every account kind, in kind order.
pub const ACCOUNT_KINDS: &[AccountKind] = &[
    WALLET,
    BANK_OMNIBUS,
    REMITTANCE_HOLDING,
    FEE_INCOME,
    ADJUSTMENTS,
    MERCHANT_BALANCE,
    PARTNER,
    FX_POSITION,
    PARTNER_FEES,
];

/// The id number of partner `partner_id`'s account in `currency`.
pub fn partner_account_number(partner_id: u64, currency: Currency) -> u64 {
    (partner_id << 16) | u64::from(currency.numeric())
}

/// The pending transfer of a top-up (omnibus to wallet) or withdrawal (wallet to omnibus).
pub const FUNDING_RESERVE: TransferKind = TransferKind {
    number: 4,
    code: 3001,
    name: "funding reservation",
    per: "funding id",
    meaning: "pending: omnibus to wallet (top-up, code 3001) or wallet to omnibus (withdrawal with its fee, code 3002)",
};
/// Transfer code of a withdrawal's reservation (a top-up's is [`FUNDING_RESERVE`]'s).
pub const CODE_WITHDRAWAL: u16 = 3002;
/// The post or void of a funding reservation, by the bank's answer.
pub const FUNDING_RESOLVE: TransferKind = TransferKind {
    number: 5,
    code: 0,
    name: "funding settlement",
    per: "funding id",
    meaning: "post (the bank approved) or void (declined, or it never took the request)",
};
/// A remittance: wallet to wallet, or the pending hold for a number without a wallet.
pub const REMITTANCE: TransferKind = TransferKind {
    number: 6,
    code: 3003,
    name: "remittance",
    per: "remittance id",
    meaning: "posted wallet to wallet, or pending wallet to holding (48 h)",
};
/// The post (claim) or void (cancel) of a hold.
pub const REMITTANCE_RESOLVE: TransferKind = TransferKind {
    number: 7,
    code: 0,
    name: "hold resolution",
    per: "remittance id",
    meaning: "post when the number signs up, void when the sender cancels",
};
/// A claimed hold paid out to the new wallet.
pub const REMITTANCE_PAYOUT: TransferKind = TransferKind {
    number: 8,
    code: 3004,
    name: "hold payout",
    per: "remittance id",
    meaning: "holding to the new wallet, linked with the post of the hold",
};
/// A withdrawal's fee moved to fee income when the bank pays out.
pub const WITHDRAWAL_FEE: TransferKind = TransferKind {
    number: 10,
    code: 3005,
    name: "withdrawal fee",
    per: "funding id",
    meaning: "omnibus to fee income, linked with the post of the withdrawal",
};
/// An operator's audited adjustment of a wallet.
pub const ADJUSTMENT: TransferKind = TransferKind {
    number: 12,
    code: 3006,
    name: "adjustment",
    per: "adjustment id",
    meaning: "adjustments to wallet (credit) or wallet to adjustments (debit)",
};

/// A user's approval of a payment: the money reserved for the merchant.
pub const PAYMENT: TransferKind = TransferKind {
    number: 14,
    code: 3007,
    name: "payment authorization",
    per: "payment id",
    meaning: "pending: wallet to merchant balance (timeout: 7 days for manual capture)",
};
/// The capture (post, the whole amount or part of it) or void of an approved payment.
pub const PAYMENT_RESOLVE: TransferKind = TransferKind {
    number: 15,
    code: 0,
    name: "payment capture or void",
    per: "payment id",
    meaning: "post at capture (a partial post releases the rest), void at cancel",
};
/// Kasa's fee on a captured payment.
pub const PAYMENT_FEE: TransferKind = TransferKind {
    number: 16,
    code: 3008,
    name: "payment fee",
    per: "payment id",
    meaning: "merchant balance to fee income, linked with the capture",
};
/// A refund of a captured payment, to the wallet it came from.
pub const REFUND: TransferKind =
    TransferKind { number: 17, code: 3009, name: "refund", per: "refund id", meaning: "merchant balance to wallet" };
/// The part of the payment's fee a refund gives back to the merchant (pro rata).
pub const REFUND_FEE: TransferKind = TransferKind {
    number: 18,
    code: 3010,
    name: "refund fee return",
    per: "refund id",
    meaning: "fee income to merchant balance, linked with the refund",
};
/// A payout of a merchant's balance to its settlement bank account.
pub const PAYOUT: TransferKind = TransferKind {
    number: 19,
    code: 3011,
    name: "payout",
    per: "payout id",
    meaning: "pending: merchant balance to omnibus, until the bank answers",
};
/// The post (the bank paid) or void (it failed) of a payout.
pub const PAYOUT_RESOLVE: TransferKind = TransferKind {
    number: 20,
    code: 0,
    name: "payout settlement",
    per: "payout id",
    meaning: "post (the bank paid the merchant) or void (it failed; the money stays owed)",
};

/// A partner's payment converted, the currency sold: the partner's account to the FX
/// position in its settlement currency (linked with [`CONVERSION_BUY`]).
pub const CONVERSION_SELL: TransferKind = TransferKind {
    number: 24,
    code: 3012,
    name: "conversion, sold",
    per: "partner payment id",
    meaning: "partner (settlement currency) to FX position, linked with the won side",
};
/// A partner's payment converted, the won bought: the FX position to the partner's won
/// account, from which the merchant's payment is paid.
pub const CONVERSION_BUY: TransferKind = TransferKind {
    number: 25,
    code: 3013,
    name: "conversion, bought",
    per: "partner payment id",
    meaning: "FX position (KRW) to partner (KRW), linked with the sold side",
};
/// Kasa's fee to a partner on its payment.
pub const PARTNER_FEE: TransferKind = TransferKind {
    number: 26,
    code: 3014,
    name: "partner fee",
    per: "partner payment id",
    meaning: "partner fees to partner, in the settlement currency",
};
/// A refund (or cancel) of a partner's payment converted back at the payment's rate, the won
/// side: the partner's won account to the FX position.
pub const REFUND_CONVERSION_SELL: TransferKind = TransferKind {
    number: 27,
    code: 3015,
    name: "refund conversion, sold",
    per: "partner refund id",
    meaning: "partner (KRW) to FX position (KRW), linked with the settlement side",
};
/// A refund converted back, the settlement currency's side.
pub const REFUND_CONVERSION_BUY: TransferKind = TransferKind {
    number: 28,
    code: 3016,
    name: "refund conversion, bought",
    per: "partner refund id",
    meaning: "FX position to partner, in the settlement currency",
};
/// The part of a partner's fee a refund takes back (pro rata).
pub const PARTNER_FEE_RETURN: TransferKind = TransferKind {
    number: 29,
    code: 3017,
    name: "partner fee return",
    per: "partner refund id",
    meaning: "partner to partner fees, in the settlement currency",
};
/// The settlement of a closed window: the net of its items, between the partner's account
/// and the bank omnibus, pending until the bank answers.
pub const SETTLEMENT: TransferKind = TransferKind {
    number: 30,
    code: 3018,
    name: "settlement",
    per: "settlement window id",
    meaning: "pending: omnibus to partner (the partner pays Kasa) or partner to omnibus (Kasa pays)",
};
/// The post (the money moved) or void (it did not) of a settlement.
pub const SETTLEMENT_RESOLVE: TransferKind = TransferKind {
    number: 31,
    code: 0,
    name: "settlement resolution",
    per: "settlement window id",
    meaning: "post when the bank moved the money, void when it failed",
};

/// A user's payment at a partner's merchant abroad, the won side: the wallet to the won FX
/// position, pending until the partner answers (linked with [`OVERSEAS_CONVERSION`]).
pub const OVERSEAS_PAYMENT: TransferKind = TransferKind {
    number: 32,
    code: 3019,
    name: "overseas payment",
    per: "overseas payment id",
    meaning: "pending: wallet to FX position (KRW), until the partner's answer",
};
/// The foreign side of an overseas payment: what Kasa owes the partner.
pub const OVERSEAS_CONVERSION: TransferKind = TransferKind {
    number: 33,
    code: 3020,
    name: "overseas conversion",
    per: "overseas payment id",
    meaning: "pending: FX position to partner, in the merchant's currency",
};
/// The post (paid) or void (failed, canceled) of an overseas payment's won side.
pub const OVERSEAS_RESOLVE: TransferKind = TransferKind {
    number: 34,
    code: 0,
    name: "overseas payment resolution",
    per: "overseas payment id",
    meaning: "post when the partner paid its merchant, void when it failed or was canceled",
};
/// The post or void of an overseas payment's foreign side.
pub const OVERSEAS_CONVERSION_RESOLVE: TransferKind = TransferKind {
    number: 35,
    code: 0,
    name: "overseas conversion resolution",
    per: "overseas payment id",
    meaning: "post or void, with the won side",
};
/// A refund from abroad, the won side: back to the wallet at the payment's rate.
pub const OVERSEAS_REFUND: TransferKind = TransferKind {
    number: 36,
    code: 3021,
    name: "overseas refund",
    per: "overseas refund id",
    meaning: "FX position (KRW) to wallet, linked with the foreign side",
};
/// A refund from abroad, the foreign side: the partner owes it back.
pub const OVERSEAS_REFUND_CONVERSION: TransferKind = TransferKind {
    number: 37,
    code: 3022,
    name: "overseas refund conversion",
    per: "overseas refund id",
    meaning: "partner to FX position, in the merchant's currency",
};

/// Every transfer kind, in kind order.
pub const TRANSFER_KINDS: &[TransferKind] = &[
    FUNDING_RESERVE,
    FUNDING_RESOLVE,
    REMITTANCE,
    REMITTANCE_RESOLVE,
    REMITTANCE_PAYOUT,
    WITHDRAWAL_FEE,
    ADJUSTMENT,
    PAYMENT,
    PAYMENT_RESOLVE,
    PAYMENT_FEE,
    REFUND,
    REFUND_FEE,
    PAYOUT,
    PAYOUT_RESOLVE,
    CONVERSION_SELL,
    CONVERSION_BUY,
    PARTNER_FEE,
    REFUND_CONVERSION_SELL,
    REFUND_CONVERSION_BUY,
    PARTNER_FEE_RETURN,
    SETTLEMENT,
    SETTLEMENT_RESOLVE,
    OVERSEAS_PAYMENT,
    OVERSEAS_CONVERSION,
    OVERSEAS_RESOLVE,
    OVERSEAS_CONVERSION_RESOLVE,
    OVERSEAS_REFUND,
    OVERSEAS_REFUND_CONVERSION,
];

/// The id of number `n` of a kind.
pub fn id(kind_number: u64, n: u64) -> u128 {
    (u128::from(kind_number) << 64) | u128::from(n)
}

/// The (kind number, number) of an id in the books.
pub fn id_parts(id: u128) -> (u64, u64) {
    ((id >> 64) as u64, id as u64)
}

impl AccountKind {
    /// The account id of number `n` of this kind.
    pub fn id(self, n: u64) -> u128 {
        id(self.number, n)
    }

    /// The id of this kind's system account for `currency`.
    pub fn system_id(self, currency: Currency) -> u128 {
        self.id(u64::from(currency.numeric()))
    }

    /// Whether `account_id` is of this kind; gives its number.
    pub fn number_of(self, account_id: u128) -> Option<u64> {
        let (kind, n) = id_parts(account_id);
        (kind == self.number).then_some(n)
    }

    /// The account record of number `n`, on `currency`'s ledger.
    pub fn account(self, n: u64, currency: Currency, user_data_64: u64) -> Account {
        Account {
            id: self.id(n),
            ledger: currency.ledger(),
            code: self.code,
            flags: AccountFlags(self.flags),
            user_data_64,
            ..Default::default()
        }
    }
}

impl TransferKind {
    /// The transfer id of number `n` of this kind.
    pub fn id(self, n: u64) -> u128 {
        id(self.number, n)
    }

    /// Whether `transfer_id` is of this kind; gives its number.
    pub fn number_of(self, transfer_id: u128) -> Option<u64> {
        let (kind, n) = id_parts(transfer_id);
        (kind == self.number).then_some(n)
    }
}

/// Creates `kind`'s system account for `currency` the first time it is needed. The books
/// are Kasa's alone, so the id is always free or already this account.
pub fn ensure_system_account(books: &mut Ledger, kind: AccountKind, currency: Currency, now: u64) {
    let id = kind.system_id(currency);
    if books.account(id).is_some() {
        return;
    }
    let outcome = books.create_accounts(&[kind.account(u64::from(currency.numeric()), currency, 0)], now);
    assert!(outcome[0].result.is_success(), "the books refused system account {}: {:?}", kind.name, outcome[0]);
}

/// The chart as Markdown tables, as `docs/accounts.md` shows it (a test checks the document
/// holds exactly these tables, so the two cannot drift apart).
pub fn markdown_tables() -> String {
    let flags = |bits: u16| {
        let names: Vec<String> = crate::ledger::AccountFlags::NAMES
            .iter()
            .filter(|(_, bit)| bits & bit != 0)
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let mut out =
        String::from("| Kind | Account | Code | Id number | Flags | Balance |\n|---:|---|---:|---|---|---|\n");
    for k in ACCOUNT_KINDS {
        out +=
            &format!("| {} | {} | {} | {} | {} | {} |\n", k.number, k.name, k.code, k.per, flags(k.flags), k.meaning);
    }
    out += "\n| Kind | Transfer | Code | Id number | What it moves |\n|---:|---|---:|---|---|\n";
    for k in TRANSFER_KINDS {
        let code = if k.code == 0 { "its pending transfer's".to_string() } else { k.code.to_string() };
        out += &format!("| {} | {} | {} | {} | {} |\n", k.number, k.name, code, k.per, k.meaning);
    }
    out
}
