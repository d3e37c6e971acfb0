//! The merchant domain: merchants that operators onboard (checked business registration
//! number, category code, fee, settlement bank account), their stores, and their API keys
//! (kept as hashes, with scopes, revocable at once), as commands on the same deterministic
//! state as Kasa's books. Payments, refunds and payouts build on it.
//!
//! As in the wallet, the HTTP layer does what needs secrets or randomness: it draws API keys
//! and hashes them, and seals settlement account numbers; the commands carry the results.

pub mod approval;
pub mod brn;
pub mod command;
mod history;
pub mod import;
pub mod instore;
pub mod payment;
pub mod payout;
pub mod refund;
mod snapshot;
pub mod webhook;

pub use approval::{fee_of, AnswerError, AnsweredPayment, CAPTURE_SECONDS};
pub use brn::{parse_brn, Brn, BrnError};
pub use command::{
    Acceptance, ApiKey, BusinessName, Command, DisplayName, Event, KeyPrefix, Mcc, Merchant, MerchantError,
    MerchantStatus, Outcome, Scopes, SettlementAccount, Store, StoreAcceptance, FEE_BPS_MAX,
    LIVE_KEYS_PER_MERCHANT_MAX, STORES_PER_MERCHANT_MAX,
};
pub use import::{
    code_names, ChunkApplied, City, CountryCode, ImportChunk, ImportEntry, ImportError, ImportField, ImportJob,
    ImportRow, PartnerId, PartnerName, QrPayload, RowRefusal, RowResult, IMPORTED_FEE_BPS, PARTNERS_PER_MERCHANT_MAX,
    ROWS_PER_CHUNK_MAX, ROWS_PER_IMPORT_MAX,
};
pub use instore::{CodeCharge, InStoreError, Scan, KASA_ORDER_PREFIX};
pub use payment::{
    CancelReason, CaptureMethod, Channel, ItemName, KeyCommand, KeyOutcome, KeyRefusal, OrderId, Payer, Payment,
    PaymentError, PaymentStatus, ReturnUrl, APPROVAL_SECONDS_DEFAULT, APPROVAL_SECONDS_MAX, APPROVAL_SECONDS_MIN,
    PAYMENT_AMOUNT_MAX,
};
pub use payout::{Payout, PayoutRun, PayoutStatus};
pub use refund::{Refund, RefundReason, REFUNDS_PER_PAYMENT_MAX};
pub use snapshot::MerchantsView;
pub use webhook::{
    DeliveryProgress, EventTypes, SealedSecret, WebhookCommand, WebhookEndpoint, WebhookError, WebhookUrl,
    ENDPOINTS_PER_MERCHANT_MAX, EVENT_TYPES, FAILING_NANOS_MAX,
};

use crate::codec::{DecodeError, Reader, Sink};
use crate::domain::Domain;
use crate::ledger::Ledger;
use crate::money::Amount;
use crate::table::Table;
use crate::time::NANOS_PER_MINUTE;
use std::collections::{BTreeMap, BTreeSet};

/// The context a merchant command is applied in.
pub type Ctx<'a> = crate::context::Ctx<'a, Event>;

