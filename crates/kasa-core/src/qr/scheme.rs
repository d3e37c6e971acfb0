//! Which payment scheme a payload belongs to, read from the globally unique ids (sub-field
//! `00`) of its merchant account templates (ids 26-51 and the unreserved templates).
//!
//! One table, in order of precedence: the first rule that matches any of the payload's ids
//! wins, so an umbrella scheme that lists its members in one code (Singapore's SGQR,
//! Indonesia's QRIS, which put their own id in template 51) comes before its members. When no
//! id matches, two fallbacks follow, and then the generic `emvco`. This module only names the
//! scheme; it does not check the scheme's own rules (a PIX key's format, a PromptPay number).

/// Kasa's own globally unique id, the sub-field `00` of the merchant account template in the
/// QR codes that Kasa issues for its merchants.
pub const KASA_GUI: &str = "KR.KASA";

/// A payment scheme that a payload was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Kasa's own merchant codes ([`KASA_GUI`]).
    Kasa,
    /// Singapore's SGQR, a code that carries several schemes' accounts (`SG.SGQR`).
    Sgqr,
    /// Indonesia's national QR standard, QRIS (`ID.CO.QRIS.WWW`, formerly `ID.OR.GPNQR.WWW`).
    Qris,
    /// Brazil's instant payments, PIX (`br.gov.bcb.pix`; the pre-release `br.gov.bcb.spi`).
    Pix,
    /// Singapore's PayNow (`SG.PAYNOW`).
    PayNow,
    /// Thailand's PromptPay (application ids under `A000000677`).
    PromptPay,
    /// Korea's BC Card (application ids under its registered id `D410000001`).
    BcCard,
    /// UnionPay (application ids under `A000000333`, or the primitive ids 15 and 16 that
    /// EMVCo reserves for it).
    UnionPay,
    /// WeChat Pay (`COM.QQ.WEIXIN.PAY`).
    WeChatPay,
    /// A valid EMV payload whose accounts Kasa does not recognise.
    Emvco,
}

impl Scheme {
    /// Every scheme, in a fixed order (a scheme's place is its bit in a set of schemes).
    pub const ALL: [Scheme; 10] = [
        Scheme::Kasa,
        Scheme::Sgqr,
        Scheme::Qris,
        Scheme::Pix,
        Scheme::PayNow,
        Scheme::PromptPay,
        Scheme::BcCard,
        Scheme::UnionPay,
        Scheme::WeChatPay,
        Scheme::Emvco,
    ];

    /// The scheme named `name`.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its bit in a set of schemes.
    pub fn bit(self) -> u16 {
        1 << Scheme::ALL.iter().position(|s| *s == self).expect("every scheme is in ALL")
    }

    /// The scheme's stable name, as printed by `kasa qr decode`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Kasa => "kasa",
            Scheme::Sgqr => "sgqr",
            Scheme::Qris => "qris",
            Scheme::Pix => "pix",
            Scheme::PayNow => "paynow",
            Scheme::PromptPay => "promptpay",
            Scheme::BcCard => "bc_card",
            Scheme::UnionPay => "unionpay",
            Scheme::WeChatPay => "wechat_pay",
            Scheme::Emvco => "emvco",
        }
    }
}

/// How a rule compares an id: the whole id, or its start (for application ids, whose first
/// ten characters are the registered provider's id). Both ignore ASCII case, since issuers
/// write `BR.GOV.BCB.PIX` and `br.gov.bcb.pix` alike.
#[derive(Clone, Copy)]
enum Match {
    Exact(&'static str),
    Prefix(&'static str),
}

/// The rules, in order of precedence.
const RULES: &[(Match, Scheme)] = &[
    (Match::Exact(KASA_GUI), Scheme::Kasa),
    (Match::Exact("SG.SGQR"), Scheme::Sgqr),
    (Match::Exact("ID.CO.QRIS.WWW"), Scheme::Qris),
    (Match::Exact("ID.OR.GPNQR.WWW"), Scheme::Qris),
    (Match::Exact("BR.GOV.BCB.PIX"), Scheme::Pix),
    (Match::Exact("BR.GOV.BCB.SPI"), Scheme::Pix),
    (Match::Exact("SG.PAYNOW"), Scheme::PayNow),
    (Match::Prefix("A000000677"), Scheme::PromptPay),
    (Match::Prefix("D410000001"), Scheme::BcCard),
    (Match::Prefix("A000000333"), Scheme::UnionPay),
    (Match::Exact("COM.QQ.WEIXIN.PAY"), Scheme::WeChatPay),
];

fn matches(rule: Match, id: &str) -> bool {
    match rule {
        Match::Exact(want) => id.eq_ignore_ascii_case(want),
        Match::Prefix(want) => id.get(..want.len()).is_some_and(|start| start.eq_ignore_ascii_case(want)),
    }
}

/// The scheme of a payload with these globally unique ids, this country code (field 58) and,
/// in `unionpay_primitive`, whether it has one of the primitive ids 15 or 16.
///
/// The fallbacks after the table: a payload from Indonesia is QRIS, since Bank Indonesia has
/// made QRIS the only merchant-presented standard there (the test data has QRIS codes whose
/// acquirer ids are the issuers' own, `COM.ASTRAPAY.WWW`, without template 51); then a
/// UnionPay primitive account makes it UnionPay.
pub fn detect<'a>(
    ids: impl Iterator<Item = &'a str> + Clone,
    country: Option<&str>,
    unionpay_primitive: bool,
) -> Scheme {
    for &(rule, scheme) in RULES {
        if ids.clone().any(|id| matches(rule, id)) {
            return scheme;
        }
    }
    if country == Some("ID") {
        Scheme::Qris
    } else if unionpay_primitive {
        Scheme::UnionPay
    } else {
        Scheme::Emvco
    }
}
