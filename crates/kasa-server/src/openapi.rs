//! The OpenAPI 3.1 document of the whole API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types' `ToSchema` derives, so it changes with the
//! code. Served at `/openapi.json`, printed by `kasa openapi`, and validated in CI.

use crate::routes::{funding, ledger, ops, remittance, requests, users};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Adds the two bearer schemes: the operator key and a user's session token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
            )
        };
        components.add_security_scheme("operator", bearer("The operator key (KASA_OPERATOR_KEY or operator.key)"));
        components.add_security_scheme("session", bearer("A session token from POST /v1/sessions"));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kasa",
        description = "A mobile payments and wallet platform on a durable double-entry ledger. Errors are \
                       application/problem+json with a stable `code`; big integers are decimal strings.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        ledger::create_accounts,
        ledger::create_transfers,
        ledger::get_account,
        ledger::get_transfer,
        ledger::lookup_accounts,
        ledger::lookup_transfers,
        ledger::account_transfers,
        ledger::account_balances,
        users::sign_up,
        users::log_in,
        users::log_out,
        users::me,
        users::my_wallet,
        users::transactions,
        users::settings,
        users::set_tier,
        users::unlock,
        users::set_tier_limits,
        users::set_fees,
        ops::advance_test_clock,
        funding::link,
        funding::list_bank_accounts,
        funding::top_up,
        funding::withdraw,
        funding::get_top_up,
        funding::get_withdrawal,
        remittance::send,
        remittance::get,
        remittance::cancel,
        requests::create,
        requests::list,
        requests::get,
        requests::pay,
        requests::decline,
        requests::split,
        requests::get_split,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON.
pub fn json() -> String {
    document().to_pretty_json().expect("the OpenAPI document serialises")
}