/// The merchant domain's tables. Persistent collections where a snapshot holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merchants {
    pub(crate) merchants: imbl::Vector<Merchant>,
    /// Derived: merchant by business registration number.
    pub(crate) by_brn: BTreeMap<Brn, u64>,
    pub(crate) stores: imbl::Vector<Store>,
    /// Derived: a merchant's stores, oldest first.
    pub(crate) stores_of: BTreeMap<u64, Vec<u64>>,
    pub(crate) keys: imbl::Vector<ApiKey>,
    /// Derived: key by hash, for every key (revoked ones too, so that a hash never repeats).
    pub(crate) key_by_hash: Table<[u8; 32], u64>,
    /// Derived: a merchant's keys, oldest first.
    pub(crate) keys_of: BTreeMap<u64, Vec<u64>>,
    pub(crate) payments: imbl::Vector<Payment>,
    /// Derived: payment by (merchant, order id).
    pub(crate) by_order: Table<(u64, OrderId), u64>,
    /// Derived: a merchant's payments, oldest first.
    pub(crate) payments_of: BTreeMap<u64, Vec<u64>>,
    /// Derived: (merchant, status, payment id) of every payment, so that a list filtered by
    /// status reads only that status's payments. Kept by [`Merchants::payment_to`], the one
    /// place a payment's status changes.
    pub(crate) by_status: BTreeSet<(u64, u8, u64)>,
    /// Derived: unapproved payments by (expires at, id).
    pub(crate) payment_expiries: BTreeSet<(u64, u64)>,
    pub(crate) endpoints: imbl::Vector<WebhookEndpoint>,
    /// Derived: (merchant, endpoint id) of every endpoint not deleted, so that a merchant's
    /// are a range rather than a scan of everyone's.
    pub(crate) live_endpoints: BTreeSet<(u64, u64)>,
    pub(crate) refunds: imbl::Vector<Refund>,
    /// Derived: a payment's refunds, oldest first.
    pub(crate) refunds_of: BTreeMap<u64, Vec<u64>>,
    pub(crate) payouts: imbl::Vector<Payout>,
    /// Where the current KST day's payout run stands.
    pub(crate) payout_run: PayoutRun,
    /// Derived: a merchant's payouts, oldest first.
    pub(crate) payouts_of: BTreeMap<u64, Vec<u64>>,
    /// Derived: payouts waiting for the bank.
    pub(crate) pending_payouts: BTreeSet<u64>,
    /// Derived: per merchant, the ranges of payouts that failed since its last payout, which
    /// its next payout covers too.
    pub(crate) reclaim: BTreeMap<u64, Vec<(u64, u64)>>,
    /// Imports of partners' merchant networks.
    pub(crate) imports: imbl::Vector<ImportJob>,
    /// Derived: import by key.
    pub(crate) import_by_key: BTreeMap<[u8; 32], u64>,
    /// Derived: merchant by partner and the partner's merchant id.
    pub(crate) by_partner_id: BTreeMap<(PartnerName, PartnerId), u64>,
    /// Derived: store by partner and the partner's store id.
    pub(crate) by_partner_store: BTreeMap<(PartnerName, PartnerId), u64>,
}

