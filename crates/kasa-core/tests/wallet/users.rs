//! Users: sign-up creates the user and the wallet account together, one user per phone
//! number, PIN lockout that a restart cannot reset, operators' unlock and tiers, sessions
//! that expire by engine time, and PIN reset with a fresh verification code.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::limits::Tier;
use kasa_core::wallet::{
    wallet_account_id, Command, Name, PinHash, PinResetError, SessionError, SignUpError, UserError, UserView,
    VerificationError, PIN_ATTEMPTS_MAX, PIN_LOCK_NANOS, SESSIONS_PER_USER_MAX,
};
use kasa_core::AccountFlags;

/// Five wrong logins in a row; returns when PIN use is locked until.
fn lock(h: &mut Harness, user_id: u64) -> u64 {
    for _ in 1..PIN_ATTEMPTS_MAX {
        assert!(matches!(login(h, user_id, 9, false), Err(SessionError::WrongPin { locked_until: 0, .. })));
    }
    match login(h, user_id, 9, false) {
        Err(SessionError::WrongPin { attempts_left: 0, locked_until }) => locked_until,
        other => panic!("the fifth wrong PIN did not lock: {other:?}"),
    }
}

#[test]
fn sign_up_creates_the_user_and_the_wallet_account_together() {
    let mut h = Harness::default();
    let number = phone("010-1234-5678");
    let at = h.now;
    let proof = verify(&mut h, &number);
    let user = sign_up_with(&mut h, &number, proof).unwrap();
    let expected = UserView {
        id: 1,
        phone: phone("+821012345678"),
        name: Name::new("김민지").unwrap(),
        tier: Tier::Basic,
        pin_locked_until: 0,
        pin_free_amount: won(50_000),
        created_at: at + 1,
        as_of: at + 1,
    };
    assert_eq!(user, expected, "the verification was the batch before");
    assert_eq!(h.state.wallets().user(1).unwrap().pin_hash.as_str(), HASH);
    let account = h.state.books().account(wallet_account_id(1)).expect("the wallet account exists");
    assert_eq!(account.ledger, 410);
    assert!(account.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
    assert!(account.flags.has(AccountFlags::HISTORY), "the wallet keeps the balance history behind the history");
    assert_eq!(h.state.ledger().accounts_count(), 0, "Kasa's books, not the operators' ledger");
    // The same number in another spelling is the same phone.
    assert_eq!(sign_up(&mut h, "+82 10 1234 5678"), Err(SignUpError::PhoneTaken));
    assert_eq!(sign_up(&mut h, "011-234-5678"), Ok(2), "an older carrier's (10-digit) number");
    assert_eq!(h.state.wallets().user_by_phone(&phone("+82112345678")).map(|u| u.id), Some(2));
    // Bad input never becomes a command: the types refuse it where it enters.
    assert!(kasa_core::wallet::Phone::parse("hello").is_err());
    assert!(kasa_core::wallet::Phone::parse("010-1234-567").is_err(), "010 numbers have 8 digits after 010");
    for name in ["", "   ", "a\u{7}b"] {
        assert!(Name::new(name).is_err(), "{name:?}");
    }
    assert!(Name::new("가".repeat(51)).is_err());
    assert!(Name::new("가".repeat(50)).is_ok());
    assert!(PinHash::new("1234").is_err(), "a PIN hash is a PHC string, never the PIN");
    assert_eq!(h.state.wallets().users_count(), 2);
    assert_eq!(h.state.books().accounts_count(), 2, "the refused sign-up made no account");
}

#[test]
fn five_wrong_pins_lock_and_the_lock_survives_a_snapshot() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    for attempt in 1..PIN_ATTEMPTS_MAX {
        assert_eq!(
            login(&mut h, id, 9, false),
            Err(SessionError::WrongPin { attempts_left: PIN_ATTEMPTS_MAX - attempt, locked_until: 0 })
        );
    }
    let fifth = h.now;
    assert_eq!(
        login(&mut h, id, 9, false),
        Err(SessionError::WrongPin { attempts_left: 0, locked_until: fifth + PIN_LOCK_NANOS })
    );
    let locked_until = fifth + PIN_LOCK_NANOS;
    // Locked: even the right PIN is refused, and nothing is counted.
    assert_eq!(login(&mut h, id, 1, true), Err(SessionError::Locked { until: locked_until }));
    assert!(h.state.wallets().user(id).unwrap().view(h.now).pin_locked());
    // A restart (snapshot and decode) does not reset the lock.
    h.restart();
    assert_eq!(login(&mut h, id, 1, true), Err(SessionError::Locked { until: locked_until }));
    h.now = locked_until - 1;
    assert_eq!(login(&mut h, id, 1, true), Err(SessionError::Locked { until: locked_until }), "to the nanosecond");
    // After the cool-down the right PIN works and clears the count.
    h.now = locked_until;
    let expires_at = login(&mut h, id, 1, true).unwrap();
    assert_eq!(expires_at, locked_until + 3600 * SECOND);
    assert!(h.state.wallets().session(&[1; 32], expires_at - 1).is_some());
    assert_eq!(h.state.wallets().user(id).unwrap().pin_failures, 0);
}

