//! The OpenAPI 3.1 document of the whole API. Its paths come from the same list as the
//! router's routes (`routes::api`), each operation from its handler's `#[utoipa::path]`
//! (operation ids are the handlers' names, which say what they do), and every schema from the
//! types' `ToSchema` derives, so it changes with the code. Served at `/openapi.json`, rendered
//! at `/docs`, printed by `kasa openapi`, and validated in CI.

use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Server};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

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
        components.add_security_scheme(
            "api_key",
            bearer("A merchant's API key (kasa_sk_...), with the scopes the operation names"),
        );
        components.add_security_scheme(
            "partner_signature",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Signature",
                    "A partner's signed request, as Alipay+ signs: headers Client-Id (ptn_...), Request-Time \
                     (RFC 3339 with an offset, within 5 minutes) and Signature: \
                     algorithm=Ed25519,keyVersion=N,signature=<base64url of the Ed25519 signature of \
                     `<METHOD> <path>\\n<Client-Id>.<Request-Time>.<body>`>. Answers are signed the same way with \
                     Kasa's key. See docs/partners.md.",
                ),
            )),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kasa",
        description = "A mobile payments and wallet platform on a durable double-entry ledger. Money is a decimal string of \
                       minor units next to its `currency`; times are RFC 3339 UTC strings in `*_at` fields; lists are \
                       `{data, has_more, next_cursor}`; errors are application/problem+json with a stable `code` \
                       (listed at /docs/problems). Every POST takes an `Idempotency-Key`. See docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "operations", description = "Health, readiness and metrics: no credentials"),
        (name = "ledger", description = "The operators' TigerBeetle-compatible ledger (operator key)"),
        (name = "users", description = "Sign-up with a verified phone, sessions, the wallet and its history"),
        (name = "funding", description = "Bank accounts, top-ups and withdrawals"),
        (name = "transfers", description = "Sending money to users and to numbers without a wallet"),
        (name = "requests", description = "Money requests and split bills"),
        (name = "admin", description = "Operators: users, adjustments, limits, fees, events (operator key)"),
        (name = "merchants", description = "Operators onboard merchants: stores, API keys, suspension (operator key)"),
        (name = "payments", description = "Merchants take online payments (API key with scopes); wallet users approve them"),
        (name = "payouts", description = "Merchants' daily payouts to their settlement bank accounts"),
        (name = "webhooks", description = "Merchants' webhook endpoints and their signing secrets (API key, webhooks:manage)"),
        (name = "in-store", description = "Stores' QR codes, paying with a scanned code, payment codes"),
        (name = "partners", description = "Operators register partner wallet networks and their keys (operator key)"),
        (name = "fx", description = "FX rates (operator key) and quotes (partners and operators)"),
        (name = "settlement", description = "Settlement windows with partners and their files (operator key)"),
        (name = "partner API", description = "Partner wallet networks pay Kasa's stores for their users (signed requests)"),
        (name = "overseas", description = "Kasa users pay at partners' merchants abroad"),
        (name = "replication", description = "A warm standby: journal frames for a follower, replication status, promotion (operator key)"),
        (name = "read model", description = "History, search and reports from the PostgreSQL read model (`kasa serve --read-model`), with the event seq each answer reflects"),
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The document before the routes add their paths.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new("http://127.0.0.1:7300")]);
    if let Some(server) = doc.servers.as_mut().and_then(|s| s.first_mut()) {
        server.description = Some("kasa serve on its default address".into());
    }
    doc
}

/// The finished document: the routes' paths and schemas added.
pub fn complete(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    doc
}

/// The OpenAPI document of the whole API.
pub fn document() -> utoipa::openapi::OpenApi {
    complete(crate::routes::api().split_for_parts().1)
}

/// The OpenAPI document as pretty JSON.
pub fn json() -> String {
    document().to_pretty_json().expect("the OpenAPI document serialises")
}

/// Defines a request body type that is one object or an array of them: `oneOf` in the
/// document.
macro_rules! one_or_many {
    ($name:ident, $item:ty) => {
        #[doc = concat!("One `", stringify!($item), "`, or an array of up to 8,190: `oneOf` in the document.")]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let one = RefOr::Ref(utoipa::openapi::Ref::from_schema_name(<$item as ToSchema>::name()));
                let many =
                    ArrayBuilder::new().items(one.clone()).max_items(Some(kasa_core::ITEMS_PER_COMMAND_MAX)).build();
                OneOfBuilder::new()
                    .item(one)
                    .item(many)
                    .description(Some("one object, or a batch: an array of up to 8,190"))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((<$item as ToSchema>::name().into_owned(), <$item as PartialSchema>::schema()));
                <$item as ToSchema>::schemas(schemas);
            }
        }
    };
}

one_or_many!(AccountsBody, crate::json::AccountInput);
one_or_many!(TransfersBody, crate::json::TransferInput);

/// A binary batch of accounts: 128-byte records in TigerBeetle's layout.
pub struct AccountRecords;

impl PartialSchema for AccountRecords {
    fn schema() -> RefOr<Schema> {
        binary(
            "Up to 8,190 accounts as 128-byte records, little-endian, back to back: id u128 at 0, \
             debits_pending u128 at 16, debits_posted u128 at 32, credits_pending u128 at 48, \
             credits_posted u128 at 64 (the four balances must be 0), user_data_128 u128 at 80, \
             user_data_64 u64 at 96, user_data_32 u32 at 104, reserved u32 at 108 (0), ledger u32 \
             at 112, code u16 at 116, flags u16 at 118, timestamp u64 at 120 (0).",
        )
    }
}

impl ToSchema for AccountRecords {}

/// A binary batch of transfers: 128-byte records in TigerBeetle's layout.
pub struct TransferRecords;

impl PartialSchema for TransferRecords {
    fn schema() -> RefOr<Schema> {
        binary(
            "Up to 8,190 transfers as 128-byte records, little-endian, back to back: id u128 at 0, \
             debit_account_id u128 at 16, credit_account_id u128 at 32, amount u128 at 48, \
             pending_id u128 at 64, user_data_128 u128 at 80, user_data_64 u64 at 96, user_data_32 \
             u32 at 104, timeout u32 at 108, ledger u32 at 112, code u16 at 116, flags u16 at 118, \
             timestamp u64 at 120 (0). The answer is 32 bytes per item: result u32 (the result \
             code's number), u32 0, timestamp u64, amount u128.",
        )
    }
}

impl ToSchema for TransferRecords {}

fn binary(description: &str) -> RefOr<Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some(description))
        .into()
}
