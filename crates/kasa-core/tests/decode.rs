//! Bytes from the disk never panic the core: random mutations of valid journal payloads and
//! snapshots either decode or give an error. (Checksums make such bytes unlikely to reach the
//! decoders at all; these tests make sure that if they do, nothing panics.)

mod support;

use kasa_core::{decode_commands, encode_commands, Command, State};
use proptest::prelude::*;
use support::*;

fn sample_state() -> State {
    let mut h = Harness::default();
    h.accounts(vec![account(1, 1, kasa_core::AccountFlags::HISTORY), account(2, 1, 0), account(3, 1, 0)]);
    h.transfers(vec![transfer(10, 2, 1, 100), pending(11, 1, 3, 7, 5), pending(12, 2, 3, 9, 0)]);
    h.transfers(vec![post(13, 11, 0), void(14, 12)]);
    h.state
}

fn sample_payload() -> Vec<u8> {
    let mut out = Vec::new();
    encode_commands(
        &[
            Command::CreateAccounts(vec![account(1, 1, 0), account(2, 1, 0)]),
            Command::CreateTransfers(vec![transfer(10, 1, 2, 5), pending(11, 2, 1, 3, 60)]),
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
            let batch = kasa_core::Batch { timestamp: now, commands: vec![Command::CreateTransfers(vec![post(20, 11, 0), transfer(21, 2, 1, 1)])] };
            let _ = state.apply(&batch);
        }
    }
}

/// Snapshot version 5 appends the fees after the idempotency keys. A version 4 snapshot (the
/// same bytes without them) still loads, with no fees; a version 5 one with a fee over the
/// maximum is refused.
#[test]
fn a_version_4_snapshot_loads_without_fees_and_a_bad_fee_is_refused() {
    let mut h = Harness::default();
    h.accounts(vec![account(1, 1, 0)]);
    h.apply(vec![Command::SetFees { withdrawal_fee: 700 }]);
    let v5 = h.state.encode_snapshot();
    assert_eq!(u32::from_le_bytes(v5[8..12].try_into().unwrap()), 5, "the version follows the 8-byte magic");
    assert_eq!(State::decode_snapshot(&v5).unwrap().wallets().withdrawal_fee(), 700);
    let mut v4 = v5[..v5.len() - 8].to_vec();
    v4[8..12].copy_from_slice(&4u32.to_le_bytes());
    let old = State::decode_snapshot(&v4).expect("a version 4 snapshot loads");
    assert_eq!((old.wallets().withdrawal_fee(), old.ledger().accounts_count()), (0, 1));
    let mut bad = v5.clone();
    let at = bad.len() - 8;
    bad[at..].copy_from_slice(&10_001u64.to_le_bytes());
    assert!(State::decode_snapshot(&bad).is_err());
}
