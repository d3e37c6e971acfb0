//! Running a sequence through the ledger and the model, comparing every result and the whole
//! state, shrinking a failing sequence and printing it.

use super::*;

/// Runs `batches` through the ledger and the model and returns the first disagreement.
pub(crate) fn check_sequence(batches: &[Batch], seed: u64) -> Result<(), String> {
    let mut state = State::default();
    let mut model = Model::default();
    let mut rng = Rng::new(seed ^ 0x5EED);
    for (n, batch) in batches.iter().enumerate() {
        let actual = shape::apply(&mut state, batch).map_err(|e| format!("batch {n}: refused: {e}"))?;
        let expected = model.apply(batch);
        compare_outcomes(batch, &actual, &expected).map_err(|e| format!("batch {n}: {e}"))?;
        compare_state(&state, &model, &mut rng).map_err(|e| format!("after batch {n}: {e}"))?;
    }
    let restored = State::decode_snapshot(&state.encode_snapshot()).map_err(|e| format!("snapshot: {e}"))?;
    if restored.hash() != state.hash() {
        return Err("the restored snapshot hashes differently".into());
    }
    compare_state(&restored, &model, &mut rng).map_err(|e| format!("restored snapshot: {e}"))?;
    let mut replay = State::default();
    for batch in batches {
        shape::apply(&mut replay, batch).map_err(|e| format!("replay refused a batch: {e}"))?;
    }
    if replay.hash() != state.hash() {
        return Err("a replay of the same batches hashes differently".into());
    }
    Ok(())
}

pub(crate) fn compare_outcomes(batch: &Batch, actual: &[Outcome], expected: &[Outcome]) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!("{} outcomes, expected {}", actual.len(), expected.len()));
    }
    for (c, ((a, e), command)) in actual.iter().zip(expected).zip(&batch.commands).enumerate() {
        let item = |i: usize| match command {
            Command::CreateAccounts(accounts) => describe_account(&accounts[i]),
            Command::CreateTransfers(transfers) => describe_transfer(&transfers[i]),
        };
        let rows: Vec<(String, String)> = match (a, e) {
            (Outcome::CreateAccounts(a), Outcome::CreateAccounts(e)) => {
                a.iter().zip(e).map(|(a, e)| (format!("{a:?}"), format!("{e:?}"))).collect()
            }
            (Outcome::CreateTransfers(a), Outcome::CreateTransfers(e)) => {
                a.iter().zip(e).map(|(a, e)| (format!("{a:?}"), format!("{e:?}"))).collect()
            }
            _ => return Err(format!("command {c}: outcome of the wrong kind")),
        };
        if a != e {
            for (i, (a, e)) in rows.iter().enumerate() {
                if a != e {
                    return Err(format!("command {c} item {i} ({}): ledger {a}, model {e}", item(i)));
                }
            }
            return Err(format!("command {c}: {} results, expected {}", rows.len(), command.events()));
        }
    }
    Ok(())
}