impl Merchants {
    /// Applies one merchant command.
    pub fn apply(&mut self, command: &Command, ctx: &mut Ctx) -> Outcome {
        let now = ctx.now();
        match command {
            Command::CreateMerchant { business_name, display_name, brn, mcc, fee_bps, settlement } => {
                Outcome::MerchantCreated(self.create_merchant(
                    business_name,
                    display_name,
                    brn,
                    *mcc,
                    *fee_bps,
                    settlement,
                    ctx,
                ))
            }
            Command::SetMerchantStatus { merchant_id, status } => {
                Outcome::MerchantChanged(self.set_status(*merchant_id, *status, ctx))
            }
            Command::CreateStore { merchant_id, name } => {
                Outcome::StoreCreated(self.create_store(*merchant_id, name, ctx))
            }
            Command::CreateApiKey { merchant_id, name, scopes, prefix, key_hash } => {
                Outcome::ApiKeyCreated(self.create_key(*merchant_id, name, *scopes, prefix, *key_hash, ctx))
            }
            Command::RevokeApiKey { merchant_id, key_id } => {
                Outcome::ApiKeyRevoked(self.revoke_key(*merchant_id, *key_id, ctx))
            }
            Command::KeysUsed { uses } => {
                let mut moved = 0;
                for &(key_id, at) in uses.as_slice() {
                    // A use is recorded to the minute, and never later than now.
                    let minute = at.min(now) / NANOS_PER_MINUTE * NANOS_PER_MINUTE;
                    if let Some(key) = self.key_mut(key_id).filter(|k| k.last_used_at < minute) {
                        key.last_used_at = minute;
                        moved += 1;
                    }
                }
                Outcome::KeysUsed(moved)
            }
            Command::AsKey { key_hash, command } => {
                let (key_id, outcome) = self.apply_as_key(key_hash, command, ctx);
                Outcome::AsKey { key_id, outcome }
            }
            // The state applies an answer as a flow with the wallet domain
            // (`approval::answer_payment`); alone, the merchant domain knows no sessions.
            Command::AnswerPayment { .. } => Outcome::PaymentAnswered(Err(AnswerError::SessionInvalid)),
            Command::PayByQr { .. } => Outcome::QrPaid(Err(InStoreError::SessionInvalid)),
            Command::ChargeCode { .. } => {
                Outcome::CodeCharged { key_id: 0, outcome: Err(InStoreError::Key(KeyRefusal::UnknownKey)) }
            }
            Command::RecordDeliveries { progress } => {
                Outcome::DeliveriesRecorded(self.record_deliveries(progress.as_slice(), ctx))
            }
            Command::SettlePayout { payout_id, result } => {
                Outcome::PayoutSettled(self.settle_payout(*payout_id, *result, ctx))
            }
            Command::StartImport { partner, key, rows } => {
                Outcome::ImportStarted(self.start_import(partner, *key, *rows, now))
            }
            Command::ImportRows(chunk) => {
                Outcome::RowsImported(self.import_chunk(chunk, now, &mut |event| ctx.emit(event)))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_merchant(
        &mut self,
        business_name: &BusinessName,
        display_name: &DisplayName,
        brn: &Brn,
        mcc: Mcc,
        fee_bps: u16,
        settlement: &SettlementAccount,
        ctx: &mut Ctx,
    ) -> Result<Merchant, MerchantError> {
        if let Some(&merchant_id) = self.by_brn.get(brn) {
            return Err(MerchantError::Exists { merchant_id });
        }
        if fee_bps > FEE_BPS_MAX {
            return Err(MerchantError::FeeTooHigh);
        }
        let now = ctx.now();
        let merchant = Merchant {
            id: self.merchants.len() as u64 + 1,
            business_name: business_name.clone(),
            display_name: display_name.clone(),
            brn: brn.clone(),
            mcc,
            fee_bps,
            settlement: Some(SettlementAccount::clone(settlement)),
            status: MerchantStatus::Active,
            created_at: now,
            status_changed_at: now,
            acceptance: crate::text::BoundedVec::default(),
        };
        self.by_brn.insert(brn.clone(), merchant.id);
        self.merchants.push_back(merchant.clone());
        ctx.emit(Event::MerchantCreated { merchant_id: merchant.id });
        Ok(merchant)
    }

    fn set_status(
        &mut self,
        merchant_id: u64,
        status: MerchantStatus,
        ctx: &mut Ctx,
    ) -> Result<Merchant, MerchantError> {
        let now = ctx.now();
        let merchant = self.merchant_mut(merchant_id).ok_or(MerchantError::UnknownMerchant)?;
        if merchant.status == MerchantStatus::Closed {
            return Err(MerchantError::Closed);
        }
        if merchant.status != status {
            merchant.status = status;
            merchant.status_changed_at = now;
            let merchant = merchant.clone();
            ctx.emit(Event::MerchantStatusChanged { merchant_id, status });
            return Ok(merchant);
        }
        Ok(merchant.clone())
    }

    fn create_store(&mut self, merchant_id: u64, name: &DisplayName, ctx: &mut Ctx) -> Result<Store, MerchantError> {
        self.open_merchant(merchant_id)?;
        if self.stores_of.get(&merchant_id).map_or(0, Vec::len) >= STORES_PER_MERCHANT_MAX {
            return Err(MerchantError::TooManyStores);
        }
        let store = Store {
            id: self.stores.len() as u64 + 1,
            merchant_id,
            name: name.clone(),
            created_at: ctx.now(),
            partner: None,
        };
        self.index_store(&store);
        self.stores.push_back(store.clone());
        ctx.emit(Event::StoreCreated { merchant_id, store_id: store.id });
        Ok(store)
    }

    fn create_key(
        &mut self,
        merchant_id: u64,
        name: &DisplayName,
        scopes: Scopes,
        prefix: &KeyPrefix,
        key_hash: [u8; 32],
        ctx: &mut Ctx,
    ) -> Result<ApiKey, MerchantError> {
        self.open_merchant(merchant_id)?;
        if scopes.is_empty() {
            return Err(MerchantError::NoScopes);
        }
        if self.key_by_hash.contains_key(&key_hash) {
            return Err(MerchantError::KeyExists);
        }
        if self.keys_of(merchant_id).filter(|k| k.revoked_at == 0).count() >= LIVE_KEYS_PER_MERCHANT_MAX {
            return Err(MerchantError::TooManyKeys);
        }
        let key = ApiKey {
            id: self.keys.len() as u64 + 1,
            merchant_id,
            name: name.clone(),
            prefix: prefix.clone(),
            key_hash,
            scopes,
            created_at: ctx.now(),
            revoked_at: 0,
            last_used_at: 0,
        };
        self.index_key(&key);
        self.keys.push_back(key.clone());
        ctx.emit(Event::ApiKeyCreated { merchant_id, key_id: key.id });
        Ok(key)
    }

    fn revoke_key(&mut self, merchant_id: u64, key_id: u64, ctx: &mut Ctx) -> Result<ApiKey, MerchantError> {
        let now = ctx.now();
        let key = self.key_mut(key_id).filter(|k| k.merchant_id == merchant_id).ok_or(MerchantError::UnknownKey)?;
        if key.revoked_at == 0 {
            key.revoked_at = now;
            let key = key.clone();
            ctx.emit(Event::ApiKeyRevoked { merchant_id, key_id });
            return Ok(key);
        }
        Ok(key.clone())
    }

    /// The merchant, if it exists and is not closed.
    fn open_merchant(&self, merchant_id: u64) -> Result<&Merchant, MerchantError> {
        match self.merchant(merchant_id) {
            None => Err(MerchantError::UnknownMerchant),
            Some(m) if m.status == MerchantStatus::Closed => Err(MerchantError::Closed),
            Some(m) => Ok(m),
        }
    }

    /// Adds a store to the derived indexes (its merchant's list, the partner's store id).
    fn index_store(&mut self, store: &Store) {
        self.stores_of.entry(store.merchant_id).or_default().push(store.id);
        if let Some(p) = &store.partner {
            self.by_partner_store.insert((p.partner.clone(), p.partner_store_id.clone()), store.id);
        }
    }

    /// Adds a merchant's partners' ids to the derived index.
    fn index_acceptance(&mut self, merchant: &Merchant) {
        for a in merchant.acceptance.as_slice() {
            self.by_partner_id.insert((a.partner.clone(), a.partner_merchant_id.clone()), merchant.id);
        }
    }

    fn index_key(&mut self, key: &ApiKey) {
        self.key_by_hash.insert(key.key_hash, key.id);
        self.keys_of.entry(key.merchant_id).or_default().push(key.id);
    }

    /// Number of merchants.
    pub fn merchants_count(&self) -> usize {
        self.merchants.len()
    }

    /// Number of payments.
    pub fn payments_count(&self) -> usize {
        self.payments.len()
    }

    /// The merchant with this id.
    pub fn merchant(&self, id: u64) -> Option<&Merchant> {
        id.checked_sub(1).and_then(|i| self.merchants.get(i as usize))
    }

    fn merchant_mut(&mut self, id: u64) -> Option<&mut Merchant> {
        id.checked_sub(1).and_then(|i| self.merchants.get_mut(i as usize))
    }

    /// Merchants with ids after `after`, oldest first, at most `limit`.
    pub fn merchants_after(&self, after: u64, limit: usize) -> impl Iterator<Item = &Merchant> + '_ {
        self.merchants.iter().skip(after.min(self.merchants.len() as u64) as usize).take(limit)
    }

    /// The merchant with this business registration number.
    pub fn merchant_by_brn(&self, brn: &Brn) -> Option<&Merchant> {
        self.by_brn.get(brn).and_then(|&id| self.merchant(id))
    }

    /// The store with this id.
    pub fn store(&self, id: u64) -> Option<&Store> {
        id.checked_sub(1).and_then(|i| self.stores.get(i as usize))
    }

    /// A merchant's stores, oldest first.
    pub fn stores_of(&self, merchant_id: u64) -> impl Iterator<Item = &Store> + '_ {
        self.stores_of.get(&merchant_id).into_iter().flatten().filter_map(|&id| self.store(id))
    }

    /// The key with this id.
    pub fn key(&self, id: u64) -> Option<&ApiKey> {
        id.checked_sub(1).and_then(|i| self.keys.get(i as usize))
    }

    fn key_mut(&mut self, id: u64) -> Option<&mut ApiKey> {
        id.checked_sub(1).and_then(|i| self.keys.get_mut(i as usize))
    }

    /// A merchant's keys, oldest first, revoked ones too.
    pub fn keys_of(&self, merchant_id: u64) -> impl Iterator<Item = &ApiKey> + '_ {
        self.keys_of.get(&merchant_id).into_iter().flatten().filter_map(|&id| self.key(id))
    }

