//! What a domain is to the core: the [`Domain`] trait, and the [`domains!`] macro that turns the
//! registry (one line per domain, in `command.rs`) into the sums the rest of the core uses.
//!
//! A domain is a folder that owns its commands, outcomes, events, tables, snapshot section and
//! apply; it implements [`Domain`] on its tables. The registry line names its variant, the
//! field and type of its tables, and its snapshot section id:
//!
//! ```text
//! Wallet(wallets: crate::wallet::Wallets) = 3,
//! ```
//!
//! From it the macro generates the domain's variant in [`Command`](crate::Command),
//! [`Inner`](crate::Inner) (so it can be keyed), [`Outcome`](crate::Outcome),
//! [`InnerOutcome`](crate::InnerOutcome) and [`EventKind`](crate::event::EventKind), its field
//! in `Domains` (which the state holds), its place in the dispatch of commands and of the
//! work time makes due, its snapshot section, and its checks. The core's own commands (the
//! operators' ledger, a session's command, a keyed command, the outbox's cursors) come first
//! in every sum; domains follow in registry order. Variants are only ever appended: a
//! variant's position is its number in the journal.
//!
//! Layering (no module imports one that imports it): `codec`, `text`, `time`, `money` →
//! `ledger`, `outbox`, `idempotency` → `chart`, `limits`, `fees` → `context` → `domain` → the
//! domains (`wallet`) → `command` (the registry, where the macro expands) → `event` → `state`.

use crate::codec::{DecodeError, Reader, Sink};
use crate::context::Ctx;
use crate::ledger::{Ledger, Transfer};
use crate::limits::Limits;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// The most bytes a domain's command (or an outbox command) encodes to, unless the domain says
/// otherwise: every field is bounded by its type, and the largest wallet command (a split bill
/// of 50 shares by phone number with a 100-character memo) stays under 3 KiB. A test builds
/// the largest of each and checks.
pub const SMALL_COMMAND_BYTES_MAX: usize = 4096;

/// A domain of the core. See the module documentation.
pub trait Domain: Clone + Debug + Default {
    /// What clients ask of it. Every string and list is a bounded type.
    type Command: Clone + Debug + PartialEq + Eq + Serialize + DeserializeOwned;
    /// What applying a command gave.
    type Outcome: Clone + Debug + PartialEq + Eq + Serialize + DeserializeOwned;
    /// What happened, for the outbox.
    type Event: Clone + Debug + PartialEq + Eq + Serialize + DeserializeOwned;
    /// The tables as of one moment, for a snapshot written off the writer.
    type View: Clone + Debug + Send + Sync + 'static;

    /// The version of its snapshot section.
    const SECTION_VERSION: u16;