pub(crate) fn compare_state(state: &State, model: &Model, rng: &mut Rng) -> Result<(), String> {
    let ledger = state.ledger();
    let same = |what: String, actual: String, expected: String| {
        if actual == expected {
            Ok(())
        } else {
            Err(format!("{what}: ledger {actual}, model {expected}"))
        }
    };
    same("last timestamp".into(), state.last_timestamp().to_string(), model.last_timestamp.to_string())?;
    same("batches".into(), state.batches().to_string(), model.batches.to_string())?;
    same("next expiry".into(), format!("{:?}", state.next_expiry()), format!("{:?}", model.next_expiry()))?;
    same("accounts".into(), ledger.accounts_count().to_string(), model.accounts.len().to_string())?;
    for id in (0..=ACCOUNT_IDS + 2).chain([MAX]) {
        same(format!("account {id}"), format!("{:?}", ledger.account(id)), format!("{:?}", model.accounts.get(&id)))?;
    }
    let transfers: Vec<Transfer> = ledger.transfers().collect();
    if transfers != model.transfers {
        let at = transfers.iter().zip(&model.transfers).position(|(a, e)| a != e).unwrap_or(transfers.len());
        return Err(format!(
            "transfers differ at position {at}: ledger {:?}, model {:?}",
            transfers.get(at),
            model.transfers.get(at)
        ));
    }
    same(
        "failed transfer ids".into(),
        format!("{:?}", ledger.failed_transfer_ids().collect::<Vec<_>>()),
        format!("{:?}", model.failed),
    )?;
    // Every id the model knows, and the one after each (ids are any u128, so not a range).
    let ids: std::collections::BTreeSet<u128> =
        model.index.keys().flat_map(|&id| [id, id.wrapping_add(1)]).chain([0, 1]).collect();
    for id in ids {
        same(format!("transfer {id}"), format!("{:?}", ledger.transfer(id)), format!("{:?}", model.transfer(id)))?;
        same(
            format!("pending status of {id}"),
            format!("{:?}", ledger.pending_status(id)),
            format!("{:?}", model.pending.get(&id)),
        )?;
    }
    for id in 1..=ACCOUNT_IDS + 1 {
        let history: Vec<Transfer> = model
            .transfers
            .iter()
            .rev()
            .filter(|t| t.debit_account_id == id || t.credit_account_id == id)
            .copied()
            .collect();
        let ids = |ts: &[Transfer]| format!("{:?}", ts.iter().map(|t| t.id).collect::<Vec<_>>());
        same(
            format!("transfers of account {id}"),
            ids(&ledger.account_transfers(id, 0, 0, usize::MAX)),
            ids(&history),
        )?;
        // A page with random bounds, drawn from the account's own timestamps.
        let mut bound = || if history.is_empty() || rng.chance(25) { 0 } else { rng.pick(&history).timestamp };
        let (min, max) = (bound(), bound());
        let limit = rng.pick(&[1, 2, 5, usize::MAX]);
        let page: Vec<Transfer> = history
            .iter()
            .filter(|t| (min == 0 || t.timestamp >= min) && (max == 0 || t.timestamp <= max))
            .take(limit)
            .copied()
            .collect();
        same(
            format!("transfers of account {id} in [{min}, {max}] up to {limit}"),
            ids(&ledger.account_transfers(id, min, max, limit)),
            ids(&page),
        )?;
        let balances = ledger.account_balances(id).to_vec();
        same(
            format!("balance history of account {id}"),
            format!("{balances:?}"),
            format!("{:?}", model.history.get(&id).map(Vec::as_slice).unwrap_or(&[])),
        )?;
        // "Oldest first": a history whose timestamps go backwards cannot answer a query by time.
        if let Some(w) = balances.windows(2).find(|w| w[1].timestamp < w[0].timestamp) {
            return Err(format!("balance history of account {id} goes back in time: {:?} after {:?}", w[1], w[0]));
        }
    }
    state.check_invariants().map_err(|e| format!("invariant: {e}"))
}

// -------------------------------------------------------------------------------------------
// Failure reports: shrinking and printing.

