//! The merchant domain's section of a snapshot: merchants, stores, keys and payments in
//! bounded blobs, read back with every reference checked and the indexes (by registration
//! number, by key hash, by order id, per merchant, the expiry order) rebuilt.

use super::command::{ApiKey, Merchant, Store, FEE_BPS_MAX};
use super::import::ImportJob;
use super::payment::Payment;
use super::payout::{Payout, PayoutRun};
use super::refund::Refund;
use super::webhook::WebhookEndpoint;
use super::Merchants;
use crate::codec::{put_table, read_table, DecodeError, Reader, Sink};

/// The version of this section's layout: 2 added payments, 3 webhook endpoints, 4 the money
/// of payments (approval, capture, refunds) and refunds, 5 payouts and the payout run, 6 the
/// webhook endpoints' delivery progress, 7 the channel of payments (in-store payments), 8
/// partners' imports (merchants' partner ids and optional settlement account, stores' partner
/// ids and QR payloads, import jobs).
pub const SECTION_VERSION: u16 = 8;

/// The merchant domain's tables as they were when the view was taken.
#[derive(Clone, Debug)]
pub struct MerchantsView {
    merchants: imbl::Vector<Merchant>,
    stores: imbl::Vector<Store>,
    keys: imbl::Vector<ApiKey>,
    payments: imbl::Vector<Payment>,
    endpoints: imbl::Vector<WebhookEndpoint>,
    refunds: imbl::Vector<Refund>,
    payouts: imbl::Vector<Payout>,
    payout_run: PayoutRun,
    imports: imbl::Vector<ImportJob>,
}

impl MerchantsView {
    /// Writes the section, a table at a time.
    pub(crate) fn write_section(&self, sink: &mut impl Sink) {
        let mut scratch = Vec::new();
        put_table(sink, self.merchants.iter(), self.merchants.len(), &mut scratch);
        put_table(sink, self.stores.iter(), self.stores.len(), &mut scratch);
        put_table(sink, self.keys.iter(), self.keys.len(), &mut scratch);
        put_table(sink, self.payments.iter(), self.payments.len(), &mut scratch);
        put_table(sink, self.endpoints.iter(), self.endpoints.len(), &mut scratch);
        put_table(sink, self.refunds.iter(), self.refunds.len(), &mut scratch);
        put_table(sink, self.payouts.iter(), self.payouts.len(), &mut scratch);
        put_table(sink, std::iter::once(&self.payout_run), 1, &mut scratch);
        put_table(sink, self.imports.iter(), self.imports.len(), &mut scratch);
    }
}

fn dense(what: &str, id: u64, before: usize) -> Result<(), DecodeError> {
    if id != before as u64 + 1 {
        return Err(DecodeError::invalid(format!("{what} {id} is out of order (expected id {})", before + 1)));
    }
    Ok(())
}

impl Merchants {
    /// The tables as they are now, for a snapshot written while the writer goes on.
    pub fn view(&self) -> MerchantsView {
        MerchantsView {
            merchants: self.merchants.clone(),
            stores: self.stores.clone(),
            keys: self.keys.clone(),
            payments: self.payments.clone(),
            endpoints: self.endpoints.clone(),
            refunds: self.refunds.clone(),
            payouts: self.payouts.clone(),
            payout_run: self.payout_run,
            imports: self.imports.clone(),
        }
    }

