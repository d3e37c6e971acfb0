//! The random workload: batches tuned to reach most result codes, built against the model's
//! view of the state.

use super::*;

/// xorshift64: small, seedable, and the same on every platform.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Builds batches that are likely to mean something in the current state, which it learns by
/// applying them to its own model.
pub(crate) struct Workload {
    pub(crate) rng: Rng,
    pub(crate) model: Model,
    /// Per account id 1..=8: the ledger and flags it is created with.
    pub(crate) shapes: Vec<(u32, u16)>,
    /// The last transfer id handed out fresh; retries pick ids at or below it.
    pub(crate) transfer_id_last: u128,
    pub(crate) start: u64,
}

impl Workload {
    pub(crate) fn new(seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        let flag_choices = [
            0,
            0,
            AF::HISTORY,
            AF::DEBITS_MUST_NOT_EXCEED_CREDITS,
            AF::DEBITS_MUST_NOT_EXCEED_CREDITS | AF::HISTORY,
            AF::CREDITS_MUST_NOT_EXCEED_DEBITS,
            AF::CREDITS_MUST_NOT_EXCEED_DEBITS | AF::HISTORY,
        ];
        let shapes = (1..=ACCOUNT_IDS)
            .map(|id| {
                let ledger = if id >= 7 { 2 } else { 1 };
                // Accounts 1 and 2 are free to go negative, so that money enters the ledger.
                let mut flags = if id <= 2 { rng.pick(&[0, AF::HISTORY]) } else { rng.pick(&flag_choices) };
                if rng.chance(4) {
                    flags |= AF::CLOSED;
                }
                (ledger, flags)
            })
            .collect();
        // Some sequences run near the end of time (2^63 nanoseconds, as in TigerBeetle), where
        // timeouts overflow.
        let start = if rng.chance(10) { EXPIRY_LAST - 200 * SECOND } else { 1_700_000_000 * SECOND };
        Workload { rng, model: Model::default(), shapes, transfer_id_last: 0, start }
    }

    pub(crate) fn sequence(mut self, batches: usize) -> Vec<Batch> {
        let mut out = Vec::with_capacity(batches);
        for n in 0..batches {
            let batch = self.batch(n);
            self.model.apply(&batch);
            out.push(batch);
        }
        out
    }

    pub(crate) fn batch(&mut self, n: usize) -> Batch {
        let last = self.model.last_timestamp.max(self.start);
        let timestamp = match (self.rng.below(10), self.model.next_expiry()) {
            // Just before, at or after the next expiry, so that it falls inside the batch.
            (0..=2, Some(at)) if at > last + 4 => at - self.rng.below(4),
            (0..=3, _) => last + 1,
            _ => last + 1 + self.rng.below(2 * SECOND),
        };
        let mut commands = Vec::new();
        if n == 0 {
            let all = (1..=ACCOUNT_IDS).map(|id| self.account_with_id(id)).collect();
            commands.push(Command::CreateAccounts(all));
        }
        for _ in 0..self.rng.below(COMMANDS_PER_BATCH_MAX + 1) {
            commands.push(if self.rng.chance(20) {
                let count = self.rng.below(ACCOUNTS_PER_COMMAND_MAX + 1);
                Command::CreateAccounts(self.chains(count, |w| w.account()))
            } else {
                let count = self.rng.below(TRANSFERS_PER_COMMAND_MAX + 1);
                Command::CreateTransfers(self.chains(count, |w| w.transfer()))
            });
        }
        Batch { timestamp, commands }
    }

    /// `count` events in chains of one to four, some left open.
    pub(crate) fn chains<E: Event + Linkable>(
        &mut self,
        count: u64,
        mut make: impl FnMut(&mut Workload) -> E,
    ) -> Vec<E> {
        let mut events = Vec::new();
        while (events.len() as u64) < count {
            let length = 1 + self.rng.below(4);
            for k in 0..length {
                let mut event = make(self);
                if k + 1 < length || self.rng.chance(8) {
                    event.set_linked();
                }
                events.push(event);
            }
        }
        events.truncate(count as usize);
        events
    }

    pub(crate) fn account_with_id(&mut self, id: u128) -> Account {
        let (ledger, flags) = self.shapes[id as usize - 1];
        Account { id, ledger, code: 1, flags: AccountFlags(flags), ..Default::default() }
    }

