//! The limits every money movement is checked against, in one place for every domain: KYC
//! tiers with their legal maxima (balance cap, daily outgoing limit), the daily outgoing
//! total per user by KST day, and the PIN-free budget per user over a rolling 24 hours.
//!
//! Limits are a property of the moment money moves: a domain checks them in the same step as
//! the transfer, and `kasa verify` re-checks every command of its replay (see
//! `Wallets::check_limits_of_new_transfers`), because operators may lower a tier later.
//!
//! The balance formulas live here too, once: what a wallet *holds* against its cap counts
//! money on its way in (pending credits), and what it has *available* to spend counts money
//! on its way out (pending debits).

use crate::ledger::Account;
use crate::money::Amount;
use crate::table::Table;
use crate::time::{kst_day, NANOS_PER_DAY, NANOS_PER_MINUTE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A KYC tier: what the law lets a wallet hold and send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// A new user.
    Basic,
    /// Identity verified by an operator.
    Verified,
}

impl Tier {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Verified => "verified",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Tier> {
        match name {
            "basic" => Some(Tier::Basic),
            "verified" => Some(Tier::Verified),
            _ => None,
        }
    }

    /// The legal maxima of the tier, in won (also its default limits): operators may lower a
    /// tier's limits, never raise them above these.
    pub fn legal_maxima(self) -> TierLimits {
        match self {
            Tier::Basic => TierLimits { balance_cap: Amount::new(500_000), daily_outgoing: Amount::new(500_000) },
            Tier::Verified => {
                TierLimits { balance_cap: Amount::new(2_000_000), daily_outgoing: Amount::new(2_000_000) }
            }
        }
    }

    /// Every tier.
    pub const ALL: [Tier; 2] = [Tier::Basic, Tier::Verified];
}

/// A tier's limits, in won.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierLimits {
    /// The most a wallet may hold, counting money on its way in.
    pub balance_cap: Amount,
    /// The most a user may send out in one KST day (remittances, withdrawals with their fees).
    pub daily_outgoing: Amount,
}

/// Which limit a movement would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// The wallet's balance cap.
    BalanceCap,
    /// The daily outgoing limit.
    DailyOutgoing,
}

impl LimitKind {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::BalanceCap => "balance_cap",
            LimitKind::DailyOutgoing => "daily_outgoing",
        }
    }
}

/// A limit that a request would pass, with its value and what is left of it (the acting
/// user's own limits only: another user's room is theirs to know).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: LimitKind,
    /// Its value, in won.
    pub value: Amount,
    /// What is left of it, in won.
    pub remaining: Amount,
}

/// The PIN-free amount a user starts with, and the most they may raise it back to: 50,000
/// won over a rolling 24 hours.
pub const PIN_FREE_DEFAULT: Amount = Amount::new(50_000);

/// The PIN-free budget counts spends in steps of this length: a spend leaves the budget 24
/// hours after the end of its step, so the window is 24 hours to 24 hours and 10 minutes,
/// never less, and a user keeps at most 145 steps.
pub const PIN_FREE_STEP_NANOS: u64 = 10 * NANOS_PER_MINUTE;

/// The balance a wallet holds against its cap: posted credits plus pending credits (money
/// on its way in counts, so that two top-ups at once cannot pass the cap together) less
/// posted debits.
pub fn held(account: &Account) -> u128 {
    account.credits_posted.saturating_add(account.credits_pending).saturating_sub(account.debits_posted)
}

/// What a wallet may spend: posted credits less posted and pending debits.
pub fn available(account: &Account) -> u128 {
    account.credits_posted.saturating_sub(account.debits_posted.saturating_add(account.debits_pending))
}

/// The posted balance of a credit-normal account (a wallet).
pub fn balance(account: &Account) -> u128 {
    account.credits_posted.saturating_sub(account.debits_posted)
}

/// What one user has used of their limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The KST day `outgoing` counts.
    day: u64,
    /// What the user sent out on `day`.
    outgoing: Amount,
    /// PIN-free spends by step, oldest first: (step number, amount).
    pin_free: VecDeque<(u64, Amount)>,
}

