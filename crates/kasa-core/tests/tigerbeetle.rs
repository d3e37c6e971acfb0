//! The ledger against TigerBeetle's own answers: scenarios written out as data, each a few
//! batches of accounts and transfers with the result TigerBeetle gives every item and the
//! balances it leaves, and each with the place in TigerBeetle's source, tests or documentation
//! its answers come from. Read at TigerBeetle commit 52ad553f (after release 0.17.8) and
//! checked against release 0.16.78 (commit 009a5f69); `/work/notes/tigerbeetle-semantics.md`
//! has the rules with their line numbers. Where a scenario is a translation of one of
//! TigerBeetle's own tests (`src/state_machine_tests.zig`), its ids and amounts are kept; its
//! `setup` lines, which write balances directly, become transfers from bank accounts.
//!
//! Kasa's result names are TigerBeetle's, except `ok` for `created`. A scenario marked
//! `differs:` is one where Kasa answers otherwise on purpose; the line says what TigerBeetle
//! answers and the expected results are Kasa's. There is one such difference: an `exists`
//! inside a linked chain counts as a success here and fails the chain in TigerBeetle. Imported
//! events are not supported: their flags are `reserved_flag` here.
//!
//! The format, one statement a line (`//` starts a comment):
//!
//! ```text
//! == name                          a new scenario, on an empty ledger
//! source: where the answers come from
//! differs: what TigerBeetle answers instead (optional)
//! start <ns>                       the first batch's timestamp (optional, before any batch)
//! account <id> [opts] -> result
//! transfer <id> <debit> <credit> <amount> [opts] -> result   (ledger and code 1 by default)
//! post <id> <pending_id> <amount> [opts] -> result            (other fields 0 by default)
//! void <id> <pending_id> <amount> [opts] -> result
//! commit                           the items above, as one create_accounts or create_transfers
//! tick <seconds>                   time moves on, and an empty batch lets expiries run
//! balance <account> <debits_pending> <debits_posted> <credits_pending> <credits_posted> [closed]
//! amount <transfer> <amount>       the transfer is stored and moved this amount
//! user_data <transfer> <128> <64> <32>
//! missing <transfer>               no transfer has this id
//! no_account <account>
//! status <pending transfer> pending|posted|voided|expired
//! restore                          the state is replaced by its decoded snapshot
//! ```
//!
//! Options are flags (`LNK`, `D<C`, `C<D`, `HIST`, `CLSD` for accounts; `LNK`, `PEN`, `POS`,
//! `VOI`, `BDR`, `BCR`, `CDR`, `CCR` for transfers: the abbreviations of TigerBeetle's tests)
//! and fields: `ledger= code= ud128= ud64= ud32= ts= flags=` (raw extra flag bits), `reserved=
//! dp= dpo= cp= cpo=` (accounts), `timeout= pending_id= dr= cr=` (transfers). Numbers are
//! decimal, `max` (2^128-1) or `2^N`, optionally followed by `-N` or `+N`.

mod support;

use kasa_core::{Account, AccountFlags as AF, State, Transfer, TransferFlags as TF};
use support::{Harness, SECOND};

/// Runs every scenario and reports every disagreement, not only the first.
#[test]
fn the_ledger_answers_as_tigerbeetle_does() {
    let scenarios = parse(SCENARIOS);
    assert!(scenarios.len() >= 60, "only {} scenarios", scenarios.len());
    let mut failures = Vec::new();
    for s in &scenarios {
        assert!(!s.source.is_empty(), "scenario '{}' says nowhere where its answers come from", s.name);
        if let Err(e) = run(s) {
            failures.push(format!("scenario '{}' ({}): {e}", s.name, s.source));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios disagree:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
}

struct Scenario {
    name: String,
    source: String,
    /// The first batch's timestamp, if not the harness's default.
    start: Option<u64>,
    steps: Vec<(usize, Step)>,
}

enum Step {
    Account(Account, String),
    Transfer(Transfer, String),
    Commit,
    Tick(u64),
    Balance(u128, [u128; 4], bool),
    Amount(u128, u128),
    UserData(u128, u128, u64, u32),
    Missing(u128),
    NoAccount(u128),
    Status(u128, String),
    Restore,
}

fn number(text: &str) -> u128 {
    let (base, offset) = match text.find(['-', '+']) {
        Some(at) => (&text[..at], Some((&text[at..at + 1], text[at + 1..].parse::<u128>().expect(text)))),
        None => (text, None),
    };
    let value = if base == "max" {
        u128::MAX
    } else if let Some(power) = base.strip_prefix("2^") {
        1u128 << power.parse::<u32>().expect(text)
    } else if let Some(hex) = base.strip_prefix("0x") {
        u128::from_str_radix(hex, 16).expect(text)
    } else {
        base.parse().expect(text)
    };
    match offset {
        Some(("-", n)) => value - n,
        Some((_, n)) => value + n,
        None => value,
    }
}

fn account_flag(word: &str) -> Option<u16> {
    Some(match word {
        "LNK" => AF::LINKED,
        "D<C" => AF::DEBITS_MUST_NOT_EXCEED_CREDITS,
        "C<D" => AF::CREDITS_MUST_NOT_EXCEED_DEBITS,
        "HIST" => AF::HISTORY,
        "CLSD" => AF::CLOSED,
        _ => return None,
    })
}

fn transfer_flag(word: &str) -> Option<u16> {
    Some(match word {
        "LNK" => TF::LINKED,
        "PEN" => TF::PENDING,
        "POS" => TF::POST_PENDING_TRANSFER,
        "VOI" => TF::VOID_PENDING_TRANSFER,
        "BDR" => TF::BALANCING_DEBIT,
        "BCR" => TF::BALANCING_CREDIT,
        "CDR" => TF::CLOSING_DEBIT,
        "CCR" => TF::CLOSING_CREDIT,
        _ => return None,
    })
}

/// Applies flag words and `key=value` options to an account or a transfer: the fields both
/// have, then the listed fields of one kind.
macro_rules! apply_options {
    ($o:ident, $words:expr, $flag_of:expr, { $($key:literal => $field:ident),* $(,)? }) => {
        for word in $words {
            if let Some(flag) = $flag_of(word) {
                $o.flags.0 |= flag;
                continue;
            }
            let (key, value) = word.split_once('=').unwrap_or_else(|| panic!("unknown option '{word}'"));
            let n = number(value);
            match key {
                "ledger" => $o.ledger = n as u32,
                "code" => $o.code = n as u16,
                "ud128" => $o.user_data_128 = n,
                "ud64" => $o.user_data_64 = n as u64,
                "ud32" => $o.user_data_32 = n as u32,
                "ts" => $o.timestamp = n as u64,
                "flags" => $o.flags.0 |= n as u16,
                $($key => $o.$field = n as _,)*
                _ => panic!("unknown field '{key}'"),
            }
        }
    };
}

fn parse_account(words: &[&str]) -> Account {
    let mut a = Account { id: number(words[0]), ledger: 1, code: 1, ..Default::default() };
    apply_options!(a, &words[1..], account_flag, {
        "reserved" => reserved,
        "dp" => debits_pending,
        "dpo" => debits_posted,
        "cp" => credits_pending,
        "cpo" => credits_posted,
    });
    a
}

fn parse_transfer(verb: &str, words: &[&str]) -> Transfer {
    let (mut t, rest) = match verb {
        "transfer" => (
            Transfer {
                id: number(words[0]),
                debit_account_id: number(words[1]),
                credit_account_id: number(words[2]),
                amount: number(words[3]),
                ledger: 1,
                code: 1,
                ..Default::default()
            },
            &words[4..],
        ),
        _ => {
            let flag = if verb == "post" { TF::POST_PENDING_TRANSFER } else { TF::VOID_PENDING_TRANSFER };
            let t = Transfer {
                id: number(words[0]),
                pending_id: number(words[1]),
                amount: number(words[2]),
                flags: kasa_core::TransferFlags(flag),
                ..Default::default()
            };
            (t, &words[3..])
        }
    };
    apply_options!(t, rest, transfer_flag, {
        "timeout" => timeout,
        "pending_id" => pending_id,
        "dr" => debit_account_id,
        "cr" => credit_account_id,
    });
    t
}

fn parse(text: &str) -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            scenarios.push(Scenario { name: name.into(), source: String::new(), start: None, steps: Vec::new() });
            continue;
        }
        let s = scenarios.last_mut().expect("a statement before the first scenario");
        if let Some(source) = line.strip_prefix("source:") {
            s.source = source.trim().into();
            continue;
        }
        if line.starts_with("differs:") {
            continue;
        }
        let (statement, result) = match line.split_once("->") {
            Some((statement, result)) => (statement.trim(), result.trim().to_string()),
            None => (line, String::new()),
        };
        let words: Vec<&str> = statement.split_whitespace().collect();
        let step = match words[0] {
            "start" => {
                assert!(s.steps.is_empty(), "line {}: start after the first step", n + 1);
                s.start = Some(number(words[1]) as u64);
                continue;
            }
            "account" => Step::Account(parse_account(&words[1..]), result),
            "transfer" | "post" | "void" => Step::Transfer(parse_transfer(words[0], &words[1..]), result),
            "commit" => Step::Commit,
            "tick" => Step::Tick(number(words[1]) as u64),
            "balance" => Step::Balance(
                number(words[1]),
                [number(words[2]), number(words[3]), number(words[4]), number(words[5])],
                words.get(6) == Some(&"closed"),
            ),
            "amount" => Step::Amount(number(words[1]), number(words[2])),
            "user_data" => {
                Step::UserData(number(words[1]), number(words[2]), number(words[3]) as u64, number(words[4]) as u32)
            }
            "missing" => Step::Missing(number(words[1])),
            "no_account" => Step::NoAccount(number(words[1])),
            "status" => Step::Status(number(words[1]), words[2].into()),
            "restore" => Step::Restore,
            other => panic!("line {}: unknown statement '{other}'", n + 1),
        };
        s.steps.push((n + 1, step));
    }
    scenarios
}

