//! Partners' answers to Kasa's calls (`pay`, `inquiryPayment`, `cancelPayment` for payments
//! abroad, `notifyPayment`), checked before anything in them is read. An answer decides money
//! (`S` to `pay` ends a payment paid, `F` gives the user's won back), so it counts only if the
//! partner made it for this call:
//!
//! - **Signed by the partner**, as Alipay+ signs answers and Kasa signs its own: `Client-Id`
//!   (the partner's id, `ptn_N`), `Response-Time` (RFC 3339 with an offset, within
//!   [`SKEW_NANOS`] of Kasa's clock) and `Signature: algorithm=Ed25519,keyVersion=N,...` over
//!   `POST <path>\n<Client-Id>.<Response-Time>.<body>`, where `<path>` is the one Kasa signed
//!   its call over, verified with the partner's live key of that version (a revoked key is
//!   not live).
//! - **Naming the request it answers**: a JSON object whose `paymentRequestId` is the call's.
//!   Without it, a signed `S` recorded from one payment could be played back, within the
//!   skew window, as the answer to another.
//!
//! An answer that fails a check is refused: the caller treats it exactly as no answer (an
//! unknown outcome to inquire, then cancel; a notification to send again), never as `S` or
//! `F`, and a warning says which check failed, never the body or the signature.
//!
//! Deliberately not here: what `S` or `F` means for each call (the consumers read the checked
//! JSON), and a replay guard: a partner's answers are idempotent by `paymentRequestId` (the
//! same answer to the same request is the same fact), so only an answer to another request is
//! a replay worth refusing, and the request id check refuses it.

use crate::partner_signature::{self as sig, SKEW_NANOS};
use crate::webhook_client::{Reply, SignedHeaders};
use crate::{ids, AppState};
use serde_json::Value;

/// The call an answer is for.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The partner called.
    pub partner_id: u64,
    /// The path Kasa signed its call over (the partner signs its answer over the same).
    pub path: &'a str,
    /// The call's `paymentRequestId`, which the answer must carry.
    pub payment_request_id: &'a str,
}

/// Why an answer was refused: which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header is missing (or longer than a signed answer's header can be).
    #[error("no {0} header")]
    MissingHeader(&'static str),
    /// `Client-Id` is not the partner's own id.
    #[error("Client-Id is not the partner's id")]
    OtherClient,
    /// `Response-Time` does not read.
    #[error("Response-Time is not an RFC 3339 time with an offset")]
    BadTime,
    /// `Response-Time` is too far from Kasa's clock.
    #[error("Response-Time is more than 5 minutes from Kasa's clock")]
    Skewed,
    /// `Signature` is not Ed25519's three parts.
    #[error("Signature is not algorithm=Ed25519,keyVersion=N,signature=...")]
    BadSignatureHeader,
    /// The partner has no live key of the version the signature names (never had it, or it
    /// was revoked).
    #[error("the partner has no live key of version {0}")]
    NoLiveKey(u32),
    /// The signature does not verify over the answer.
    #[error("the signature does not verify over the answer")]
    BadSignature,
    /// The body is not a JSON object.
    #[error("the body is not a JSON object")]
    NotJson,
    /// The body names another request, or none.
    #[error("the answer's paymentRequestId is not the call's")]
    OtherRequest,
}

/// The key version an answer's `Signature` names, if it reads: the key to give
/// [`check_answer`].
pub fn key_version(signed: &SignedHeaders) -> Option<u32> {
    signed.signature.as_deref().and_then(sig::parse_header).map(|h| h.key_version)
}

