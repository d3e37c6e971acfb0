//! Merging a partner's merchant network (issue 11): an **import job** per file and partner,
//! fed chunks of rows in file order, each row matched with Kasa's merchants by business
//! registration number and either created (a merchant with the row's store), merged (the
//! partner's acceptance id and store added to the merchant that has the number), unchanged
//! (both already there) or refused with a stable reason, one result per row.
//!
//! The HTTP layer reads the file, checks every field into its bounded type (the BRN's check
//! digit, the MCC, lengths, a QR payload that decodes) and sends the rows it could not
//! check as [`ImportEntry::Refused`], so that the job counts every row of the file, in
//! order. What the core decides itself (for determinism and the invariants): one merchant
//! per registration number, one merchant per partner merchant id, one store per partner
//! store id, a closed merchant takes nothing, the caps on stores and partners. A refused row
//! changes nothing.
//!
//! **Resume.** A job is found again by its key (the HTTP layer hashes the partner and the
//! file), and a chunk applies only at the job's next row (`first_row == rows_done`), so a
//! chunk sent twice, or an upload of the same file after a crash, skips what was committed
//! and ends with the same totals. The job keeps one result code per row (a byte), so its
//! report can be told whole after any number of resumes.
//!
//! It does not update: a row whose merchant and store are there is unchanged even if the
//! file spells their names differently (Kasa's record wins); an imported merchant has no
//! settlement bank account, so the payout run passes it by and its money stays owed.

use super::brn::Brn;
use super::command::{
    Acceptance, BusinessName, DisplayName, Event, Mcc, Merchant, MerchantStatus, Store, StoreAcceptance,
    STORES_PER_MERCHANT_MAX,
};
use super::Merchants;
use crate::text::{chars_at_most, label, no_control, text_rule, BoundedVec};
use serde::{Deserialize, Serialize};

text_rule!(
    /// A partner network's name as Kasa knows it (`alipay`, `wechat_pay`): 1 to 64 of
    /// `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
    PartnerName, PartnerNameRule, 64, "a partner name", true,
    |v| {
        let ok = v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if v.is_empty() || !ok || !v.as_bytes()[0].is_ascii_alphanumeric() {
            return Err("a partner name is 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit".into());
        }
        Ok(())
    }
);

text_rule!(
    /// A partner's own id of a merchant or a store: 1 to 64 visible ASCII characters.
    PartnerId, PartnerIdRule, 64, "a partner id", true,
    |v| {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a partner id is 1 to 64 visible ASCII characters (no spaces)".into());
        }
        Ok(())
    }
);

text_rule!(
    /// A store's QR payload in the partner's network (an EMV merchant-presented code, which
    /// the HTTP layer decoded): at most 512 characters, no control characters.
    QrPayload, QrPayloadRule, 2048, "a QR payload", true,
    |v| {
        if v.is_empty() {
            return Err("a QR payload may not be empty".into());
        }
        chars_at_most(v, 512, "a QR payload")?;
        no_control(v, "a QR payload")
    }
);

text_rule!(
    /// An ISO 3166-1 alpha-2 country code (`KR`, `CN`).
    CountryCode, CountryCodeRule, 2, "a country code", true,
    |v| {
        if v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err("a country code is two capital letters (ISO 3166-1 alpha-2)".into())
        }
    }
);

text_rule!(
    /// A city: 1 to 50 characters, no control characters.
    City, CityRule, 200, "a city", true,
    |v| label(v, 50, "a city")
);

/// The most rows one [`super::Command::ImportRows`] carries: a chunk's apply stays around a
/// millisecond, and its byte bound ([`chunk_bytes_max`]) about 3.1 MiB (real rows are a
/// tenth of it), so five fit the sequencer's 16 MiB batch.
pub const ROWS_PER_CHUNK_MAX: usize = 1_000;
/// The most rows one import may have: a million-merchant network twice over. The job keeps a
/// byte per row.
pub const ROWS_PER_IMPORT_MAX: u32 = 2_000_000;
/// The most partners' acceptance ids one merchant may have.
pub const PARTNERS_PER_MERCHANT_MAX: usize = 16;
/// The fee of a merchant an import creates, in basis points: 2.5%, the middle of Korean
/// online payment fees, until an operator sets its own.
pub const IMPORTED_FEE_BPS: u16 = 250;

