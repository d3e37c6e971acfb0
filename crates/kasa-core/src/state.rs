//! The whole deterministic state and the one function that changes it: [`State::apply`].
//!
//! `apply` takes a batch (commands plus a timestamp chosen by the sequencer) and returns one
//! outcome per command, plus the events the batch emitted ([`State::take_events`]). It reads
//! no clock, does no I/O and uses no randomness, so the same batches applied to an empty
//! state give the same state, byte for byte; [`State::hash`] proves it. Snapshots are the same
//! canonical byte stream that the hash is computed over, in sections, one per domain and
//! service, each with a version of its own.
//!
//! Work that time makes due (expired holds, sessions, codes, keys) runs at the start of a
//! batch in slices of at most [`HOUSEKEEPING_SLICE`] items, so no batch does unbounded work;
//! what is left waits for the next batch, and [`State::next_expiry`] tells the sequencer to
//! send one.

use crate::codec::{self, expect_section, section_header, DecodeError, Reader, Sink};
use crate::command::{
    apply_in_domain, Batch, Command, Domains, DomainsView, Inner, InnerOutcome, Keyed, KeyedOutcome, Outcome, Services,
    SessionCommand,
};
use crate::event::{Event, EventKind};
use crate::fees::Fees;
use crate::idempotency::{IdempotencyKeys, KeyEntry, KeyScope, Owner, KEYED_EVENTS_MAX};
use crate::ledger::Ledger;
use crate::limits::Limits;
use crate::outbox::Outbox;
use crate::wallet::Wallets;
use thiserror::Error;

const SNAPSHOT_MAGIC: &[u8; 8] = b"KASASTAT";
/// Version 6: sections per domain and service, each with its own version. Versions 1 to 5
/// (Kasa 0.1) are refused with an error that says so.
const SNAPSHOT_VERSION: u32 = 6;

/// Items of each kind of time-driven work (expiries of holds, sessions, codes, keys) one
/// batch does at most. The rest waits for the next batch.
pub const HOUSEKEEPING_SLICE: usize = 4096;

/// Sections of a snapshot, in the order they are written: the core's, then each domain's
/// (ids from the registry in `command.rs`; the wallet's is 3).
const SECTION_LEDGER: u16 = 1;
const SECTION_BOOKS: u16 = 2;
const SECTION_SERVICES: u16 = 4;
const SECTION_IDEMPOTENCY: u16 = 5;
const SECTION_OUTBOX: u16 = 6;
const SERVICES_VERSION: u16 = 2;
const IDEMPOTENCY_VERSION: u16 = 1;
const OUTBOX_VERSION: u16 = 1;

/// A batch that the state refuses as a whole. Only a buggy sequencer or a journal that was
/// tampered with produces one; the state is unchanged.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ApplyError {
    /// Batch timestamps must move forward past every event of the previous batch.
    #[error("batch timestamp {found} is not after the last event timestamp {last}")]
    TimestampNotIncreasing {
        /// The last event timestamp in the state.
        last: u64,
        /// The batch's timestamp.
        found: u64,
    },
    /// The batch's events would run past the largest timestamp.
    #[error("batch timestamp {timestamp} with up to {events} events overflows")]
    TimestampOverflow {
        /// The batch's timestamp.
        timestamp: u64,
        /// Its number of events, at most.
        events: usize,
    },
}

/// Everything Kasa knows. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// The operators' TigerBeetle-compatible ledger.
    ledger: Ledger,
    /// Kasa's own books: wallets, system accounts, domain transfers (see `crate::chart`).
    books: Ledger,
    /// Every registered domain's tables.
    domains: Domains,
    limits: Limits,
    fees: Fees,
    keys: IdempotencyKeys<InnerOutcome>,
    outbox: Outbox,
    /// Timestamp of the last event applied (or of the last empty batch).
    last_timestamp: u64,
    /// Number of batches applied.
    batches: u64,
    /// The events of the last batch, until taken (not part of the state).
    events: Vec<Event>,
    /// Whether to check the per-user limits after every command (not part of the state).
    audit_limits: bool,
    /// The first limit the audit found broken, with the command's first event timestamp.
    limit_violation: Option<String>,
}

