//! Bytes from the disk never panic the core: random mutations of valid journal payloads and
//! snapshots either decode or give an error, and whatever decodes is a consistent state that
//! keeps working. (Checksums make such bytes unlikely to reach the decoders at all; these
//! tests make sure that if they do, nothing panics.) Payloads and snapshots of Kasa 0.1 are
//! refused with an error that says so.

mod support;

use kasa_core::wallet::{BankResult, FundingKind, Recipient};
use kasa_core::{decode_commands, encode_commands, Command, State};
use proptest::prelude::*;
use support::wallet::*;
use support::*;

/// A state with something in every section: both ledgers, users, sessions, a verification,
/// bank accounts, fundings, remittances held and delivered, a request, a keyed command.
fn sample_state() -> State {
    let mut h = Harness::default();
    h.accounts(vec![account(1, 1, kasa_core::AccountFlags::HISTORY), account(2, 1, 0), account(3, 1, 0)]);
    h.transfers(vec![transfer(10, 2, 1, 100), pending(11, 1, 3, 7, 5), pending(12, 2, 3, 9, 0)]);
    h.transfers(vec![post(13, 11, u128::MAX), void(14, 12)]);
    let a = funded(&mut h, "01011112222", 100_000);
    let b = funded(&mut h, "01033334444", 10_000);
    send(&mut h, a, Recipient::User(b), 5_000, None).unwrap();
    send(&mut h, a, Recipient::Phone(phone("01055556666")), 1_000, None).unwrap();
    start(&mut h, b, 2, FundingKind::Withdrawal, 2_000, None).unwrap();
    verify(&mut h, &phone("01077778888"));
    let login =
        kasa_core::wallet::Command::OpenSession { user_id: a, token_hash: [7; 32], pin_ok: true, ttl_seconds: 60 };
    wallet(&mut h, login);
    h.state
}

fn sample_payload() -> Vec<u8> {
    let mut out = Vec::new();
    encode_commands(
        &[
            Command::create_accounts(vec![account(1, 1, 0), account(2, 1, 0)]),
            Command::create_transfers(vec![transfer(10, 1, 2, 5), pending(11, 2, 1, 3, 60)]),
            Command::Wallet(kasa_core::wallet::Command::SettleFunding { funding_id: 1, result: BankResult::Approved }),
        ],
        &mut out,
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_payloads_decode_or_fail_cleanly(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut bytes = sample_payload();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] ^= value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = decode_commands(&bytes);
    }

    #[test]
    fn mutated_snapshots_decode_or_fail_cleanly(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut bytes = sample_state().encode_snapshot();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] ^= value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(state) = State::decode_snapshot(&bytes) {
            // Whatever decodes is a consistent state that can keep working.
            prop_assert!(state.check_invariants().is_ok());
            let mut state = state;
            let now = state.last_timestamp() + 1;
            let batch = kasa_core::Batch { timestamp: now, commands: vec![Command::create_transfers(vec![post(20, 11, 0), transfer(21, 2, 1, 1)])] };
            let _ = state.apply(&batch);
        }
    }
}

#[test]
fn the_sample_state_round_trips() {
    let state = sample_state();
    let restored = State::decode_snapshot(&state.encode_snapshot()).expect("a snapshot of this version loads");
    assert_eq!(restored.hash(), state.hash());
    assert_eq!(restored.wallets().users_count(), 2);
    restored.check_invariants().unwrap();
}

/// Data of Kasa 0.1 (payload version 1, snapshot versions 1 to 5) is refused, with an error
/// that says what it is, never misread as something else.
#[test]
fn payloads_and_snapshots_of_kasa_0_1_are_refused_by_name() {
    // A version 1 payload: u32 command count, then u8 kind, u32 length, records.
    let mut old = 1u32.to_le_bytes().to_vec();
    old.push(2);
    old.extend_from_slice(&0u32.to_le_bytes());
    let error = decode_commands(&old).unwrap_err().to_string();
    assert!(error.contains("Kasa 0.1"), "{error}");
    let mut snapshot = State::default().encode_snapshot();
    snapshot[8..12].copy_from_slice(&5u32.to_le_bytes());
    let error = State::decode_snapshot(&snapshot).unwrap_err().to_string();
    assert!(error.contains("Kasa 0.1"), "{error}");
}
