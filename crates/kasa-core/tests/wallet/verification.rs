//! Phone verification: a sign-up (or a PIN reset) proves its phone with a code the HTTP layer
//! sent and hashed. The state compares the hashes and counts wrong tries in the same step as
//! the sign-up, so that neither concurrency nor a restart gives an attacker more tries.
//!
//! The numbers are the design's: a code works for 3 minutes of engine time, 5 wrong codes
//! spend it, a phone has at most 3 live codes (a new one replaces the oldest).

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::wallet::{SignUpError, VerificationError, VerificationView};

const TTL: u64 = 180 * SECOND;
const ATTEMPTS: u8 = 5;
const PER_PHONE: u8 = 3;

fn invalid() -> Result<u64, SignUpError> {
    Err(SignUpError::Verification(VerificationError::Invalid))
}

fn sign_up_id(h: &mut Harness, number: &str, proof: kasa_core::wallet::CodeProof) -> Result<u64, SignUpError> {
    sign_up_with(h, &phone(number), proof).map(|u| u.id)
}

#[test]
fn a_sign_up_needs_a_verification_of_the_same_phone_with_the_right_code() {
    let mut h = Harness::default();
    let (a, b) = (phone("01011112222"), phone("01033334444"));
    start_verification(&mut h, verification_id(1), &a, "111111").unwrap();
    start_verification(&mut h, verification_id(2), &b, "222222").unwrap();
    // No such verification; a verification of another phone (even with its right code).
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(9), &a, "111111")), invalid());
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(2), &b, "222222")), invalid());
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(2), &a, "222222")), invalid());
    let untouched = h.state.wallets().verification(&verification_id(2)).unwrap();
    assert_eq!(untouched.attempts_left, ATTEMPTS, "a proof for another phone counts nothing against this one");
    // The code hash is of the phone and the code: the right digits for another phone are wrong.
    assert_eq!(
        sign_up_id(&mut h, "01011112222", proof(verification_id(1), &b, "111111")),
        Err(SignUpError::Verification(VerificationError::WrongCode { attempts_left: ATTEMPTS - 1 }))
    );
    assert_eq!(h.state.wallets().users_count(), 0);
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(1), &a, "111111")), Ok(1));
    assert_eq!(sign_up_id(&mut h, "01033334444", proof(verification_id(2), &b, "222222")), Ok(2));
}

#[test]
fn wrong_codes_count_down_and_the_fifth_spends_the_verification() {
    let mut h = Harness::default();
    let a = phone("01011112222");
    start_verification(&mut h, verification_id(1), &a, "111111").unwrap();
    for left in (0..ATTEMPTS).rev() {
        let wrong = proof(verification_id(1), &a, &format!("00000{left}"));
        assert_eq!(
            sign_up_id(&mut h, "01011112222", wrong),
            Err(SignUpError::Verification(VerificationError::WrongCode { attempts_left: left }))
        );
        let live = h.state.wallets().verification(&verification_id(1)).map(|v| v.attempts_left);
        assert_eq!(live, (left > 0).then_some(left));
    }
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(1), &a, "111111")), invalid(), "spent");
    // Four wrong codes leave the right one working.
    start_verification(&mut h, verification_id(2), &a, "222222").unwrap();
    for _ in 1..ATTEMPTS {
        sign_up_id(&mut h, "01011112222", proof(verification_id(2), &a, "000000")).unwrap_err();
    }
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(2), &a, "222222")), Ok(1));
}

#[test]
fn a_code_works_once() {
    let mut h = Harness::default();
    let a = phone("01011112222");
    start_verification(&mut h, verification_id(1), &a, "111111").unwrap();
    let good = proof(verification_id(1), &a, "111111");
    assert_eq!(sign_up_id(&mut h, "01011112222", good), Ok(1));
    assert!(h.state.wallets().verification(&verification_id(1)).is_none(), "used up by the sign-up");
    assert_eq!(
        reset_pin(&mut h, &a, good, HASH),
        Err(kasa_core::wallet::PinResetError::Verification(VerificationError::Invalid)),
        "the same proof again"
    );
}