    /// The key with this hash, if it is not revoked, with its merchant.
    pub fn live_key(&self, key_hash: &[u8; 32]) -> Option<(&ApiKey, &Merchant)> {
        let key = self.key_by_hash.get(key_hash).and_then(|&id| self.key(id)).filter(|k| k.revoked_at == 0)?;
        Some((key, self.merchant(key.merchant_id)?))
    }

    /// Checks the domain's invariants: every store and key names a merchant, numbers and
    /// hashes are unique, fees within bounds.
    pub fn check_invariants(&self) -> Result<(), String> {
        for m in &self.merchants {
            if self.by_brn.get(&m.brn) != Some(&m.id) {
                return Err(format!("merchant {} is not indexed by its registration number", m.id));
            }
            if m.fee_bps > FEE_BPS_MAX {
                return Err(format!("merchant {} has a fee of {} bps", m.id, m.fee_bps));
            }
        }
        if self.by_brn.len() != self.merchants.len() {
            return Err("two merchants share a registration number".into());
        }
        for s in &self.stores {
            if self.merchant(s.merchant_id).is_none() {
                return Err(format!("store {} names unknown merchant {}", s.id, s.merchant_id));
            }
        }
        for k in &self.keys {
            if self.merchant(k.merchant_id).is_none() {
                return Err(format!("key {} names unknown merchant {}", k.id, k.merchant_id));
            }
            if self.key_by_hash.get(&k.key_hash) != Some(&k.id) {
                return Err(format!("key {} is not indexed by its hash", k.id));
            }
        }
        if self.key_by_hash.len() != self.keys.len() {
            return Err("two keys share a hash".into());
        }
        for p in &self.payments {
            if self.merchant(p.merchant_id).is_none() {
                return Err(format!("payment {} names unknown merchant {}", p.id, p.merchant_id));
            }
            if p.store_id.is_some_and(|s| self.store(s).is_none_or(|s| s.merchant_id != p.merchant_id)) {
                return Err(format!("payment {} names a store of another merchant", p.id));
            }
            if self.by_order.get(&(p.merchant_id, p.order_id.clone())) != Some(&p.id) {
                return Err(format!("payment {} is not indexed by its order id", p.id));
            }
            let waiting = self.payment_expiries.contains(&(p.expires_at, p.id));
            if waiting != (p.status == PaymentStatus::RequiresApproval) {
                return Err(format!(
                    "payment {} is {} but {} the expiry order",
                    p.id,
                    p.status.name(),
                    if waiting { "in" } else { "not in" }
                ));
            }
            if p.amount.is_zero() || p.amount > PAYMENT_AMOUNT_MAX {
                return Err(format!("payment {} is of {} won", p.id, p.amount.minor()));
            }
        }
        if self.by_order.len() != self.payments.len() {
            return Err("two payments of one merchant share an order id".into());
        }
        for r in &self.refunds {
            let paid = self.payment(r.payment_id).filter(|p| p.merchant_id == r.merchant_id);
            if paid.is_none_or(|p| p.status != PaymentStatus::Succeeded) {
                return Err(format!("refund {} names no captured payment of merchant {}", r.id, r.merchant_id));
            }
        }
        for p in &self.payments {
            let (sum, fees, count) = self.refunds_of(p.id).fold((Amount::ZERO, Amount::ZERO, 0u16), |(s, f, c), r| {
                (s.saturating_add(r.amount), f.saturating_add(r.fee_returned), c + 1)
            });
            if (sum, fees, count) != (p.refunded, p.fee_refunded, p.refunds) {
                return Err(format!("payment {}'s refunds do not add up to what it says", p.id));
            }
        }
        for e in &self.endpoints {
            if self.merchant(e.merchant_id).is_none() || e.events.is_empty() {
                return Err(format!("webhook endpoint {} names unknown merchant {} or no events", e.id, e.merchant_id));
            }
        }
        self.check_imports()
    }

