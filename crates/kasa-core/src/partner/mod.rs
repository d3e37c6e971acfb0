//! The partner domain: foreign wallet networks (Alipay+ and the like) whose users pay at
//! Kasa's stores, the FX rates operators load and the quotes made from them, the partners'
//! payments, cancels and refunds, and the settlement windows that net them every day.
//!
//! - `command.rs`: partners, keys, quotes, payments, refunds; commands, outcomes, events.
//! - `pay.rs`: a partner's payment, cancel and refund, flows with the merchant domain.
//! - `window.rs`: settlement windows (per partner and currency, closed at the daily cutoff or
//!   by an operator, settled by the bank's answer).
//! - `notify.rs`: how far Kasa's notifications to each partner have gone.
//! - `snapshot.rs`: the section.
//!
//! The HTTP layer checks a partner's signature (Ed25519 over the method, path, client id,
//! request time and body, as Alipay+ signs) against the keys kept here, and reads the store
//! from the scanned code; the commands carry the results.

pub mod command;
pub mod notify;
pub mod outbound;
pub(crate) mod pay;
mod snapshot;
pub mod window;

pub use command::{
    CallPolicy, Command, CustomerId, Event, FxRefusal, Outcome, OverseasRefundRequest, Paid, Partner, PartnerError,
    PartnerKey, PartnerName, PartnerPayment, PartnerPaymentStatus, PartnerRefund, PartnerStatus, PayError,
    PayOverseasRequest, PayRequest, Quote, Refunded, RequestId, Schemes, KEYS_PER_PARTNER_MAX, PARTNER_FEE_BPS_MAX,
    QUOTES_MAX, QUOTE_KEPT_SECONDS, QUOTE_SECONDS_DEFAULT, QUOTE_SECONDS_MAX, RATES_PER_COMMAND_MAX,
    REFUNDS_PER_PAYMENT_MAX, REFUND_SECONDS_MAX,
};
pub use notify::{NotifyProgress, NOTIFY_PROGRESS_MAX};
pub use outbound::{
    CodeText, ForeignText, OverseasError, OverseasPayment, OverseasRefund, OverseasRefunded, OverseasStatus, Step,
};
pub use snapshot::PartnersView;
pub use window::{Window, WindowError, WindowStatus};

use crate::chart;
use crate::codec::{DecodeError, Reader, Sink};
use crate::domain::Domain;
use crate::fx::{convert, Rates};
use crate::ledger::Ledger;
use crate::money::Currency;
use crate::table::Table;
use crate::time::after_seconds;
use std::collections::{BTreeMap, BTreeSet};

/// The context a partner command is applied in.
pub type Ctx<'a> = crate::context::Ctx<'a, Event>;

/// The partner domain's tables.
#[derive(Clone, Debug, Default)]
pub struct Partners {
    pub(crate) partners: imbl::Vector<Partner>,
    /// Derived: partner by name.
    by_name: BTreeMap<PartnerName, u64>,
    /// Derived: every key ever registered, with its partner (a key is never reused).
    key_owner: BTreeMap<[u8; 32], u64>,
    pub(crate) rates: Rates,
    pub(crate) quotes: imbl::OrdMap<u64, Quote>,
    /// The last quote id given.
    pub(crate) last_quote: u64,
    /// Derived: quotes by (when they are dropped, id).
    quote_drops: BTreeSet<(u64, u64)>,
    pub(crate) payments: imbl::Vector<PartnerPayment>,
    /// Derived: payment by (partner, `paymentRequestId`).
    payment_by_request: Table<(u64, RequestId), u64>,
    pub(crate) refunds: imbl::Vector<PartnerRefund>,
    /// Derived: refund by (partner, `refundRequestId`), cancels apart.
    refund_by_request: Table<(u64, RequestId), u64>,
    /// Derived: a canceled payment's cancel.
    cancel_of: BTreeMap<u64, u64>,
    pub(crate) overseas: imbl::Vector<OverseasPayment>,
    /// Derived: overseas payments waiting for their partner.
    pending_overseas: BTreeSet<u64>,
    pub(crate) overseas_refunds: imbl::Vector<OverseasRefund>,
    /// Derived: refund from abroad by (partner, `refundRequestId`).
    overseas_refund_by_request: Table<(u64, RequestId), u64>,
    pub(crate) windows: imbl::Vector<Window>,
    /// Derived: the open window per (partner, currency).
    open_windows: BTreeMap<(u64, Currency), u64>,
    /// When the open windows close (0: none is open).
    pub(crate) next_cutoff: u64,
    /// Per partner, the last event notified to it (`notify.rs`).
    pub(crate) notified: imbl::OrdMap<u64, u64>,
}