#[test]
fn a_right_pin_clears_the_count_of_wrong_ones() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    for _ in 1..PIN_ATTEMPTS_MAX {
        login(&mut h, id, 9, false).unwrap_err();
    }
    login(&mut h, id, 1, true).unwrap();
    assert_eq!(
        login(&mut h, id, 9, false),
        Err(SessionError::WrongPin { attempts_left: PIN_ATTEMPTS_MAX - 1, locked_until: 0 })
    );
}

#[test]
fn an_operator_unlock_lifts_the_lock_and_tiers_change() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    lock(&mut h, id);
    assert!(matches!(login(&mut h, id, 1, true), Err(SessionError::Locked { .. })));
    let unlocked = user_changed(&mut h, Command::UnlockPin { user_id: id }).unwrap();
    assert_eq!((unlocked.pin_locked_until, unlocked.pin_locked()), (0, false));
    assert!(login(&mut h, id, 1, true).is_ok());
    let verified = user_changed(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }).unwrap();
    assert_eq!(verified.tier, Tier::Verified);
    assert_eq!(h.state.wallets().user(id).unwrap().tier, Tier::Verified);
    assert_eq!(
        user_changed(&mut h, Command::SetTier { user_id: 99, tier: Tier::Verified }),
        Err(UserError::UnknownUser)
    );
    assert_eq!(user_changed(&mut h, Command::UnlockPin { user_id: 99 }), Err(UserError::UnknownUser));
    assert_eq!(login(&mut h, 99, 1, true), Err(SessionError::UnknownUser));
    assert_eq!(login(&mut h, 0, 1, true), Err(SessionError::UnknownUser));
}

#[test]
fn sessions_close_and_expire_by_engine_time() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let expires_at = login(&mut h, id, 1, true).unwrap();
    login(&mut h, id, 2, true).unwrap();
    assert_eq!(
        wallet(&mut h, Command::CloseSession { token_hash: [2; 32] }),
        kasa_core::wallet::Outcome::SessionClosed(true)
    );
    assert_eq!(
        wallet(&mut h, Command::CloseSession { token_hash: [2; 32] }),
        kasa_core::wallet::Outcome::SessionClosed(false)
    );
    assert!(h.state.wallets().session(&[2; 32], h.now).is_none());
    assert!(h.state.wallets().session(&[1; 32], h.now).is_some());
    // Reads at a later time see it expired; the next batch after expiry drops it for good.
    assert!(h.state.wallets().session(&[1; 32], expires_at).is_none());
    assert_eq!(h.state.wallets().sessions_count(), 1);
    h.now = expires_at;
    h.apply(vec![]);
    assert_eq!(h.state.wallets().sessions_count(), 0);
    let restored = kasa_core::State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
    assert!(restored.wallets().session(&[1; 32], 0).is_none(), "expired sessions are gone from the state");
}

#[test]
fn a_user_holds_a_bounded_number_of_sessions() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let other = sign_up(&mut h, "01099998888").unwrap();
    login(&mut h, other, 100, true).unwrap();
    for token in 1..=20u8 {
        login(&mut h, id, token, true).unwrap();
    }
    let now = h.now;
    let live = (1..=20u8).filter(|&t| h.state.wallets().session(&[t; 32], now).is_some()).count();
    assert_eq!(live, SESSIONS_PER_USER_MAX);
    assert!(h.state.wallets().session(&[4; 32], now).is_none(), "the oldest sessions were closed");
    assert!(h.state.wallets().session(&[5; 32], now).is_some());
    assert!(h.state.wallets().session(&[100; 32], now).is_some(), "another user's session is not theirs to close");
    assert_eq!(h.state.wallets().sessions_count(), SESSIONS_PER_USER_MAX + 1);
}

/// A replayed login (the same token hash) keeps the first session as it was.
#[test]
fn a_replayed_login_keeps_the_first_session() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let first = login(&mut h, id, 1, true).unwrap();
    h.advance(60 * SECOND);
    assert_eq!(login(&mut h, id, 1, true), Ok(first));
    assert_eq!(h.state.wallets().sessions_count(), 1);
}

const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3";