impl State {
    /// The operators' ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Kasa's books, for queries.
    pub fn books(&self) -> &Ledger {
        &self.books
    }

    /// Wallet users and everything they own, for queries.
    pub fn wallets(&self) -> &Wallets {
        &self.domains.wallets
    }

    /// Merchants, their stores and API keys, for queries.
    pub fn merchants(&self) -> &crate::merchant::Merchants {
        &self.domains.merchants
    }

    /// The partner domain's tables.
    pub fn partners(&self) -> &crate::partner::Partners {
        &self.domains.partners
    }

    /// Up to `limit` entries of `user_id`'s transaction list from `cursor` on, newest first:
    /// the wallet's own entries, its payments and refunds, and its payments abroad.
    pub fn history(
        &self,
        user_id: u64,
        cursor: crate::wallet::HistoryCursor,
        limit: usize,
    ) -> Vec<crate::wallet::Entry> {
        let (merchants, partners) = (&self.domains.merchants, &self.domains.partners);
        self.domains.wallets.history_with(&self.books, user_id, cursor, limit, &|t, balance_at| {
            merchants.history_entry(&self.books, t, balance_at).or_else(|| partners.history_entry(t, balance_at))
        })
    }

    /// Limits in force and their use.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Fees in force.
    pub fn fees(&self) -> &Fees {
        &self.fees
    }

    /// Idempotency keys, for queries.
    pub fn idempotency(&self) -> &IdempotencyKeys<InnerOutcome> {
        &self.keys
    }

    /// The outbox: events emitted, consumers' cursors.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Makes room for `additional` more transfers in the operators' ledger ahead of a replay
    /// (see [`Ledger::reserve_transfers`]).
    pub fn reserve_transfers(&mut self, additional: usize) {
        self.ledger.reserve_transfers(additional);
    }

    /// The ledgers whose transfers may go cold, by number: 0 is the operators' ledger, 1 Kasa's
    /// books. Going cold changes where records are, not what they are (see the ledger's
    /// `cold.rs`), so the engine may do it between any two batches.
    pub const COLD_LEDGERS: usize = 2;

    fn cold_ledger(&self, which: usize) -> &Ledger {
        if which == 0 {
            &self.ledger
        } else {
            &self.books
        }
    }

    fn cold_ledger_mut(&mut self, which: usize) -> &mut Ledger {
        if which == 0 {
            &mut self.ledger
        } else {
            &mut self.books
        }
    }

    /// Reads the cold transfers and balances of ledger `which` from `store` from now on.
    pub fn set_cold_store(&mut self, which: usize, store: std::sync::Arc<dyn crate::ledger::ColdStore>) {
        self.cold_ledger_mut(which).set_cold_store(store);
    }

    /// Ledger `which`'s chunks of a kind, and how many of them are cold.
    pub fn cold_chunks(&self, which: usize, kind: crate::ledger::ColdKind) -> (usize, usize) {
        self.cold_ledger(which).cold_chunks(kind)
    }

    /// Ledger `which`'s chunk `index` of a kind, if no write will touch it again.
    pub fn sealed_chunk(
        &self,
        which: usize,
        kind: crate::ledger::ColdKind,
        index: usize,
    ) -> Option<crate::ledger::ColdChunk> {
        self.cold_ledger(which).sealed_chunk(kind, index)
    }

    /// Drops ledger `which`'s oldest hot chunk of a kind from memory; the store holds it.
    pub fn make_chunk_cold(&mut self, which: usize, kind: crate::ledger::ColdKind) {
        self.cold_ledger_mut(which).make_chunk_cold(kind);
    }

    /// The timestamp of the last event; the next batch must be stamped after it.
    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    /// Number of batches applied since the beginning.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The earliest time at which a batch (even an empty one) would change the state by
    /// expiring a pending transfer or doing a domain's due work (an unapproved payment's
    /// expiry).
    pub fn next_expiry(&self) -> Option<u64> {
        [self.ledger.next_expiry(), self.books.next_expiry(), self.domains.next_due()].into_iter().flatten().min()
    }

