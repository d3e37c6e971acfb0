//! Personal data at rest: the data key, and what is made with it.
//!
//! A bank account number is stored only sealed: encrypted with XChaCha20-Poly1305 (an AEAD
//! from RustCrypto) under the data key, with a random nonce and the bank code as associated
//! data, so a journal, a snapshot or a backup never holds a whole number; it is matched (one
//! link per account and user) by a keyed BLAKE3 hash, and shown by its last four digits.
//! Verification codes are kept only as keyed hashes too. The data key lives beside the
//! operator key (`data.key`, mode 0600, or `KASA_DATA_KEY`); losing it makes the sealed
//! numbers unreadable, so it is backed up with them, never in the same place as the journal.
//!
//! Keys for each use are derived from the data key with BLAKE3's key derivation and a
//! context string per use, so no two uses share a key.

use crate::Secret;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{BankCode, Last4, Phone, SealedAccountNumber};

/// Nonce bytes of XChaCha20-Poly1305: random nonces of 192 bits never repeat in practice.
const NONCE_BYTES: usize = 24;

/// The keys derived from the data key.
#[derive(Clone)]
pub struct DataKeys {
    seal: [u8; 32],
    lookup: [u8; 32],
    codes: [u8; 32],
    secrets: [u8; 32],
    approvals: [u8; 32],
    payment_codes: [u8; 32],
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(***)")
    }
}

/// Why a number could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The operating system gave no randomness.
    #[error("no randomness for a nonce")]
    Randomness,
    /// The ciphertext does not open with this key (another data key, or damage).
    #[error("the sealed number does not open with this data key")]
    Open,
}

impl DataKeys {
    /// The keys derived from `data_key` (any length; 32 random bytes as generated).
    pub fn new(data_key: &Secret) -> Self {
        let key = data_key.expose().as_bytes();
        DataKeys {
            seal: blake3::derive_key("kasa 2026-11 bank account number sealing", key),
            lookup: blake3::derive_key("kasa 2026-11 bank account number lookup", key),
            codes: blake3::derive_key("kasa 2026-11 phone verification code", key),
            secrets: blake3::derive_key("kasa 2026-11 webhook signing secret", key),
            approvals: blake3::derive_key("kasa 2026-11 payment approval token", key),
            payment_codes: blake3::derive_key("kasa 2026-12 one-time payment code", key),
        }
    }

