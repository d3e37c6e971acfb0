//! The hosted approval page, `GET /pay/pay_12?token=...`: the `approval_url` a merchant
//! gets for a payment, where a wallet user sees the payment (merchant, store, item, amount),
//! logs in with phone and PIN, and approves (with the PIN again above what is left of the
//! PIN-free budget) or declines; then goes back to the merchant's `return_url`, if any.
//!
//! It is a client of the API's own code, not a second implementation: the login is
//! `users::open_session` (the same rate limits, the same Argon2 work whatever the number, the
//! same answer to every failure) and the answer is `approval::answer_as` (the same command,
//! checked in the same step as its effect), so the page can do nothing the API would refuse.
//! A second submit of the form (a double click, a reload) meets the core's `invalid_state`
//! and shows the payment as it stands: paid once.
//!
//! What keeps it safe: the link's token is checked before anything else (a wrong or missing
//! one, or an unknown payment, is one `404` page that says nothing more); every form carries
//! the token, and the session is a cookie for `/pay` only (`HttpOnly; SameSite=Strict`,
//! 10 minutes) holding an ordinary session token; every response is `no-store`, unframed,
//! without a referrer and under a Content-Security-Policy that allows no script and no
//! outside resource (`render.rs`). Nothing here logs: the front middleware's line has the
//! route template and status only, never the token, the phone or the PIN.
//!
//! What it does not do: it is not part of the API (not in the OpenAPI document), serves no
//! script, and keeps no state of its own; it sets no `Secure` flag on the cookie, since Kasa
//! serves plain HTTP behind whatever terminates TLS (see `docs/payments.md`).

mod render;
mod text;

use crate::ids;
use crate::listener::Peer;
use crate::pin::token_hash;
use crate::problem::Problem;
use crate::routes::approval::{answer_as, answer_error, payment_for_user};
use crate::routes::users::open_session;
use crate::routes::{client_address, percent_decode, session_user};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use kasa_core::idempotency::KeyScope;
use kasa_core::limits::SpendRefusal;
use kasa_core::merchant::AnsweredPayment;
use kasa_core::merchant::{AnswerError, CancelReason, Payment, PaymentError, PaymentStatus};
use kasa_core::money::Amount;
use kasa_core::wallet::FundingError;
use render::State as PageState;
use render::{respond, see_other, won, Forms, Page, Summary};
use text::{Lang, S};

/// The cookie that holds the page's session token.
const SESSION_COOKIE: &str = "kasa_pay";

/// How long a login on the page lasts: 10 minutes, enough to answer a payment (which waits 15
/// minutes by default), short enough that a phone or a shared computer left behind is not a
/// wallet left open. The API's sessions last 30 days; this one only pays from a link.
pub const PAGE_SESSION_TTL_SECONDS: u32 = 10 * 60;

/// The longest value a form field may have: a phone number, a PIN and a 32-digit token are
/// far shorter; anything longer is not from the page's forms.
const FORM_VALUE_BYTES_MAX: usize = 256;

/// The page's routes. They go through the front middleware like the API's (body limits,
/// the in-flight permit, one log line), which takes their form bodies and leaves their HTML
/// errors as they are.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pay/{id}", get(show_page))
        .route("/pay/{id}/login", post(log_in))
        .route("/pay/{id}/approve", post(approve))
        .route("/pay/{id}/decline", post(decline))
        .route("/pay/{id}/logout", post(log_out))
}

/// Whether a path is the page's: its POST bodies are forms, its errors HTML.
pub(crate) fn is_page(path: &str) -> bool {
    path.starts_with("/pay/")
}

/// One request to the page: its language, the payment (whose link's token was checked), and
/// the visitor's session on the page, if open.
struct Visit {
    lang: Lang,
    payment_id: u64,
    /// The link's token, as checked.
    token: String,
    /// The session's user and its token's hash.
    session: Option<(u64, [u8; 32])>,
}

impl Visit {
    /// The visit to payment `raw` with link token `token`, or the response that ends it: the
    /// not-found page for a wrong id or token, an error page if the engine cannot answer.
    async fn new(app: &AppState, headers: &HeaderMap, raw: &str, token: Option<&str>) -> Result<Visit, Response> {
        let lang = lang_of(headers);
        let payment_id = ids::parse("pay", raw, "").map_err(|_| not_found(lang))?;
        let token = token.filter(|t| app.keys.approval_token_matches(payment_id, t)).ok_or_else(|| not_found(lang))?;
        let session = match session_cookie(headers) {
            Some(hash) => match session_user(app, hash).await {
                Ok(user) => user.map(|user_id| (user_id, hash)),
                Err(problem) => return Err(error_page(lang, &problem)),
            },
            None => None,
        };
        Ok(Visit { lang, payment_id, token: token.to_string(), session })
    }

