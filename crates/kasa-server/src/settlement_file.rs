//! A settlement window's file, in CSV and JSON: every payment, cancel and refund of the
//! window, in both currencies with the rate, the fee and the references. The lines are
//! written off the writer, on a thread of their own, from persistent copies of the partner
//! domain's tables taken in one read (constant time), and streamed to the client as they are
//! made: a window of a million payments is never a whole string in memory.
//!
//! The CSV's columns ([`CSV_HEADER`]) are also what `kasa reconcile` reads from a partner's
//! own file (see `reconcile.rs`).

use crate::ids;
use crate::json::Rfc3339;
use axum::body::Body;
use bytes::Bytes;
use kasa_core::partner::{OverseasPayment, OverseasRefund, PartnerPayment, PartnerRefund, Partners, Window};
use std::cmp::Ordering;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The header line of a settlement file.
pub const CSV_HEADER: &str = "window_id,item_type,item_id,payment_request_id,refund_request_id,created_at,\
merchant_id,store_id,merchant_payment_id,amount,currency,settlement_amount,settlement_currency,rate,fee,status";

/// How the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line per item under [`CSV_HEADER`].
    Csv,
    /// `{"window": {...}, "items": [...]}`.
    Json,
}

/// What a file is written from: the window and persistent copies of the tables.
pub struct Source {
    window: Window,
    payments: imbl::Vector<PartnerPayment>,
    refunds: imbl::Vector<PartnerRefund>,
    overseas: imbl::Vector<OverseasPayment>,
    overseas_refunds: imbl::Vector<OverseasRefund>,
}

impl Source {
    /// The window `id`'s source, if there is such a window (cheap: run on the sequencer).
    pub fn of(partners: &Partners, id: u64) -> Option<Source> {
        Some(Source {
            window: partners.window(id)?.clone(),
            payments: partners.all_payments().clone(),
            refunds: partners.all_refunds().clone(),
            overseas: partners.all_overseas().clone(),
            overseas_refunds: partners.all_overseas_refunds().clone(),
        })
    }

    /// The window's items in time order: each as a row of its fields.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        let w = &self.window;
        // Items are in id order, which is time order: the window's are between its opening
        // and its close (other partners' are skipped by their window id).
        let in_time = move |at: u64| at >= w.opened_at && (w.closed_at == 0 || at <= w.closed_at);
        let before_opening = |at: u64| if at < w.opened_at { Ordering::Less } else { Ordering::Greater };
        let from_p = self.payments.binary_search_by(|p| before_opening(p.created_at)).unwrap_or_else(|i| i);
        let from_r = self.refunds.binary_search_by(|r| before_opening(r.created_at)).unwrap_or_else(|i| i);
        let payments = self.payments.skip(from_p).into_iter().take_while(move |p| in_time(p.created_at));
        let refunds = self.refunds.skip(from_r).into_iter().take_while(move |r| in_time(r.created_at));
        let payments = payments.filter(move |p| p.window_id == w.id).map(Item::Payment);
        let refunds = refunds.filter(move |r| r.window_id == w.id).map(Item::Refund);
        // Payments abroad count in the window when they succeed, in the order they did: few,
        // and read whole.
        let mut abroad: Vec<Item> = self
            .overseas
            .iter()
            .filter(|p| p.window_id == w.id)
            .cloned()
            .map(Item::Overseas)
            .chain(self.overseas_refunds.iter().filter(|r| r.window_id == w.id).cloned().map(Item::OverseasRefund))
            .collect();
        abroad.sort_by_key(Item::at);
        merge(merge(payments, refunds), abroad.into_iter()).map(move |item| self.row(item))
    }

    fn row(&self, item: Item) -> Row {
        let rate = |r: Option<kasa_core::fx::Directed>| r.map(|r| r.customer_rate().to_string()).unwrap_or_default();
        let merchant = |p: &PartnerPayment| {
            (
                ids::format("mch", p.merchant_id),
                ids::format("str", p.store_id),
                ids::format("pay", p.merchant_payment_id),
            )
        };
        match item {
            Item::Payment(p) => Row {
                item_type: "payment",
                item_id: ids::format("ppay", p.id),
                payment_request_id: p.request_id.as_str().to_string(),
                refund_request_id: String::new(),
                created_at: p.created_at,
                merchant: merchant(&p),
                amount: p.amount.minor(),
                settlement_amount: p.settlement_amount.minor(),
                settlement_currency: p.settlement_currency.code(),
                rate: rate(p.rate),
                fee: p.fee.minor(),
                status: p.status.name(),
            },
            Item::Refund(r) => {
                let p = self.payments.get(r.payment_id as usize - 1).expect("a refund's payment");
                Row {
                    item_type: if r.cancel { "cancel" } else { "refund" },
                    item_id: ids::format("prfd", r.id),
                    payment_request_id: p.request_id.as_str().to_string(),
                    refund_request_id: if r.cancel { String::new() } else { r.request_id.as_str().to_string() },
                    created_at: r.created_at,
                    merchant: merchant(p),
                    amount: r.amount.minor(),
                    settlement_amount: r.settlement_amount.minor(),
                    settlement_currency: p.settlement_currency.code(),
                    rate: rate(p.rate),
                    fee: r.fee_returned.minor(),
                    status: "succeeded",
                }
            }
            // Abroad, the merchant is the partner's: its columns are empty; the rate is won
            // sold for the merchant's currency.
            Item::Overseas(p) => Row {
                item_type: "overseas_payment",
                item_id: ids::format("op", p.id),
                payment_request_id: p.request_id(),
                refund_request_id: String::new(),
                created_at: p.resolved_at,
                merchant: Default::default(),
                amount: p.krw_amount.minor(),
                settlement_amount: p.amount.minor(),
                settlement_currency: p.currency.code(),
                rate: rate(Some(p.rate)),
                fee: 0,
                status: p.status.name(),
            },
            Item::OverseasRefund(r) => {
                let p = self.overseas.get(r.payment_id as usize - 1).expect("a refund's payment");
                Row {
                    item_type: "overseas_refund",
                    item_id: ids::format("orf", r.id),
                    payment_request_id: p.request_id(),
                    refund_request_id: r.request_id.as_str().to_string(),
                    created_at: r.created_at,
                    merchant: Default::default(),
                    amount: r.krw_amount.minor(),
                    settlement_amount: r.amount.minor(),
                    settlement_currency: p.currency.code(),
                    rate: rate(Some(p.rate)),
                    fee: 0,
                    status: "succeeded",
                }
            }
        }
    }
}