    /// Takes the events the last batch emitted, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Turns the per-command audit of the per-user limits on or off (off by default: the
    /// commands enforce the limits themselves; `kasa verify` and the tests audit them).
    pub fn audit_limits(&mut self, on: bool) {
        self.audit_limits = on;
    }

    /// The first limit the audit found broken since the last call, if any.
    pub fn take_limit_violation(&mut self) -> Option<String> {
        self.limit_violation.take()
    }

    /// Applies a batch: first the work time made due (in slices), then each command. Event
    /// `i` of the batch (counting ledger items and domain timestamps across commands) gets
    /// timestamp `batch.timestamp + i`.
    pub fn apply(&mut self, batch: &Batch) -> Result<Vec<Outcome>, ApplyError> {
        if batch.timestamp <= self.last_timestamp {
            return Err(ApplyError::TimestampNotIncreasing { last: self.last_timestamp, found: batch.timestamp });
        }
        // The commands' events, and the money the work made due may move first.
        let events_max: usize = batch.commands.iter().map(Command::events_max).sum::<usize>() + HOUSEKEEPING_SLICE;
        if batch.timestamp.checked_add(events_max as u64 + 1).is_none() {
            return Err(ApplyError::TimestampOverflow { timestamp: batch.timestamp, events: events_max });
        }
        let now = batch.timestamp;
        // The events of the last batch only: a caller that never takes them (a replay that
        // only checks the state) does not pile them up.
        self.events.clear();
        self.ledger.expire_pending(now, HOUSEKEEPING_SLICE);
        let expired = self.books.expire_pending(now, HOUSEKEEPING_SLICE);
        let mut raw = Vec::new();
        let (domains, services) = self.domains_and_services();
        let used = domains.on_batch_start(&expired, now, HOUSEKEEPING_SLICE, services, &mut raw);
        self.number_events(&mut raw, now);
        self.keys.expire(now, HOUSEKEEPING_SLICE);
        let mut next = now + used;
        let mut outcomes = Vec::with_capacity(batch.commands.len());
        for command in &batch.commands {
            let books_before = self.books.transfers_count();
            let (outcome, used) = self.apply_one(command, next, &mut raw);
            self.number_events(&mut raw, next);
            if self.audit_limits && self.limit_violation.is_none() {
                if let Err(e) = self.domains.check_limits_of_new_transfers(&self.books, &self.limits, books_before) {
                    self.limit_violation = Some(format!("the command at timestamp {next}: {e}"));
                }
            }
            outcomes.push(outcome);
            next += used;
        }
        self.last_timestamp = if next == batch.timestamp { batch.timestamp } else { next - 1 };
        self.batches += 1;
        // Between batches every chunk is shared, so that `view` stays a reference per chunk.
        self.ledger.seal();
        self.books.seal();
        Ok(outcomes)
    }

    /// Numbers the events `raw` holds and moves them to the batch's list.
    fn number_events(&mut self, raw: &mut Vec<EventKind>, timestamp: u64) {
        for kind in raw.drain(..) {
            self.outbox.last_seq += 1;
            self.events.push(Event { seq: self.outbox.last_seq, timestamp, kind });
        }
    }

    /// Applies one command whose first event timestamp is `first`; returns its outcome and
    /// how many timestamps it used.
    fn apply_one(&mut self, command: &Command, first: u64, raw: &mut Vec<EventKind>) -> (Outcome, u64) {
        match command {
            Command::Ledger(c) => {
                let (outcome, used) = self.apply_ledger(c, first);
                (Outcome::Ledger(outcome), used)
            }
            Command::AsSession(s) => {
                let (outcome, used) = self.apply_as_session(s, first, raw);
                (Outcome::AsSession(outcome), used)
            }
            Command::Keyed(k) => {
                let (outcome, used) = self.apply_keyed(k, first, raw);
                (Outcome::Keyed(outcome), used)
            }
            Command::Outbox(c) => (Outcome::Outbox(self.outbox.apply(c)), 1),
            Command::Merchant(c) if c.is_flow() => {
                let (outcome, used) = self.apply_flow(c, first, raw);
                (Outcome::Merchant(outcome), used)
            }
            Command::Partner(c) if c.is_flow() => {
                let (outcome, used) = self.apply_partner_flow(c, first, raw);
                (Outcome::Partner(outcome), used)
            }
            domain => {
                let (domains, services) = self.domains_and_services();
                domains.apply(domain, services, first, raw).expect("every other command is a domain's")
            }
        }
    }