    /// The page's own address for this payment: `/pay/pay_12?token=...`.
    fn location(&self) -> HeaderValue {
        let path = format!("/pay/{}?token={}", ids::format("pay", self.payment_id), self.token);
        HeaderValue::from_str(&path).expect("an id and a checked hex token are a valid header value")
    }
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// The hash of the page's session token from the `Cookie` headers, if one of the right shape
/// is there.
fn session_cookie(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|t| t.starts_with("kasa_s_") && t.len() <= 128)
        .map(|t| token_hash(t.as_bytes()))
}

/// `Set-Cookie` for a session token (or, with `None`, one that removes the cookie).
fn session_cookie_header(token: Option<&str>) -> HeaderValue {
    let value = match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Max-Age={PAGE_SESSION_TTL_SECONDS}; Path=/pay; HttpOnly; SameSite=Strict"
        ),
        None => format!("{SESSION_COOKIE}=; Max-Age=0; Path=/pay; HttpOnly; SameSite=Strict"),
    };
    HeaderValue::from_str(&value).expect("a session token is a valid header value")
}

/// The `token` of a query string; other parameters are ignored (a QR reader may add some).
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == "token").map(|(_, v)| v)
}

/// An `application/x-www-form-urlencoded` body: its fields, decoded. A field longer than
/// [`FORM_VALUE_BYTES_MAX`] makes the whole form unreadable (`None`); the first of a repeated
/// field counts; the page's forms have at most four fields, so more are not looked at.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Option<Form> {
        let text = std::str::from_utf8(body).ok()?;
        let decode = |s: &str| percent_decode(&s.replace('+', " "));
        let mut fields = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()).take(8) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key.len() > 32 || value.len() > 3 * FORM_VALUE_BYTES_MAX {
                return None;
            }
            let value = decode(value);
            if value.len() > FORM_VALUE_BYTES_MAX {
                return None;
            }
            fields.push((decode(key), value));
        }
        Some(Form(fields))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The form of a POST and the visit it makes, or the response that ends it.
async fn form_visit(app: &AppState, headers: &HeaderMap, raw: &str, body: &[u8]) -> Result<(Form, Visit), Response> {
    let form = Form::parse(body).ok_or_else(|| not_found(lang_of(headers)))?;
    let visit = Visit::new(app, headers, raw, form.get("token")).await?;
    Ok((form, visit))
}

/// The one page for a wrong link: no payment, another payment's token, no token.
fn not_found(lang: Lang) -> Response {
    let page = Page {
        lang,
        state: PageState::NotFound,
        payment_id: String::new(),
        summary: None,
        notice: None,
        forms: Forms::None,
        token: String::new(),
    };
    respond(StatusCode::NOT_FOUND, &page)
}

/// The page for a request the server could not handle (busy, stopping, a bug).
fn error_page(lang: Lang, problem: &Problem) -> Response {
    let page = Page {
        lang,
        state: PageState::Error,
        payment_id: String::new(),
        summary: None,
        notice: Some(problem_notice(lang, problem)),
        forms: Forms::None,
        token: String::new(),
    };
    respond(status_of(problem), &page)
}