impl Partners {
    /// Applies a partner command that is not a flow (flows are the state's, see `pay.rs`).
    pub fn apply(&mut self, command: &Command, ctx: &mut Ctx) -> Outcome {
        let now = ctx.now();
        match command {
            Command::CreatePartner {
                name,
                home_currency,
                settlement_currency,
                fee_bps,
                settlement,
                endpoint,
                accepts,
                policy,
            } => Outcome::PartnerCreated(self.create(
                name,
                (*home_currency, *settlement_currency),
                *fee_bps,
                settlement,
                (endpoint, *accepts, *policy),
                now,
            )),
            Command::SetPartnerStatus { partner_id, status } => {
                Outcome::PartnerChanged(match self.partner_mut(*partner_id) {
                    Some(p) => {
                        p.status = *status;
                        Ok(p.clone())
                    }
                    None => Err(PartnerError::UnknownPartner),
                })
            }
            Command::AddKey { partner_id, public_key } => Outcome::KeyAdded(self.add_key(*partner_id, public_key, now)),
            Command::RevokeKey { partner_id, version } => Outcome::KeyRevoked(match self.partner_mut(*partner_id) {
                None => Err(PartnerError::UnknownPartner),
                Some(p) => match p.keys.iter_mut().find(|k| k.version == *version && k.revoked_at == 0) {
                    Some(k) => {
                        k.revoked_at = now;
                        Ok(k.clone())
                    }
                    None => Err(PartnerError::UnknownKey),
                },
            }),
            Command::LoadRates { rates } => Outcome::RatesLoaded(self.load_rates(rates.as_slice(), ctx)),
            Command::CreateQuote { partner_id, sell, buy, side, expires_in_seconds } => {
                Outcome::QuoteCreated(self.create_quote(*partner_id, *sell, *buy, *side, *expires_in_seconds, now))
            }
            Command::CloseWindow { window_id } => Outcome::WindowClosed(self.close_window(*window_id, ctx)),
            Command::SettleWindow { window_id, succeeded } => {
                Outcome::WindowSettled(self.settle_window(*window_id, *succeeded, ctx))
            }
            Command::ResolveOverseas { payment_id, step } => {
                Outcome::OverseasResolved(self.resolve_overseas(*payment_id, *step, ctx))
            }
            Command::RefundOverseas(request) => Outcome::OverseasRefunded(self.refund_overseas(request, ctx)),
            Command::RecordNotified { progress } => {
                Outcome::NotifiedRecorded(self.record_notified(progress.as_slice()))
            }
            // Flows: the state applies them with the merchant domain. Alone, the partner
            // domain knows no stores.
            Command::Pay(_) | Command::CancelPayment { .. } | Command::Refund { .. } | Command::PayOverseas { .. } => {
                unreachable!("a flow")
            }
        }
    }