    /// The domains' tables and, apart, the shared services their commands reach.
    fn domains_and_services(&mut self) -> (&mut Domains, Services<'_>) {
        let last_event = self.outbox.last_seq;
        (
            &mut self.domains,
            Services { books: &mut self.books, limits: &mut self.limits, fees: &mut self.fees, last_event },
        )
    }

    fn apply_ledger(&mut self, command: &crate::ledger::Command, first: u64) -> (crate::ledger::Outcome, u64) {
        use crate::ledger::{Command as C, Outcome as O};
        // A ledger command uses one timestamp per item (none when empty), as in TigerBeetle.
        let used = command.events() as u64;
        let outcome = match command {
            C::CreateAccounts(a) => O::Accounts(self.ledger.create_accounts(a.as_slice(), first)),
            C::CreateTransfers(t) => O::Transfers(self.ledger.create_transfers(t.as_slice(), first)),
        };
        (outcome, used)
    }

    fn apply_as_session(
        &mut self,
        s: &SessionCommand,
        first: u64,
        raw: &mut Vec<EventKind>,
    ) -> (Option<crate::wallet::Outcome>, u64) {
        let resolved =
            self.domains.wallets.session(&s.token_hash, first).and_then(|session| s.command.with_user(session.user_id));
        match resolved {
            Some(command) => {
                let (domains, services) = self.domains_and_services();
                let (outcome, used) =
                    apply_in_domain(&mut domains.wallets, &command, services, first, raw, EventKind::Wallet);
                (Some(outcome), used)
            }
            None => (None, 1),
        }
    }

    /// A merchant command that reaches into the wallet domain too: a user's answer to a
    /// payment (`merchant::approval`), a scanned QR code or a charged payment code
    /// (`merchant::instore`). Each domain's events are its own.
    fn apply_flow(
        &mut self,
        command: &crate::merchant::Command,
        first: u64,
        raw: &mut Vec<EventKind>,
    ) -> (crate::merchant::Outcome, u64) {
        use crate::merchant::{instore, Command as C, Outcome as O};
        let Domains { wallets, merchants, .. } = &mut self.domains;
        let (mut wallet_events, mut merchant_events) = (Vec::new(), Vec::new());
        let flow = crate::merchant::approval::Flow {
            merchants,
            wallets,
            books: &mut self.books,
            limits: &mut self.limits,
            fees: &mut self.fees,
            wallet_events: &mut wallet_events,
            events: &mut merchant_events,
            first,
        };
        let (outcome, used) = match command {
            C::AnswerPayment { token_hash, payment_id, approve, pin_ok } => {
                let mut flow = flow;
                let answer = (token_hash, *payment_id, *approve, *pin_ok);
                let (outcome, used) =
                    crate::merchant::approval::answer_payment(&mut flow, answer, crate::merchant::Channel::Online);
                (O::PaymentAnswered(outcome.map(|payment| flow.merchants.answered(payment))), used)
            }
            C::PayByQr { token_hash, scan, pin_ok } => {
                let (outcome, used) = instore::pay_by_qr(flow, token_hash, scan, *pin_ok);
                (O::QrPaid(outcome), used)
            }
            C::ChargeCode { key_hash, charge } => {
                let (key_id, outcome, used) = instore::charge_code(flow, key_hash, charge);
                (O::CodeCharged { key_id, outcome }, used)
            }
            _ => unreachable!("the caller matched a flow"),
        };
        raw.extend(wallet_events.into_iter().map(EventKind::Wallet));
        raw.extend(merchant_events.into_iter().map(EventKind::Merchant));
        (outcome, used)
    }