/// A checked row of a partner's file: a merchant and one of its stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    /// The partner's id of the merchant.
    pub partner_merchant_id: PartnerId,
    /// The registered business name.
    pub business_name: BusinessName,
    /// What users see.
    pub display_name: DisplayName,
    /// The business registration number: how rows are matched with Kasa's merchants.
    pub brn: Brn,
    /// The merchant category code.
    pub mcc: Mcc,
    /// The partner's id of the store.
    pub store_id: PartnerId,
    /// The store's name.
    pub store_name: DisplayName,
    /// The store's QR payload in the partner's network.
    pub qr_payload: QrPayload,
    /// Where the store is.
    pub country: CountryCode,
    /// Its city.
    pub city: City,
}

/// A field of a row, to say which one was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportField {
    /// The line itself (not CSV or JSON, a wrong number of columns).
    Line,
    /// `partner_merchant_id`.
    PartnerMerchantId,
    /// `business_name`.
    BusinessName,
    /// `display_name`.
    DisplayName,
    /// `brn`.
    Brn,
    /// `mcc`.
    Mcc,
    /// `country`.
    Country,
    /// `city`.
    City,
    /// `store_id`.
    StoreId,
    /// `store_name`.
    StoreName,
    /// `qr_payload`.
    QrPayload,
}

impl ImportField {
    /// Every field: the line, then the columns in the file's order.
    pub const ALL: [ImportField; 11] = [
        ImportField::Line,
        ImportField::PartnerMerchantId,
        ImportField::BusinessName,
        ImportField::DisplayName,
        ImportField::Brn,
        ImportField::Mcc,
        ImportField::Country,
        ImportField::City,
        ImportField::StoreId,
        ImportField::StoreName,
        ImportField::QrPayload,
    ];

    /// The columns, in the file's order.
    pub fn columns() -> &'static [ImportField] {
        &Self::ALL[1..]
    }

    /// The column's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            ImportField::Line => "line",
            ImportField::PartnerMerchantId => "partner_merchant_id",
            ImportField::BusinessName => "business_name",
            ImportField::DisplayName => "display_name",
            ImportField::Brn => "brn",
            ImportField::Mcc => "mcc",
            ImportField::Country => "country",
            ImportField::City => "city",
            ImportField::StoreId => "store_id",
            ImportField::StoreName => "store_name",
            ImportField::QrPayload => "qr_payload",
        }
    }
}

/// Why a row was refused. Stable names; variants are only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowRefusal {
    /// A field is missing or not valid (the HTTP layer says why in the report).
    Invalid(ImportField),
    /// The partner's merchant id is another registration number's (a duplicate in the file,
    /// or in an earlier import).
    PartnerIdTaken {
        /// The merchant that has it.
        merchant_id: u64,
    },
    /// The merchant has another id of this partner.
    PartnerIdConflict {
        /// The merchant.
        merchant_id: u64,
    },
    /// The partner's store id is another merchant's store.
    StoreTaken {
        /// The merchant that has it.
        merchant_id: u64,
    },
    /// The merchant with this registration number is closed.
    MerchantClosed {
        /// The merchant.
        merchant_id: u64,
    },
    /// The merchant has [`STORES_PER_MERCHANT_MAX`] stores.
    TooManyStores {
        /// The merchant.
        merchant_id: u64,
    },
    /// The merchant has [`PARTNERS_PER_MERCHANT_MAX`] partners' ids.
    TooManyPartners {
        /// The merchant.
        merchant_id: u64,
    },
}

impl RowRefusal {
    /// The stable name of the reason (`invalid_brn`, `partner_id_taken`).
    pub fn name(self) -> &'static str {
        match self {
            RowRefusal::Invalid(field) => match field {
                ImportField::Line => "invalid_line",
                ImportField::PartnerMerchantId => "invalid_partner_merchant_id",
                ImportField::BusinessName => "invalid_business_name",
                ImportField::DisplayName => "invalid_display_name",
                ImportField::Brn => "invalid_brn",
                ImportField::Mcc => "invalid_mcc",
                ImportField::Country => "invalid_country",
                ImportField::City => "invalid_city",
                ImportField::StoreId => "invalid_store_id",
                ImportField::StoreName => "invalid_store_name",
                ImportField::QrPayload => "invalid_qr_payload",
            },
            RowRefusal::PartnerIdTaken { .. } => "partner_id_taken",
            RowRefusal::PartnerIdConflict { .. } => "partner_id_conflict",
            RowRefusal::StoreTaken { .. } => "store_taken",
            RowRefusal::MerchantClosed { .. } => "merchant_closed",
            RowRefusal::TooManyStores { .. } => "too_many_stores",
            RowRefusal::TooManyPartners { .. } => "too_many_partners",
        }
    }

    /// The byte a job keeps for this reason (see [`RowResult::code`]).
    fn code(self) -> u8 {
        match self {
            RowRefusal::Invalid(field) => 16 + field as u8,
            RowRefusal::PartnerIdTaken { .. } => 8,
            RowRefusal::PartnerIdConflict { .. } => 9,
            RowRefusal::StoreTaken { .. } => 10,
            RowRefusal::MerchantClosed { .. } => 11,
            RowRefusal::TooManyStores { .. } => 12,
            RowRefusal::TooManyPartners { .. } => 13,
        }
    }
}