    /// Reads the section written by [`MerchantsView::write_section`].
    pub(crate) fn read_section(r: &mut Reader<impl std::io::Read>) -> Result<Merchants, DecodeError> {
        let mut m = Merchants::default();
        read_table(r, "merchants", |merchant: Merchant| {
            dense("merchant", merchant.id, m.merchants.len())?;
            if merchant.fee_bps > FEE_BPS_MAX {
                return Err(DecodeError::invalid(format!(
                    "merchant {} has a fee of {} bps",
                    merchant.id, merchant.fee_bps
                )));
            }
            if m.by_brn.insert(merchant.brn.clone(), merchant.id).is_some() {
                return Err(DecodeError::invalid(format!("merchant {} repeats a registration number", merchant.id)));
            }
            let ids = merchant.acceptance.as_slice();
            let repeats = ids.iter().enumerate().any(|(i, a)| {
                ids[..i].iter().any(|b| b.partner == a.partner)
                    || m.by_partner_id.contains_key(&(a.partner.clone(), a.partner_merchant_id.clone()))
            });
            if repeats {
                return Err(DecodeError::invalid(format!("merchant {} repeats a partner's id", merchant.id)));
            }
            m.index_acceptance(&merchant);
            m.merchants.push_back(merchant);
            Ok(())
        })?;
        read_table(r, "stores", |store: Store| {
            dense("store", store.id, m.stores.len())?;
            if m.merchant(store.merchant_id).is_none() {
                return Err(DecodeError::invalid(format!(
                    "store {} names unknown merchant {}",
                    store.id, store.merchant_id
                )));
            }
            if store
                .partner
                .as_ref()
                .is_some_and(|p| m.by_partner_store.contains_key(&(p.partner.clone(), p.partner_store_id.clone())))
            {
                return Err(DecodeError::invalid(format!("store {} repeats a partner's store id", store.id)));
            }
            m.index_store(&store);
            m.stores.push_back(store);
            Ok(())
        })?;
        read_table(r, "API keys", |key: ApiKey| {
            dense("key", key.id, m.keys.len())?;
            if m.merchant(key.merchant_id).is_none() {
                return Err(DecodeError::invalid(format!("key {} names unknown merchant {}", key.id, key.merchant_id)));
            }
            if m.key_by_hash.contains_key(&key.key_hash) {
                return Err(DecodeError::invalid(format!("key {} repeats a key hash", key.id)));
            }
            m.index_key(&key);
            m.keys.push_back(key);
            Ok(())
        })?;
        read_table(r, "payments", |payment: Payment| {
            dense("payment", payment.id, m.payments.len())?;
            if m.merchant(payment.merchant_id).is_none() {
                return Err(DecodeError::invalid(format!(
                    "payment {} names unknown merchant {}",
                    payment.id, payment.merchant_id
                )));
            }
            if m.by_order.contains_key(&(payment.merchant_id, payment.order_id.clone())) {
                return Err(DecodeError::invalid(format!("payment {} repeats an order id", payment.id)));
            }
            let at_store =
                payment.store_id.and_then(|id| m.store(id)).is_some_and(|s| s.merchant_id == payment.merchant_id);
            if payment.store_id.is_some() && !at_store {
                return Err(DecodeError::invalid(format!("payment {} names another merchant's store", payment.id)));
            }
            if payment.channel != super::payment::Channel::Online && !at_store {
                return Err(DecodeError::invalid(format!("in-store payment {} names no store", payment.id)));
            }
            m.index_payment(&payment);
            m.payments.push_back(payment);
            Ok(())
        })?;
        read_table(r, "webhook endpoints", |endpoint: WebhookEndpoint| {
            dense("webhook endpoint", endpoint.id, m.endpoints.len())?;
            if m.merchant(endpoint.merchant_id).is_none() {
                return Err(DecodeError::invalid(format!(
                    "webhook endpoint {} names an unknown merchant",
                    endpoint.id
                )));
            }
            if endpoint.deleted_at == 0 {
                m.live_endpoints.insert((endpoint.merchant_id, endpoint.id));
            }
            m.endpoints.push_back(endpoint);
            Ok(())
        })?;
        read_table(r, "refunds", |refund: Refund| {
            dense("refund", refund.id, m.refunds.len())?;
            if m.payment(refund.payment_id).is_none_or(|p| p.merchant_id != refund.merchant_id) {
                return Err(DecodeError::invalid(format!("refund {} names no payment of its merchant", refund.id)));
            }
            m.index_refund(&refund);
            m.refunds.push_back(refund);
            Ok(())
        })?;
        read_table(r, "payouts", |payout: Payout| {
            dense("payout", payout.id, m.payouts.len())?;
            if m.merchant(payout.merchant_id).is_none() {
                return Err(DecodeError::invalid(format!("payout {} names an unknown merchant", payout.id)));
            }
            m.index_payout(&payout);
            m.payouts.push_back(payout);
            Ok(())
        })?;
        let mut runs = 0;
        read_table(r, "the payout run", |run: PayoutRun| {
            runs += 1;
            m.payout_run = run;
            Ok(())
        })?;
        if runs != 1 {
            return Err(DecodeError::invalid(format!("the payout run is listed {runs} times")));
        }
        read_table(r, "imports", |job: ImportJob| {
            dense("import", job.id, m.imports.len())?;
            job.check().map_err(DecodeError::Invalid)?;
            if m.import_by_key.insert(job.key, job.id).is_some() {
                return Err(DecodeError::invalid(format!("import {} repeats a key", job.id)));
            }
            m.imports.push_back(job);
            Ok(())
        })?;
        m.rebuild_reclaim();
        m.check_invariants().map_err(DecodeError::Invalid)?;
        Ok(m)
    }
}