fn status_of(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// What the page says about a problem that is not a refusal of the answer itself.
fn problem_notice(lang: Lang, problem: &Problem) -> String {
    match problem.code {
        "rate_limited" => S::RateLimited.with(lang, &problem.retry_after.unwrap_or(1).to_string()),
        // A malformed number gets the same words as a wrong PIN: nothing about the number.
        "invalid_credentials" | "invalid_phone" => S::InvalidCredentials.get(lang).to_string(),
        _ => S::Failed.get(lang).to_string(),
    }
}

/// Where a payment stands on the page at engine time `now`.
fn state_of(p: &Payment, now: u64) -> PageState {
    match p.status {
        PaymentStatus::RequiresApproval if p.expires_at <= now => PageState::Expired,
        PaymentStatus::RequiresApproval => PageState::Waiting,
        PaymentStatus::RequiresCapture => PageState::Approved,
        PaymentStatus::Succeeded => PageState::Paid,
        PaymentStatus::Canceled => match p.cancel_reason {
            Some(CancelReason::Expired) => PageState::Expired,
            Some(CancelReason::Declined) => PageState::Declined,
            Some(CancelReason::Merchant | CancelReason::CaptureExpired) | None => PageState::Canceled,
        },
    }
}

fn summary(v: &AnsweredPayment) -> Summary {
    let p = &v.payment;
    Summary {
        merchant_name: v.merchant_name.as_str().to_string(),
        store_name: v.store_name.as_ref().map(|s| s.as_str().to_string()),
        item_name: p.item_name.as_str().to_string(),
        amount: p.amount,
        expires_at: p.expires_at,
        return_url: p.return_url.as_ref().map(|u| u.as_str().to_string()),
    }
}

/// The logged-in user's name, and whether paying `amount` now needs the PIN: the core's own
/// check of the PIN-free budget (`Limits::check_spend`), so the page asks exactly when the
/// answer would be `pin_required`. `None` if the user is gone.
async fn viewer(app: &AppState, user_id: u64, amount: Amount) -> Result<Option<(String, bool)>, Problem> {
    let now = app.engine.now();
    let found = app
        .engine
        .read(move |s| {
            let user = s.wallets().user(user_id)?;
            let spend = s.limits().check_spend(user_id, user.tier, Some(user.pin_free_amount), amount, now);
            Some((user.name.as_str().to_string(), matches!(spend, Err(SpendRefusal::PinRequired))))
        })
        .await?;
    Ok(found)
}

/// The page for `visit`'s payment as it stands, with `notice` about what the visitor just
/// did, answered with `status`.
async fn show(app: &AppState, visit: &Visit, notice: Option<String>, status: StatusCode) -> Response {
    let lang = visit.lang;
    let user_id = visit.session.map(|(user_id, _)| user_id);
    let found = match payment_for_user(app, visit.payment_id, user_id, Some(&visit.token)).await {
        Ok(found) => found,
        Err(problem) => return error_page(lang, &problem),
    };
    // An in-store payment is answered at the till (a one-sale code by its scan), never here.
    if found.as_ref().is_some_and(|v| v.payment.channel != kasa_core::merchant::Channel::Online) {
        return not_found(lang);
    }
    let mut page = Page {
        lang,
        state: PageState::Answered,
        payment_id: ids::format("pay", visit.payment_id),
        summary: None,
        notice,
        forms: if visit.session.is_none() { Forms::LogIn } else { Forms::None },
        token: visit.token.clone(),
    };
    // The link is right, but the payment was approved by someone the visitor is not logged
    // in as: like the API, the page shows an approved payment to its payer only.
    let Some(v) = found else { return respond(status, &page) };
    page.state = state_of(&v.payment, app.engine.now());
    page.forms = Forms::None;
    if page.state == PageState::Waiting {
        page.forms = match visit.session {
            None => Forms::LogIn,
            Some((user_id, _)) => match viewer(app, user_id, v.payment.amount).await {
                Ok(Some((name, pin))) => Forms::Answer { name, pin },
                Ok(None) => Forms::LogIn,
                Err(problem) => return error_page(lang, &problem),
            },
        };
    }
    page.summary = Some(summary(&v));
    respond(status, &page)
}

/// `GET /pay/{id}?token=...`.
async fn show_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match Visit::new(&app, &headers, &raw, query_token(query.as_deref())).await {
        Ok(visit) => show(&app, &visit, None, StatusCode::OK).await,
        Err(response) => response,
    }
}