    /// Applies one command. Money moves in the books through `ctx`; the domain's change is
    /// made only if the money moved.
    fn apply(&mut self, command: &Self::Command, ctx: &mut Ctx<'_, Self::Event>) -> Self::Outcome;

    /// The most event timestamps `command` can use.
    fn events_max(command: &Self::Command) -> usize;

    /// The most bytes `command` encodes to, from its types' bounds.
    fn encoded_bytes_max(_command: &Self::Command) -> usize {
        SMALL_COMMAND_BYTES_MAX
    }

    /// The stable name of an event (`funding.settled`).
    fn event_name(event: &Self::Event) -> &'static str;

    /// Work time makes due at the start of a batch, at most `slice` items of each kind:
    /// `expired` are the books' pending transfers that expired in this batch. Money it moves
    /// takes timestamps from `ctx` (at most `slice` in all), before the batch's commands.
    fn on_batch_start(&mut self, _expired: &[Transfer], _now: u64, _slice: usize, _ctx: &mut Ctx<'_, Self::Event>) {}

    /// The earliest time at which `on_batch_start` has work that should not wait for a
    /// request (an expiry someone is told about); the sequencer commits a batch then.
    fn next_due(&self) -> Option<u64> {
        None
    }

    /// The tables as they are now (cheap: persistent or copy-on-write tables).
    fn view(&self) -> Self::View;

    /// Writes the snapshot section of `view`.
    fn write_section(view: &Self::View, sink: &mut impl Sink);

    /// Reads the snapshot section back (after the books), checking every reference.
    fn read_section<R: std::io::Read>(reader: &mut Reader<R>, books: &Ledger) -> Result<Self, DecodeError>;

    /// Checks the domain's invariants against the books.
    fn check_invariants(&self, _books: &Ledger) -> Result<(), String> {
        Ok(())
    }

    /// Checks the per-user limits for the books' transfers from position `from` on (the
    /// audit `kasa verify` runs after each command).
    fn check_limits_of_new_transfers(&self, _books: &Ledger, _limits: &Limits, _from: usize) -> Result<(), String> {
        Ok(())
    }
}

/// Generates the sums over the registered domains. See the module documentation.
macro_rules! domains {
    ($( $(#[doc = $doc:literal])* $variant:ident($field:ident: $ty:ty) = $section:literal ),+ $(,)?) => {
        /// One state change requested by a client: the core's own commands, then one variant per
        /// registered domain. Variants are only appended.
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum Command {
            /// The operators' ledger.
            Ledger($crate::ledger::Command),
            /// A wallet command as a session's user.
            AsSession(SessionCommand),
            /// A command guarded by an idempotency key.
            Keyed(Box<Keyed>),
            /// The outbox's consumer cursors.
            Outbox($crate::outbox::Command),
            $( $(#[doc = $doc])* $variant(<$ty as $crate::domain::Domain>::Command), )+
        }

        /// What an idempotency key may guard: any command but another keyed one (so the codec
        /// never recurses) or the outbox's.
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum Inner {
            /// A ledger command (at most [`crate::idempotency::KEYED_EVENTS_MAX`] items).
            Ledger($crate::ledger::Command),
            /// A wallet command as a session's user.
            AsSession(SessionCommand),
            $( $(#[doc = $doc])* $variant(<$ty as $crate::domain::Domain>::Command), )+
        }

        /// The result of one command. Variants are only appended.
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum Outcome {
            /// Of a ledger command.
            Ledger($crate::ledger::Outcome),
            /// Of a session's command: `None` if the session was not valid (or the command
            /// cannot be run as a session's user).
            AsSession(Option<$crate::wallet::Outcome>),
            /// Of a keyed command.
            Keyed(KeyedOutcome),
            /// Of an outbox command.
            Outbox($crate::outbox::Outcome),
            $( $(#[doc = $doc])* $variant(<$ty as $crate::domain::Domain>::Outcome), )+
        }

        /// The outcome of a command a key guards (stored with the key).
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum InnerOutcome {
            /// Of a ledger command.
            Ledger($crate::ledger::Outcome),
            /// Of a session's command: `None` if the session was not valid.
            AsSession(Option<$crate::wallet::Outcome>),
            $( $(#[doc = $doc])* $variant(<$ty as $crate::domain::Domain>::Outcome), )+
        }

        /// What happened, by domain. Variants are only appended.
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum EventKind {
            $( $(#[doc = $doc])* $variant(<$ty as $crate::domain::Domain>::Event), )+
        }

        impl EventKind {
            /// The stable type name (`funding.settled`).
            pub fn name(&self) -> &'static str {
                match self {
                    $( EventKind::$variant(e) => <$ty as $crate::domain::Domain>::event_name(e), )+
                }
            }
        }

        $(
            impl From<<$ty as $crate::domain::Domain>::Command> for Command {
                fn from(command: <$ty as $crate::domain::Domain>::Command) -> Self {
                    Command::$variant(command)
                }
            }
        )+

        impl Inner {
            /// The most event timestamps the command can use.
            pub fn events_max(&self) -> usize {
                match self {
                    Inner::Ledger(c) => c.events(),
                    Inner::AsSession(s) => s.command.events_max(),
                    $( Inner::$variant(c) => <$ty as $crate::domain::Domain>::events_max(c), )+
                }
            }

            fn encoded_bytes_max(&self) -> usize {
                match self {
                    Inner::Ledger(c) => c.events() * $crate::ledger::RECORD_BYTES + 16,
                    Inner::AsSession(_) => SMALL_COMMAND_BYTES_MAX,
                    $( Inner::$variant(c) => <$ty as $crate::domain::Domain>::encoded_bytes_max(c), )+
                }
            }
        }

        impl Command {
            /// The most event timestamps the command can use: the sequencer checks that a
            /// batch's timestamps cannot overflow.
            pub fn events_max(&self) -> usize {
                match self {
                    Command::Ledger(c) => c.events(),
                    Command::AsSession(s) => s.command.events_max(),
                    Command::Keyed(k) => k.command.events_max(),
                    Command::Outbox(_) => 1,
                    $( Command::$variant(c) => <$ty as $crate::domain::Domain>::events_max(c), )+
                }
            }

            /// The most bytes the command encodes to, from its type's bounds alone.
            pub fn encoded_bytes_max(&self) -> usize {
                match self {
                    Command::Ledger(c) => c.events() * $crate::ledger::RECORD_BYTES + 16,
                    Command::AsSession(_) | Command::Outbox(_) => SMALL_COMMAND_BYTES_MAX,
                    Command::Keyed(k) => k.command.encoded_bytes_max() + 512,
                    $( Command::$variant(c) => <$ty as $crate::domain::Domain>::encoded_bytes_max(c), )+
                }
            }
        }

        /// Every registered domain's tables (the state holds one).
        #[derive(Clone, Debug, Default)]
        pub struct Domains {
            $( $(#[doc = $doc])* pub(crate) $field: $ty, )+
        }

        /// Every domain's tables as of one moment, for a snapshot.
        #[derive(Clone, Debug)]
        pub struct DomainsView {
            $( $field: <$ty as $crate::domain::Domain>::View, )+
        }

        /// The shared services a domain's command reaches.
        pub(crate) struct Services<'a> {
            pub books: &'a mut $crate::ledger::Ledger,
            pub limits: &'a mut $crate::limits::Limits,
            pub fees: &'a mut $crate::fees::Fees,
            /// The seq of the last event numbered so far.
            pub last_event: u64,
        }

        impl Domains {
            /// Applies a domain's command at event timestamp `first`, with its events added to
            /// `events`: the outcome and the timestamps used; `None` for the core's own commands.
            pub(crate) fn apply(
                &mut self,
                command: &Command,
                services: Services<'_>,
                first: u64,
                events: &mut Vec<EventKind>,
            ) -> Option<(Outcome, u64)> {
                match command {
                    $(
                        Command::$variant(c) => {
                            let (outcome, used) = apply_in_domain(&mut self.$field, c, services, first, events, EventKind::$variant);
                            Some((Outcome::$variant(outcome), used))
                        }
                    )+
                    _ => None,
                }
            }

            /// [`Domains::apply`] for a keyed command's inner command.
            pub(crate) fn apply_inner(
                &mut self,
                inner: &Inner,
                services: Services<'_>,
                first: u64,
                events: &mut Vec<EventKind>,
            ) -> Option<(InnerOutcome, u64)> {
                match inner {
                    $(
                        Inner::$variant(c) => {
                            let (outcome, used) = apply_in_domain(&mut self.$field, c, services, first, events, EventKind::$variant);
                            Some((InnerOutcome::$variant(outcome), used))
                        }
                    )+
                    _ => None,
                }
            }

            /// The work time made due, in every domain; returns the event timestamps it used
            /// (from `now` on: the batch's commands come after them).
            pub(crate) fn on_batch_start(
                &mut self,
                expired: &[$crate::ledger::Transfer],
                now: u64,
                slice: usize,
                services: Services<'_>,
                events: &mut Vec<EventKind>,
            ) -> u64 {
                let mut used = 0;
                $(
                    let mut raw = Vec::new();
                    let mut ctx = $crate::context::Ctx::new(&mut *services.books, &mut *services.limits, &mut *services.fees, &mut raw, now + used);
                    <$ty as $crate::domain::Domain>::on_batch_start(&mut self.$field, expired, now, slice, &mut ctx);
                    used += ctx.stamps_used();
                    events.extend(raw.into_iter().map(EventKind::$variant));
                )+
                used
            }

            /// The earliest time a domain has work due ([`Domain::next_due`]).
            pub(crate) fn next_due(&self) -> Option<u64> {
                [$( <$ty as $crate::domain::Domain>::next_due(&self.$field) ),+].into_iter().flatten().min()
            }

            /// Every domain's view.
            pub(crate) fn view(&self) -> DomainsView {
                DomainsView { $( $field: <$ty as $crate::domain::Domain>::view(&self.$field), )+ }
            }

            /// Every domain's invariants.
            pub(crate) fn check_invariants(&self, books: &$crate::ledger::Ledger) -> Result<(), String> {
                $(
                    <$ty as $crate::domain::Domain>::check_invariants(&self.$field, books)
                        .map_err(|e| format!("{}: {e}", stringify!($field)))?;
                )+
                Ok(())
            }

            /// Every domain's per-user limits for the books' transfers from `from` on.
            pub(crate) fn check_limits_of_new_transfers(
                &self,
                books: &$crate::ledger::Ledger,
                limits: &$crate::limits::Limits,
                from: usize,
            ) -> Result<(), String> {
                $( <$ty as $crate::domain::Domain>::check_limits_of_new_transfers(&self.$field, books, limits, from)?; )+
                Ok(())
            }

            /// Reads every domain's section, in registry order, after the books.
            pub(crate) fn read_sections<R: std::io::Read>(
                reader: &mut $crate::codec::Reader<R>,
                books: &$crate::ledger::Ledger,
            ) -> Result<Domains, $crate::codec::DecodeError> {
                $(
                    $crate::codec::expect_section(reader, $section, <$ty as $crate::domain::Domain>::SECTION_VERSION, stringify!($field))?;
                    let $field = <$ty as $crate::domain::Domain>::read_section(reader, books)
                        .map_err(|e| $crate::codec::DecodeError::invalid(format!("section {}: {e}", stringify!($field))))?;
                )+
                Ok(Domains { $( $field, )+ })
            }
        }

        impl DomainsView {
            /// Writes every domain's section, in registry order.
            pub(crate) fn write_sections(&self, sink: &mut impl $crate::codec::Sink) {
                $(
                    $crate::codec::section_header(sink, $section, <$ty as $crate::domain::Domain>::SECTION_VERSION);
                    <$ty as $crate::domain::Domain>::write_section(&self.$field, sink);
                )+
            }
        }

        /// Applies one command of domain `D` with a context of its own, and numbers nothing:
        /// its events go to `events` as `EventKind`s (`wrap` is the domain's variant).
        pub(crate) fn apply_in_domain<D: $crate::domain::Domain>(
            domain: &mut D,
            command: &D::Command,
            services: Services<'_>,
            first: u64,
            events: &mut Vec<EventKind>,
            wrap: fn(D::Event) -> EventKind,
        ) -> (D::Outcome, u64) {
            let mut raw = Vec::new();
            let mut ctx = $crate::context::Ctx::new(services.books, services.limits, services.fees, &mut raw, first);
            ctx.last_event = services.last_event;
            let outcome = domain.apply(command, &mut ctx);
            let used = ctx.used();
            events.extend(raw.into_iter().map(wrap));
            (outcome, used)
        }
    };
}

pub(crate) use domains;