/// One row of a chunk: checked, or refused where it entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportEntry {
    /// A checked row (boxed: the variants differ by 2 KiB).
    Row(Box<ImportRow>),
    /// A row the HTTP layer could not check.
    Refused(ImportField),
}

/// Rows of an import, in file order from `first_row` (0-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportChunk {
    /// The job.
    pub import_id: u64,
    /// The position in the file of the first entry (the job's `rows_done` when it applies).
    pub first_row: u32,
    /// The rows.
    pub entries: BoundedVec<ImportEntry, ROWS_PER_CHUNK_MAX>,
}

/// The most bytes an [`ImportChunk`] encodes to, from its types' bounds: per row the texts'
/// byte bounds, each with a length of at most 2 bytes, and the fixed fields.
pub fn chunk_bytes_max(entries: usize) -> usize {
    use crate::text::TextRule;
    let text = |max: usize| max + 2;
    let row = 2 * text(PartnerIdRule::MAX_BYTES)
        + text(super::command::BusinessNameRule::MAX_BYTES)
        + 2 * text(super::command::DisplayNameRule::MAX_BYTES)
        + text(super::brn::BrnRule::MAX_BYTES)
        + 3 // the MCC, a u16 varint
        + text(QrPayloadRule::MAX_BYTES)
        + text(CountryCodeRule::MAX_BYTES)
        + text(CityRule::MAX_BYTES)
        + 2; // the entry's tag and the box
             // The command's tags, the import id, first row and count.
    32 + entries * row
}

/// What a row became.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowResult {
    /// A new merchant, with the row's store.
    Created {
        /// The merchant.
        merchant_id: u64,
        /// The store.
        store_id: u64,
    },
    /// The merchant with the row's registration number took the partner's id or the store.
    Merged {
        /// The merchant.
        merchant_id: u64,
        /// The store (new, or there already).
        store_id: u64,
    },
    /// The merchant had the partner's id and the store already.
    Unchanged {
        /// The merchant.
        merchant_id: u64,
        /// The store.
        store_id: u64,
    },
    /// Nothing changed, for this reason.
    Refused(RowRefusal),
}

impl RowResult {
    /// The stable name: `created`, `merged`, `unchanged` or `refused`.
    pub fn name(self) -> &'static str {
        match self {
            RowResult::Created { .. } => "created",
            RowResult::Merged { .. } => "merged",
            RowResult::Unchanged { .. } => "unchanged",
            RowResult::Refused(_) => "refused",
        }
    }

    /// The byte a job keeps per row: 1 created, 2 merged, 3 unchanged, 8 and up a refusal.
    pub fn code(self) -> u8 {
        match self {
            RowResult::Created { .. } => 1,
            RowResult::Merged { .. } => 2,
            RowResult::Unchanged { .. } => 3,
            RowResult::Refused(r) => r.code(),
        }
    }
}

/// A kept result code, read back: the result's name and, for a refusal, the reason's (the ids
/// are the state's to tell now).
pub fn code_names(code: u8) -> Option<(&'static str, Option<&'static str>)> {
    let refused = |r: RowRefusal| Some(("refused", Some(r.name())));
    match code {
        1 => Some(("created", None)),
        2 => Some(("merged", None)),
        3 => Some(("unchanged", None)),
        8 => refused(RowRefusal::PartnerIdTaken { merchant_id: 0 }),
        9 => refused(RowRefusal::PartnerIdConflict { merchant_id: 0 }),
        10 => refused(RowRefusal::StoreTaken { merchant_id: 0 }),
        11 => refused(RowRefusal::MerchantClosed { merchant_id: 0 }),
        12 => refused(RowRefusal::TooManyStores { merchant_id: 0 }),
        13 => refused(RowRefusal::TooManyPartners { merchant_id: 0 }),
        c @ 16..=26 => refused(RowRefusal::Invalid(ImportField::ALL[usize::from(c - 16)])),
        _ => None,
    }
}