#[test]
fn a_code_expires_after_three_minutes_of_engine_time() {
    let mut h = Harness::default();
    let (a, b) = (phone("01011112222"), phone("01033334444"));
    let t0 = h.now;
    assert_eq!(
        start_verification(&mut h, verification_id(1), &a, "111111"),
        Ok(VerificationView { id: verification_id(1), expires_at: t0 + TTL })
    );
    let t1 = h.now;
    start_verification(&mut h, verification_id(2), &b, "222222").unwrap();
    h.now = t0 + TTL - 1;
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(1), &a, "111111")), Ok(1), "just in time");
    h.now = t1 + TTL;
    assert_eq!(sign_up_id(&mut h, "01033334444", proof(verification_id(2), &b, "222222")), invalid(), "just late");
    assert!(h.state.wallets().verification(&verification_id(2)).is_none(), "dropped at the start of the batch");
}

#[test]
fn a_phone_has_at_most_three_live_verifications_and_a_new_one_replaces_the_oldest() {
    let mut h = Harness::default();
    let (a, b) = (phone("01011112222"), phone("01033334444"));
    start_verification(&mut h, verification_id(10), &b, "101010").unwrap();
    for n in 1..=PER_PHONE + 1 {
        start_verification(&mut h, verification_id(n), &a, &format!("{n}{n}{n}{n}{n}{n}")).unwrap();
    }
    let live: Vec<u8> =
        (1..=PER_PHONE + 1).filter(|&n| h.state.wallets().verification(&verification_id(n)).is_some()).collect();
    assert_eq!(live, [2, 3, 4]);
    assert!(h.state.wallets().verification(&verification_id(10)).is_some(), "another phone's code is its own");
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(1), &a, "111111")), invalid());
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(4), &a, "444444")), Ok(1));
    assert_eq!(sign_up_id(&mut h, "01033334444", proof(verification_id(10), &b, "101010")), Ok(2));
}

#[test]
fn a_replayed_start_verification_is_refused_and_changes_nothing() {
    let mut h = Harness::default();
    let (a, b) = (phone("01011112222"), phone("01033334444"));
    let first = start_verification(&mut h, verification_id(1), &a, "111111").unwrap();
    let before = h.state.wallets().verification(&verification_id(1)).unwrap().clone();
    assert_eq!(start_verification(&mut h, verification_id(1), &a, "222222"), Err(VerificationError::Exists));
    assert_eq!(start_verification(&mut h, verification_id(1), &b, "222222"), Err(VerificationError::Exists));
    assert_eq!(h.state.wallets().verification(&verification_id(1)), Some(&before));
    assert_eq!(before.expires_at, first.expires_at);
    assert_eq!(sign_up_id(&mut h, "01033334444", proof(verification_id(1), &b, "222222")), invalid());
    assert_eq!(sign_up_id(&mut h, "01011112222", proof(verification_id(1), &a, "111111")), Ok(1));
}

#[test]
fn verifications_survive_a_snapshot_and_expired_ones_are_gone_after_the_next_batch() {
    let mut h = Harness::default();
    let a = phone("01011112222");
    for n in 1..=PER_PHONE {
        start_verification(&mut h, verification_id(n), &a, "123123").unwrap();
    }
    let wrong = proof(verification_id(1), &a, "000000");
    sign_up_id(&mut h, "01011112222", wrong).unwrap_err();
    h.restart();
    let kept = h.state.wallets().verification(&verification_id(1)).unwrap();
    assert_eq!((kept.phone.as_str(), kept.attempts_left), ("+821011112222", ATTEMPTS - 1), "the count survives");
    // The per-phone index is rebuilt: a fourth code still replaces the oldest.
    start_verification(&mut h, verification_id(4), &a, "123123").unwrap();
    assert!(h.state.wallets().verification(&verification_id(1)).is_none());
    assert_eq!(sign_up_id(&mut h, "01011112222", wrong), invalid(), "the replaced code is gone, not counted down");
    // And the expiry order: once the last code's time is up, one batch drops them all.
    let last = h.state.wallets().verification(&verification_id(4)).unwrap().expires_at;
    h.now = last;
    h.apply(vec![]);
    for n in 1..=PER_PHONE + 1 {
        assert!(h.state.wallets().verification(&verification_id(n)).is_none(), "verification {n}");
    }
    h.restart();
    assert!(h.state.wallets().verification(&verification_id(4)).is_none(), "not in the snapshot either");
}