pub(crate) fn fails(batches: &[Batch], seed: u64) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| check_sequence(batches, seed))) {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(message),
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

/// Drops batches, commands and items while the sequence still fails.
pub(crate) fn shrink(mut batches: Vec<Batch>, seed: u64) -> Vec<Batch> {
    for _ in 0..SHRINK_PASSES_MAX {
        let before = batches.clone();
        let mut b = batches.len();
        while b > 0 {
            b -= 1;
            let mut candidate = batches.clone();
            candidate.remove(b);
            if fails(&candidate, seed).is_some() {
                batches = candidate;
                continue;
            }
            let mut c = batches[b].commands.len();
            while c > 0 {
                c -= 1;
                let mut candidate = batches.clone();
                candidate[b].commands.remove(c);
                if fails(&candidate, seed).is_some() {
                    batches = candidate;
                    continue;
                }
                let mut i = batches[b].commands[c].events();
                while i > 0 {
                    i -= 1;
                    let mut candidate = batches.clone();
                    match &mut candidate[b].commands[c] {
                        Command::CreateAccounts(items) => drop(items.remove(i)),
                        Command::CreateTransfers(items) => drop(items.remove(i)),
                    }
                    if fails(&candidate, seed).is_some() {
                        batches = candidate;
                    }
                }
            }
        }
        if batches == before {
            break;
        }
    }
    batches
}

pub(crate) fn describe_account(a: &Account) -> String {
    let d = Account::default();
    let mut f = vec![format!("id: {}", a.id)];
    let mut field = |name: &str, v: u128, default: u128| {
        if v != default {
            f.push(format!("{name}: {v}"));
        }
    };
    field("debits_pending", a.debits_pending, d.debits_pending);
    field("debits_posted", a.debits_posted, d.debits_posted);
    field("credits_pending", a.credits_pending, d.credits_pending);
    field("credits_posted", a.credits_posted, d.credits_posted);
    field("user_data_128", a.user_data_128, 0);
    field("user_data_64", a.user_data_64.into(), 0);
    field("user_data_32", a.user_data_32.into(), 0);
    field("reserved", a.reserved.into(), 0);
    field("ledger", a.ledger.into(), 0);
    field("code", a.code.into(), 0);
    field("timestamp", a.timestamp.into(), 0);
    let names: Vec<&str> = AF::NAMES.iter().filter(|(_, bit)| a.flags.has(*bit)).map(|(n, _)| *n).collect();
    if a.flags.0 != 0 {
        f.push(format!("flags: {names:?} ({:#x})", a.flags.0));
    }
    format!("Account {{ {} }}", f.join(", "))
}

pub(crate) fn describe_transfer(t: &Transfer) -> String {
    let mut f = vec![format!("id: {}", t.id)];
    let mut field = |name: &str, v: u128| {
        if v != 0 {
            f.push(if v > MAX / 4 { format!("{name}: MAX-{}", MAX - v) } else { format!("{name}: {v}") });
        }
    };
    field("debit_account_id", t.debit_account_id);
    field("credit_account_id", t.credit_account_id);
    field("amount", t.amount);
    field("pending_id", t.pending_id);
    field("user_data_128", t.user_data_128);
    field("user_data_64", t.user_data_64.into());
    field("user_data_32", t.user_data_32.into());
    field("timeout", t.timeout.into());
    field("ledger", t.ledger.into());
    field("code", t.code.into());
    field("timestamp", t.timestamp.into());
    let names: Vec<&str> = TF::NAMES.iter().filter(|(_, bit)| t.flags.has(*bit)).map(|(n, _)| *n).collect();
    if t.flags.0 != 0 {
        f.push(format!("flags: {names:?} ({:#x})", t.flags.0));
    }
    format!("Transfer {{ {} }}", f.join(", "))
}

pub(crate) fn describe(batches: &[Batch]) -> String {
    let start = batches.first().map_or(0, |b| b.timestamp);
    let mut out = format!("batches (timestamps relative to t0 = {start} ns):\n");
    for (n, batch) in batches.iter().enumerate() {
        out += &format!("  batch {n} at t0 + {} ns\n", batch.timestamp - start);
        for command in &batch.commands {
            match command {
                Command::CreateAccounts(items) => {
                    out += "    create_accounts\n";
                    items.iter().for_each(|a| out += &format!("      {}\n", describe_account(a)));
                }
                Command::CreateTransfers(items) => {
                    out += "    create_transfers\n";
                    items.iter().for_each(|t| out += &format!("      {}\n", describe_transfer(t)));
                }
            }
        }
    }
    out
}

// -------------------------------------------------------------------------------------------
// The test.