/// An import job: a partner's file, the rows committed so far and their results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJob {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose network.
    pub partner: PartnerName,
    /// What finds the job again: the HTTP layer's hash of the partner and the file.
    pub key: [u8; 32],
    /// Rows in the file.
    pub rows_total: u32,
    /// Rows committed, from the first.
    pub rows_done: u32,
    /// Of those: merchants created.
    pub created: u32,
    /// Rows merged into an existing merchant.
    pub merged: u32,
    /// Rows already there.
    pub unchanged: u32,
    /// Rows refused.
    pub refused: u32,
    /// When it started.
    pub created_at: u64,
    /// When its last row was committed (0: not yet).
    pub finished_at: u64,
    /// One [`RowResult::code`] per committed row.
    pub results: BoundedVec<u8, { ROWS_PER_IMPORT_MAX as usize }>,
}

impl ImportJob {
    /// Whether every row was committed.
    pub fn is_done(&self) -> bool {
        self.rows_done == self.rows_total
    }

    /// Checks that the counts add up and the codes are known (the snapshot decoder's check).
    pub(super) fn check(&self) -> Result<(), String> {
        let counted = [self.created, self.merged, self.unchanged, self.refused].iter().map(|&n| u64::from(n)).sum();
        let codes = self.results.as_slice();
        if u64::from(self.rows_done) != counted
            || self.rows_done > self.rows_total
            || codes.len() != self.rows_done as usize
            || codes.iter().any(|&c| code_names(c).is_none())
            || self.is_done() != (self.finished_at != 0)
        {
            return Err(format!("import {} does not add up", self.id));
        }
        Ok(())
    }
}

/// Why an import command changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportError {
    /// No such import.
    UnknownImport,
    /// The job's next row is not the chunk's first: the chunk was sent before, or a row
    /// was skipped. Nothing was applied; send from `rows_done`.
    OutOfOrder {
        /// The job's next row.
        rows_done: u32,
    },
    /// The chunk goes past the file's last row.
    PastTheEnd,
    /// A job with this key exists for another partner or another number of rows.
    KeyMismatch,
    /// More rows than [`ROWS_PER_IMPORT_MAX`], or none.
    RowsOutOfRange,
}

/// A chunk's outcome: the job after it, and each row's result in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkApplied {
    /// The job (without its per-row codes, which the state keeps).
    pub job: ImportJob,
    /// One per entry.
    pub results: Vec<RowResult>,
}

impl Merchants {
    /// Starts an import, or finds the one with this key again (to resume it).
    pub(super) fn start_import(
        &mut self,
        partner: &PartnerName,
        key: [u8; 32],
        rows_total: u32,
        now: u64,
    ) -> Result<ImportJob, ImportError> {
        if let Some(job) = self.import_by_key.get(&key).and_then(|&id| self.import(id)) {
            if job.partner != *partner || job.rows_total != rows_total {
                return Err(ImportError::KeyMismatch);
            }
            return Ok(job.without_results());
        }
        if rows_total == 0 || rows_total > ROWS_PER_IMPORT_MAX {
            return Err(ImportError::RowsOutOfRange);
        }
        let job = ImportJob {
            id: self.imports.len() as u64 + 1,
            partner: partner.clone(),
            key,
            rows_total,
            rows_done: 0,
            created: 0,
            merged: 0,
            unchanged: 0,
            refused: 0,
            created_at: now,
            finished_at: 0,
            results: BoundedVec::default(),
        };
        self.import_by_key.insert(key, job.id);
        self.imports.push_back(job.clone());
        Ok(job)
    }