    pub(crate) fn account(&mut self) -> Account {
        let id = 1 + u128::from(self.rng.below(ACCOUNT_IDS as u64));
        let mut a = self.account_with_id(id);
        if self.rng.chance(60) {
            return a;
        }
        // One field off. Checks that only a new account reaches use an id that is never created.
        let fresh = 9 + u128::from(self.rng.below(2));
        match self.rng.below(17) {
            16 => a.id |= 1 << 127,
            0 => a.timestamp = 1,
            1 => a.reserved = 1,
            2 => a.flags.0 |= 1 << 9,
            3 => a.id = 0,
            4 => a.id = MAX,
            5 => a.flags.0 ^= AF::HISTORY,
            6 => a.user_data_128 = 1,
            7 => a.user_data_64 = 1,
            8 => a.user_data_32 = 1,
            9 => a.ledger = 3 - a.ledger,
            10 => a.code = 2,
            11 => (a.id, a.flags.0) = (fresh, AF::DEBITS_MUST_NOT_EXCEED_CREDITS | AF::CREDITS_MUST_NOT_EXCEED_DEBITS),
            12 => (a.id, a.debits_pending, a.debits_posted) = (fresh, self.rng.below(2).into(), 1),
            13 => (a.id, a.credits_pending, a.credits_posted) = (fresh, self.rng.below(2).into(), 1),
            14 => (a.id, a.ledger) = (fresh, 0),
            _ => (a.id, a.code) = (fresh, 0),
        }
        a
    }

    pub(crate) fn account_id(&mut self) -> u128 {
        match self.rng.below(100) {
            0 => 0,
            1 => MAX,
            2..=4 => ACCOUNT_IDS + 1,
            5 => (1 << 127) | 3,
            _ => 1 + u128::from(self.rng.below(ACCOUNT_IDS as u64)),
        }
    }

    pub(crate) fn amount(&mut self) -> u128 {
        match self.rng.below(100) {
            0..=79 => 1 + u128::from(self.rng.below(100)),
            80..=83 => 0,
            84..=89 => MAX - u128::from(self.rng.below(3)),
            90..=95 => MAX / 2 + u128::from(self.rng.below(3)),
            _ => 1 + u128::from(self.rng.below(10_000)),
        }
    }

    pub(crate) fn transfer_id(&mut self) -> u128 {
        if self.rng.chance(85) || self.transfer_id_last == 0 {
            self.transfer_id_last += 1;
            self.transfer_id_last
        } else {
            1 + u128::from(self.rng.below(self.transfer_id_last as u64 + 2))
        }
    }