    /// A partner command that reaches into the merchant domain: a partner's payment at a
    /// store, its cancel or refund (`partner::pay`).
    fn apply_partner_flow(
        &mut self,
        command: &crate::partner::Command,
        first: u64,
        raw: &mut Vec<EventKind>,
    ) -> (crate::partner::Outcome, u64) {
        use crate::partner::{pay, Command as C, Outcome as O};
        if let C::PayOverseas { token_hash, request, pin_ok } = command {
            let Domains { wallets, partners, .. } = &mut self.domains;
            let (mut wallet_events, mut partner_events) = (Vec::new(), Vec::new());
            let flow = crate::partner::outbound::OverseasFlow {
                partners,
                wallets,
                books: &mut self.books,
                limits: &mut self.limits,
                fees: &mut self.fees,
                wallet_events: &mut wallet_events,
                events: &mut partner_events,
                first,
            };
            let (outcome, used) = crate::partner::outbound::pay_overseas(flow, token_hash, request, *pin_ok);
            raw.extend(wallet_events.into_iter().map(EventKind::Wallet));
            raw.extend(partner_events.into_iter().map(EventKind::Partner));
            return (O::OverseasPaid(outcome), used);
        }
        let Domains { merchants, partners, .. } = &mut self.domains;
        let (mut merchant_events, mut partner_events) = (Vec::new(), Vec::new());
        let flow = pay::PartnerFlow {
            partners,
            merchants,
            books: &mut self.books,
            limits: &mut self.limits,
            fees: &mut self.fees,
            merchant_events: &mut merchant_events,
            events: &mut partner_events,
            first,
        };
        let (outcome, used) = match command {
            C::Pay(request) => {
                let (outcome, used) = pay::pay(flow, request);
                (O::Paid(outcome), used)
            }
            C::CancelPayment { partner_id, request_id } => {
                let (outcome, used) = pay::cancel(flow, *partner_id, request_id);
                (O::Canceled(outcome), used)
            }
            C::Refund { partner_id, refund_request_id, request_id, amount } => {
                let (outcome, used) = pay::refund(flow, *partner_id, refund_request_id, request_id, *amount);
                (O::Refunded(outcome), used)
            }
            _ => unreachable!("the caller matched a flow"),
        };
        raw.extend(merchant_events.into_iter().map(EventKind::Merchant));
        raw.extend(partner_events.into_iter().map(EventKind::Partner));
        (outcome, used)
    }

    fn apply_inner(&mut self, inner: &Inner, first: u64, raw: &mut Vec<EventKind>) -> (InnerOutcome, u64) {
        match inner {
            Inner::Ledger(c) => {
                let (o, used) = self.apply_ledger(c, first);
                (InnerOutcome::Ledger(o), used)
            }
            Inner::AsSession(s) => {
                let (o, used) = self.apply_as_session(s, first, raw);
                (InnerOutcome::AsSession(o), used)
            }
            Inner::Merchant(c) if c.is_flow() => {
                let (o, used) = self.apply_flow(c, first, raw);
                (InnerOutcome::Merchant(o), used)
            }
            Inner::Partner(c) if c.is_flow() => {
                let (o, used) = self.apply_partner_flow(c, first, raw);
                (InnerOutcome::Partner(o), used)
            }
            domain => {
                let (domains, services) = self.domains_and_services();
                domains.apply_inner(domain, services, first, raw).expect("every other command is a domain's")
            }
        }
    }

    fn apply_keyed(&mut self, k: &Keyed, first: u64, raw: &mut Vec<EventKind>) -> (KeyedOutcome, u64) {
        let owner = match k.scope {
            KeyScope::Operator => Owner::Operator,
            KeyScope::Anonymous(hash) => Owner::Anonymous(hash),
            KeyScope::Session(token_hash) => match self.domains.wallets.session(&token_hash, first) {
                Some(session) => Owner::User(session.user_id),
                None => return (KeyedOutcome::SessionInvalid, 1),
            },
            KeyScope::ApiKey(key_hash) => match self.domains.merchants.live_key(&key_hash) {
                Some((key, _)) => Owner::Merchant(key.merchant_id),
                None => return (KeyedOutcome::SessionInvalid, 1),
            },
        };
        if let Some(entry) = self.keys.get(owner, &k.key, first) {
            let outcome = if entry.request_hash == k.request_hash {
                KeyedOutcome::Replayed(entry.outcome.clone())
            } else {
                KeyedOutcome::Reused
            };
            return (outcome, 1);
        }
        if k.command.events_max() > KEYED_EVENTS_MAX {
            return (KeyedOutcome::NotKeyable, 1);
        }
        if !self.keys.has_room(owner) {
            return (KeyedOutcome::TooManyKeys, 1);
        }
        let (outcome, used) = self.apply_inner(&k.command, first, raw);
        self.keys.insert(
            owner,
            &k.key,
            KeyEntry { request_hash: k.request_hash, created_at: first, outcome: outcome.clone() },
        );
        (KeyedOutcome::Applied(outcome), used)
    }