    /// Applies a chunk at the job's next row; `emit` gets the events (a dry run drops them).
    pub fn import_chunk(
        &mut self,
        chunk: &ImportChunk,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> Result<ChunkApplied, ImportError> {
        let job = self.import(chunk.import_id).ok_or(ImportError::UnknownImport)?;
        if chunk.first_row != job.rows_done {
            return Err(ImportError::OutOfOrder { rows_done: job.rows_done });
        }
        let entries = chunk.entries.as_slice();
        if entries.len() > (job.rows_total - job.rows_done) as usize {
            return Err(ImportError::PastTheEnd);
        }
        let partner = job.partner.clone();
        let results: Vec<RowResult> =
            entries.iter().map(|entry| self.import_entry(&partner, entry, now, &mut *emit)).collect();
        let job = self.imports.get_mut((chunk.import_id - 1) as usize).expect("found above");
        let mut codes = std::mem::take(&mut job.results).into_vec();
        for result in &results {
            codes.push(result.code());
            let count = match result {
                RowResult::Created { .. } => &mut job.created,
                RowResult::Merged { .. } => &mut job.merged,
                RowResult::Unchanged { .. } => &mut job.unchanged,
                RowResult::Refused(_) => &mut job.refused,
            };
            *count += 1;
        }
        job.results = BoundedVec::new(codes).expect("rows_total is at most ROWS_PER_IMPORT_MAX");
        job.rows_done += entries.len() as u32;
        if job.is_done() && job.finished_at == 0 {
            job.finished_at = now;
        }
        Ok(ChunkApplied { job: job.without_results(), results })
    }

    /// What `entries` would become, applied to these tables without a job: a dry run (on a
    /// copy of the state's tables; nothing is emitted).
    pub fn dry_run(&mut self, partner: &PartnerName, entries: &[ImportEntry], now: u64) -> Vec<RowResult> {
        entries.iter().map(|entry| self.import_entry(partner, entry, now, &mut |_| {})).collect()
    }

    /// One row: matched by registration number, checked whole, then applied.
    fn import_entry(
        &mut self,
        partner: &PartnerName,
        entry: &ImportEntry,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> RowResult {
        let row = match entry {
            ImportEntry::Row(row) => row,
            ImportEntry::Refused(field) => return RowResult::Refused(RowRefusal::Invalid(*field)),
        };
        match self.plan_row(partner, row) {
            Err(refusal) => RowResult::Refused(refusal),
            Ok(Plan { merchant_id: None, .. }) => {
                let merchant_id = self.merchants.len() as u64 + 1;
                let merchant = Merchant {
                    id: merchant_id,
                    business_name: row.business_name.clone(),
                    display_name: row.display_name.clone(),
                    brn: row.brn.clone(),
                    mcc: row.mcc,
                    fee_bps: IMPORTED_FEE_BPS,
                    settlement: None,
                    status: MerchantStatus::Active,
                    created_at: now,
                    status_changed_at: now,
                    acceptance: BoundedVec::default(),
                };
                self.by_brn.insert(row.brn.clone(), merchant_id);
                self.merchants.push_back(merchant);
                emit(Event::MerchantCreated { merchant_id });
                self.add_acceptance(merchant_id, partner, &row.partner_merchant_id);
                let store_id = self.add_store(merchant_id, partner, row, now, emit);
                RowResult::Created { merchant_id, store_id }
            }
            Ok(Plan { merchant_id: Some(merchant_id), add_acceptance, store_id }) => {
                if add_acceptance {
                    self.add_acceptance(merchant_id, partner, &row.partner_merchant_id);
                }
                match store_id {
                    Some(store_id) if !add_acceptance => RowResult::Unchanged { merchant_id, store_id },
                    Some(store_id) => RowResult::Merged { merchant_id, store_id },
                    None => RowResult::Merged {
                        merchant_id,
                        store_id: self.add_store(merchant_id, partner, row, now, emit),
                    },
                }
            }
        }
    }

    /// What a row would do, or why not; changes nothing.
    fn plan_row(&self, partner: &PartnerName, row: &ImportRow) -> Result<Plan, RowRefusal> {
        let merchant_id = self.by_brn.get(&row.brn).copied();
        let partner_key = (partner.clone(), row.partner_merchant_id.clone());
        if let Some(&owner) = self.by_partner_id.get(&partner_key) {
            if Some(owner) != merchant_id {
                return Err(RowRefusal::PartnerIdTaken { merchant_id: owner });
            }
        }
        let store = self.by_partner_store.get(&(partner.clone(), row.store_id.clone())).copied();
        let store_owner = store.and_then(|id| self.store(id)).map(|s| s.merchant_id);
        let Some(merchant_id) = merchant_id else {
            if let Some(owner) = store_owner {
                return Err(RowRefusal::StoreTaken { merchant_id: owner });
            }
            return Ok(Plan { merchant_id: None, add_acceptance: true, store_id: None });
        };
        let merchant = self.merchant(merchant_id).expect("indexed merchants exist");
        if merchant.status == MerchantStatus::Closed {
            return Err(RowRefusal::MerchantClosed { merchant_id });
        }
        let ids = merchant.acceptance.as_slice();
        let add_acceptance = match ids.iter().find(|a| a.partner == *partner) {
            Some(a) if a.partner_merchant_id != row.partner_merchant_id => {
                return Err(RowRefusal::PartnerIdConflict { merchant_id });
            }
            Some(_) => false,
            None if ids.len() >= PARTNERS_PER_MERCHANT_MAX => {
                return Err(RowRefusal::TooManyPartners { merchant_id });
            }
            None => true,
        };
        match store_owner {
            Some(owner) if owner != merchant_id => Err(RowRefusal::StoreTaken { merchant_id: owner }),
            Some(_) => Ok(Plan { merchant_id: Some(merchant_id), add_acceptance, store_id: store }),
            None if self.stores_of.get(&merchant_id).map_or(0, Vec::len) >= STORES_PER_MERCHANT_MAX => {
                Err(RowRefusal::TooManyStores { merchant_id })
            }
            None => Ok(Plan { merchant_id: Some(merchant_id), add_acceptance, store_id: None }),
        }
    }

    fn add_acceptance(&mut self, merchant_id: u64, partner: &PartnerName, id: &PartnerId) {
        let merchant = self.merchant_mut(merchant_id).expect("checked by plan_row");
        let mut ids = std::mem::take(&mut merchant.acceptance).into_vec();
        ids.push(Acceptance { partner: partner.clone(), partner_merchant_id: id.clone() });
        merchant.acceptance = BoundedVec::new(ids).expect("checked by plan_row");
        self.by_partner_id.insert((partner.clone(), id.clone()), merchant_id);
    }

    fn add_store(
        &mut self,
        merchant_id: u64,
        partner: &PartnerName,
        row: &ImportRow,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> u64 {
        let store = Store {
            id: self.stores.len() as u64 + 1,
            merchant_id,
            name: row.store_name.clone(),
            created_at: now,
            partner: Some(Box::new(StoreAcceptance {
                partner: partner.clone(),
                partner_store_id: row.store_id.clone(),
                qr_payload: row.qr_payload.clone(),
                country: row.country.clone(),
                city: row.city.clone(),
            })),
        };
        let store_id = store.id;
        self.index_store(&store);
        self.stores.push_back(store);
        emit(Event::StoreCreated { merchant_id, store_id });
        store_id
    }

    /// The import with this id.
    pub fn import(&self, id: u64) -> Option<&ImportJob> {
        id.checked_sub(1).and_then(|i| self.imports.get(i as usize))
    }

    /// The import with this key.
    pub fn import_by_key(&self, key: &[u8; 32]) -> Option<&ImportJob> {
        self.import_by_key.get(key).and_then(|&id| self.import(id))
    }

    /// The merchant with this partner's id.
    pub fn merchant_by_partner_id(&self, partner: &PartnerName, id: &PartnerId) -> Option<&Merchant> {
        self.by_partner_id.get(&(partner.clone(), id.clone())).and_then(|&m| self.merchant(m))
    }

    /// The store with this partner's id.
    pub fn store_by_partner_id(&self, partner: &PartnerName, id: &PartnerId) -> Option<&Store> {
        self.by_partner_store.get(&(partner.clone(), id.clone())).and_then(|&s| self.store(s))
    }
}

/// What [`Merchants::plan_row`] found a row would do.
struct Plan {
    /// The merchant with the row's number (`None`: a new one).
    merchant_id: Option<u64>,
    /// Whether the partner's id is new on the merchant.
    add_acceptance: bool,
    /// The row's store, if the merchant has it.
    store_id: Option<u64>,
}

impl ImportJob {
    /// The job without its per-row codes (what outcomes carry: a chunk's outcome need not
    /// copy a megabyte).
    pub fn without_results(&self) -> ImportJob {
        ImportJob {
            id: self.id,
            partner: self.partner.clone(),
            key: self.key,
            rows_total: self.rows_total,
            rows_done: self.rows_done,
            created: self.created,
            merged: self.merged,
            unchanged: self.unchanged,
            refused: self.refused,
            created_at: self.created_at,
            finished_at: self.finished_at,
            results: BoundedVec::default(),
        }
    }
}