    fn create(
        &mut self,
        name: &PartnerName,
        (home_currency, settlement_currency): (Currency, Currency),
        fee_bps: u16,
        settlement: &crate::merchant::SettlementAccount,
        (endpoint, accepts, policy): (&Option<crate::merchant::WebhookUrl>, command::Schemes, command::CallPolicy),
        now: u64,
    ) -> Result<Partner, PartnerError> {
        if fee_bps > PARTNER_FEE_BPS_MAX {
            return Err(PartnerError::InvalidFee);
        }
        if !policy.is_valid()
            || accepts.contains(crate::qr::Scheme::Kasa)
            || accepts.0 >> crate::qr::Scheme::ALL.len() != 0
        {
            return Err(PartnerError::InvalidSetup);
        }
        if self.by_name.contains_key(name) {
            return Err(PartnerError::NameTaken);
        }
        if self.partners.len() >= command::PARTNERS_MAX {
            return Err(PartnerError::TooManyPartners);
        }
        let partner = Partner {
            id: self.partners.len() as u64 + 1,
            name: name.clone(),
            home_currency,
            settlement_currency,
            fee_bps,
            settlement: settlement.clone(),
            endpoint: endpoint.clone(),
            accepts,
            policy,
            status: PartnerStatus::Active,
            keys: Vec::new(),
            created_at: now,
        };
        self.by_name.insert(name.clone(), partner.id);
        self.partners.push_back(partner.clone());
        Ok(partner)
    }

    fn add_key(&mut self, partner_id: u64, public_key: &[u8; 32], now: u64) -> Result<PartnerKey, PartnerError> {
        if self.key_owner.contains_key(public_key) {
            return Err(PartnerError::KeyExists);
        }
        let p = self.partner_mut(partner_id).ok_or(PartnerError::UnknownPartner)?;
        if p.keys.len() >= KEYS_PER_PARTNER_MAX {
            return Err(PartnerError::TooManyKeys);
        }
        let key =
            PartnerKey { version: p.keys.len() as u32 + 1, public_key: *public_key, created_at: now, revoked_at: 0 };
        p.keys.push(key.clone());
        self.key_owner.insert(*public_key, partner_id);
        Ok(key)
    }

    fn load_rates(&mut self, rates: &[crate::fx::Rate], ctx: &mut Ctx) -> Result<u32, FxRefusal> {
        // Distinct (pair, time) not in the table yet: a rate repeated within the command is new
        // once.
        let new = rates
            .iter()
            .filter(|r| !self.rates.contains(r))
            .map(|r| (r.base(), r.quote(), r.valid_from()))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if self.rates.len() + new > crate::fx::RATES_MAX {
            return Err(FxRefusal::TooManyRates);
        }
        for rate in rates {
            self.rates.insert(*rate).expect("room was checked");
        }
        let count = new as u32;
        ctx.emit(Event::RatesLoaded { count });
        Ok(count)
    }

    fn create_quote(
        &mut self,
        partner_id: u64,
        sell: Currency,
        buy: Currency,
        side: crate::fx::Side,
        expires_in_seconds: u32,
        now: u64,
    ) -> Result<Quote, FxRefusal> {
        if partner_id != 0 && self.partner(partner_id).is_none() {
            return Err(FxRefusal::UnknownPartner);
        }
        if expires_in_seconds == 0 || expires_in_seconds > QUOTE_SECONDS_MAX {
            return Err(FxRefusal::InvalidExpiry);
        }
        if self.quotes.len() >= QUOTES_MAX {
            return Err(FxRefusal::TooManyQuotes);
        }
        if sell == buy {
            return Err(FxRefusal::SameCurrency);
        }
        let rate = self.rates.at(sell, buy, now).ok_or(FxRefusal::NoRate)?;
        let quoted = convert(&rate, side)?;
        self.last_quote += 1;
        let quote = Quote {
            id: self.last_quote,
            partner_id,
            rate,
            sell_amount: quoted.sell_amount,
            buy_amount: quoted.buy_amount,
            created_at: now,
            expires_at: after_seconds(now, u64::from(expires_in_seconds)),
        };
        self.quote_drops.insert((after_seconds(quote.expires_at, QUOTE_KEPT_SECONDS), quote.id));
        self.quotes.insert(quote.id, quote.clone());
        Ok(quote)
    }