impl Usage {
    fn outgoing_on(&self, day: u64) -> Amount {
        if self.day == day {
            self.outgoing
        } else {
            Amount::ZERO
        }
    }

    fn pin_free_used(&self, now: u64) -> Amount {
        self.pin_free
            .iter()
            .filter(|(step, _)| !step_expired(*step, now))
            .fold(Amount::ZERO, |sum, (_, amount)| sum.saturating_add(*amount))
    }
}

/// Limits in force and what users have used of them. Deterministic containers only: part of
/// the state, hashed and snapshotted; the per-user table is a persistent collection, so a
/// snapshot copies it in constant time (see `wallet::WalletsView`), looked up once per check
/// and once per movement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Operator-set limits per tier; absent: the legal maxima.
    tiers: BTreeMap<Tier, TierLimits>,
    /// Per user who has moved money out.
    usage: Table<u64, Usage>,
}

impl Limits {
    /// The limits in force for a tier.
    pub fn tier(&self, tier: Tier) -> TierLimits {
        self.tiers.get(&tier).copied().unwrap_or_else(|| tier.legal_maxima())
    }

    /// Sets a tier's limits (an operator's decision); refused above the legal maxima.
    pub fn set_tier(&mut self, tier: Tier, limits: TierLimits) -> Result<(), TierLimits> {
        let max = tier.legal_maxima();
        if limits.balance_cap > max.balance_cap || limits.daily_outgoing > max.daily_outgoing {
            return Err(max);
        }
        self.tiers.insert(tier, limits);
        Ok(())
    }

    /// What `user` has sent out on the KST day of `now`.
    pub fn outgoing_today(&self, user: u64, now: u64) -> Amount {
        self.outgoing_on(user, kst_day(now))
    }

    /// What `user` has sent out on KST day `day`.
    pub fn outgoing_on(&self, user: u64, day: u64) -> Amount {
        self.usage.get(&user).map_or(Amount::ZERO, |u| u.outgoing_on(day))
    }

    /// Checks that `amount` more fits in `user`'s daily outgoing limit at `now`.
    pub fn check_outgoing(&self, user: u64, tier: Tier, amount: Amount, now: u64) -> Result<(), LimitExceeded> {
        self.check_spend(user, tier, None, amount, now).map_err(|refusal| match refusal {
            SpendRefusal::Limit(e) => e,
            SpendRefusal::PinRequired => unreachable!("no PIN-free budget was asked about"),
        })
    }

    /// Checks a movement of `amount` out of `user`'s wallet at `now`, in one lookup: without
    /// the PIN (`pin_free_amount` is the user's budget) it must fit in what is left of the
    /// PIN-free budget, and it must fit in the daily outgoing limit of `tier`.
    pub fn check_spend(
        &self,
        user: u64,
        tier: Tier,
        pin_free_amount: Option<Amount>,
        amount: Amount,
        now: u64,
    ) -> Result<(), SpendRefusal> {
        let usage = self.usage.get(&user);
        if let Some(budget) = pin_free_amount {
            let used = usage.map_or(Amount::ZERO, |u| u.pin_free_used(now));
            if used.checked_add(amount).is_none_or(|total| total > budget) {
                return Err(SpendRefusal::PinRequired);
            }
        }
        let daily = self.tier(tier).daily_outgoing;
        let used = usage.map_or(Amount::ZERO, |u| u.outgoing_on(kst_day(now)));
        if used.checked_add(amount).is_none_or(|total| total > daily) {
            return Err(LimitExceeded {
                limit: LimitKind::DailyOutgoing,
                value: daily,
                remaining: daily.saturating_sub(used),
            }
            .into());
        }
        Ok(())
    }

