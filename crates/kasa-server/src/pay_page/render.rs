//! The approval page as HTML, and the headers every response of the page carries. One
//! layout for every state; each dynamic value (merchant and item names are the merchant's
//! text, the user's name is the user's) is escaped by `crate::html` on its way in. No
//! script, no external resource: a page of forms that post back to the page itself.

use super::text::{Lang, S};
use crate::html::push_escaped;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kasa_core::money::Amount;

/// What the page allows: its own inline style, forms that post to itself (and the 303 after
/// an answer, which Chromium checks against `form-action` too, to a merchant's return URL:
/// `https:`, or the local machine as `ReturnUrl` allows), and nothing else: no script, no
/// image, no frame around it.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self' https: http://localhost:* http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'";

/// Where a payment stands, as the page tells it (`data-state` on `<main>`, for tests and
/// for anyone reading the markup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Waits for the user's answer.
    Waiting,
    /// Paid (captured at approval).
    Paid,
    /// Approved, the money reserved for the merchant's capture.
    Approved,
    /// The user declined it.
    Declined,
    /// Nobody approved it in time.
    Expired,
    /// The merchant canceled it, or did not capture it in time.
    Canceled,
    /// Answered by someone this visitor is not logged in as.
    Answered,
    /// No payment, or not this link's.
    NotFound,
    /// The server could not answer.
    Error,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Paid => "paid",
            State::Approved => "approved",
            State::Declined => "declined",
            State::Expired => "expired",
            State::Canceled => "canceled",
            State::Answered => "answered",
            State::NotFound => "not_found",
            State::Error => "error",
        }
    }

    fn heading(self) -> S {
        match self {
            State::Waiting => S::WaitingHeading,
            State::Paid => S::PaidHeading,
            State::Approved => S::ApprovedHeading,
            State::Declined => S::DeclinedHeading,
            State::Expired => S::ExpiredHeading,
            State::Canceled => S::CanceledHeading,
            State::Answered => S::AnsweredHeading,
            State::NotFound => S::NotFoundHeading,
            State::Error => S::ErrorHeading,
        }
    }

    fn body(self) -> Option<S> {
        match self {
            State::Waiting | State::Error => None,
            State::Paid => Some(S::PaidBody),
            State::Approved => Some(S::ApprovedBody),
            State::Declined => Some(S::DeclinedBody),
            State::Expired => Some(S::ExpiredBody),
            State::Canceled => Some(S::CanceledBody),
            State::Answered => Some(S::AnsweredBody),
            State::NotFound => Some(S::NotFoundBody),
        }
    }
}

/// The payment as the page shows it.
pub(crate) struct Summary {
    pub merchant_name: String,
    pub store_name: Option<String>,
    pub item_name: String,
    pub amount: Amount,
    /// Engine time, nanoseconds.
    pub expires_at: u64,
    /// Where the merchant wants the user back, once the payment is answered.
    pub return_url: Option<String>,
}

/// What the visitor can do on the page.
pub(crate) enum Forms {
    /// Nothing (an outcome, or no payment).
    None,
    /// Log in with phone and PIN.
    LogIn,
    /// Approve (with a PIN field if `pin`) or decline, as the user called `name`.
    Answer { name: String, pin: bool },
}

