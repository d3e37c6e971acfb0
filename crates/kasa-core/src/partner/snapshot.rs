//! The partner domain's section of a snapshot: partners, rates, quotes, payments, refunds and
//! windows in bounded blobs, read back with every reference checked and the indexes rebuilt.

use super::command::{Partner, PartnerPayment, PartnerRefund, Quote, KEYS_PER_PARTNER_MAX, PARTNER_FEE_BPS_MAX};
use super::window::{Window, WindowStatus};
use super::Partners;
use crate::codec::{put_table, read_table, DecodeError, Reader, Sink};
use crate::fx::Rate;

/// The version of this section's layout. Version 2 adds the notification positions at the
/// end; version 1 is refused by name (the journal is replayed instead).
pub const SECTION_VERSION: u16 = 2;

/// The partner domain's tables as they were when the view was taken.
#[derive(Clone, Debug)]
pub struct PartnersView {
    partners: imbl::Vector<Partner>,
    rates: Vec<Rate>,
    quotes: imbl::OrdMap<u64, Quote>,
    counters: (u64, u64),
    payments: imbl::Vector<PartnerPayment>,
    refunds: imbl::Vector<PartnerRefund>,
    overseas: imbl::Vector<super::OverseasPayment>,
    overseas_refunds: imbl::Vector<super::OverseasRefund>,
    windows: imbl::Vector<Window>,
    notified: imbl::OrdMap<u64, u64>,
}

impl PartnersView {
    /// Writes the section, a table at a time.
    pub(crate) fn write_section(&self, sink: &mut impl Sink) {
        let mut scratch = Vec::new();
        put_table(sink, self.partners.iter(), self.partners.len(), &mut scratch);
        put_table(sink, self.rates.iter(), self.rates.len(), &mut scratch);
        put_table(sink, self.quotes.values(), self.quotes.len(), &mut scratch);
        put_table(sink, std::iter::once(&self.counters), 1, &mut scratch);
        put_table(sink, self.payments.iter(), self.payments.len(), &mut scratch);
        put_table(sink, self.refunds.iter(), self.refunds.len(), &mut scratch);
        put_table(sink, self.overseas.iter(), self.overseas.len(), &mut scratch);
        put_table(sink, self.overseas_refunds.iter(), self.overseas_refunds.len(), &mut scratch);
        put_table(sink, self.windows.iter(), self.windows.len(), &mut scratch);
        put_table(sink, self.notified.iter(), self.notified.len(), &mut scratch);
    }
}

fn dense(what: &str, id: u64, before: usize) -> Result<(), DecodeError> {
    if id != before as u64 + 1 {
        return Err(DecodeError::invalid(format!("{what} {id} is out of order (expected id {})", before + 1)));
    }
    Ok(())
}

impl Partners {
    /// The tables as they are now, for a snapshot written while the writer goes on. The
    /// rates are copied (a table of at most a few thousand rates in practice).
    pub fn view(&self) -> PartnersView {
        PartnersView {
            partners: self.partners.clone(),
            rates: self.rates.iter().copied().collect(),
            quotes: self.quotes.clone(),
            counters: (self.last_quote, self.next_cutoff),
            payments: self.payments.clone(),
            refunds: self.refunds.clone(),
            overseas: self.overseas.clone(),
            overseas_refunds: self.overseas_refunds.clone(),
            windows: self.windows.clone(),
            notified: self.notified.clone(),
        }
    }

