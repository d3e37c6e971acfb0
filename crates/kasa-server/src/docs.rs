//! The documentation the server serves: `/openapi.json`, an API reference page at `/docs`
//! (Swagger UI, embedded in the binary by `utoipa-swagger-ui`, so no CDN is involved), and
//! `/docs/problems`, where every problem's `type` URI points: one anchor per code, with its
//! status and meaning, generated from the registry in `problem.rs` and the ledger's result
//! codes.

use crate::html::escape;
use crate::problem::CODES;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kasa_core::{CreateAccountResult, CreateTransferResult};

/// The documentation routes.
pub fn router<S: Clone + Send + Sync + 'static>(openapi: utoipa::openapi::OpenApi) -> Router<S> {
    let swagger: Router<S> = utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi).into();
    swagger.route("/docs/problems", get(problems))
}

/// The page of problem codes.
pub fn problems_html() -> String {
    let mut rows = String::new();
    for c in CODES {
        rows += &format!(
            "<tr id=\"{0}\"><td><a href=\"#{0}\"><code>{0}</code></a></td><td>{1}</td><td>{2}</td><td>{3}</td></tr>\n",
            c.code,
            c.status,
            escape(c.title),
            escape(c.meaning)
        );
    }
    let mut ledger = String::new();
    let mut seen = std::collections::BTreeSet::new();
    let names =
        CreateAccountResult::ALL.iter().map(|r| r.name()).chain(CreateTransferResult::ALL.iter().map(|r| r.name()));
    for name in names.filter(|n| *n != "ok" && *n != "exists") {
        if seen.insert(name) && !CODES.iter().any(|c| c.code == name) {
            let status = if name.starts_with("exists_with") { 409 } else { 422 };
            ledger += &format!(
                "<tr id=\"{name}\"><td><a href=\"#{name}\"><code>{name}</code></a></td><td>{status}</td></tr>\n"
            );
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Kasa problem codes</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         td,th{{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}}</style></head><body>\
         <h1>Problem codes</h1><p>Every error of the Kasa API is <code>application/problem+json</code> with a stable \
         <code>code</code>; its <code>type</code> links here. Branch on <code>code</code>; <code>title</code> and \
         <code>detail</code> are for people. See also the <a href=\"/docs\">API reference</a>.</p>\
         <table><tr><th>code</th><th>status</th><th>title</th><th>meaning</th></tr>\n{rows}</table>\
         <h2>Ledger result codes</h2><p>A single-object create of the ledger API answers a refused item with its \
         TigerBeetle result code as <code>code</code> (batches answer them per item); see <code>docs/api.md</code>.</p>\
         <table><tr><th>code</th><th>status</th></tr>\n{ledger}</table></body></html>"
    )
}

async fn problems() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], problems_html()).into_response()
}