/// `POST /pay/{id}/login` (token, phone, pin): opens a session for the page and goes back to
/// it, or shows why not.
async fn log_in(
    State(app): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Response {
    let (form, mut visit) = match form_visit(&app, &headers, &raw, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let phone = form.get("phone").unwrap_or("");
    let pin = form.get("pin").unwrap_or("").to_string();
    match open_session(&app, client_address(peer), phone, pin, PAGE_SESSION_TTL_SECONDS).await {
        Ok(login) => see_other(visit.lang, visit.location(), Some(session_cookie_header(Some(login.token.expose())))),
        Err(problem) => {
            visit.session = None;
            let notice = problem_notice(visit.lang, &problem);
            show(&app, &visit, Some(notice), status_of(&problem)).await
        }
    }
}

/// `POST /pay/{id}/approve` (token, and pin when asked for).
async fn approve(State(app): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, body: Bytes) -> Response {
    answer_page(app, headers, raw, body, true).await
}

/// `POST /pay/{id}/decline` (token).
async fn decline(State(app): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, body: Bytes) -> Response {
    answer_page(app, headers, raw, body, false).await
}

/// Answers the payment through the API's own path, then goes where the answer leads: the
/// merchant's return URL, or the page showing the outcome.
async fn answer_page(app: AppState, headers: HeaderMap, raw: String, body: Bytes, approve: bool) -> Response {
    let (form, mut visit) = match form_visit(&app, &headers, &raw, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = visit.lang;
    let Some((user_id, hash)) = visit.session else {
        return show(&app, &visit, Some(S::SessionEnded.get(lang).into()), StatusCode::UNAUTHORIZED).await;
    };
    let pin = approve.then(|| form.get("pin").filter(|p| !p.is_empty()).map(str::to_string));
    let refusal = match answer_as(&app, user_id, hash, visit.payment_id, pin).await {
        Ok(Ok(a)) => return answered(&visit, &a.payment),
        Ok(Err(refusal)) => refusal,
        Err(problem) => return show(&app, &visit, Some(problem_notice(lang, &problem)), status_of(&problem)).await,
    };
    // The status the API gives the same refusal.
    let status = status_of(&answer_error(refusal));
    let notice = match refusal {
        AnswerError::SessionInvalid => {
            visit.session = None;
            Some(S::SessionEnded.get(lang).to_string())
        }
        AnswerError::Payment(PaymentError::UnknownPayment) => return not_found(lang),
        // Ended without payment (declined, expired, canceled): the page's heading says so.
        AnswerError::Payment(PaymentError::WrongStatus { status: PaymentStatus::Canceled })
        | AnswerError::Payment(PaymentError::Expired) => None,
        // A second submit of the form: the page shows how the first one ended.
        AnswerError::Payment(PaymentError::WrongStatus { .. }) => Some(S::AlreadyAnswered.get(lang).to_string()),
        AnswerError::Payment(PaymentError::MerchantNotActive { .. }) => Some(S::MerchantNotActive.get(lang).into()),
        AnswerError::Funding(FundingError::WrongPin { attempts_left }) => {
            Some(S::WrongPin.with(lang, &attempts_left.to_string()))
        }
        AnswerError::Funding(FundingError::PinLocked { .. }) => Some(S::PinLocked.get(lang).into()),
        AnswerError::Funding(FundingError::PinRequired) => Some(S::PinRequired.get(lang).into()),
        AnswerError::Funding(FundingError::InsufficientFunds) => Some(S::InsufficientFunds.get(lang).into()),
        AnswerError::Funding(FundingError::LimitExceeded(limit)) => {
            Some(S::LimitExceeded.with(lang, &won(limit.remaining, lang)))
        }
        AnswerError::Payment(_) | AnswerError::Funding(_) => Some(S::Failed.get(lang).into()),
    };
    show(&app, &visit, notice, status).await
}

/// Where an answered payment sends the browser: the merchant's return URL with the payment's
/// id and status (nothing secret: no token, no session), or back to the page, which shows the
/// outcome (and a reload does not post the form again).
fn answered(visit: &Visit, p: &Payment) -> Response {
    let back = p.return_url.as_ref().and_then(|url| {
        let outcome = format!("payment_id={}&status={}", ids::format("pay", p.id), p.status.name());
        HeaderValue::from_str(&with_query(url.as_str(), &outcome)).ok()
    });
    see_other(visit.lang, back.unwrap_or_else(|| visit.location()), None)
}

/// `url` with `pairs` added to its query (before a fragment, if it has one).
fn with_query(url: &str, pairs: &str) -> String {
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let separator = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(fragment) => format!("{base}{separator}{pairs}#{fragment}"),
        None => format!("{base}{separator}{pairs}"),
    }
}

/// `POST /pay/{id}/logout` (token): closes the page's session and shows the page logged out.
async fn log_out(State(app): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, body: Bytes) -> Response {
    let (_, mut visit) = match form_visit(&app, &headers, &raw, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Some((_, hash)) = visit.session.take() {
        let closed =
            app.wallet(KeyScope::Session(hash), kasa_core::wallet::Command::CloseSession { token_hash: hash }).await;
        if let Err(problem) = closed {
            return error_page(visit.lang, &problem);
        }
    }
    let mut response = show(&app, &visit, Some(S::LoggedOut.get(visit.lang).into()), StatusCode::OK).await;
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(None));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_past_its_time_is_expired_before_the_engine_ends_it() {
        use kasa_core::merchant::{CaptureMethod, ItemName, OrderId};
        let mut p = Payment {
            id: 1,
            merchant_id: 1,
            store_id: None,
            order_id: OrderId::new("o-1".to_string()).unwrap(),
            item_name: ItemName::new("x".to_string()).unwrap(),
            amount: Amount::new(1_000),
            capture_method: CaptureMethod::Automatic,
            status: PaymentStatus::RequiresApproval,
            cancel_reason: None,
            return_url: None,
            created_at: 0,
            expires_at: 100,
            status_changed_at: 0,
            user_id: 0,
            approved_at: 0,
            day: 0,
            captured: Amount::ZERO,
            fee: Amount::ZERO,
            refunded: Amount::ZERO,
            fee_refunded: Amount::ZERO,
            refunds: 0,
            channel: kasa_core::merchant::Channel::Online,
        };
        assert_eq!(state_of(&p, 99), PageState::Waiting);
        assert_eq!(state_of(&p, 100), PageState::Expired, "at expires_at the core refuses an answer");
        p.status = PaymentStatus::Canceled;
        for (reason, state) in [
            (CancelReason::Expired, PageState::Expired),
            (CancelReason::Declined, PageState::Declined),
            (CancelReason::Merchant, PageState::Canceled),
            (CancelReason::CaptureExpired, PageState::Canceled),
        ] {
            p.cancel_reason = Some(reason);
            assert_eq!(state_of(&p, 0), state, "{reason:?}");
        }
        p.status = PaymentStatus::RequiresCapture;
        assert_eq!(state_of(&p, 1_000), PageState::Approved, "approved is not expired, whatever the time");
    }

    #[test]
    fn forms_decode_and_stay_small() {
        let form = Form::parse(b"token=ab12&phone=%2B82+10-1234-5678&pin=481627&token=other").unwrap();
        assert_eq!(form.get("token"), Some("ab12"), "the first of a repeated field");
        assert_eq!(form.get("phone"), Some("+82 10-1234-5678"));
        assert_eq!(form.get("pin"), Some("481627"));
        assert_eq!(form.get("missing"), None);
        assert!(Form::parse(format!("pin={}", "1".repeat(FORM_VALUE_BYTES_MAX + 1)).as_bytes()).is_none());
        assert!(Form::parse(b"pin=\xff").is_none(), "not UTF-8");
        assert_eq!(Form::parse(b"").map(|f| f.0.len()), Some(0));
    }

    #[test]
    fn the_session_cookie_is_read_only_in_its_shape() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("other=1; kasa_pay=kasa_s_abc"));
        assert_eq!(session_cookie(&headers), Some(token_hash(b"kasa_s_abc")));
        headers.insert(header::COOKIE, HeaderValue::from_static("kasa_pay=kasa_sk_key"));
        assert_eq!(session_cookie(&headers), None, "an API key is not a session");
        headers.insert(header::COOKIE, HeaderValue::from_static("kasa_pay=operator-key"));
        assert_eq!(session_cookie(&headers), None);
        let cookie = session_cookie_header(Some("kasa_s_abc"));
        assert_eq!(cookie, "kasa_pay=kasa_s_abc; Max-Age=600; Path=/pay; HttpOnly; SameSite=Strict");
    }

    #[test]
    fn return_urls_get_the_outcome_and_nothing_else() {
        let pairs = "payment_id=pay_1&status=succeeded";
        assert_eq!(
            with_query("https://s.example/done", pairs),
            "https://s.example/done?payment_id=pay_1&status=succeeded"
        );
        assert_eq!(
            with_query("https://s.example/d?o=1", pairs),
            "https://s.example/d?o=1&payment_id=pay_1&status=succeeded"
        );
        assert_eq!(
            with_query("https://s.example/d#top", pairs),
            "https://s.example/d?payment_id=pay_1&status=succeeded#top"
        );
        assert_eq!(query_token(Some("utm=x&token=ab&token=cd")), Some("ab"));
        assert_eq!(query_token(Some("tokenx=ab")), None);
        assert_eq!(query_token(None), None);
    }
}