    /// Reads the section written by [`PartnersView::write_section`].
    pub(crate) fn read_section(r: &mut Reader<impl std::io::Read>) -> Result<Partners, DecodeError> {
        let mut m = Partners::default();
        read_table(r, "partners", |p: Partner| {
            dense("partner", p.id, m.partners.len())?;
            let setup_ok = p.policy.is_valid() && !p.accepts.contains(crate::qr::Scheme::Kasa);
            if p.fee_bps > PARTNER_FEE_BPS_MAX || p.keys.len() > KEYS_PER_PARTNER_MAX || !setup_ok {
                return Err(DecodeError::invalid(format!("partner {} has a fee or keys out of bounds", p.id)));
            }
            if m.by_name.insert(p.name.clone(), p.id).is_some() {
                return Err(DecodeError::invalid(format!("partner {} repeats a name", p.id)));
            }
            for (i, k) in p.keys.iter().enumerate() {
                if k.version != i as u32 + 1 || m.key_owner.insert(k.public_key, p.id).is_some() {
                    return Err(DecodeError::invalid(format!("partner {} has a key out of order or repeated", p.id)));
                }
            }
            m.partners.push_back(p);
            Ok(())
        })?;
        read_table(r, "rates", |rate: Rate| {
            if m.rates.contains(&rate) {
                return Err(DecodeError::invalid("a rate is listed twice"));
            }
            m.rates.insert(rate).map_err(|e| DecodeError::invalid(e.to_string()))?;
            Ok(())
        })?;
        read_table(r, "quotes", |q: Quote| {
            if q.partner_id != 0 && m.partner(q.partner_id).is_none() {
                return Err(DecodeError::invalid(format!("quote {} names an unknown partner", q.id)));
            }
            if m.quotes.contains_key(&q.id) || m.quotes.len() >= super::QUOTES_MAX {
                return Err(DecodeError::invalid(format!("quote {} is repeated or one too many", q.id)));
            }
            m.quote_drops.insert((crate::time::after_seconds(q.expires_at, super::QUOTE_KEPT_SECONDS), q.id));
            m.quotes.insert(q.id, q);
            Ok(())
        })?;
        let mut counters = 0;
        read_table(r, "counters", |(last_quote, next_cutoff): (u64, u64)| {
            counters += 1;
            (m.last_quote, m.next_cutoff) = (last_quote, next_cutoff);
            Ok(())
        })?;
        if counters != 1 || m.quotes.keys().next_back().is_some_and(|&id| id > m.last_quote) {
            return Err(DecodeError::invalid("the quote counter is missing or behind a quote"));
        }
        // Windows come last in the section but are referred to by payments: read payments and
        // refunds first, check their windows after.
        read_table(r, "payments", |p: PartnerPayment| {
            dense("partner payment", p.id, m.payments.len())?;
            if m.partner(p.partner_id).is_none() || m.payment_by_request(p.partner_id, &p.request_id).is_some() {
                return Err(DecodeError::invalid(format!(
                    "partner payment {} names an unknown partner or repeats a request id",
                    p.id
                )));
            }
            if p.refunded > p.amount || p.settlement_refunded > p.settlement_amount || p.fee_returned > p.fee {
                return Err(DecodeError::invalid(format!("partner payment {} refunded more than it paid", p.id)));
            }
            m.index_payment(&p);
            m.payments.push_back(p);
            Ok(())
        })?;
        read_table(r, "refunds", |refund: PartnerRefund| {
            dense("partner refund", refund.id, m.refunds.len())?;
            if m.payment(refund.payment_id).is_none_or(|p| p.partner_id != refund.partner_id) {
                return Err(DecodeError::invalid(format!(
                    "partner refund {} names no payment of its partner",
                    refund.id
                )));
            }
            let repeated = if refund.cancel {
                m.cancel_of.contains_key(&refund.payment_id)
            } else {
                m.refund_by_request.contains_key(&(refund.partner_id, refund.request_id.clone()))
            };
            if repeated {
                return Err(DecodeError::invalid(format!("partner refund {} repeats a request", refund.id)));
            }
            m.index_refund(&refund);
            m.refunds.push_back(refund);
            Ok(())
        })?;
        read_table(r, "overseas payments", |p: super::OverseasPayment| {
            dense("overseas payment", p.id, m.overseas.len())?;
            let in_bounds = p.steps.len() <= super::outbound::STEPS_MAX
                && p.refunded <= p.amount
                && p.krw_refunded <= p.krw_amount
                && m.partner(p.partner_id).is_some();
            if !in_bounds {
                return Err(DecodeError::invalid(format!("overseas payment {} is out of bounds", p.id)));
            }
            if p.status == super::OverseasStatus::Pending {
                m.pending_overseas.insert(p.id);
            }
            m.overseas.push_back(p);
            Ok(())
        })?;
        read_table(r, "overseas refunds", |refund: super::OverseasRefund| {
            dense("overseas refund", refund.id, m.overseas_refunds.len())?;
            let key = (refund.partner_id, refund.request_id.clone());
            let of_partner = m.overseas_payment(refund.payment_id).is_some_and(|p| p.partner_id == refund.partner_id);
            if !of_partner || m.overseas_refund_by_request.insert(key, refund.id).is_some() {
                return Err(DecodeError::invalid(format!(
                    "overseas refund {} names no payment of its partner or repeats",
                    refund.id
                )));
            }
            m.overseas_refunds.push_back(refund);
            Ok(())
        })?;
        read_table(r, "windows", |w: Window| {
            dense("settlement window", w.id, m.windows.len())?;
            if m.partner(w.partner_id).is_none() {
                return Err(DecodeError::invalid(format!("settlement window {} names an unknown partner", w.id)));
            }
            if w.status == WindowStatus::Open && m.open_windows.insert((w.partner_id, w.currency), w.id).is_some() {
                return Err(DecodeError::invalid(format!("settlement window {} is a second open one", w.id)));
            }
            m.windows.push_back(w);
            Ok(())
        })?;
        let windows = m.windows.len() as u64;
        let bad_window = m
            .payments
            .iter()
            .map(|p| p.window_id)
            .chain(m.refunds.iter().map(|r| r.window_id))
            .chain(m.overseas_refunds.iter().map(|r| r.window_id))
            .chain(m.overseas.iter().filter(|p| p.status == super::OverseasStatus::Succeeded).map(|p| p.window_id));
        if bad_window.into_iter().any(|w| w == 0 || w > windows) {
            return Err(DecodeError::invalid("a partner payment or refund names an unknown settlement window"));
        }
        if !m.open_windows.is_empty() && m.next_cutoff == 0 {
            return Err(DecodeError::invalid("windows are open but no cutoff is set"));
        }
        read_table(r, "notification positions", |(partner_id, through): (u64, u64)| {
            let ascending = m.notified.keys().next_back().is_none_or(|&last| last < partner_id);
            if m.partner(partner_id).is_none() || !ascending || through == 0 {
                return Err(DecodeError::invalid(format!(
                    "the notification position of partner {partner_id} names an unknown partner, is out of order or is zero"
                )));
            }
            m.notified.insert(partner_id, through);
            Ok(())
        })?;
        Ok(m)
    }
}