/// Runs one scenario; the error names the first statement whose answer differs.
fn run(s: &Scenario) -> Result<(), String> {
    let mut h = match s.start {
        Some(start) => Harness::starting_at(start),
        None => Harness::default(),
    };
    let (mut accounts, mut transfers, mut expected, mut first_line) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (line, step) in &s.steps {
        let at = |what: String| format!("line {line}: {what}");
        match step {
            Step::Account(a, result) => {
                first_line = if expected.is_empty() { *line } else { first_line };
                accounts.push(*a);
                expected.push(result.clone());
            }
            Step::Transfer(t, result) => {
                first_line = if expected.is_empty() { *line } else { first_line };
                transfers.push(*t);
                expected.push(result.clone());
            }
            Step::Commit => {
                assert!(
                    accounts.is_empty() || transfers.is_empty(),
                    "line {line}: a batch mixes accounts and transfers"
                );
                let actual = if accounts.is_empty() {
                    h.transfers(std::mem::take(&mut transfers))
                } else {
                    h.accounts(std::mem::take(&mut accounts))
                };
                if actual != expected {
                    return Err(format!("batch from line {first_line}: results {actual:?}, expected {expected:?}"));
                }
                expected.clear();
            }
            Step::Tick(seconds) => {
                h.advance(seconds * SECOND);
                h.apply(vec![]);
            }
            Step::Balance(id, want, closed) => {
                let a = h.state.ledger().account(*id).ok_or_else(|| at(format!("no account {id}")))?;
                let got = [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted];
                let got_closed = a.flags.has(AF::CLOSED);
                if got != *want || got_closed != *closed {
                    return Err(at(format!(
                        "account {id} has {got:?} closed {got_closed}, expected {want:?} closed {closed}"
                    )));
                }
            }
            Step::Amount(id, amount) => {
                let t = h.state.ledger().transfer(*id).ok_or_else(|| at(format!("no transfer {id}")))?;
                if t.amount != *amount {
                    return Err(at(format!("transfer {id} moved {}, expected {amount}", t.amount)));
                }
            }
            Step::UserData(id, u128_, u64_, u32_) => {
                let t = h.state.ledger().transfer(*id).ok_or_else(|| at(format!("no transfer {id}")))?;
                let got = (t.user_data_128, t.user_data_64, t.user_data_32);
                if got != (*u128_, *u64_, *u32_) {
                    return Err(at(format!("transfer {id} has user data {got:?}")));
                }
            }
            Step::Missing(id) => {
                if h.state.ledger().transfer(*id).is_some() {
                    return Err(at(format!("transfer {id} exists")));
                }
            }
            Step::NoAccount(id) => {
                if h.state.ledger().account(*id).is_some() {
                    return Err(at(format!("account {id} exists")));
                }
            }
            Step::Status(id, want) => {
                let got = h.state.ledger().pending_status(*id).map(|s| s.name());
                if got != Some(want.as_str()) {
                    return Err(at(format!("transfer {id} has pending status {got:?}, expected {want}")));
                }
            }
            Step::Restore => {
                let restored = State::decode_snapshot(&h.state.encode_snapshot()).map_err(|e| at(e.to_string()))?;
                if restored.hash() != h.state.hash() {
                    return Err(at("the restored snapshot hashes differently".into()));
                }
                h.state = restored;
                h.state.audit_limits(true);
            }
        }
    }
    assert!(expected.is_empty(), "scenario '{}' ends with items that are never committed", s.name);
    Ok(())
}

const SCENARIOS: &str = r#"
// ---------------------------------------------------------------------------------------------
// Accounts. Sources: src/state_machine.zig `create_account` (line 3613), `create_account_exists`
// (line 3691) and the batch loop `execute_create` (line 3002); docs/reference/requests/create_accounts.md.

== create_accounts: every result in precedence order
source: state_machine_tests.zig test "create_accounts" (line 1088), with `flags=0x400` for its padding flag
account 1 ud128=2 ud64=2 ud32=2 ledger=3 code=4 -> ok
account 0 dp=1 dpo=1 cp=1 cpo=1 reserved=1 ledger=0 code=0 D<C C<D flags=0x400 ts=1 -> timestamp_must_be_zero
account 0 dp=1 dpo=1 cp=1 cpo=1 reserved=1 ledger=0 code=0 D<C C<D flags=0x400 -> reserved_field
account 0 dp=1 dpo=1 cp=1 cpo=1 ledger=0 code=0 D<C C<D flags=0x400 -> reserved_flag
account 0 dp=1 dpo=1 cp=1 cpo=1 ledger=0 code=0 D<C C<D -> id_must_not_be_zero
account max dp=1 dpo=1 cp=1 cpo=1 ledger=0 code=0 D<C C<D -> id_must_not_be_int_max
account 1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 D<C -> exists_with_different_flags
account 1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 C<D -> exists_with_different_flags
account 1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 -> exists_with_different_user_data_128
account 1 ud128=2 ud64=1 ud32=1 ledger=9 code=9 -> exists_with_different_user_data_64
account 1 ud128=2 ud64=2 ud32=1 ledger=9 code=9 -> exists_with_different_user_data_32
account 1 ud128=2 ud64=2 ud32=2 ledger=9 code=9 -> exists_with_different_ledger
account 1 ud128=2 ud64=2 ud32=2 ledger=3 code=9 -> exists_with_different_code
account 1 ud128=2 ud64=2 ud32=2 ledger=3 code=4 -> exists
account 2 dp=1 dpo=1 cp=1 cpo=1 ud128=1 ud64=1 ud32=1 ledger=0 code=0 D<C C<D -> flags_are_mutually_exclusive
account 2 dp=1 dpo=1 cp=1 cpo=1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 D<C -> debits_pending_must_be_zero
account 2 dpo=1 cp=1 cpo=1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 D<C -> debits_posted_must_be_zero
account 2 cp=1 cpo=1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 D<C -> credits_pending_must_be_zero
account 2 cpo=1 ud128=1 ud64=1 ud32=1 ledger=9 code=9 D<C -> credits_posted_must_be_zero
account 2 ud128=1 ud64=1 ud32=1 ledger=0 code=0 D<C -> ledger_must_not_be_zero
account 2 ud128=1 ud64=1 ud32=1 ledger=9 code=0 D<C -> code_must_not_be_zero
commit
balance 1 0 0 0 0
no_account 2