enum Item {
    Payment(PartnerPayment),
    Refund(PartnerRefund),
    Overseas(OverseasPayment),
    OverseasRefund(OverseasRefund),
}

impl Item {
    /// When it counts in its window.
    fn at(&self) -> u64 {
        match self {
            Item::Payment(p) => p.created_at,
            Item::Refund(r) => r.created_at,
            Item::Overseas(p) => p.resolved_at,
            Item::OverseasRefund(r) => r.created_at,
        }
    }
}

/// Two time-ordered streams as one, the first's items first at equal times.
fn merge(a: impl Iterator<Item = Item>, b: impl Iterator<Item = Item>) -> impl Iterator<Item = Item> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.at() < x.at() => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// One item of a settlement file.
pub struct Row {
    item_type: &'static str,
    item_id: String,
    payment_request_id: String,
    refund_request_id: String,
    created_at: u64,
    /// The Kasa merchant, store and merchant payment (empty abroad).
    merchant: (String, String, String),
    amount: u64,
    settlement_amount: u64,
    settlement_currency: &'static str,
    /// The rate as people read it ("" if no conversion).
    rate: String,
    fee: u64,
    status: &'static str,
}

impl Row {
    fn csv(&self, window_id: u64, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},KRW,{},{},{},{},{}",
            ids::format("sw", window_id),
            self.item_type,
            self.item_id,
            csv_field(&self.payment_request_id),
            csv_field(&self.refund_request_id),
            Rfc3339(self.created_at),
            self.merchant.0,
            self.merchant.1,
            self.merchant.2,
            self.amount,
            self.settlement_amount,
            self.settlement_currency,
            self.rate,
            self.fee,
            self.status,
        );
    }

    fn json(&self, window_id: u64) -> serde_json::Value {
        let some = |s: &String| (!s.is_empty()).then(|| s.clone());
        serde_json::json!({
            "window_id": ids::format("sw", window_id),
            "item_type": self.item_type,
            "item_id": self.item_id,
            "payment_request_id": self.payment_request_id,
            "refund_request_id": some(&self.refund_request_id),
            "created_at": Rfc3339(self.created_at).to_string(),
            "merchant_id": some(&self.merchant.0),
            "store_id": some(&self.merchant.1),
            "merchant_payment_id": some(&self.merchant.2),
            "amount": self.amount.to_string(),
            "currency": "KRW",
            "settlement_amount": self.settlement_amount.to_string(),
            "settlement_currency": self.settlement_currency,
            "rate": some(&self.rate),
            "fee": self.fee.to_string(),
            "status": self.status,
        })
    }
}

/// A request id in a CSV field: quoted if it holds a comma or a quote (request ids are
/// printable ASCII without spaces).
pub fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// Bytes sent at a time.
const CHUNK_BYTES: usize = 256 * 1024;

/// The file as a streamed body, written on a thread of its own.
pub fn stream(source: Source, format: Format) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    std::thread::Builder::new()
        .name("kasa-settlement-file".into())
        .spawn(move || write(&source, format, |chunk| tx.blocking_send(chunk).is_ok()))
        .expect("a thread for the settlement file");
    Body::new(ChannelBody(rx))
}

/// Writes the whole file through `send` in chunks; stops when `send` says the reader left.
pub fn write(source: &Source, format: Format, mut send: impl FnMut(Bytes) -> bool) {
    let id = source.window.id;
    let mut out = Vec::with_capacity(CHUNK_BYTES + 1024);
    match format {
        Format::Csv => {
            out.extend_from_slice(CSV_HEADER.as_bytes());
            out.push(b'\n');
        }
        Format::Json => {
            let window = serde_json::to_value(crate::routes::partners::window_output(&source.window))
                .expect("a window serializes");
            out.extend_from_slice(b"{\"window\":");
            out.extend_from_slice(window.to_string().as_bytes());
            out.extend_from_slice(b",\"items\":[");
        }
    }
    for (i, row) in source.rows().enumerate() {
        match format {
            Format::Csv => row.csv(id, &mut out),
            Format::Json => {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(row.json(id).to_string().as_bytes());
            }
        }
        if out.len() >= CHUNK_BYTES
            && !send(Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(CHUNK_BYTES + 1024))))
        {
            return;
        }
    }
    if format == Format::Json {
        out.extend_from_slice(b"]}\n");
    }
    send(Bytes::from(out));
}

/// A response body fed by a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}