    /// The BLAKE3 hash of the canonical state (the snapshot bytes).
    pub fn hash(&self) -> [u8; 32] {
        self.view().hash()
    }

    /// The snapshot: the canonical state as bytes (for tests and tools; the engine streams a
    /// [`StateView`] instead).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.view().write_canonical(&mut out);
        out
    }

    /// A frozen view of the state as it is now: what a snapshot of this moment holds. Taking it
    /// costs a reference per chunk of the ledgers' arrays and per table (a few milliseconds for
    /// tens of millions of transfers); the view can then be written on another thread while
    /// the writer goes on, which copies only what it changes that the view still holds.
    pub fn view(&self) -> StateView {
        StateView {
            ledger: self.ledger.view(),
            books: self.books.view(),
            domains: self.domains.view(),
            limits: self.limits.clone(),
            fees: self.fees,
            keys: self.keys.view(),
            outbox: self.outbox.clone(),
            last_timestamp: self.last_timestamp,
            batches: self.batches,
        }
    }

    /// Rebuilds a state from a snapshot in memory. See [`State::decode_snapshot_from`].
    pub fn decode_snapshot(bytes: &[u8]) -> Result<State, DecodeError> {
        State::decode_snapshot_from(bytes, bytes.len() as u64)
    }

    /// Rebuilds a state from a snapshot of `len` bytes read as a stream (a file is never held
    /// whole in memory). Every count, position and reference is checked; bad bytes give an
    /// error that names the section, never a panic.
    pub fn decode_snapshot_from(source: impl std::io::Read, len: u64) -> Result<State, DecodeError> {
        State::decode_snapshot_spilling(source, len, None)
    }

    /// [`State::decode_snapshot_from`], with the ledgers' transfers beyond the hot window put
    /// in `cold` as they are read, so that memory holds only the hot ones at any time.
    pub fn decode_snapshot_spilling(
        source: impl std::io::Read,
        len: u64,
        cold: Option<&dyn crate::ledger::ColdSpill>,
    ) -> Result<State, DecodeError> {
        let mut c = Reader::from_stream(source, len);
        if c.take(8)? != SNAPSHOT_MAGIC {
            return Err(DecodeError::invalid("the snapshot does not start with the state magic"));
        }
        let version = c.u32()?;
        if version != SNAPSHOT_VERSION {
            return Err(DecodeError::invalid(if version < SNAPSHOT_VERSION {
                format!("snapshot version {version} was written by Kasa 0.1; this version reads {SNAPSHOT_VERSION}")
            } else {
                format!("snapshot version {version} is newer than this Kasa ({SNAPSHOT_VERSION})")
            }));
        }
        let last_timestamp = c.u64()?;
        let batches = c.u64()?;
        let expect = expect_section::<_>;
        let in_section =
            |name: &'static str| move |e: DecodeError| DecodeError::invalid(format!("section {name}: {e}"));
        expect(&mut c, SECTION_LEDGER, crate::ledger::SECTION_VERSION, "ledger")?;
        let ledger = Ledger::read_section(&mut c, cold.map(|s| (s, 0))).map_err(in_section("ledger"))?;
        expect(&mut c, SECTION_BOOKS, crate::ledger::SECTION_VERSION, "books")?;
        let books = Ledger::read_section(&mut c, cold.map(|s| (s, 1))).map_err(in_section("books"))?;
        expect(&mut c, SECTION_SERVICES, SERVICES_VERSION, "services")?;
        let limits = Limits::read_section(&mut c).map_err(in_section("services"))?;
        let fees: Fees = c.value(codec::TABLE_BLOB_BYTES_MAX).map_err(in_section("services"))?;
        if fees.withdrawal.bps != 0 || fees.withdrawal.fixed > crate::fees::WITHDRAWAL_FEE_MAX {
            return Err(DecodeError::invalid("section services: a withdrawal fee over its maximum"));
        }
        expect(&mut c, SECTION_IDEMPOTENCY, IDEMPOTENCY_VERSION, "idempotency")?;
        let keys = IdempotencyKeys::read_section(&mut c).map_err(in_section("idempotency"))?;
        expect(&mut c, SECTION_OUTBOX, OUTBOX_VERSION, "outbox")?;
        let outbox: Outbox = c.value(codec::TABLE_BLOB_BYTES_MAX).map_err(in_section("outbox"))?;
        let domains = Domains::read_sections(&mut c, &books)?;
        c.finish()?;
        for (name, l) in [("ledger", &ledger), ("books", &books)] {
            if l.transfers().next_back().is_some_and(|t| t.timestamp > last_timestamp) {
                return Err(DecodeError::invalid(format!("the {name} has a transfer newer than the last timestamp")));
            }
        }
        Ok(State {
            ledger,
            books,
            domains,
            limits,
            fees,
            keys,
            outbox,
            last_timestamp,
            batches,
            events: Vec::new(),
            audit_limits: false,
            limit_violation: None,
        })
    }

    /// Checks every invariant of the state: both ledgers' (see [`Ledger::check_invariants`])
    /// and every domain's against the books (the wallets': [`Wallets::check_invariants`]).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.ledger.check_invariants().map_err(|e| format!("ledger: {e}"))?;
        self.books.check_invariants().map_err(|e| format!("books: {e}"))?;
        self.domains.check_invariants(&self.books)
    }
}