#[test]
fn a_pin_reset_needs_a_proof_of_the_same_phone() {
    let mut h = Harness::default();
    let number = phone("01012345678");
    let other = phone("01099998888");
    sign_up(&mut h, "01012345678").unwrap();
    // A proof of another number, or a wrong code, resets nothing.
    let foreign = verify(&mut h, &other);
    assert_eq!(
        reset_pin(&mut h, &number, foreign, NEW_HASH),
        Err(PinResetError::Verification(VerificationError::Invalid))
    );
    start_verification(&mut h, verification_id(1), &number, "111111").unwrap();
    assert_eq!(
        reset_pin(&mut h, &number, proof(verification_id(1), &number, "222222"), NEW_HASH),
        Err(PinResetError::Verification(VerificationError::WrongCode { attempts_left: 4 }))
    );
    assert_eq!(h.state.wallets().user(1).unwrap().pin_hash.as_str(), HASH);
    // A number without a wallet: refused once the code is checked (only the number's holder
    // learns it has no wallet), and the code stays usable for a sign-up.
    let nobody = phone("01055554444");
    let unused = verify(&mut h, &nobody);
    assert_eq!(reset_pin(&mut h, &nobody, unused, NEW_HASH), Err(PinResetError::UnknownPhone));
    assert!(h.state.wallets().verification(&unused.verification_id).is_some());
    assert_eq!(sign_up_with(&mut h, &nobody, unused).map(|u| u.id), Ok(2));
    // The right code works, once.
    let good = proof(verification_id(1), &number, "111111");
    assert_eq!(reset_pin(&mut h, &number, good, NEW_HASH).map(|u| u.id), Ok(1));
    assert_eq!(h.state.wallets().user(1).unwrap().pin_hash.as_str(), NEW_HASH);
    assert_eq!(reset_pin(&mut h, &number, good, HASH), Err(PinResetError::Verification(VerificationError::Invalid)));
}

#[test]
fn a_pin_reset_lifts_the_lock_sets_the_hash_and_closes_every_session() {
    let mut h = Harness::default();
    let number = phone("01012345678");
    let id = sign_up(&mut h, "01012345678").unwrap();
    let other = sign_up(&mut h, "01099998888").unwrap();
    for token in 1..=3 {
        login(&mut h, id, token, true).unwrap();
    }
    login(&mut h, other, 50, true).unwrap();
    let locked_until = lock(&mut h, id);
    assert!(locked_until > h.now);
    let proof = verify(&mut h, &number);
    let at = h.now;
    let view = reset_pin(&mut h, &number, proof, NEW_HASH).unwrap();
    assert_eq!((view.id, view.pin_locked_until, view.pin_locked(), view.as_of), (id, 0, false, at));
    let user = h.state.wallets().user(id).unwrap();
    assert_eq!((user.pin_hash.as_str(), user.pin_failures), (NEW_HASH, 0));
    for token in 1..=3 {
        assert!(h.state.wallets().session(&[token; 32], h.now).is_none(), "session {token} survived the reset");
    }
    assert!(h.state.wallets().session(&[50; 32], h.now).is_some(), "another user's session stays");
    assert_eq!(h.state.wallets().sessions_count(), 1);
    // The owner logs in again at once, and the count of wrong PINs starts over.
    login(&mut h, id, 4, true).unwrap();
    assert_eq!(
        login(&mut h, id, 9, false),
        Err(SessionError::WrongPin { attempts_left: PIN_ATTEMPTS_MAX - 1, locked_until: 0 })
    );
}

/// Regression (review): a sign-up or PIN reset with a made-up verification answered
/// `phone_taken` or `unknown_phone` before looking at the code, telling a stranger whether a
/// number is registered. The code is checked first: without it both numbers answer alike.
#[test]
fn without_the_code_a_stranger_cannot_tell_a_registered_number() {
    let mut h = Harness::default();
    let registered = phone("01012345678");
    let unregistered = phone("01087654321");
    sign_up(&mut h, "01012345678").unwrap();
    for number in [&registered, &unregistered] {
        let made_up = proof(verification_id(9), number, "123456");
        assert_eq!(sign_up_with(&mut h, number, made_up), Err(SignUpError::Verification(VerificationError::Invalid)));
        assert_eq!(
            reset_pin(&mut h, number, made_up, NEW_HASH),
            Err(PinResetError::Verification(VerificationError::Invalid))
        );
    }
    // The holder of the registered number, with a real code, learns it is taken, and can
    // use the same code to reset the PIN.
    let real = verify(&mut h, &registered);
    assert_eq!(sign_up_with(&mut h, &registered, real), Err(SignUpError::PhoneTaken));
    assert_eq!(reset_pin(&mut h, &registered, real, NEW_HASH).map(|u| u.id), Ok(1));
}