/// Checks a partner's answer `body` to `call`, with its headers `signed`, at Kasa's time `now`;
/// `live_key` is the partner's live public key of the version the signature names
/// ([`key_version`]), if it has one. The answer's JSON, or why it does not count.
pub fn check_answer(
    call: &Call<'_>,
    signed: &SignedHeaders,
    body: &[u8],
    now: u64,
    live_key: Option<[u8; 32]>,
) -> Result<Value, Refusal> {
    let client_id = signed.client_id.as_deref().ok_or(Refusal::MissingHeader("Client-Id"))?;
    let time = signed.response_time.as_deref().ok_or(Refusal::MissingHeader("Response-Time"))?;
    let signature = signed.signature.as_deref().ok_or(Refusal::MissingHeader("Signature"))?;
    if client_id != ids::format("ptn", call.partner_id) {
        return Err(Refusal::OtherClient);
    }
    let at = kasa_core::fx::parse_rfc3339(time).ok_or(Refusal::BadTime)?;
    if at.abs_diff(now) > SKEW_NANOS {
        return Err(Refusal::Skewed);
    }
    let signature = sig::parse_header(signature).ok_or(Refusal::BadSignatureHeader)?;
    let key = live_key.ok_or(Refusal::NoLiveKey(signature.key_version))?;
    if !sig::verify(&key, &sig::message("POST", call.path, client_id, time, body), &signature.signature) {
        return Err(Refusal::BadSignature);
    }
    let answer: Value = serde_json::from_slice(body).ok().filter(Value::is_object).ok_or(Refusal::NotJson)?;
    if answer["paymentRequestId"].as_str() != Some(call.payment_request_id) {
        return Err(Refusal::OtherRequest);
    }
    Ok(answer)
}