/// One rendering of the page.
pub(crate) struct Page {
    pub lang: Lang,
    pub state: State,
    /// `pay_12`, for the forms' actions.
    pub payment_id: String,
    pub summary: Option<Summary>,
    /// A message about the last thing the visitor did (plain text).
    pub notice: Option<String>,
    pub forms: Forms,
    /// The link's token, checked, for the forms' hidden field.
    pub token: String,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Apple SD Gothic Neo','Noto Sans KR',sans-serif;\
margin:0;background:#f4f5f7;color:#191919;line-height:1.45}\
main{max-width:26rem;margin:0 auto;padding:1.25rem}\
h1{font-size:1.35rem;margin:.5rem 0 1rem}\
.card{background:#fff;border-radius:.75rem;padding:1rem;margin-bottom:1rem}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem;margin:0}\
dt{color:#666}dd{margin:0;text-align:right;overflow-wrap:anywhere}\
dd.amount{font-size:1.25rem;font-weight:700}\
.notice{background:#fff4e5;border-left:4px solid #e8a100;padding:.75rem;border-radius:.5rem;margin-bottom:1rem}\
label{display:block;margin:.75rem 0 .25rem}\
input{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.6rem;border:1px solid #bbb;border-radius:.5rem}\
button,a.button{display:block;width:100%;box-sizing:border-box;font-size:1.1rem;padding:.8rem;border:0;\
border-radius:.5rem;margin-top:1rem;background:#ffe300;color:#191919;font-weight:700;text-align:center;text-decoration:none}\
button.secondary{background:#e9eaec;font-weight:400}\
.muted{color:#666;font-size:.9rem}";

impl Page {
    /// The page's HTML.
    pub(crate) fn html(&self) -> String {
        let lang = self.lang;
        let mut out = String::with_capacity(4096);
        out.push_str("<!doctype html><html lang=\"");
        out.push_str(lang.code());
        out.push_str(
            "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        );
        out.push_str("<meta name=\"referrer\" content=\"no-referrer\"><title>");
        push_escaped(&mut out, S::Title.get(lang));
        out.push_str("</title><style>");
        out.push_str(STYLE);
        out.push_str("</style></head><body><main data-state=\"");
        out.push_str(self.state.name());
        out.push_str("\"><h1>");
        push_escaped(&mut out, self.state.heading().get(lang));
        out.push_str("</h1>");
        if let Some(notice) = &self.notice {
            out.push_str("<p class=\"notice\" id=\"notice\" role=\"alert\">");
            push_escaped(&mut out, notice);
            out.push_str("</p>");
        }
        if let Some(body) = self.state.body() {
            out.push_str("<p id=\"outcome\">");
            push_escaped(&mut out, body.get(lang));
            out.push_str("</p>");
        }
        if let Some(summary) = &self.summary {
            self.summary_html(&mut out, summary);
        }
        match &self.forms {
            Forms::None => {}
            Forms::LogIn => self.login_html(&mut out),
            Forms::Answer { name, pin } => self.answer_html(&mut out, name, *pin),
        }
        let answered = !matches!(self.state, State::Waiting | State::NotFound | State::Error | State::Answered);
        if let Some(url) = self.summary.as_ref().and_then(|s| s.return_url.as_ref()).filter(|_| answered) {
            out.push_str("<a class=\"button\" id=\"back\" href=\"");
            push_escaped(&mut out, url);
            out.push_str("\">");
            push_escaped(&mut out, S::BackToMerchant.get(lang));
            out.push_str("</a>");
        }
        out.push_str("</main></body></html>");
        out
    }

    fn summary_html(&self, out: &mut String, s: &Summary) {
        let lang = self.lang;
        out.push_str("<section class=\"card\" id=\"payment\"><dl>");
        let mut row = |label: S, value: &str, class: &str| {
            out.push_str("<dt>");
            push_escaped(out, label.get(lang));
            out.push_str("</dt><dd");
            out.push_str(class);
            out.push('>');
            push_escaped(out, value);
            out.push_str("</dd>");
        };
        row(S::Merchant, &s.merchant_name, " id=\"merchant\"");
        if let Some(store) = &s.store_name {
            row(S::Store, store, " id=\"store\"");
        }
        row(S::Item, &s.item_name, " id=\"item\"");
        row(S::Amount, &won(s.amount, lang), " id=\"amount\" class=\"amount\"");
        out.push_str("</dl>");
        if self.state == State::Waiting {
            out.push_str("<p class=\"muted\">");
            push_escaped(out, &S::Until.with(lang, &kst_time(s.expires_at)));
            out.push_str("</p>");
        }
        out.push_str("</section>");
    }

    /// A form that posts to `/pay/{id}/{action}` with the link's token.
    fn form_start(&self, out: &mut String, action: &str) {
        out.push_str("<form method=\"post\" id=\"");
        out.push_str(action);
        out.push_str("\" action=\"/pay/");
        push_escaped(out, &self.payment_id);
        out.push('/');
        out.push_str(action);
        out.push_str("\"><input type=\"hidden\" name=\"token\" value=\"");
        push_escaped(out, &self.token);
        out.push_str("\">");
    }

    fn pin_field(&self, out: &mut String) {
        out.push_str("<label for=\"pin\">");
        push_escaped(out, S::Pin.get(self.lang));
        out.push_str(
            "</label><input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\" \
             autocomplete=\"current-password\" maxlength=\"6\" required>",
        );
    }

    fn login_html(&self, out: &mut String) {
        let lang = self.lang;
        out.push_str("<section class=\"card\"><p>");
        push_escaped(out, S::LogInIntro.get(lang));
        out.push_str("</p>");
        self.form_start(out, "login");
        out.push_str("<label for=\"phone\">");
        push_escaped(out, S::Phone.get(lang));
        out.push_str(
            "</label><input id=\"phone\" name=\"phone\" type=\"tel\" inputmode=\"tel\" autocomplete=\"tel\" \
             maxlength=\"20\" required>",
        );
        self.pin_field(out);
        out.push_str("<button type=\"submit\">");
        push_escaped(out, S::LogIn.get(lang));
        out.push_str("</button></form></section>");
    }

    fn answer_html(&self, out: &mut String, name: &str, pin: bool) {
        let lang = self.lang;
        let amount = self.summary.as_ref().map_or(Amount::ZERO, |s| s.amount);
        out.push_str("<section class=\"card\"><p class=\"muted\" id=\"user\">");
        push_escaped(out, &S::LoggedInAs.with(lang, name));
        out.push_str("</p>");
        self.form_start(out, "approve");
        if pin {
            out.push_str("<p>");
            push_escaped(out, S::PinIntro.get(lang));
            out.push_str("</p>");
            self.pin_field(out);
        }
        out.push_str("<button type=\"submit\">");
        push_escaped(out, &S::Pay.with(lang, &won(amount, lang)));
        out.push_str("</button></form>");
        self.secondary_form(out, "decline", S::Decline);
        self.secondary_form(out, "logout", S::LogOut);
        out.push_str("</section>");
    }

    /// A form of one secondary button that posts to `action`.
    fn secondary_form(&self, out: &mut String, action: &str, label: S) {
        self.form_start(out, action);
        out.push_str("<button type=\"submit\" class=\"secondary\">");
        push_escaped(out, label.get(self.lang));
        out.push_str("</button></form>");
    }
}

/// An amount of won as people write it: `4,500원`, `₩4,500`.
pub(crate) fn won(amount: Amount, lang: Lang) -> String {
    let digits = amount.minor().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match lang {
        Lang::Ko => format!("{grouped}원"),
        Lang::En => format!("₩{grouped}"),
    }
}

/// The time of day in Korea of an engine time (nanoseconds since the Unix epoch): `14:05`.
fn kst_time(nanos: u64) -> String {
    let seconds = nanos / 1_000_000_000 + 9 * 3600;
    format!("{:02}:{:02}", seconds / 3600 % 24, seconds / 60 % 60)
}

/// The headers every response of the page carries: not cached (it shows a payment and its
/// token), not framed, no referrer (the URL holds the token), in the page's language.
fn page_headers(response: &mut Response, lang: Lang) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
}

/// The page as a response with `status`.
pub(crate) fn respond(status: StatusCode, page: &Page) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], page.html())
            .into_response();
    page_headers(&mut response, page.lang);
    response
}