    /// Checks that a wallet holding `account` can take `amount` more under its tier's cap.
    pub fn check_balance_cap(&self, tier: Tier, account: &Account, amount: Amount) -> Result<(), LimitExceeded> {
        let cap = self.tier(tier).balance_cap;
        let held = held(account);
        if held.saturating_add(amount.ledger()) > cap.ledger() {
            let held = Amount::from_ledger(held).unwrap_or(Amount::MAX);
            return Err(LimitExceeded {
                limit: LimitKind::BalanceCap,
                value: cap,
                remaining: cap.saturating_sub(held),
            });
        }
        Ok(())
    }

    /// Records a movement of `amount` out of `user`'s wallet at `now` (the caller checked it
    /// with [`Limits::check_spend`]): counted against the day's outgoing limit, and, moved
    /// without the PIN, against the PIN-free budget. Returns the KST day it counts on.
    pub fn record_spend(&mut self, user: u64, amount: Amount, pin_free: bool, now: u64) -> u64 {
        let day = kst_day(now);
        let usage = self.usage.get_or_insert_with(user, Usage::default);
        usage.outgoing = usage.outgoing_on(day).saturating_add(amount);
        usage.day = day;
        if pin_free {
            let steps = &mut usage.pin_free;
            while steps.front().is_some_and(|(step, _)| step_expired(*step, now)) {
                steps.pop_front();
            }
            let step = now / PIN_FREE_STEP_NANOS;
            match steps.back_mut() {
                Some((last, sum)) if *last == step => *sum = sum.saturating_add(amount),
                _ => steps.push_back((step, amount)),
            }
        }
        day
    }

    /// Gives back `amount` counted on KST day `day` (a declined withdrawal, a returned hold);
    /// nothing if that day is over. PIN-free spends are never given back, not even by a
    /// cancelled or returned hold: the budget bounds what a stolen, unlocked phone can start,
    /// not what comes back.
    pub fn uncount_outgoing(&mut self, user: u64, day: u64, amount: Amount) {
        if let Some(usage) = self.usage.get_mut(&user) {
            if usage.day == day {
                usage.outgoing = usage.outgoing.saturating_sub(amount);
            }
        }
    }

    /// What `user` moved without the PIN in the rolling 24 hours before `now`.
    pub fn pin_free_used(&self, user: u64, now: u64) -> Amount {
        self.usage.get(&user).map_or(Amount::ZERO, |u| u.pin_free_used(now))
    }

    /// Users who have moved money out (for the memory figures).
    pub fn users_with_usage(&self) -> usize {
        self.usage.len()
    }
}

/// Why [`Limits::check_spend`] refused a movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendRefusal {
    /// Without the PIN, the movement would pass the PIN-free budget.
    PinRequired,
    /// A limit would be passed.
    Limit(LimitExceeded),
}

impl From<LimitExceeded> for SpendRefusal {
    fn from(e: LimitExceeded) -> Self {
        SpendRefusal::Limit(e)
    }
}

impl Limits {
    /// Writes the limits' section: the tiers, then the per-user tables in bounded blobs.
    pub(crate) fn write_section(&self, sink: &mut impl crate::codec::Sink) {
        let mut scratch = Vec::new();
        crate::codec::put_table(sink, self.tiers.iter(), self.tiers.len(), &mut scratch);
        crate::codec::put_table(sink, self.usage.iter(), self.usage.len(), &mut scratch);
    }

    /// Reads what [`Limits::write_section`] wrote; tiers above their legal maxima are refused.
    pub(crate) fn read_section(
        r: &mut crate::codec::Reader<impl std::io::Read>,
    ) -> Result<Limits, crate::codec::DecodeError> {
        use crate::codec::{read_table, DecodeError};
        let mut limits = Limits::default();
        read_table(r, "tier limits", |(tier, l): (Tier, TierLimits)| {
            limits
                .set_tier(tier, l)
                .map_err(|_| DecodeError::invalid(format!("the {} tier's limits pass the legal maxima", tier.name())))
        })?;
        read_table(r, "limit usage", |(user, usage): (u64, Usage)| {
            if usage.pin_free.len() > (crate::time::NANOS_PER_DAY / PIN_FREE_STEP_NANOS) as usize + 2 {
                return Err(DecodeError::invalid(format!("user {user} has {} PIN-free steps", usage.pin_free.len())));
            }
            if limits.usage.insert(user, usage).is_some() {
                return Err(DecodeError::invalid(format!("user {user}'s limit usage is listed twice")));
            }
            Ok(())
        })?;
        Ok(limits)
    }
}