/// What a call to a partner gave, read: the answer's JSON if it is an HTTP 200 that passes
/// [`check_answer`] (with the partner's live key from the cache or the state); otherwise why
/// there is no answer to act on. A refused answer is logged as a warning.
pub async fn checked(app: &AppState, call: &Call<'_>, reply: Result<Reply, String>) -> Result<Value, String> {
    let reply = reply?;
    if reply.status != 200 {
        return Err(format!("HTTP {}", reply.status));
    }
    let Some(body) = reply.body else {
        return Err("HTTP 200 with an unreadable or oversized body".into());
    };
    // An engine that cannot be read (busy, stopping) leaves the answer unread, which is the
    // safe side (the payment stays pending, the notification due), and says so.
    let key = match key_version(&reply.signed) {
        Some(version) => crate::routes::partner_api::live_key(app, call.partner_id, version)
            .await
            .map_err(|error| {
                tracing::warn!(partner_id = call.partner_id, path = call.path, %error, "a partner's key could not be read: its answer is taken as no answer");
                format!("the partner's key could not be read ({error}): the answer is not taken")
            })?,
        None => None,
    };
    check_answer(call, &reply.signed, &body, app.engine.now(), key).map_err(|refusal| {
        tracing::warn!(
            partner_id = call.partner_id,
            path = call.path,
            payment_request_id = call.payment_request_id,
            %refusal,
            "partner answer refused: taken as no answer"
        );
        format!("an answer refused: {refusal}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Rfc3339;
    use crate::partner_signature::Signer;

    const NOW: u64 = 1_795_000_000 * 1_000_000_000;
    const PATH: &str = "/kasa/payments/pay";
    const CALL: Call<'static> = Call { partner_id: 3, path: PATH, payment_request_id: "kasa-op-7" };

    /// A partner's answer as a partner signs it: `body`, signed by `signer` (as key version 1)
    /// for `client_id` over `path` at `at`.
    fn answer(signer: &Signer, client_id: &str, path: &str, at: u64, body: &str) -> SignedHeaders {
        let time = Rfc3339(at).to_string();
        let signature = signer.header(1, &sig::message("POST", path, client_id, &time, body.as_bytes()));
        SignedHeaders { client_id: Some(client_id.into()), response_time: Some(time), signature: Some(signature) }
    }

    /// Regression: Kasa took any answer from a partner's endpoint (a man in the middle could
    /// fail a payment the partner made). Each row changes one thing of a good answer.
    #[test]
    fn only_a_signed_answer_to_this_call_counts() {
        let partner = Signer::from_seed(&[3; 32]);
        let key = Some(partner.public_key());
        let good = r#"{"result":{"resultStatus":"S"},"paymentRequestId":"kasa-op-7"}"#;
        let signed = answer(&partner, "ptn_3", PATH, NOW, good);
        let value = check_answer(&CALL, &signed, good.as_bytes(), NOW, key).unwrap();
        assert_eq!(value["result"]["resultStatus"], "S");
        // Within the skew either way, and with the time in another offset.
        for at in [NOW - SKEW_NANOS, NOW + SKEW_NANOS] {
            assert!(check_answer(&CALL, &answer(&partner, "ptn_3", PATH, at, good), good.as_bytes(), NOW, key).is_ok());
        }
        let mut seoul = signed.clone();
        seoul.response_time = Some("2026-11-18T08:26:40+09:00".into());
        let at = kasa_core::fx::parse_rfc3339("2026-11-18T08:26:40+09:00").unwrap();
        let message = sig::message("POST", PATH, "ptn_3", "2026-11-18T08:26:40+09:00", good.as_bytes());
        seoul.signature = Some(partner.header(1, &message));
        assert!(check_answer(&CALL, &seoul, good.as_bytes(), at, key).is_ok());

        let without = |f: fn(&mut SignedHeaders)| {
            let mut h = signed.clone();
            f(&mut h);
            h
        };
        let other_request = r#"{"result":{"resultStatus":"S"},"paymentRequestId":"kasa-op-8"}"#;
        let no_request = r#"{"result":{"resultStatus":"S"}}"#;
        let stranger = Signer::from_seed(&[4; 32]);
        let rows = vec![
            ("unsigned", SignedHeaders::default(), good, key, Refusal::MissingHeader("Client-Id")),
            ("no time", without(|h| h.response_time = None), good, key, Refusal::MissingHeader("Response-Time")),
            ("no signature", without(|h| h.signature = None), good, key, Refusal::MissingHeader("Signature")),
            ("another partner's id", answer(&partner, "ptn_4", PATH, NOW, good), good, key, Refusal::OtherClient),
            (
                "a time without offset",
                without(|h| h.response_time = Some("2026-11-18T08:26:40".into())),
                good,
                key,
                Refusal::BadTime,
            ),
            ("too early", answer(&partner, "ptn_3", PATH, NOW - SKEW_NANOS - 1, good), good, key, Refusal::Skewed),
            ("too late", answer(&partner, "ptn_3", PATH, NOW + SKEW_NANOS + 1, good), good, key, Refusal::Skewed),
            (
                "RSA",
                without(|h| h.signature = Some("algorithm=RSA256,keyVersion=1,signature=AAAA".into())),
                good,
                key,
                Refusal::BadSignatureHeader,
            ),
            ("a key it does not have (or revoked)", signed.clone(), good, None, Refusal::NoLiveKey(1)),
            ("a stranger's key", answer(&stranger, "ptn_3", PATH, NOW, good), good, key, Refusal::BadSignature),
            (
                "signed for another call",
                answer(&partner, "ptn_3", "/kasa/payments/cancelPayment", NOW, good),
                good,
                key,
                Refusal::BadSignature,
            ),
            ("a changed body", signed.clone(), other_request, key, Refusal::BadSignature),
            ("not JSON", answer(&partner, "ptn_3", PATH, NOW, "S"), "S", key, Refusal::NotJson),
            ("a JSON array", answer(&partner, "ptn_3", PATH, NOW, "[]"), "[]", key, Refusal::NotJson),
            (
                "another request's",
                answer(&partner, "ptn_3", PATH, NOW, other_request),
                other_request,
                key,
                Refusal::OtherRequest,
            ),
            (
                "no request named",
                answer(&partner, "ptn_3", PATH, NOW, no_request),
                no_request,
                key,
                Refusal::OtherRequest,
            ),
        ];
        for (what, headers, body, key, refusal) in rows {
            assert_eq!(check_answer(&CALL, &headers, body.as_bytes(), NOW, key), Err(refusal), "{what}");
        }
    }

    #[test]
    fn the_key_version_is_the_signatures() {
        let partner = Signer::from_seed(&[3; 32]);
        let mut signed = answer(&partner, "ptn_3", PATH, NOW, "{}");
        assert_eq!(key_version(&signed), Some(1));
        signed.signature = Some(partner.header(7, b"x"));
        assert_eq!(key_version(&signed), Some(7));
        signed.signature = Some("keyVersion=7".into());
        assert_eq!(key_version(&signed), None);
        assert_eq!(key_version(&SignedHeaders::default()), None);
    }
}