    /// Partners' ids and imports: every partner's merchant id and store id names one merchant
    /// or store that has it, a merchant has one id per partner, and every job adds up.
    fn check_imports(&self) -> Result<(), String> {
        let mut ids = 0;
        for m in &self.merchants {
            let acceptance = m.acceptance.as_slice();
            for (i, a) in acceptance.iter().enumerate() {
                if acceptance[..i].iter().any(|b| b.partner == a.partner) {
                    return Err(format!("merchant {} has two ids of partner {}", m.id, a.partner.as_str()));
                }
                if self.by_partner_id.get(&(a.partner.clone(), a.partner_merchant_id.clone())) != Some(&m.id) {
                    return Err(format!("merchant {}'s partner id is not indexed to it", m.id));
                }
            }
            ids += acceptance.len();
        }
        if ids != self.by_partner_id.len() {
            return Err("two merchants share a partner's merchant id".into());
        }
        let mut partner_stores = 0;
        for s in self.stores.iter() {
            if let Some(p) = &s.partner {
                partner_stores += 1;
                if self.by_partner_store.get(&(p.partner.clone(), p.partner_store_id.clone())) != Some(&s.id) {
                    return Err(format!("store {}'s partner id is not indexed to it", s.id));
                }
            }
        }
        if partner_stores != self.by_partner_store.len() {
            return Err("two stores share a partner's store id".into());
        }
        for job in &self.imports {
            job.check()?;
            if self.import_by_key.get(&job.key) != Some(&job.id) {
                return Err(format!("import {} is not indexed by its key", job.id));
            }
        }
        if self.import_by_key.len() != self.imports.len() {
            return Err("two imports share a key".into());
        }
        Ok(())
    }
}