== create_accounts: the imported flag is not supported and is a reserved flag
source: state_machine.zig line 3624 (`flags.padding != 0` is reserved_flag); Kasa does not support imported events (bit 4, TigerBeetle's `imported`), see the ledger's module documentation
account 1 flags=0x10 -> reserved_flag
account 1 -> ok
commit

== create_accounts: exists compares the closed flag
source: state_machine.zig line 3693 (create_account_exists compares all 16 flag bits); state_machine_tests.zig test "create_accounts: closed accounts" (line 2115)
account 1 CLSD -> ok
account 1 -> exists_with_different_flags
account 1 CLSD -> exists
account 2 -> ok
account 2 CLSD -> exists_with_different_flags
commit
balance 1 0 0 0 0 closed
balance 2 0 0 0 0

== create_accounts: an account closed by a closing transfer no longer matches its creation
source: state_machine.zig line 3693 (flags compared bit for bit) and line 3944 (a closing transfer sets `closed` on the stored account); line 4255 (a void clears it)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 0 PEN CDR -> ok
commit
account 1 -> exists_with_different_flags
account 1 CLSD -> exists
commit
void 11 10 0 -> ok
commit
account 1 -> exists
commit

== create_accounts: exists compares the linked flag
source: state_machine_tests.zig test "linked accounts" (line 1127): `account A1 ... L1 C2 LNK exists_with_different_flags` then `linked_event_failed`
account 1 -> ok
commit
account 1 code=2 LNK -> exists_with_different_flags
account 2 -> linked_event_failed
commit
account 2 -> ok
account 3 LNK -> linked_event_failed
account 1 ledger=2 -> exists_with_different_ledger
account 3 LNK -> ok
account 4 -> ok
commit
balance 3 0 0 0 0
balance 4 0 0 0 0

== create_accounts: a failed account id is not remembered
source: state_machine.zig line 3234 (`transient_error` returns at once for create_accounts: their results do not depend on the state at the time)
account 1 ledger=0 -> ledger_must_not_be_zero
account 1 LNK -> linked_event_failed
account 2 code=0 -> code_must_not_be_zero
commit
account 1 -> ok
account 2 -> ok
commit

== create_accounts: exists inside a linked chain
source: state_machine_tests.zig test "linked accounts" (line 1127), second check; state_machine.zig line 3116 (`if (result_status != .created)` breaks the chain)
differs: TigerBeetle answers linked_event_failed, linked_event_failed, exists, linked_event_failed and creates nothing; in Kasa an item that exists keeps its chain going
account 7 -> ok
account 1 LNK -> ok
account 2 LNK -> ok
account 1 LNK -> exists
account 3 -> ok
commit
balance 3 0 0 0 0

== create_accounts: linked_event_chain_open
source: state_machine_tests.zig test "linked_event_chain_open" (line 1186)
account 1 LNK -> ok
account 2 LNK -> ok
account 3 -> ok
account 4 LNK -> linked_event_failed
account 5 LNK -> linked_event_chain_open
commit
balance 3 0 0 0 0
no_account 4
no_account 5

== create_accounts: linked_event_chain_open for an already failed chain
source: state_machine_tests.zig test "linked_event_chain_open for an already failed batch" (line 1207); state_machine.zig line 3033 (the open chain is checked before `chain_broken`)
account 1 -> ok
account 2 LNK -> linked_event_failed
account 1 LNK -> exists_with_different_flags
account 3 LNK -> linked_event_chain_open
commit
no_account 2
no_account 3

== create_accounts: linked_event_chain_open for a batch of one
source: state_machine_tests.zig test "linked_event_chain_open for a batch of 1" (line 1225)
account 1 LNK -> linked_event_chain_open
commit
no_account 1

// ---------------------------------------------------------------------------------------------
// Transfers: precedence. Sources: state_machine.zig `create_transfer` (line 3719),
// docs/reference/requests/create_transfers.md (results "in order of descending precedence").

== create_transfers: checks before the accounts are read, in precedence order
source: state_machine_tests.zig test "create_transfers/lookup_transfers" (line 1239), first batch; `flags=0x1000` for its padding flag
account 1 -> ok
account 2 ledger=2 -> ok
account 3 -> ok
account 4 D<C -> ok
account 5 C<D -> ok
commit
transfer 0 0 0 9 pending_id=1 ledger=0 code=0 PEN flags=0x1000 ts=1 -> timestamp_must_be_zero
transfer 0 0 0 9 pending_id=1 ledger=0 code=0 PEN flags=0x1000 -> reserved_flag
transfer 0 0 0 9 pending_id=1 ledger=0 code=0 PEN -> id_must_not_be_zero
transfer max 0 0 9 pending_id=1 ledger=0 code=0 PEN -> id_must_not_be_int_max
transfer 1 0 0 9 pending_id=1 ledger=0 code=0 PEN -> debit_account_id_must_not_be_zero
transfer 1 max 0 9 pending_id=1 ledger=0 code=0 PEN -> debit_account_id_must_not_be_int_max
transfer 1 8 0 9 pending_id=1 ledger=0 code=0 PEN -> credit_account_id_must_not_be_zero
transfer 1 8 max 9 pending_id=1 ledger=0 code=0 PEN -> credit_account_id_must_not_be_int_max
transfer 1 8 8 9 pending_id=1 ledger=0 code=0 PEN -> accounts_must_be_different
transfer 1 8 9 9 pending_id=1 ledger=0 code=0 PEN -> pending_id_must_be_zero
transfer 1 8 9 9 timeout=1 ledger=0 code=0 -> timeout_reserved_for_pending_transfer
transfer 1 8 9 9 ledger=0 code=0 CDR -> closing_transfer_must_be_pending
transfer 1 8 9 9 ledger=0 code=0 CCR -> closing_transfer_must_be_pending
transfer 1 8 9 9 ledger=0 code=0 PEN -> ledger_must_not_be_zero
transfer 1 8 9 9 ledger=9 code=0 PEN -> code_must_not_be_zero
transfer 1 8 9 9 ledger=9 PEN -> debit_account_not_found
transfer 1 1 3 123 -> id_already_failed
transfer 2 1 9 9 ledger=9 PEN -> credit_account_not_found
transfer 2 1 3 123 -> id_already_failed
commit
balance 1 0 0 0 0

== create_transfers: the imported flag is not supported and is a reserved flag
source: state_machine.zig line 3730 (`flags.padding != 0` is reserved_flag); Kasa does not support imported events (bit 8, TigerBeetle's `imported`)
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 5 flags=0x100 -> reserved_flag
transfer 1 1 2 5 -> ok
commit

== create_transfers: account checks before closed, closed before balancing and overflows
source: state_machine.zig lines 3774-3838: not found, then `accounts_must_have_the_same_ledger`, `transfer_must_have_the_same_ledger_as_accounts`, then the closed checks, then the amount
account 1 CLSD -> ok
account 2 -> ok
account 3 ledger=2 -> ok
commit
transfer 900 2 1 5 -> credit_account_already_closed
transfer 10 1 3 max -> accounts_must_have_the_same_ledger
transfer 11 1 2 max ledger=2 -> transfer_must_have_the_same_ledger_as_accounts
transfer 12 1 2 max BDR -> debit_account_already_closed
transfer 13 2 1 max PEN -> credit_account_already_closed
commit

== create_transfers: overflows come before the balance limits
source: state_machine.zig lines 3857-3904 (overflow checks, then `debits_exceed_credits`); create_transfers.md orders `overflows_*` before `exceeds_*`
account 1 D<C -> ok
account 2 -> ok
account 9 -> ok
commit
transfer 901 9 1 100 -> ok
transfer 902 1 2 10 -> ok
commit
transfer 10 1 2 max -> overflows_debits_posted
transfer 10 1 2 91 -> exceeds_credits
commit
balance 1 0 10 0 100

== create_transfers: overflows_debits_pending
source: create_transfers.md#overflows_debits_pending; state_machine.zig line 3857; not a transient result (tigerbeetle.zig line 322), so the id may be used again
account 7 -> ok
account 8 -> ok
account 9 -> ok
commit
transfer 50 7 8 max-1 PEN -> ok
commit
transfer 10 7 9 2 PEN -> overflows_debits_pending
transfer 10 7 9 1 PEN -> ok
commit
balance 7 max 0 0 0

== create_transfers: overflows_credits_pending
source: create_transfers.md#overflows_credits_pending; state_machine.zig line 3860
account 7 -> ok
account 8 -> ok
account 9 -> ok
commit
transfer 50 7 8 max-1 PEN -> ok
commit
transfer 10 9 8 2 PEN -> overflows_credits_pending
transfer 10 9 8 1 PEN -> ok
commit
balance 8 0 0 max 0

== create_transfers: overflows_debits_posted and overflows_credits_posted
source: create_transfers.md#overflows_debits_posted and #overflows_credits_posted; state_machine.zig lines 3864-3869
account 7 -> ok
account 8 -> ok
account 9 -> ok
commit
transfer 50 7 8 max-1 -> ok
commit
transfer 10 7 9 2 -> overflows_debits_posted
transfer 11 9 8 2 -> overflows_credits_posted
transfer 10 7 9 1 -> ok
commit
balance 7 0 max 0 0

== create_transfers: overflows_debits and overflows_credits count pending and posted
source: create_transfers.md#overflows_debits and #overflows_credits; state_machine.zig lines 3871-3884
account 7 -> ok
account 8 -> ok
account 9 -> ok
commit
transfer 50 7 8 2^127 PEN -> ok
transfer 51 7 9 2^127-1 -> ok
transfer 52 9 8 2^127-1 -> ok
commit
transfer 10 7 9 1 -> overflows_debits
transfer 11 9 8 1 -> overflows_credits
transfer 12 7 9 0 -> ok
commit
balance 7 2^127 2^127-1 0 0

== create_transfers: overflows_timeout past 2^63 nanoseconds
source: state_machine.zig lines 3886-3901 (`sum_overflows(u63, timestamp, timeout * ns_per_s)`); create_transfers.md#overflows_timeout; state_machine_tests.zig "create_transfers/lookup_transfers" (`tick -3 seconds`, `999` timeout)
start 2^63-3000000003
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 5 timeout=3 PEN -> ok
transfer 11 1 2 5 timeout=3 PEN -> overflows_timeout
transfer 12 1 2 5 timeout=999 PEN -> overflows_timeout
transfer 11 1 2 5 timeout=2 PEN -> ok
commit
balance 1 10 0 0 0

// ---------------------------------------------------------------------------------------------
// Transfers: exists. Sources: state_machine.zig `create_transfer_exists` (line 3988) and
// `post_or_void_pending_transfer_exists` (line 4301).

== exists: checked before any other validation, field by field
source: state_machine_tests.zig test "create_transfers/lookup_transfers" (line 1239), "Ensure that idempotence is checked first"
account 1 -> ok
account 3 -> ok
account 4 D<C -> ok
commit
transfer 5 1 3 123 timeout=1 PEN -> ok
commit
transfer 5 1 3 123 timeout=1 ledger=2 PEN -> exists_with_different_ledger
transfer 5 1 3 max ud128=1 ud64=1 ud32=1 code=2 -> exists_with_different_flags
transfer 5 3 1 max ud128=1 ud64=1 ud32=1 timeout=1 code=2 PEN -> exists_with_different_debit_account_id
transfer 5 1 4 max ud128=1 ud64=1 ud32=1 timeout=1 code=2 PEN -> exists_with_different_credit_account_id
transfer 5 1 3 max ud128=1 ud64=1 ud32=1 timeout=1 PEN -> exists_with_different_amount
transfer 5 1 3 123 ud128=1 ud64=1 ud32=1 timeout=1 code=2 PEN -> exists_with_different_user_data_128
transfer 5 1 3 123 ud64=1 ud32=1 timeout=1 code=2 PEN -> exists_with_different_user_data_64
transfer 5 1 3 123 ud32=1 timeout=1 code=2 PEN -> exists_with_different_user_data_32
transfer 5 1 3 123 timeout=2 code=2 PEN -> exists_with_different_timeout
transfer 5 1 3 123 timeout=1 code=2 PEN -> exists_with_different_code
transfer 5 1 3 123 timeout=1 PEN -> exists
transfer 6 3 1 7 code=2 -> ok
transfer 7 1 3 3 code=2 -> ok
transfer 8 1 3 0 code=2 -> ok
commit
balance 1 123 3 0 7
balance 3 0 7 123 3
amount 8 0

== exists: pending_id and timeout are compared before the accounts, also for a post
source: state_machine.zig lines 3988-4008 (flags, then `pending_id`, then `timeout`, then post/void or plain comparisons); state_machine_tests.zig "create/lookup 2-phase transfers" (`exists_with_different_pending_id`)
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 10 PEN -> ok
transfer 2 1 2 10 PEN -> ok
post 3 1 max -> ok
commit
post 3 2 max dr=9 -> exists_with_different_pending_id
post 3 0 max -> exists_with_different_pending_id
post 3 1 max timeout=1 dr=9 -> exists_with_different_timeout
post 3 1 max VOI -> exists_with_different_flags
post 3 1 max -> exists
commit

== exists: the same id twice in one batch
source: state_machine.zig line 3734 (each event sees the events before it in the batch)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 1 -> ok
transfer 10 1 2 1 -> exists
transfer 10 1 2 2 -> exists_with_different_amount
commit
balance 1 0 1 0 0

== exists: a retried balancing transfer matches any amount at least what it moved
source: state_machine.zig lines 4016-4031; create_transfers.md#exists_with_different_amount; state_machine_tests.zig "balancing_debit | balancing_credit (*_must_not_exceed_*)" (line 1603)
account 1 D<C -> ok
account 2 -> ok
account 9 -> ok
commit
transfer 901 9 1 10 -> ok
commit
transfer 10 1 2 15 BDR -> ok
commit
transfer 10 1 2 max BDR -> exists
transfer 10 1 2 10 BDR -> exists
transfer 10 1 2 9 BDR -> exists_with_different_amount
transfer 10 1 2 0 BDR -> exists_with_different_amount
commit
amount 10 10

== exists inside a linked chain
source: state_machine.zig line 3116 (`if (result_status != .created)`: any other result, `exists` included, breaks the chain)
differs: TigerBeetle answers exists, linked_event_failed to both retries and does not create transfer 12; in Kasa an item that exists keeps its chain going
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 1 LNK -> ok
transfer 11 1 2 1 -> ok
commit
transfer 10 1 2 1 LNK -> exists
transfer 11 1 2 1 -> exists
commit
transfer 10 1 2 1 LNK -> exists
transfer 12 1 2 1 -> ok
commit
balance 1 0 3 0 0

// ---------------------------------------------------------------------------------------------
// Zero amounts. Source: CHANGELOG 0.16.0 ("Allow Transfers with amount=0"); create_transfers.md
// #amount_must_not_be_zero ("Deprecated ... Since 0.16.0, zero-amount transfers are permitted").

== zero amounts: a transfer of 0 is created and moves nothing
source: state_machine_tests.zig "create_transfers/lookup_transfers" (`T8 A1 A3 0 created`, line 1316); state_machine.zig line 3840 (`maybe(t.amount == 0)`)
account 1 D<C -> ok
account 2 C<D -> ok
commit
transfer 10 1 2 0 -> ok
transfer 11 1 2 0 PEN -> ok
commit
balance 1 0 0 0 0
balance 2 0 0 0 0
amount 10 0
amount 11 0
status 11 pending

== zero amounts: a zero retry of a zero transfer exists, any other amount differs
source: state_machine.zig line 4029 (`t.amount != e.amount` for a plain transfer)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 0 -> ok
transfer 10 1 2 0 -> exists
transfer 10 1 2 1 -> exists_with_different_amount
transfer 10 1 2 max -> exists_with_different_amount
commit

== zero amounts: a closed account refuses even a transfer of 0
source: state_machine.zig lines 3837-3838 (closed checked before the amount is looked at)
account 1 CLSD -> ok
account 2 -> ok
commit
transfer 10 1 2 0 -> debit_account_already_closed
transfer 11 2 1 0 -> credit_account_already_closed
commit

// ---------------------------------------------------------------------------------------------
// Two-phase transfers. Sources: state_machine.zig `post_or_void_pending_transfer` (line 4053),
// docs/reference/transfer.md#amount.

== two-phase: every post and void result, with exists for posts that leave fields out
source: state_machine_tests.zig test "create/lookup 2-phase transfers" (line 1332)
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 15 -> ok
transfer 2 1 2 15 timeout=1000 PEN -> ok
transfer 3 1 2 15 timeout=50 PEN -> ok
transfer 4 1 2 15 timeout=1 PEN -> ok
transfer 5 1 2 7 ud128=9 ud64=9 ud32=9 timeout=50 PEN -> ok
transfer 6 1 2 1 PEN -> ok
transfer 7 1 2 1 PEN -> ok
commit
balance 1 54 15 0 0
balance 2 0 0 54 15
tick 1
post 101 2 13 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> ok
transfer 0 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI ts=1 -> timestamp_must_be_zero
transfer 0 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI -> id_must_not_be_zero
transfer max 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI -> id_must_not_be_int_max
void 101 3 15 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=1 -> exists_with_different_flags
post 101 2 14 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> exists_with_different_amount
post 101 2 0 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> exists_with_different_amount
post 101 3 13 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=1 -> exists_with_different_pending_id
post 101 2 13 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=1 -> exists_with_different_user_data_128
post 101 2 13 dr=1 cr=2 ud128=1 ud64=2 ud32=2 ledger=1 code=1 -> exists_with_different_user_data_64
post 101 2 13 dr=1 cr=2 ud128=1 ud64=1 ud32=2 ledger=1 code=1 -> exists_with_different_user_data_32
post 101 2 13 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> exists
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI BDR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI BDR BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN POS VOI BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 PEN VOI -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI BDR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI BDR BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 POS BDR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 POS BDR BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 POS BCR -> flags_are_mutually_exclusive
transfer 102 8 9 16 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI -> pending_id_must_not_be_zero
transfer 102 8 9 16 pending_id=max ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI -> pending_id_must_not_be_int_max
transfer 102 8 9 16 pending_id=102 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI -> pending_id_must_be_different
transfer 102 8 9 16 pending_id=103 ud128=2 ud64=2 ud32=2 timeout=50 ledger=6 code=7 VOI -> timeout_reserved_for_pending_transfer
commit
void 102 103 16 dr=8 cr=9 ud128=2 ud64=2 ud32=2 ledger=6 code=7 -> pending_transfer_not_found
transfer 102 1 2 13 ud128=1 ud64=1 ud32=1 -> id_already_failed
void 103 1 16 dr=8 cr=9 ud128=2 ud64=2 ud32=2 ledger=6 code=7 -> pending_transfer_not_pending
void 103 3 16 dr=8 cr=9 ud128=2 ud64=2 ud32=2 ledger=6 code=7 -> pending_transfer_has_different_debit_account_id
void 103 3 16 dr=1 cr=9 ud128=2 ud64=2 ud32=2 ledger=6 code=7 -> pending_transfer_has_different_credit_account_id
void 103 3 16 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=6 code=7 -> pending_transfer_has_different_ledger
void 103 3 16 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=7 -> pending_transfer_has_different_code
void 103 3 16 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=1 -> exceeds_pending_transfer_amount
void 103 3 14 dr=1 cr=2 ud128=2 ud64=2 ud32=2 ledger=1 code=1 -> pending_transfer_has_different_amount
post 103 2 13 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_already_posted
void 103 3 15 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> ok
post 104 3 13 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_already_voided
void 104 4 15 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_expired
commit
post 101 2 14 -> exists_with_different_amount
post 101 2 12 -> exists_with_different_amount
post 105 5 8 -> exceeds_pending_transfer_amount
post 105 5 max -> ok
post 105 5 7 ledger=1 code=1 -> exists
post 105 5 7 -> exists
post 105 5 max ledger=1 code=1 -> exists
post 105 5 8 -> exists_with_different_amount
post 105 5 6 -> exists_with_different_amount
post 105 5 0 ledger=1 code=1 -> exists_with_different_amount
post 106 6 max-1 ledger=1 code=1 -> exceeds_pending_transfer_amount
post 106 6 max ledger=1 code=1 -> ok
post 106 6 max ledger=1 code=1 -> exists
post 106 6 1 -> exists
post 106 6 2 ledger=1 code=1 -> exists_with_different_amount
post 106 6 0 ledger=1 code=1 -> exists_with_different_amount
post 107 7 0 -> ok
post 107 7 0 -> exists
post 107 7 1 -> exists_with_different_amount
commit
balance 1 0 36 0 0
balance 2 0 0 0 36
amount 101 13
amount 105 7
amount 106 1
amount 107 0
user_data 105 9 9 9

== two-phase: posting AMOUNT_MAX posts the whole pending amount, even when it is the maximum
source: state_machine_tests.zig test "create/lookup 2-phase transfers (amount=maxInt)" (line 1446); state_machine.zig line 4119
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 max PEN -> ok
post 2 1 max dr=1 cr=2 ledger=1 code=1 -> ok
post 2 1 max dr=1 cr=2 ledger=1 code=1 -> exists
commit
balance 1 0 max 0 0
balance 2 0 0 0 max
amount 1 max
amount 2 max

== two-phase: posting 0 posts nothing and resolves the pending transfer
source: transfer.md#amount ("the posting transfer's amount, when ... less than or equal to the pending transfer's amount"); state_machine.zig line 4119 (only `maxInt(u128)` means the pending amount); state_machine_tests.zig T107 (line 1426)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
post 11 10 0 -> ok
commit
balance 1 0 0 0 0
balance 2 0 0 0 0
amount 11 0
status 10 posted
post 11 10 0 -> exists
post 11 10 max -> exists_with_different_amount
post 12 10 max -> pending_transfer_already_posted
commit

== two-phase: a partial post releases the rest; its retry must name the posted amount
source: state_machine.zig lines 4335-4342 (`post_or_void_pending_transfer_exists`: AMOUNT_MAX matches only if all of the pending amount was posted, anything else must equal the posted amount); state_machine_tests.zig T101 (line 1357)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
post 11 10 20 -> ok
commit
balance 1 0 20 0 0
post 11 10 20 -> exists
post 11 10 0 -> exists_with_different_amount
post 11 10 max -> exists_with_different_amount
post 11 10 30 -> exists_with_different_amount
commit

== two-phase: a retry of a whole post may give AMOUNT_MAX or the amount, nothing else
source: state_machine.zig lines 4335-4342; state_machine_tests.zig T105/T106 (lines 1411-1425)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
post 11 10 max -> ok
commit
post 11 10 max -> exists
post 11 10 30 -> exists
post 11 10 31 -> exists_with_different_amount
post 11 10 0 -> exists_with_different_amount
commit
amount 11 30

== two-phase: a void of AMOUNT_MAX exceeds the pending amount
source: state_machine.zig lines 4116-4124 (a void's amount is the pending amount only when 0; otherwise it must not exceed it); transfer.md#amount ("If amount is nonzero, it must be equal to the pending transfer's amount")
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
void 11 10 max -> exceeds_pending_transfer_amount
void 11 10 31 -> exceeds_pending_transfer_amount
void 11 10 29 -> pending_transfer_has_different_amount
void 11 10 30 -> ok
commit
balance 1 0 0 0 0
status 10 voided

== two-phase: a void of 0 releases everything; its retry may give 0 or the amount
source: state_machine.zig lines 4116-4117 and 4328-4334; create_transfers.md#pending_transfer_has_different_amount
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
void 11 10 0 -> ok
commit
amount 11 30
void 11 10 0 -> exists
void 11 10 30 -> exists
void 11 10 max -> exists_with_different_amount
void 11 10 29 -> exists_with_different_amount
commit

== two-phase: a void of the maximum pending amount
source: state_machine.zig lines 4116-4128 (a void of exactly the pending amount, here 2^128-1)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 max PEN -> ok
commit
void 11 10 max -> ok
commit
balance 1 0 0 0 0
amount 11 max

== two-phase: a pending transfer of 0 is posted or voided like any other
source: state_machine.zig lines 4113-4118 (`maybe(p.amount == 0)`); state_machine_tests.zig "closing accounts" (`T2 ... 0 ... PEN CDR created`)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 0 PEN -> ok
transfer 11 1 2 0 PEN -> ok
commit
post 12 10 max -> ok
post 13 11 1 -> exceeds_pending_transfer_amount
void 13 11 0 -> ok
commit
amount 12 0
amount 13 0
status 10 posted
status 11 voided

== two-phase: a retried post without a user data field it set differs
source: state_machine.zig lines 4344-4372 (`t.user_data == 0` matches only a stored value equal to the pending transfer's, that is an inherited one)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
post 11 10 max ud128=5 ud64=6 ud32=7 -> ok
commit
user_data 11 5 6 7
post 11 10 max ud64=6 ud32=7 -> exists_with_different_user_data_128
post 11 10 max ud128=5 ud32=7 -> exists_with_different_user_data_64
post 11 10 max ud128=5 ud64=6 -> exists_with_different_user_data_32
post 11 10 max ud128=5 ud64=6 ud32=8 -> exists_with_different_user_data_32
post 11 10 max ud128=5 ud64=6 ud32=7 -> exists
commit

== two-phase: a retried void without a user data field it set differs
source: state_machine.zig lines 4344-4372 (the same rule for voids)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
void 11 10 0 ud64=6 -> ok
commit
void 11 10 0 -> exists_with_different_user_data_64
void 11 10 0 ud64=6 -> exists
commit

== two-phase: user data left out is inherited, and matches when left out again
source: state_machine.zig lines 4199-4201 (stored user data is the pending transfer's when 0) and 4344-4372; state_machine_tests.zig T105 (pending T5 has U9, the post U0 answers exists)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 ud128=9 ud64=9 ud32=9 PEN -> ok
commit
post 11 10 max -> ok
commit
user_data 11 9 9 9
post 11 10 max -> exists
post 11 10 max ud128=9 ud64=9 ud32=9 -> exists
post 11 10 max ud128=8 -> exists_with_different_user_data_128
commit

== two-phase: a post may carry user data other than the pending transfer's
source: state_machine.zig line 4106 ("The user_data field is allowed to differ across pending and posting/voiding transfers")
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 ud128=9 ud64=9 ud32=9 PEN -> ok
commit
post 11 10 max ud128=1 ud32=3 -> ok
commit
user_data 11 1 9 3

== two-phase: a retried post compares accounts, ledger and code only when given
source: state_machine.zig lines 4321-4326 and 4374-4379 (0 matches; another value differs); state_machine_tests.zig T105 (`L0 C0 exists`)
account 1 -> ok
account 2 -> ok
account 3 -> ok
commit
transfer 10 1 2 30 PEN -> ok
commit
post 11 10 max -> ok
commit
post 11 10 max dr=1 cr=2 ledger=1 code=1 -> exists
post 11 10 max dr=3 -> exists_with_different_debit_account_id
post 11 10 max cr=3 -> exists_with_different_credit_account_id
post 11 10 max ledger=2 -> exists_with_different_ledger
post 11 10 max code=2 -> exists_with_different_code
commit

== two-phase: a post fills in the pending transfer's accounts, ledger and code
source: state_machine.zig lines 4195-4209 (the stored post takes `p`'s accounts, ledger and code); create_transfers.md#pending_transfer_has_different_debit_account_id ("must either be 0 or identical")
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 30 code=5 PEN -> ok
commit
post 11 10 10 dr=1 cr=2 ledger=1 code=5 -> ok
commit
balance 1 0 10 0 0
balance 2 0 0 0 10

== two-phase: expired pending transfers cannot be posted, and expiry releases them
source: state_machine_tests.zig test "create/lookup expired transfers" (line 1470); state_machine.zig lines 4133-4151 and `execute_expire_pending_transfers` (line 4511)
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 10 PEN -> ok
transfer 2 1 2 11 timeout=1 PEN -> ok
transfer 3 1 2 12 timeout=2 PEN -> ok
transfer 4 1 2 13 timeout=3 PEN -> ok
commit
balance 1 46 0 0 0
balance 2 0 0 46 0
tick 1
balance 1 35 0 0 0
balance 2 0 0 35 0
tick 1
balance 1 23 0 0 0
balance 2 0 0 23 0
tick 1
balance 1 10 0 0 0
balance 2 0 0 10 0
post 101 1 10 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> ok
post 102 2 11 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_expired
post 103 3 12 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_expired
post 104 4 13 dr=1 cr=2 ud128=1 ud64=1 ud32=1 ledger=1 code=1 -> pending_transfer_expired
commit
balance 1 0 10 0 0
balance 2 0 0 0 10
missing 102
missing 103
missing 104
status 2 expired

// ---------------------------------------------------------------------------------------------
// Closing accounts. Sources: transfer.md#flagsclosing_debit, account.md#flagsclosed,
// state_machine.zig lines 3760-3763, 3837-3838, 3943-3944, 4185-4190, 4255-4262, 4568-4575.

== closing: the debit account closes, refuses transfers and posts, and a void reopens it
source: state_machine_tests.zig test "create_transfers: closing accounts" (line 2126), first half
account 1 -> ok
account 2 -> ok
account 3 -> ok
commit
transfer 1 1 2 15 -> ok
transfer 2 1 2 0 CDR -> closing_transfer_must_be_pending
transfer 2 1 2 0 PEN CDR -> ok
transfer 2 1 2 0 PEN CDR -> exists
transfer 3 1 2 5 -> debit_account_already_closed
transfer 3 1 2 5 -> id_already_failed
transfer 4 2 1 5 -> credit_account_already_closed
transfer 4 1 2 5 -> id_already_failed
commit
balance 1 0 15 0 0 closed
balance 2 0 0 0 15
post 5 2 0 dr=1 cr=2 ledger=1 code=1 -> debit_account_already_closed
void 5 2 0 dr=1 cr=2 ledger=1 code=1 -> id_already_failed
void 6 2 0 dr=1 cr=2 ledger=1 code=1 -> ok
void 6 2 0 dr=1 cr=2 ledger=1 code=1 -> exists
transfer 7 1 2 5 -> ok
commit
balance 1 0 20 0 0
balance 2 0 0 0 20

== closing: a closed account takes voids but not posts, and pending transfers expire in it
source: state_machine_tests.zig test "create_transfers: closing accounts" (line 2126), second half; state_machine.zig line 4185 ("The only movement allowed in a closed account is voiding a pending transfer")
account 1 -> ok
account 2 -> ok
account 3 -> ok
commit
transfer 8 1 2 10 timeout=1 PEN -> ok
transfer 9 1 2 10 PEN -> ok
transfer 10 1 2 0 timeout=2 PEN CCR -> ok
transfer 10 1 2 0 timeout=2 PEN CCR -> exists
post 11 9 10 dr=1 cr=2 ledger=1 code=1 -> credit_account_already_closed
void 11 9 10 dr=1 cr=2 ledger=1 code=1 -> id_already_failed
void 12 9 10 dr=1 cr=2 ledger=1 code=1 -> ok
void 12 9 10 dr=1 cr=2 ledger=1 code=1 -> exists
commit
balance 1 10 0 0 0
balance 2 0 0 10 0 closed
tick 1
balance 1 0 0 0 0
balance 2 0 0 0 0 closed
tick 1
balance 2 0 0 0 0
status 10 expired
transfer 13 1 2 0 CDR CCR -> closing_transfer_must_be_pending
transfer 13 1 2 0 PEN CDR CCR -> ok
transfer 13 1 2 0 PEN CDR CCR -> exists
transfer 14 1 3 5 -> debit_account_already_closed
transfer 14 1 3 5 -> id_already_failed
transfer 15 3 2 5 -> credit_account_already_closed
transfer 15 3 2 5 -> id_already_failed
commit
balance 1 0 0 0 0 closed
balance 2 0 0 0 0 closed
transfer 16 1 3 0 PEN CDR -> debit_account_already_closed
transfer 16 1 3 0 PEN CDR -> id_already_failed
transfer 17 3 2 0 PEN CCR -> credit_account_already_closed
transfer 17 3 2 0 PEN CCR -> id_already_failed
commit

== closing: a closing transfer can never be posted, only voided or expired
source: state_machine.zig lines 4185-4190 (a post into a closed account fails, whichever transfer closed it) and 4246-4247 (`assert(!p.flags.closing_debit)` on post)
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 5 PEN CDR CCR -> ok
commit
post 11 10 max -> debit_account_already_closed
post 12 10 5 -> debit_account_already_closed
commit
balance 1 5 0 0 0 closed
balance 2 0 0 5 0 closed
void 13 10 0 -> ok
commit
balance 1 0 0 0 0
balance 2 0 0 0 0

== closing: an account created closed refuses every transfer
source: account.md#flagsclosed ("This flag can be set during the account creation"); state_machine_tests.zig "create_accounts: closed accounts" (line 2115)
account 1 CLSD -> ok
account 2 -> ok
commit
transfer 10 1 2 5 -> debit_account_already_closed
transfer 11 2 1 5 PEN -> credit_account_already_closed
transfer 12 1 2 0 PEN CDR -> debit_account_already_closed
commit

== closing: expiry of the closing transfer reopens the account
source: state_machine.zig lines 4568-4575 (expiry clears `closed` set by the expired transfer); CHANGELOG 0.16.0 ("closed account can be re-opened by voiding or expiring the closing transfer")
account 1 -> ok
account 2 -> ok
commit
transfer 10 1 2 7 timeout=1 PEN CDR -> ok
commit
balance 1 7 0 0 0 closed
tick 1
balance 1 0 0 0 0
transfer 11 1 2 3 -> ok
void 12 10 0 -> pending_transfer_expired
commit

// ---------------------------------------------------------------------------------------------
// Balancing transfers. Sources: transfer.md#flagsbalancing_debit, state_machine.zig lines
// 3840-3854 (the amount is reduced to what is available, which may be 0).

== balancing: amounts are reduced to what the limited account allows, down to 0
source: state_machine_tests.zig test "create_transfers: balancing_debit | balancing_credit (*_must_not_exceed_*)" (line 1603)
account 1 D<C -> ok
account 2 C<D -> ok
account 3 -> ok
account 9 -> ok
commit
transfer 901 9 1 10 -> ok
transfer 902 1 9 1 PEN -> ok
transfer 903 2 9 10 -> ok
transfer 904 9 2 2 PEN -> ok
commit
transfer 1 1 3 3 ledger=2 BDR -> transfer_must_have_the_same_ledger_as_accounts
transfer 1 3 2 3 ledger=2 BCR -> transfer_must_have_the_same_ledger_as_accounts
transfer 1 1 3 3 BDR -> ok
transfer 2 1 3 13 BDR -> ok
transfer 3 3 2 3 BCR -> ok
transfer 4 3 2 13 BCR -> ok
transfer 5 1 3 1 BDR -> ok
transfer 6 1 3 1 BDR BCR -> ok
transfer 7 3 2 1 BCR -> ok
transfer 8 1 2 1 BDR BCR -> ok
transfer 1 1 3 2 BDR -> exists_with_different_amount
transfer 1 1 3 0 BDR -> exists_with_different_amount
transfer 1 1 3 3 BDR -> exists
transfer 1 1 3 4 BDR -> exists
transfer 2 1 3 6 BDR -> exists
transfer 2 1 3 0 BDR -> exists_with_different_amount
transfer 3 3 2 2 BCR -> exists_with_different_amount
transfer 3 3 2 0 BCR -> exists_with_different_amount
transfer 3 3 2 3 BCR -> exists
transfer 3 3 2 4 BCR -> exists
transfer 4 3 2 5 BCR -> exists
transfer 4 3 2 6 BCR -> exists
transfer 4 3 2 0 BCR -> exists_with_different_amount
commit
balance 1 1 9 0 10
balance 2 0 10 2 8
balance 3 0 8 0 9
amount 1 3
amount 2 6
amount 3 3
amount 4 5
amount 5 0
amount 6 0
amount 7 0
amount 8 0

== balancing: the other side's limit still applies, as a transient failure
source: state_machine_tests.zig test "create_transfers: balancing_debit | balancing_credit (*_must_not_exceed_*, exceeds_*)" (line 1655); tigerbeetle.zig line 329 (exceeds_* are transient)
account 1 D<C -> ok
account 2 -> ok
account 3 C<D -> ok
account 4 -> ok
account 9 -> ok
commit
transfer 901 9 1 4 -> ok
transfer 902 2 9 5 -> ok
transfer 903 3 9 4 -> ok
transfer 904 9 4 5 -> ok
commit
transfer 1 1 2 10 BCR -> exceeds_credits
transfer 2 1 2 10 BDR -> ok
transfer 3 4 3 10 BDR -> exceeds_debits
transfer 4 4 3 10 BCR -> ok
transfer 1 1 2 0 BCR -> id_already_failed
transfer 3 4 3 0 BDR -> id_already_failed
commit
balance 1 0 4 0 4
balance 2 0 5 0 4
balance 3 0 4 0 4
balance 4 0 4 0 5
missing 1
amount 2 4
missing 3
amount 4 4

== balancing: nothing available is a transfer of 0, also without limit flags
source: state_machine_tests.zig test "create_transfers: balancing_debit | balancing_credit (¬*_must_not_exceed_*)" (line 1688); CHANGELOG 0.16.0
account 1 -> ok
account 2 -> ok
account 3 -> ok
account 9 -> ok
commit
transfer 901 9 1 10 -> ok
transfer 902 1 9 1 PEN -> ok
transfer 903 2 9 10 -> ok
transfer 904 9 2 2 PEN -> ok
commit
transfer 1 3 1 99 BDR BCR -> ok
transfer 2 3 1 99 BDR -> ok
transfer 3 2 3 99 BCR -> ok
transfer 4 1 3 99 BDR -> ok
transfer 5 1 3 99 BDR -> ok
transfer 6 3 2 99 BCR -> ok
transfer 7 3 2 99 BCR -> ok
commit
balance 1 1 9 0 10
balance 2 0 10 2 8
balance 3 0 8 0 9
amount 1 0
amount 2 0
amount 3 0
amount 4 9
amount 5 0
amount 6 8
amount 7 0

== balancing: an amount of 0 stays 0
source: state_machine_tests.zig test "create_transfers: balancing_debit | balancing_credit (amount=0)" (line 1723)
account 1 D<C -> ok
account 2 C<D -> ok
account 3 C<D -> ok
account 4 -> ok
account 9 -> ok
commit
transfer 901 9 1 10 -> ok
transfer 902 1 9 1 PEN -> ok
transfer 903 2 9 10 -> ok
transfer 904 9 2 2 PEN -> ok
transfer 905 3 9 10 -> ok
transfer 906 9 3 2 PEN -> ok
commit
transfer 1 1 4 0 BDR -> ok
transfer 2 4 2 0 BCR -> ok
transfer 3 1 4 0 BDR BCR -> ok
transfer 4 4 3 0 PEN BCR -> ok
transfer 5 4 1 1 BDR -> ok
transfer 6 2 4 1 BCR -> ok
commit
balance 1 1 0 0 10
balance 2 0 10 2 0
balance 3 0 10 2 0
balance 4 0 0 0 0
amount 1 0
amount 2 0
amount 3 0
amount 4 0
amount 5 0
amount 6 0

== balancing: an empty debit balance sweeps nothing instead of failing
source: CHANGELOG 0.16.0 (#2220: balancing transfers no longer refused when nothing is available); create_transfers.md#exceeds_credits ("Client release < 0.16.0" is the only case with `+ 1`)
account 1 D<C -> ok
account 2 -> ok
account 9 -> ok
commit
transfer 901 9 1 100 -> ok
commit
transfer 10 1 2 1000 BDR -> ok
transfer 11 1 2 1000 BDR -> ok
transfer 12 2 1 1000 BCR -> ok
commit
amount 10 100
amount 11 0
amount 12 0
balance 1 0 100 0 100

== balancing: AMOUNT_MAX with balances near the maximum
source: state_machine_tests.zig test "create_transfers: balancing_debit | balancing_credit (amount=maxInt, balance≈maxInt)" (line 1763)
account 1 D<C -> ok
account 2 D<C -> ok
account 3 C<D -> ok
account 4 C<D -> ok
account 8 -> ok
account 9 -> ok
commit
transfer 901 9 1 max-1 -> ok
transfer 902 4 8 max-1 -> ok
commit
transfer 1 1 2 max BDR -> ok
transfer 2 3 4 max BCR -> ok
commit
balance 1 0 max-1 0 max-1
balance 2 0 0 0 max-1
balance 3 0 max-1 0 0
balance 4 0 max-1 0 max-1
amount 1 max-1
amount 2 max-1

== balancing: debit and credit together take the smaller room
source: state_machine_tests.zig test "create_transfers: balancing_debit & balancing_credit" (line 1790)
account 1 D<C -> ok
account 2 C<D -> ok
account 3 -> ok
account 9 -> ok
commit
transfer 901 9 1 20 -> ok
transfer 902 2 9 10 -> ok
transfer 903 3 9 99 -> ok
commit
transfer 1 1 2 1 BDR BCR -> ok
transfer 2 1 2 12 BDR BCR -> ok
transfer 3 1 2 1 BDR BCR -> ok
transfer 4 1 3 12 BDR BCR -> ok
transfer 5 1 3 1 BDR BCR -> ok
commit
balance 1 0 20 0 20
balance 2 0 10 0 10
balance 3 0 99 0 10
amount 1 1
amount 2 9
amount 3 0
amount 4 10
amount 5 0

== balancing: pending balancing transfers, then partial posts
source: state_machine_tests.zig test "create_transfers: balancing_debit/balancing_credit + pending" (line 1822)
account 1 D<C -> ok
account 2 C<D -> ok
account 9 -> ok
commit
transfer 901 9 1 10 -> ok
transfer 902 2 9 10 -> ok
commit
transfer 1 1 2 3 PEN BDR -> ok
transfer 2 1 2 13 PEN BDR -> ok
transfer 3 1 2 1 PEN BDR -> ok
commit
balance 1 10 0 0 10
balance 2 0 10 10 0
post 4 1 3 dr=1 cr=2 ledger=1 code=1 -> ok
post 5 2 5 dr=1 cr=2 ledger=1 code=1 -> ok
commit
amount 1 3
amount 2 7
amount 3 0
amount 4 3
amount 5 5

// ---------------------------------------------------------------------------------------------
// id_already_failed. Sources: create_transfers.md#id_already_failed; tigerbeetle.zig
// `CreateTransferStatus.transient` (line 322); state_machine.zig `transient_error` (line 3215)
// and line 3736 (`.found_orphaned => return .id_already_failed`, right after the exists check).

== id_already_failed: after debit_account_not_found, even once the account exists
source: create_transfers.md#debit_account_not_found ("This is a transient error ... will always fail upon retry, even if the underlying issue is resolved")
account 2 -> ok
commit
transfer 10 8 2 1 -> debit_account_not_found
commit
account 8 -> ok
commit
transfer 10 8 2 1 -> id_already_failed
transfer 11 8 2 1 -> ok
commit

== id_already_failed: after credit_account_not_found
source: create_transfers.md#credit_account_not_found; tigerbeetle.zig line 327
account 1 -> ok
commit
transfer 10 1 8 1 -> credit_account_not_found
commit
account 8 -> ok
commit
transfer 10 1 8 1 -> id_already_failed
commit
missing 10

== id_already_failed: after pending_transfer_not_found, even once the pending transfer exists
source: create_transfers.md#pending_transfer_not_found; state_machine_tests.zig "create/lookup 2-phase transfers" (T102)
account 1 -> ok
account 2 -> ok
commit
post 10 50 max -> pending_transfer_not_found
transfer 50 1 2 5 PEN -> ok
post 10 50 max -> id_already_failed
void 10 50 0 -> id_already_failed
post 11 50 max -> ok
commit
status 50 posted

== id_already_failed: after exceeds_credits, even once the funds arrive
source: create_transfers.md#exceeds_credits; state_machine_tests.zig "create_transfers/lookup_transfers" (T3)
account 1 D<C -> ok
account 2 -> ok
commit
transfer 10 1 2 5 -> exceeds_credits
transfer 99 2 1 100 -> ok
transfer 10 1 2 5 -> id_already_failed
transfer 11 1 2 5 -> ok
commit
balance 1 0 5 0 100

== id_already_failed: after exceeds_debits
source: create_transfers.md#exceeds_debits; state_machine_tests.zig "create_transfers/lookup_transfers" (T4)
account 1 -> ok
account 2 C<D -> ok
commit
transfer 10 1 2 5 -> exceeds_debits
transfer 99 2 1 100 -> ok
transfer 10 1 2 5 -> id_already_failed
transfer 11 1 2 5 -> ok
commit

== id_already_failed: after debit_account_already_closed, even once the account reopens
source: create_transfers.md#debit_account_already_closed; state_machine_tests.zig "create_transfers: closing accounts" (T3, T5)
account 1 -> ok
account 2 -> ok
commit
transfer 50 1 2 0 PEN CDR -> ok
transfer 10 1 2 5 -> debit_account_already_closed
void 51 50 0 -> ok
transfer 10 1 2 5 -> id_already_failed
transfer 11 1 2 5 -> ok
commit

== id_already_failed: after credit_account_already_closed
source: create_transfers.md#credit_account_already_closed; state_machine_tests.zig "create_transfers: closing accounts" (T4)
account 1 -> ok
account 2 -> ok
commit
transfer 50 1 2 0 PEN CCR -> ok
transfer 10 1 2 5 -> credit_account_already_closed
void 51 50 0 -> ok
transfer 10 1 2 5 -> id_already_failed
commit

== id_already_failed: never after a result that does not depend on the moment
source: tigerbeetle.zig lines 335-395 (every other result is not transient); state_machine_tests.zig "create_transfers/lookup_transfers: failed transfer does not exist" (line 1533)
account 1 -> ok
account 2 -> ok
account 3 ledger=2 -> ok
commit
transfer 10 1 2 5 ledger=0 -> ledger_must_not_be_zero
transfer 11 1 3 5 -> accounts_must_have_the_same_ledger
transfer 12 1 2 5 PEN POS -> flags_are_mutually_exclusive
transfer 13 1 2 5 timeout=1 -> timeout_reserved_for_pending_transfer
transfer 50 1 2 5 PEN -> ok
post 14 50 6 -> exceeds_pending_transfer_amount
void 15 50 4 -> pending_transfer_has_different_amount
transfer 16 1 2 5 pending_id=50 -> pending_id_must_be_zero
transfer 49 1 2 1 -> ok
post 17 49 max -> pending_transfer_not_pending
commit
transfer 10 1 2 1 -> ok
transfer 11 1 2 1 -> ok
transfer 12 1 2 1 -> ok
transfer 13 1 2 1 -> ok
transfer 14 1 2 1 -> ok
transfer 15 1 2 1 -> ok
transfer 16 1 2 1 -> ok
transfer 17 1 2 1 -> ok
commit
balance 1 5 9 0 0

== id_already_failed: not after pending_transfer_expired, already_posted or already_voided
source: tigerbeetle.zig lines 385-387 (pending_transfer_already_posted, _already_voided and _expired are not transient)
account 1 -> ok
account 2 -> ok
commit
transfer 50 1 2 5 timeout=1 PEN -> ok
transfer 51 1 2 5 PEN -> ok
transfer 52 1 2 5 PEN -> ok
post 60 51 max -> ok
void 61 52 0 -> ok
commit
tick 2
post 10 50 max -> pending_transfer_expired
post 11 51 max -> pending_transfer_already_posted
post 12 52 max -> pending_transfer_already_voided
commit
transfer 10 1 2 1 -> ok
transfer 11 1 2 1 -> ok
transfer 12 1 2 1 -> ok
commit

== id_already_failed: not after an overflow
source: tigerbeetle.zig lines 388-394 (overflows_* are not transient)
start 2^63-3000000003
account 1 -> ok
account 2 -> ok
commit
transfer 50 1 2 max-1 -> ok
commit
transfer 10 1 2 2 -> overflows_debits_posted
transfer 11 1 2 1 timeout=4 PEN -> overflows_timeout
commit
transfer 10 1 2 1 -> ok
transfer 11 2 1 1 -> ok
commit

== id_already_failed: checked where exists is, after the id checks and before everything else
source: state_machine.zig lines 3728-3742 (reserved flag and ids, then the lookup answering exists or id_already_failed, then post/void and the other checks); create_transfers.md lists id_already_failed right after exists
account 1 D<C -> ok
account 2 -> ok
commit
transfer 10 1 2 5 -> exceeds_credits
commit
transfer 10 1 2 5 ts=1 -> timestamp_must_be_zero
transfer 10 1 2 5 flags=0x1000 -> reserved_flag
transfer 10 0 0 5 PEN POS VOI -> id_already_failed
transfer 10 0 0 0 ledger=0 code=0 -> id_already_failed
post 10 0 max -> id_already_failed
post 10 10 max -> id_already_failed
commit

== id_already_failed: within the same batch
source: state_machine.zig line 3172 (the id is remembered as soon as the event fails, before the next event); state_machine_tests.zig "create_transfers/lookup_transfers" (failure and retry in one batch)
account 1 D<C -> ok
account 2 -> ok
commit
transfer 99 2 1 3 -> ok
transfer 10 1 2 5 -> exceeds_credits
transfer 10 1 2 3 -> id_already_failed
transfer 10 1 2 3 -> id_already_failed
transfer 11 1 2 3 -> ok
commit
balance 1 0 3 0 3

== id_already_failed: a transient failure that breaks a linked chain is remembered after the roll-back
source: state_machine.zig lines 3116-3172 (the chain's scope is discarded first, then `transient_error` records the id outside it); the other events of the chain are rolled back and not remembered
account 1 D<C -> ok
account 2 -> ok
commit
transfer 99 2 1 10 -> ok
commit
transfer 10 1 2 10 LNK -> linked_event_failed
transfer 11 1 2 1 -> exceeds_credits
commit
balance 1 0 0 0 10
missing 10
transfer 11 1 2 1 -> id_already_failed
transfer 10 1 2 10 -> ok
commit

== id_already_failed: events after the first failure of a chain are not run, so not remembered
source: state_machine.zig line 3045 (`if (chain_broken) break :result .linked_event_failed`: the event is not run); `linked_event_failed` is not transient (tigerbeetle.zig line 335)
account 1 D<C -> ok
account 2 -> ok
commit
transfer 10 1 2 1 ledger=0 LNK -> ledger_must_not_be_zero
transfer 11 1 2 5 LNK -> linked_event_failed
transfer 12 1 9 5 -> linked_event_failed
commit
transfer 99 2 1 10 -> ok
transfer 11 1 2 5 -> ok
transfer 10 1 2 1 -> ok
commit

== id_already_failed: a transient failure in an open chain is remembered
source: state_machine.zig lines 3033-3045 and 3116-3172 (the failure breaks the chain before its open end is reached)
account 1 D<C -> ok
account 2 -> ok
commit
transfer 10 1 2 5 LNK -> exceeds_credits
transfer 11 1 2 5 LNK -> linked_event_chain_open
commit
transfer 99 2 1 10 -> ok
transfer 10 1 2 5 -> id_already_failed
transfer 11 1 2 5 -> ok
commit

== id_already_failed: survives a snapshot
source: state_machine.zig line 3248 (`insert_orphaned_primary_key`: the failed id is part of the durable state)
account 1 D<C -> ok
account 2 -> ok
commit
transfer 10 1 2 5 -> exceeds_credits
transfer 11 9 2 5 -> debit_account_not_found
commit
restore
transfer 99 2 1 100 -> ok
transfer 10 1 2 5 -> id_already_failed
transfer 11 1 2 5 -> id_already_failed
transfer 12 1 2 5 -> ok
commit

// ---------------------------------------------------------------------------------------------
// Linked transfers. Sources: docs/coding/linked-events.md; state_machine.zig `execute_create`
// (line 3002).

== linked: a failed chain is undone, pending transfers included
source: state_machine_tests.zig test "create_transfers: failed linked-chains are undone" (line 1553)
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 15 LNK -> linked_event_failed
transfer 2 1 2 15 ledger=0 -> ledger_must_not_be_zero
commit
transfer 3 1 2 15 timeout=1 LNK PEN -> linked_event_failed
transfer 4 1 2 15 ledger=0 -> ledger_must_not_be_zero
commit
balance 1 0 0 0 0
balance 2 0 0 0 0
missing 1
missing 2
missing 3
missing 4

== linked: a failed chain is undone before the next event runs
source: state_machine_tests.zig test "create_transfers: failed linked-chains are undone within a commit" (line 1579)
account 1 D<C -> ok
account 2 -> ok
account 9 -> ok
commit
transfer 901 9 1 20 -> ok
commit
transfer 1 1 2 15 LNK -> linked_event_failed
transfer 2 1 2 5 ledger=0 -> ledger_must_not_be_zero
transfer 3 1 2 15 -> ok
commit
balance 1 0 15 0 20
balance 2 0 0 0 15
missing 1
missing 2

== linked: a chain's events see each other, and succeed together
source: docs/coding/linked-events.md ("the effect of each event in the chain is visible to the next")
account 1 D<C -> ok
account 2 -> ok
commit
transfer 1 2 1 10 LNK -> ok
transfer 2 1 2 10 LNK -> ok
transfer 3 2 1 5 PEN LNK -> ok
post 4 3 max -> ok
commit
balance 1 0 10 0 15
status 3 posted

== linked: a chain left open fails with linked_event_chain_open on its last event
source: state_machine.zig line 3033 (`index == events.len - 1` on a linked event); create_transfers.md#linked_event_chain_open
account 1 -> ok
account 2 -> ok
commit
transfer 1 1 2 1 -> ok
transfer 2 1 2 1 LNK -> linked_event_failed
transfer 3 1 2 1 LNK -> linked_event_chain_open
commit
missing 2
missing 3
transfer 4 1 2 1 LNK -> linked_event_chain_open
commit
"#;