    pub(crate) fn transfer(&mut self) -> Transfer {
        if self.rng.chance(10) && !self.model.transfers.is_empty() {
            return self.retry();
        }
        let mut id = self.transfer_id();
        // Now and then a spent id again, with whatever fields: only `id_already_failed` (or an
        // earlier check) may answer.
        if self.rng.chance(3) && !self.model.failed.is_empty() {
            id = self.rng.pick(&self.model.failed);
        }
        if self.rng.chance(2) {
            id |= 1 << 127;
        }
        let kind = self.rng.below(100);
        if (55..75).contains(&kind) {
            return self.resolve(id);
        }
        let debit = self.account_id();
        let mut credit = self.account_id();
        if credit == debit && self.rng.chance(90) {
            credit = 1 + credit % ACCOUNT_IDS;
        }
        let ledger = self.shapes.get(debit.wrapping_sub(1) as usize).map_or(1, |s| s.0);
        let mut t = Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: self.amount(),
            ledger,
            code: 1,
            ..Default::default()
        };
        let mut flags = 0;
        match kind {
            0..=34 => {}
            35..=54 => flags = TF::PENDING,
            75..=86 => {
                flags = self.rng.pick(&[
                    TF::BALANCING_DEBIT,
                    TF::BALANCING_CREDIT,
                    TF::BALANCING_DEBIT | TF::BALANCING_CREDIT,
                ]);
                if self.rng.chance(30) {
                    flags |= TF::PENDING;
                }
            }
            87..=93 => {
                flags = self.rng.pick(&[TF::CLOSING_DEBIT, TF::CLOSING_CREDIT, TF::CLOSING_DEBIT | TF::CLOSING_CREDIT]);
                if self.rng.chance(85) {
                    flags |= TF::PENDING;
                }
            }
            _ => match self.rng.below(8) {
                0 => t.timestamp = 1,
                1 => flags = 1 << 12,
                2 => t.id = 0,
                3 => t.id = MAX,
                4 => {
                    flags = self.rng.pick(&[
                        TF::PENDING | TF::POST_PENDING_TRANSFER,
                        TF::BALANCING_CREDIT | TF::VOID_PENDING_TRANSFER,
                    ])
                }
                5 => t.pending_id = 1,
                6 => t.ledger = self.rng.pick(&[0, 3 - ledger.min(2)]),
                _ => t.code = 0,
            },
        }
        if flags & TF::PENDING != 0 {
            t.timeout = if self.rng.chance(3) { u32::MAX } else { self.rng.below(4) as u32 };
        } else if self.rng.chance(2) {
            t.timeout = 1;
        }
        t.flags = TransferFlags(flags);
        t
    }

    /// A post or void of an earlier pending transfer (usually), with the amount and the
    /// inherited fields left out, repeated, or wrong.
    pub(crate) fn resolve(&mut self, id: u128) -> Transfer {
        let pending: Vec<Transfer> =
            self.model.transfers.iter().filter(|t| t.flags.has(TF::PENDING)).copied().collect();
        let p = match self.rng.below(10) {
            0 => self.model.transfers.get(self.rng.below(self.model.transfers.len() as u64 + 1) as usize).copied(),
            1 => None,
            _ if !pending.is_empty() => {
                let open = self.model.open_pending();
                if !open.is_empty() && self.rng.chance(70) {
                    Some(self.rng.pick(&open))
                } else {
                    Some(self.rng.pick(&pending))
                }
            }
            _ => None,
        }
        .unwrap_or(Transfer { id: self.rng.pick(&[0, MAX, id, self.transfer_id_last + 5]), ..Default::default() });
        let flags = if self.rng.chance(55) { TF::POST_PENDING_TRANSFER } else { TF::VOID_PENDING_TRANSFER };
        let amount = match self.rng.below(8) {
            0..=2 => 0,
            3 => MAX,
            4 => p.amount,
            5 => p.amount / 2,
            6 => p.amount.saturating_add(1),
            _ => 1 + u128::from(self.rng.below(50)),
        };
        let pending_id = if self.rng.chance(3) { p.id | (1 << 127) } else { p.id };
        let mut t = Transfer { id, pending_id, amount, flags: TransferFlags(flags), ..Default::default() };
        if self.rng.chance(25) {
            (t.debit_account_id, t.credit_account_id, t.ledger, t.code) =
                (p.debit_account_id, p.credit_account_id, p.ledger, p.code);
            match self.rng.below(6) {
                0 => t.debit_account_id = self.account_id(),
                1 => t.credit_account_id = self.account_id(),
                2 => t.ledger = 3 - p.ledger.min(2),
                3 => t.code = 2,
                4 => t.timeout = 1,
                _ => {}
            }
        }
        if self.rng.chance(20) {
            t.user_data_64 = 1 + self.rng.below(2);
        }
        t
    }

    /// A transfer with the id of an existing one: the same request again, or one field off.
    pub(crate) fn retry(&mut self) -> Transfer {
        let e = self.rng.pick(&self.model.transfers);
        let mut t = Transfer { timestamp: 0, ..e };
        let resolving = t.flags.has(TF::POST_PENDING_TRANSFER) || t.flags.has(TF::VOID_PENDING_TRANSFER);
        if resolving && self.rng.chance(50) {
            // The inherited fields left out, as a client would.
            (t.debit_account_id, t.credit_account_id, t.ledger, t.code, t.amount) = (0, 0, 0, 0, 0);
        }
        match self.rng.below(16) {
            0 => t.flags.0 ^= TF::LINKED,
            1 => t.pending_id = t.pending_id.wrapping_add(1),
            2 => t.timeout = t.timeout.wrapping_add(1),
            3 => t.debit_account_id = 1 + t.debit_account_id % ACCOUNT_IDS,
            4 => t.credit_account_id = 1 + t.credit_account_id % ACCOUNT_IDS,
            5 => t.amount = t.amount.wrapping_add(1),
            6 => t.user_data_128 = 7,
            7 => t.user_data_64 = 7,
            8 => t.user_data_32 = 7,
            9 => t.ledger = 3,
            10 => t.code = 2,
            _ => {}
        }
        t
    }
}

/// Setting the `linked` flag on either kind of event.
pub(crate) trait Linkable {
    fn set_linked(&mut self);
}

impl Linkable for Account {
    fn set_linked(&mut self) {
        self.flags.0 |= AF::LINKED;
    }
}

impl Linkable for Transfer {
    fn set_linked(&mut self) {
        self.flags.0 |= TF::LINKED;
    }
}

// -------------------------------------------------------------------------------------------
// The comparison.