/// Whether a PIN-free spend in `step` has left the 24-hour window at `now`.
fn step_expired(step: u64, now: u64) -> bool {
    (step + 1).saturating_mul(PIN_FREE_STEP_NANOS).saturating_add(NANOS_PER_DAY) <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_HOUR;

    #[test]
    fn the_pin_free_budget_rolls_over_24_hours() {
        let mut limits = Limits::default();
        let t0 = 1_700_000_000 * 1_000_000_000;
        let budget = Amount::new(50_000);
        let allows = |limits: &Limits, user: u64, amount: u64, now: u64| match limits.check_spend(
            user,
            Tier::Verified,
            Some(budget),
            Amount::new(amount),
            now,
        ) {
            Ok(()) => true,
            Err(SpendRefusal::PinRequired) => false,
            Err(other) => panic!("{other:?}"),
        };
        for i in 0..5 {
            assert!(allows(&limits, 7, 10_000, t0 + i));
            limits.record_spend(7, Amount::new(10_000), true, t0 + i);
        }
        assert!(!allows(&limits, 7, 1, t0 + 5), "the budget is spent");
        assert!(!allows(&limits, 7, 1, t0 + 23 * NANOS_PER_HOUR));
        assert!(allows(&limits, 7, 50_000, t0 + NANOS_PER_DAY + PIN_FREE_STEP_NANOS));
        assert!(allows(&limits, 8, 50_000, t0), "per user");
        // A spend with the PIN counts towards the day, not the budget.
        limits.record_spend(8, Amount::new(40_000), false, t0);
        assert!(allows(&limits, 8, 50_000, t0));
        assert_eq!(limits.outgoing_today(8, t0), Amount::new(40_000));
    }

    #[test]
    fn the_daily_limit_counts_per_kst_day_and_gives_back_only_that_day() {
        let mut limits = Limits::default();
        let t0 = 1_700_000_000 * 1_000_000_000;
        let daily = Tier::Basic.legal_maxima().daily_outgoing;
        let day = limits.record_spend(3, daily, false, t0);
        let refused = limits.check_spend(3, Tier::Basic, None, Amount::new(1), t0);
        assert!(matches!(refused, Err(SpendRefusal::Limit(e)) if e.remaining == Amount::ZERO), "{refused:?}");
        limits.uncount_outgoing(3, day, Amount::new(1));
        assert_eq!(limits.check_spend(3, Tier::Basic, None, Amount::new(1), t0), Ok(()));
        let tomorrow = t0 + NANOS_PER_DAY;
        limits.uncount_outgoing(3, day + 1, daily);
        assert_eq!(limits.outgoing_today(3, t0), daily.saturating_sub(Amount::new(1)), "another day's give-back");
        assert_eq!(limits.check_spend(3, Tier::Basic, None, daily, tomorrow), Ok(()));
    }

    #[test]
    fn tiers_stay_within_the_legal_maxima() {
        let mut limits = Limits::default();
        let lower = TierLimits { balance_cap: Amount::new(300_000), daily_outgoing: Amount::new(100_000) };
        assert_eq!(limits.set_tier(Tier::Basic, lower), Ok(()));
        assert_eq!(limits.tier(Tier::Basic), lower);
        let higher = TierLimits { balance_cap: Amount::new(600_000), daily_outgoing: Amount::new(100_000) };
        assert!(limits.set_tier(Tier::Basic, higher).is_err());
        assert_eq!(limits.tier(Tier::Verified), Tier::Verified.legal_maxima());
    }
}