impl Domain for Merchants {
    type Command = Command;
    type Outcome = Outcome;
    type Event = Event;
    type View = MerchantsView;

    const SECTION_VERSION: u16 = snapshot::SECTION_VERSION;

    fn apply(&mut self, command: &Command, ctx: &mut Ctx<'_>) -> Outcome {
        Merchants::apply(self, command, ctx)
    }

    fn events_max(command: &Command) -> usize {
        command.events_max()
    }

    fn encoded_bytes_max(command: &Command) -> usize {
        command.encoded_bytes_max()
    }

    fn event_name(event: &Event) -> &'static str {
        event.name()
    }

    fn on_batch_start(&mut self, expired: &[crate::ledger::Transfer], now: u64, slice: usize, ctx: &mut Ctx<'_>) {
        self.on_captures_expired(expired, ctx);
        self.expire_payments(now, slice, ctx);
        self.run_payouts(now, slice, ctx);
    }

    fn next_due(&self) -> Option<u64> {
        [self.next_payment_expiry(), self.next_payout_due()].into_iter().flatten().min()
    }

    fn view(&self) -> MerchantsView {
        Merchants::view(self)
    }

    fn write_section(view: &MerchantsView, sink: &mut impl Sink) {
        view.write_section(sink);
    }

    fn read_section<R: std::io::Read>(reader: &mut Reader<R>, books: &Ledger) -> Result<Merchants, DecodeError> {
        let merchants = Merchants::read_section(reader)?;
        merchants.check_payouts(books).map_err(DecodeError::Invalid)?;
        merchants.check_money(books).map_err(DecodeError::Invalid)?;
        Ok(merchants)
    }

    fn check_invariants(&self, books: &Ledger) -> Result<(), String> {
        Merchants::check_invariants(self)?;
        self.check_payouts(books)?;
        self.check_money(books)
    }
}