    /// Seals a bank account number (digits only) of `bank_code`.
    pub fn seal(&self, bank_code: &BankCode, digits: &str) -> Result<SealedAccountNumber, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|_| SealError::Randomness)?;
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let payload = Payload { msg: digits.as_bytes(), aad: bank_code.as_str().as_bytes() };
        let ciphertext = cipher.encrypt(XNonce::from_slice(&nonce), payload).map_err(|_| SealError::Randomness)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        let last4 = Last4::new(&digits[digits.len().saturating_sub(4)..]).map_err(|_| SealError::Open)?;
        Ok(SealedAccountNumber {
            ciphertext: BoundedVec::new(sealed).map_err(|_| SealError::Open)?,
            lookup: self.lookup(bank_code, digits),
            last4,
        })
    }

    /// Opens a sealed number: the digits, for the one place that needs them (the bank).
    pub fn open(&self, bank_code: &BankCode, sealed: &SealedAccountNumber) -> Result<Secret, SealError> {
        let bytes = sealed.ciphertext.as_slice();
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let payload = Payload { msg: ciphertext, aad: bank_code.as_str().as_bytes() };
        let digits = cipher.decrypt(XNonce::from_slice(nonce), payload).map_err(|_| SealError::Open)?;
        String::from_utf8(digits).map(Secret::new).map_err(|_| SealError::Open)
    }

    /// Seals a webhook signing secret for the state (bound to its endpoint's merchant).
    pub fn seal_secret(&self, merchant_id: u64, secret: &str) -> Result<kasa_core::merchant::SealedSecret, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|_| SealError::Randomness)?;
        let cipher = XChaCha20Poly1305::new((&self.secrets).into());
        let aad = merchant_id.to_le_bytes();
        let payload = Payload { msg: secret.as_bytes(), aad: &aad };
        let ciphertext = cipher.encrypt(XNonce::from_slice(&nonce), payload).map_err(|_| SealError::Randomness)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(kasa_core::merchant::SealedSecret { ciphertext: BoundedVec::new(sealed).map_err(|_| SealError::Open)? })
    }

    /// Opens a sealed webhook signing secret, for signing a delivery.
    pub fn open_secret(
        &self,
        merchant_id: u64,
        sealed: &kasa_core::merchant::SealedSecret,
    ) -> Result<Secret, SealError> {
        let bytes = sealed.ciphertext.as_slice();
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&self.secrets).into());
        let aad = merchant_id.to_le_bytes();
        let payload = Payload { msg: ciphertext, aad: &aad };
        let secret = cipher.decrypt(XNonce::from_slice(nonce), payload).map_err(|_| SealError::Open)?;
        String::from_utf8(secret).map(Secret::new).map_err(|_| SealError::Open)
    }

    /// The token of a payment's approval link (`/pay/pay_12?token=...`): 128 bits of a keyed
    /// hash of the payment's id, as 32 hex digits. Payment ids are sequential, so without it
    /// any logged-in user could read or decline everyone's payments; with it only whoever the
    /// merchant gave the link can. Derived, not stored: a keyed retry of the payment's
    /// creation and a later read show the same link.
    pub fn approval_token(&self, payment_id: u64) -> String {
        let hash = blake3::keyed_hash(&self.approvals, &payment_id.to_le_bytes());
        kasa_engine::hex(&hash.as_bytes()[..16])
    }

    /// Whether `token` is payment `payment_id`'s approval token (in constant time).
    pub fn approval_token_matches(&self, payment_id: u64, token: &str) -> bool {
        let want = self.approval_token(payment_id);
        want.len() == token.len() && want.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The key of one-time payment codes (`crate::paycode`).
    pub(crate) fn payment_codes(&self) -> &[u8; 32] {
        &self.payment_codes
    }

    /// The keyed hash that matches one account of one bank.
    pub fn lookup(&self, bank_code: &BankCode, digits: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.lookup, format!("{}:{digits}", bank_code.as_str()).as_bytes()).as_bytes()
    }

    /// The keyed hash of a verification code sent to `phone`.
    pub fn code_hash(&self, phone: &Phone, code: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.codes, format!("{}:{code}", phone.as_str()).as_bytes()).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_merchant() {
        let keys = DataKeys::new(&Secret::new("a data key of enough length".into()));
        let sealed = keys.seal_secret(7, "whsec_0123456789abcdef").unwrap();
        let bytes = kasa_core::codec::encode(&sealed);
        assert!(!bytes.windows(16).any(|w| w == b"0123456789abcdef"), "the secret is not in the encoding");
        assert_eq!(keys.open_secret(7, &sealed).unwrap().expose(), "whsec_0123456789abcdef");
        assert!(keys.open_secret(8, &sealed).is_err(), "another merchant's");
        let other = DataKeys::new(&Secret::new("another data key of enough length".into()));
        assert!(other.open_secret(7, &sealed).is_err(), "another data key");
    }

    #[test]
    fn a_sealed_number_opens_only_with_its_key_and_bank() {
        let keys = DataKeys::new(&Secret::new("a data key of enough length".into()));
        let bank = BankCode::new("088").unwrap();
        let sealed = keys.seal(&bank, "110123456789").unwrap();
        let bytes = kasa_core::codec::encode(&sealed);
        assert!(!bytes.windows(12).any(|w| w == b"110123456789"), "the digits are not in the encoding");
        assert_eq!(sealed.last4.as_str(), "6789");
        assert_eq!(keys.open(&bank, &sealed).unwrap().expose(), "110123456789");
        let other = DataKeys::new(&Secret::new("another data key entirely".into()));
        assert!(other.open(&bank, &sealed).is_err());
        assert!(keys.open(&BankCode::new("004").unwrap(), &sealed).is_err(), "the bank code is bound in");
        assert_eq!(keys.lookup(&bank, "110123456789"), keys.seal(&bank, "110123456789").unwrap().lookup);
    }
}
