//! Imports of a partner's merchant network through `State::apply`: every row's result
//! (created, merged, unchanged, each refusal), a refused row changing nothing, chunks that
//! apply only at the job's next row (so a resent chunk or a resumed upload skips what was
//! committed), an idempotent re-run, imported merchants left out of payouts, and a snapshot
//! round trip that keeps the partners' indexes and the jobs.

#[path = "support/mod.rs"]
mod support;

use kasa_core::merchant::{
    parse_brn, BusinessName, ChunkApplied, City, Command, CountryCode, DisplayName, ImportChunk, ImportEntry,
    ImportError, ImportField, ImportJob, ImportRow, Mcc, MerchantStatus, Outcome, PartnerId, PartnerName, QrPayload,
    RowRefusal, RowResult, SettlementAccount, IMPORTED_FEE_BPS,
};
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{BankCode, Last4, Name, SealedAccountNumber};
use support::Harness;

const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

fn merchant_command(h: &mut Harness, command: Command) -> Outcome {
    match h.apply(vec![kasa_core::Command::Merchant(command)]).remove(0) {
        kasa_core::Outcome::Merchant(outcome) => outcome,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn onboard(h: &mut Harness, brn: &str) -> u64 {
    let settlement = SettlementAccount {
        bank_code: BankCode::new("088").unwrap(),
        account_number: SealedAccountNumber {
            ciphertext: BoundedVec::new(b"sealed".to_vec()).unwrap(),
            lookup: [7; 32],
            last4: Last4::new("4321").unwrap(),
        },
        holder_name: Name::new("(주)카사상점").unwrap(),
    };
    let command = Command::CreateMerchant {
        business_name: BusinessName::new("주식회사 카사상점").unwrap(),
        display_name: DisplayName::new("카사상점").unwrap(),
        brn: parse_brn(brn).unwrap(),
        mcc: Mcc::parse("5812").unwrap(),
        fee_bps: 100,
        settlement: Box::new(settlement),
    };
    match merchant_command(h, command) {
        Outcome::MerchantCreated(Ok(m)) => m.id,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn row(partner_merchant_id: &str, brn: &str, store_id: &str) -> ImportEntry {
    ImportEntry::Row(Box::new(ImportRow {
        partner_merchant_id: PartnerId::new(partner_merchant_id).unwrap(),
        business_name: BusinessName::new("北京最佳运输有限公司").unwrap(),
        display_name: DisplayName::new("最佳运输").unwrap(),
        brn: parse_brn(brn).unwrap(),
        mcc: Mcc::parse("4111").unwrap(),
        store_id: PartnerId::new(store_id).unwrap(),
        store_name: DisplayName::new("명동점").unwrap(),
        qr_payload: QrPayload::new(QR).unwrap(),
        country: CountryCode::new("KR").unwrap(),
        city: City::new("서울").unwrap(),
    }))
}

fn start(h: &mut Harness, partner: &str, key: u8, rows: u32) -> Result<ImportJob, ImportError> {
    let command = Command::StartImport { partner: PartnerName::new(partner).unwrap(), key: [key; 32], rows };
    match merchant_command(h, command) {
        Outcome::ImportStarted(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn chunk(
    h: &mut Harness,
    import_id: u64,
    first_row: u32,
    entries: Vec<ImportEntry>,
) -> Result<ChunkApplied, ImportError> {
    let chunk = ImportChunk { import_id, first_row, entries: BoundedVec::new(entries).unwrap() };
    match merchant_command(h, Command::ImportRows(Box::new(chunk))) {
        Outcome::RowsImported(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn totals(job: &ImportJob) -> [u32; 5] {
    [job.rows_done, job.created, job.merged, job.unchanged, job.refused]
}

/// The file of the tests: one row of each result, in the order that makes them.
fn file() -> Vec<ImportEntry> {
    vec![
        // 0: a new merchant with its store.
        row("AP-1", "220-81-62517", "S-1"),
        // 1: Kasa's merchant 1 has this number: merged.
        row("AP-2", "120-81-47521", "S-2"),
        // 2: the same store of the same merchant again: unchanged.
        row("AP-2", "120-81-47521", "S-2"),
        // 3: another store of merchant 1: merged (a store added).
        row("AP-2", "120-81-47521", "S-3"),
        // 4: AP-1 again with another registration number: refused.
        row("AP-1", "304-87-00790", "S-4"),
        // 5: merchant 1 with another id of this partner: refused.
        row("AP-9", "120-81-47521", "S-5"),
        // 6: store S-1 (merchant 2's) for a new merchant: refused.
        row("AP-6", "116-82-00276", "S-1"),
        // 7: a row the HTTP layer refused.
        ImportEntry::Refused(ImportField::Brn),
        // 8: the closed merchant 3's number: refused.
        row("AP-8", "134-86-72683", "S-8"),
    ]
}

#[test]
fn every_row_gets_its_result_and_a_refused_row_changes_nothing() {
    let mut h = Harness::default();
    assert_eq!(onboard(&mut h, "120-81-47521"), 1);
    let closed = onboard(&mut h, "134-86-72683");
    assert!(matches!(
        merchant_command(&mut h, Command::SetMerchantStatus { merchant_id: closed, status: MerchantStatus::Closed }),
        Outcome::MerchantChanged(Ok(_))
    ));
    let job = start(&mut h, "alipay", 1, 9).unwrap();
    assert_eq!((job.id, totals(&job)), (1, [0; 5]));
    let before = h.state.merchants().merchants_count();
    h.take_events();
    let applied = chunk(&mut h, 1, 0, file()).unwrap();
    assert_eq!(
        applied.results,
        [
            RowResult::Created { merchant_id: 3, store_id: 1 },
            RowResult::Merged { merchant_id: 1, store_id: 2 },
            RowResult::Unchanged { merchant_id: 1, store_id: 2 },
            RowResult::Merged { merchant_id: 1, store_id: 3 },
            RowResult::Refused(RowRefusal::PartnerIdTaken { merchant_id: 3 }),
            RowResult::Refused(RowRefusal::PartnerIdConflict { merchant_id: 1 }),
            RowResult::Refused(RowRefusal::StoreTaken { merchant_id: 3 }),
            RowResult::Refused(RowRefusal::Invalid(ImportField::Brn)),
            RowResult::Refused(RowRefusal::MerchantClosed { merchant_id: 2 }),
        ]
    );
    assert_eq!(totals(&applied.job), [9, 1, 2, 1, 5]);
    assert!(applied.job.is_done() && applied.job.finished_at != 0);
    // Refused rows made nothing: one merchant more, three stores in all.
    let m = h.state.merchants();
    assert_eq!(m.merchants_count(), before + 1);
    assert!(m.store(4).is_none());
    for brn in ["304-87-00790", "116-82-00276"] {
        assert!(m.merchant_by_brn(&parse_brn(brn).unwrap()).is_none(), "{brn} was refused");
    }
    // The created merchant: the partner's id, no settlement account, the default fee.
    let created = m.merchant(3).unwrap();
    assert_eq!((created.settlement.is_none(), created.fee_bps), (true, IMPORTED_FEE_BPS));
    let alipay = PartnerName::new("alipay").unwrap();
    assert_eq!(m.merchant_by_partner_id(&alipay, &PartnerId::new("AP-1").unwrap()).map(|m| m.id), Some(3));
    // Merchant 1 keeps its settlement account and has the partner's id and two stores.
    let merged = m.merchant(1).unwrap();
    assert!(merged.settlement.is_some());
    assert_eq!(merged.acceptance.as_slice()[0].partner_merchant_id.as_str(), "AP-2");
    let store = m.store_by_partner_id(&alipay, &PartnerId::new("S-3").unwrap()).unwrap();
    assert_eq!(store.merchant_id, 1);
    let partner = store.partner.as_ref().unwrap();
    assert_eq!((partner.qr_payload.as_str(), partner.country.as_str(), partner.city.as_str()), (QR, "KR", "서울"));
    // Events: merchant.created and store.created for what was made, nothing for refusals.
    let names: Vec<_> = h.take_events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, ["merchant.created", "store.created", "store.created", "store.created"]);
}

#[test]
fn a_chunk_applies_only_at_the_next_row_and_a_rerun_changes_nothing() {
    let mut h = Harness::default();
    onboard(&mut h, "120-81-47521");
    let rows = file();
    let job = start(&mut h, "alipay", 1, rows.len() as u32).unwrap();
    chunk(&mut h, job.id, 0, rows[..4].to_vec()).unwrap();
    // What an import changes (the payout run walks on with every batch).
    let tables = |h: &Harness| {
        let m = h.state.merchants();
        let stores: Vec<_> = (1..=10).filter_map(|id| m.store(id).cloned()).collect();
        (m.merchants_after(0, 100).cloned().collect::<Vec<_>>(), stores, m.import(1).cloned())
    };
    let before = tables(&h);
    // The same chunk again (a retry after a lost answer): refused, nothing changes.
    assert_eq!(chunk(&mut h, job.id, 0, rows[..4].to_vec()), Err(ImportError::OutOfOrder { rows_done: 4 }));
    assert_eq!(chunk(&mut h, job.id, 5, rows[5..].to_vec()), Err(ImportError::OutOfOrder { rows_done: 4 }));
    assert_eq!(
        chunk(&mut h, job.id, 4, [rows[4..].to_vec(), rows[..1].to_vec()].concat()),
        Err(ImportError::PastTheEnd)
    );
    assert_eq!(chunk(&mut h, 9, 0, rows[..1].to_vec()), Err(ImportError::UnknownImport));
    assert!(tables(&h) == before, "a refused chunk changes nothing");
    // An upload of the same file finds the job (a resume) and goes on from row 4.
    let again = start(&mut h, "alipay", 1, rows.len() as u32).unwrap();
    assert_eq!((again.id, again.rows_done), (job.id, 4));
    assert_eq!(start(&mut h, "wechat_pay", 1, rows.len() as u32), Err(ImportError::KeyMismatch));
    assert_eq!(start(&mut h, "alipay", 1, 3), Err(ImportError::KeyMismatch));
    let done = chunk(&mut h, job.id, 4, rows[4..].to_vec()).unwrap().job;
    // The totals are those of one uninterrupted run.
    let mut once = Harness::default();
    onboard(&mut once, "120-81-47521");
    start(&mut once, "alipay", 1, rows.len() as u32).unwrap();
    let whole = chunk(&mut once, 1, 0, rows.clone()).unwrap().job;
    assert_eq!(totals(&done), totals(&whole));
    assert_eq!(
        h.state.merchants().import(job.id).unwrap().results.as_slice(),
        once.state.merchants().import(1).unwrap().results.as_slice()
    );
    // The same file as a new job (another key): every row is there already or refused.
    let rerun = start(&mut h, "alipay", 2, rows.len() as u32).unwrap();
    let (merchants, stores) = (h.state.merchants().merchants_count(), h.state.merchants().stores_of(1).count());
    let applied = chunk(&mut h, rerun.id, 0, rows.clone()).unwrap();
    assert_eq!(totals(&applied.job)[1..3], [0, 0], "nothing created or merged: {:?}", applied.results);
    assert_eq!(applied.job.unchanged, 5, "rows 0 to 3 and 8 (created by the first run: no merchant is closed here)");
    let m = h.state.merchants();
    assert_eq!((m.merchants_count(), m.stores_of(1).count()), (merchants, stores));
}

#[test]
fn jobs_are_bounded_and_another_partner_merges_onto_the_same_merchant() {
    let mut h = Harness::default();
    assert_eq!(start(&mut h, "alipay", 1, 0), Err(ImportError::RowsOutOfRange));
    assert_eq!(
        start(&mut h, "alipay", 1, kasa_core::merchant::ROWS_PER_IMPORT_MAX + 1),
        Err(ImportError::RowsOutOfRange)
    );
    let a = start(&mut h, "alipay", 1, 1).unwrap();
    chunk(&mut h, a.id, 0, vec![row("AP-1", "220-81-62517", "S-1")]).unwrap();
    let w = start(&mut h, "wechat_pay", 2, 2).unwrap();
    let applied =
        chunk(&mut h, w.id, 0, vec![row("WX-1", "220-81-62517", "S-1"), row("WX-2", "220-81-62517", "S-9")]).unwrap();
    // Store ids are per partner: WeChat's S-1 is a new store of the same merchant.
    assert_eq!(
        applied.results,
        [
            RowResult::Merged { merchant_id: 1, store_id: 2 },
            RowResult::Refused(RowRefusal::PartnerIdConflict { merchant_id: 1 })
        ]
    );
    let m = h.state.merchants().merchant(1).unwrap();
    let partners: Vec<_> = m.acceptance.as_slice().iter().map(|a| a.partner.as_str()).collect();
    assert_eq!(partners, ["alipay", "wechat_pay"]);
    // Names are checked where they enter.
    assert!(PartnerName::new("Alipay").is_err() && PartnerName::new("").is_err() && PartnerName::new("-x").is_err());
    assert!(PartnerId::new("a b").is_err() && CountryCode::new("kr").is_err() && QrPayload::new("").is_err());
}

#[test]
fn a_snapshot_keeps_partners_ids_stores_and_jobs() {
    let mut h = Harness::default();
    onboard(&mut h, "120-81-47521");
    let job = start(&mut h, "alipay", 1, 9).unwrap();
    chunk(&mut h, job.id, 0, file()[..6].to_vec()).unwrap();
    h.restart();
    let m = h.state.merchants();
    let alipay = PartnerName::new("alipay").unwrap();
    assert_eq!(m.merchant_by_partner_id(&alipay, &PartnerId::new("AP-2").unwrap()).map(|m| m.id), Some(1));
    assert_eq!(m.store_by_partner_id(&alipay, &PartnerId::new("S-3").unwrap()).map(|s| s.id), Some(3));
    assert_eq!(m.import_by_key(&[1; 32]).map(|j| (j.rows_done, j.results.len())), Some((6, 6)));
    // After the restart the job goes on where it stopped.
    let rest = chunk(&mut h, job.id, 6, file()[6..].to_vec()).unwrap();
    assert!(rest.job.is_done());
}