/// The state as it was at one moment, for a snapshot written while the writer goes on (see
/// [`State::view`]). It holds only the content a snapshot holds, never a derived index.
#[derive(Clone, Debug)]
pub struct StateView {
    ledger: crate::ledger::LedgerView,
    books: crate::ledger::LedgerView,
    domains: DomainsView,
    limits: Limits,
    fees: Fees,
    keys: crate::table::Table<(Owner, crate::idempotency::IdempotencyKey), KeyEntry<InnerOutcome>>,
    outbox: Outbox,
    last_timestamp: u64,
    batches: u64,
}

impl StateView {
    /// The timestamp of the last event the view includes.
    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    /// Writes the canonical state, section by section, to `sink`: the snapshot's bytes, and
    /// what the state hash is computed over.
    pub fn write_canonical(&self, sink: &mut impl Sink) {
        sink.put(SNAPSHOT_MAGIC);
        sink.put(&SNAPSHOT_VERSION.to_le_bytes());
        sink.put(&self.last_timestamp.to_le_bytes());
        sink.put(&self.batches.to_le_bytes());
        let mut scratch = Vec::new();
        section_header(sink, SECTION_LEDGER, crate::ledger::SECTION_VERSION);
        self.ledger.write_section(sink);
        section_header(sink, SECTION_BOOKS, crate::ledger::SECTION_VERSION);
        self.books.write_section(sink);
        section_header(sink, SECTION_SERVICES, SERVICES_VERSION);
        self.limits.write_section(sink);
        codec::put_value(sink, &self.fees, &mut scratch);
        section_header(sink, SECTION_IDEMPOTENCY, IDEMPOTENCY_VERSION);
        IdempotencyKeys::<InnerOutcome>::write_section(&self.keys, sink);
        section_header(sink, SECTION_OUTBOX, OUTBOX_VERSION);
        codec::put_value(sink, &self.outbox, &mut scratch);
        self.domains.write_sections(sink);
    }

    /// The BLAKE3 hash of the canonical bytes.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        self.write_canonical(&mut hasher);
        *hasher.finalize().as_bytes()
    }
}