    /// Drops quotes an hour after they expired, at most `slice`.
    fn drop_quotes(&mut self, now: u64, slice: usize) {
        for _ in 0..slice {
            match self.quote_drops.first() {
                Some(&(at, id)) if at <= now => {
                    self.quote_drops.pop_first();
                    self.quotes.remove(&id);
                }
                _ => break,
            }
        }
    }

    /// A partner.
    pub fn partner(&self, id: u64) -> Option<&Partner> {
        id.checked_sub(1).and_then(|i| self.partners.get(i as usize))
    }

    fn partner_mut(&mut self, id: u64) -> Option<&mut Partner> {
        id.checked_sub(1).and_then(|i| self.partners.get_mut(i as usize))
    }

    /// A partner by name.
    pub fn partner_named(&self, name: &str) -> Option<&Partner> {
        PartnerName::new(name).ok().and_then(|n| self.by_name.get(&n)).and_then(|&id| self.partner(id))
    }

    /// Every partner, oldest first.
    pub fn partners(&self) -> impl Iterator<Item = &Partner> + '_ {
        self.partners.iter()
    }

    /// The rates table.
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// A quote still kept.
    pub fn quote(&self, id: u64) -> Option<&Quote> {
        self.quotes.get(&id)
    }

    /// A partner's payment.
    pub fn payment(&self, id: u64) -> Option<&PartnerPayment> {
        id.checked_sub(1).and_then(|i| self.payments.get(i as usize))
    }

    fn payment_mut(&mut self, id: u64) -> &mut PartnerPayment {
        self.payments.get_mut(id as usize - 1).expect("a payment id the state gave")
    }

    /// A partner's payment by its `paymentRequestId`.
    pub fn payment_by_request(&self, partner_id: u64, request_id: &RequestId) -> Option<&PartnerPayment> {
        self.payment_by_request.get(&(partner_id, request_id.clone())).and_then(|&id| self.payment(id))
    }

    /// A partner's refund.
    pub fn refund(&self, id: u64) -> Option<&PartnerRefund> {
        id.checked_sub(1).and_then(|i| self.refunds.get(i as usize))
    }

    /// Closed windows whose settlement waits for the bank.
    pub fn pending_settlements(&self) -> impl Iterator<Item = &Window> + '_ {
        self.windows.iter().filter(|w| w.status == WindowStatus::Closed)
    }

    /// Every window, oldest first.
    pub fn windows(&self) -> &imbl::Vector<Window> {
        &self.windows
    }

    /// Every payment, oldest first (persistent: a clone is cheap, for reading off the writer).
    pub fn all_payments(&self) -> &imbl::Vector<PartnerPayment> {
        &self.payments
    }

    /// Every payment abroad, oldest first (persistent, as [`Partners::all_payments`]).
    pub fn all_overseas(&self) -> &imbl::Vector<OverseasPayment> {
        &self.overseas
    }

    /// Every refund from abroad, oldest first.
    pub fn all_overseas_refunds(&self) -> &imbl::Vector<OverseasRefund> {
        &self.overseas_refunds
    }

    /// Every refund, oldest first (persistent, as [`Partners::all_payments`]).
    pub fn all_refunds(&self) -> &imbl::Vector<PartnerRefund> {
        &self.refunds
    }

    fn index_payment(&mut self, p: &PartnerPayment) {
        self.payment_by_request.insert((p.partner_id, p.request_id.clone()), p.id);
    }

    fn index_refund(&mut self, r: &PartnerRefund) {
        if r.cancel {
            self.cancel_of.insert(r.payment_id, r.id);
        } else {
            self.refund_by_request.insert((r.partner_id, r.request_id.clone()), r.id);
        }
    }

    /// Checks every conversion and fee against the books: each FX position is the sum of
    /// the conversions through it, each partner's account the sum of its items and
    /// settlements, each window's sums the sum of its items.
    pub(crate) fn check_money(&self, books: &Ledger) -> Result<(), String> {
        let mut position: BTreeMap<Currency, i128> = BTreeMap::new();
        let mut partner: BTreeMap<(u64, Currency), i128> = BTreeMap::new();
        let mut windows: BTreeMap<u64, (u128, u128, i128)> = BTreeMap::new();
        let krw = crate::wallet::WALLET_CURRENCY;
        let minor = |a: crate::money::Amount| i128::from(a.minor());
        for p in &self.payments {
            let c = p.settlement_currency;
            if c != krw {
                *position.entry(c).or_default() += minor(p.settlement_amount);
                *position.entry(krw).or_default() -= minor(p.amount);
                // The won side nets to zero on the partner's won account: bought, then paid.
            } else {
                *partner.entry((p.partner_id, krw)).or_default() += minor(p.amount);
            }
            *partner.entry((p.partner_id, c)).or_default() +=
                minor(p.settlement_amount) * i128::from(c != krw) - minor(p.fee);
            let w = windows.entry(p.window_id).or_default();
            w.0 += p.settlement_amount.minor() as u128;
            w.2 += minor(p.fee);
            let t = books.transfer(chart::PARTNER_FEE.id(p.id)).map(|t| t.amount);
            if t != Some(p.fee.ledger()) {
                return Err(format!("partner payment {} has a fee of {}, the books say {t:?}", p.id, p.fee));
            }
        }
        for r in &self.refunds {
            let p = self.payment(r.payment_id).ok_or_else(|| format!("partner refund {} names no payment", r.id))?;
            let c = p.settlement_currency;
            if c != krw {
                *position.entry(c).or_default() -= minor(r.settlement_amount);
                *position.entry(krw).or_default() += minor(r.amount);
            } else {
                *partner.entry((p.partner_id, krw)).or_default() -= minor(r.amount);
            }
            *partner.entry((p.partner_id, c)).or_default() -=
                minor(r.settlement_amount) * i128::from(c != krw) - minor(r.fee_returned);
            let w = windows.entry(r.window_id).or_default();
            w.1 += r.settlement_amount.minor() as u128;
            w.2 -= minor(r.fee_returned);
        }
        let mut outbound: BTreeMap<u64, (u128, u128)> = BTreeMap::new();
        for p in &self.overseas {
            let (pending, resolved) = (
                books.pending_status(chart::OVERSEAS_PAYMENT.id(p.id)),
                books.pending_status(chart::OVERSEAS_CONVERSION.id(p.id)),
            );
            use crate::ledger::PendingStatus as S;
            let want = match p.status {
                OverseasStatus::Pending => S::Pending,
                OverseasStatus::Succeeded => S::Posted,
                OverseasStatus::Failed => S::Voided,
            };
            if pending != Some(want) || resolved != Some(want) {
                return Err(format!(
                    "overseas payment {} is {} but its transfers are {pending:?} and {resolved:?}",
                    p.id,
                    p.status.name()
                ));
            }
            if p.status == OverseasStatus::Succeeded {
                *position.entry(krw).or_default() += minor(p.krw_amount);
                *position.entry(p.currency).or_default() -= minor(p.amount);
                *partner.entry((p.partner_id, p.currency)).or_default() -= minor(p.amount);
                outbound.entry(p.window_id).or_default().0 += u128::from(p.amount.minor());
            }
        }
        for r in &self.overseas_refunds {
            let p = self
                .overseas_payment(r.payment_id)
                .ok_or_else(|| format!("overseas refund {} names no payment", r.id))?;
            *position.entry(p.currency).or_default() += minor(r.amount);
            *position.entry(krw).or_default() -= minor(r.krw_amount);
            *partner.entry((p.partner_id, p.currency)).or_default() += minor(r.amount);
            outbound.entry(r.window_id).or_default().1 += u128::from(r.amount.minor());
        }
        for w in &self.windows {
            let (paid, refunded, fees) = windows.get(&w.id).copied().unwrap_or_default();
            let (out, out_back) = outbound.get(&w.id).copied().unwrap_or_default();
            if (paid, refunded, fees, out, out_back) != (w.paid, w.refunded, w.fees, w.outbound, w.outbound_refunded) {
                return Err(format!("settlement window {}'s sums differ from its items", w.id));
            }
            if matches!(w.status, WindowStatus::Settled) && w.net() != 0 {
                *partner.entry((w.partner_id, w.currency)).or_default() -= w.net();
            }
        }
        let balance = |id: u128| {
            books.account(id).map_or(0, |a| {
                i128::try_from(a.debits_posted).unwrap_or(i128::MAX) - i128::try_from(a.credits_posted).unwrap_or(0)
            })
        };
        for currency in Currency::all() {
            let want = -position.get(&currency).copied().unwrap_or(0);
            let have = balance(chart::FX_POSITION.system_id(currency));
            if want != have {
                return Err(format!(
                    "the FX position in {currency} is {have} (debit) in the books, its conversions sum to {want}"
                ));
            }
        }
        let mut accounts: std::collections::BTreeSet<(u64, Currency)> = partner.keys().copied().collect();
        accounts.extend(self.partners.iter().flat_map(|p| [(p.id, p.settlement_currency), (p.id, krw)]));
        for (partner_id, currency) in accounts {
            {
                let p =
                    self.partner(partner_id).ok_or_else(|| format!("an item names unknown partner {partner_id}"))?;
                let want = partner.get(&(p.id, currency)).copied().unwrap_or(0);
                let have = balance(chart::PARTNER.id(chart::partner_account_number(p.id, currency)));
                if want != have {
                    return Err(format!(
                        "partner {}'s {currency} account is {have} (debit) in the books, its items sum to {want}",
                        p.id
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Domain for Partners {
    type Command = Command;
    type Outcome = Outcome;
    type Event = Event;
    type View = PartnersView;

    const SECTION_VERSION: u16 = snapshot::SECTION_VERSION;

    fn apply(&mut self, command: &Command, ctx: &mut Ctx<'_>) -> Outcome {
        Partners::apply(self, command, ctx)
    }

    fn events_max(command: &Command) -> usize {
        command.events_max()
    }

    fn encoded_bytes_max(command: &Command) -> usize {
        match command {
            // A rate is at most 2 + 2 + 19 + 1 + 3 + 10 bytes.
            Command::LoadRates { .. } => 64 + RATES_PER_COMMAND_MAX * 40,
            _ => crate::domain::SMALL_COMMAND_BYTES_MAX,
        }
    }

    fn event_name(event: &Event) -> &'static str {
        event.name()
    }

    fn on_batch_start(&mut self, _expired: &[crate::ledger::Transfer], now: u64, slice: usize, ctx: &mut Ctx<'_>) {
        self.close_at_cutoff(now, slice, ctx);
        self.drop_quotes(now, slice);
    }

    fn next_due(&self) -> Option<u64> {
        self.next_window_due()
    }

    fn view(&self) -> PartnersView {
        Partners::view(self)
    }

    fn write_section(view: &PartnersView, sink: &mut impl Sink) {
        view.write_section(sink);
    }

    fn read_section<R: std::io::Read>(reader: &mut Reader<R>, books: &Ledger) -> Result<Partners, DecodeError> {
        let partners = Partners::read_section(reader)?;
        partners.check_money(books).map_err(DecodeError::Invalid)?;
        Ok(partners)
    }

    fn check_invariants(&self, books: &Ledger) -> Result<(), String> {
        self.check_money(books)
    }
}