/// A `303 See Other` to `location` (a path of the page, or a merchant's return URL), setting
/// `cookie` if given.
pub(crate) fn see_other(lang: Lang, location: HeaderValue, cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    page_headers(&mut response, lang);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(state: State, item: &str) -> Page {
        Page {
            lang: Lang::En,
            state,
            payment_id: "pay_3".into(),
            summary: Some(Summary {
                merchant_name: "Shop \"A\" & <b>B</b>".into(),
                store_name: Some("<i>강남점</i>".into()),
                item_name: item.into(),
                amount: Amount::new(1_234_567),
                expires_at: 0,
                return_url: Some("https://shop.example/done?a=1&b=\"2\"".into()),
            }),
            notice: Some("<img src=x>".into()),
            forms: Forms::Answer { name: "<svg onload=alert(1)>".into(), pin: true },
            token: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    #[test]
    fn every_dynamic_value_is_escaped() {
        let html = page(State::Waiting, "<script>alert('x')</script>").html();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "{html}");
        for raw in ["<b>", "<i>", "<img", "<svg"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        assert!(html.contains("Shop &quot;A&quot; &amp; &lt;b&gt;B&lt;/b&gt;"));
        let paid = page(State::Paid, "x").html();
        assert!(paid.contains("href=\"https://shop.example/done?a=1&amp;b=&quot;2&quot;\""), "{paid}");
        assert!(!page(State::Waiting, "x").html().contains("id=\"back\""), "no way back before an answer");
    }

    #[test]
    fn the_page_has_no_script_and_no_outside_resource() {
        let mut waiting = page(State::Waiting, "x");
        waiting.notice = None;
        let html = waiting.html();
        for banned in ["<script", "src=", "<link", "http://", "@import", "url("] {
            assert!(!html.contains(banned), "{banned} in {html}");
        }
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("id=\"pin\""), "the PIN is asked for");
        assert!(html.contains("Pay ₩1,234,567"));
    }

    #[test]
    fn amounts_and_times() {
        assert_eq!(won(Amount::new(0), Lang::Ko), "0원");
        assert_eq!(won(Amount::new(4_500), Lang::Ko), "4,500원");
        assert_eq!(won(Amount::new(100_000_000), Lang::En), "₩100,000,000");
        assert_eq!(won(Amount::new(999), Lang::En), "₩999");
        // 2026-01-01T00:00:00Z is 09:00 in Seoul.
        assert_eq!(kst_time(1_767_225_600 * 1_000_000_000), "09:00");
        assert_eq!(kst_time((1_767_225_600 + 15 * 3600 + 5 * 60) * 1_000_000_000), "00:05");
    }
}
