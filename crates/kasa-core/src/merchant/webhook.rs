//! Merchants' webhook endpoints: where Kasa delivers a merchant's payment events, which
//! events, and the signing secret (sealed by the HTTP layer with the data key: the core never
//! sees it in clear, and neither does the journal). Rotating the secret keeps the old one
//! valid for 24 hours, so that deliveries carry both signatures meanwhile.
//!
//! Only `https://` URLs are accepted, and `http://` to the local machine (`localhost`,
//! `127.0.0.1`) for development; any other URL whose host is an IP address in a private,
//! loopback or link-local range, or a name like `*.localhost` or `*.internal`, is refused (no
//! requests into Kasa's own network). Host names are checked again when a delivery resolves
//! them.

use super::command::Scopes;
use super::Merchants;
use crate::text::{text_rule, BoundedVec};
use crate::time::NANOS_PER_DAY;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

text_rule!(
    /// Where deliveries go: an `https://` URL (or `http://localhost` / `http://127.0.0.1` for
    /// development), printable ASCII, up to 2,048 characters, not to a private address.
    WebhookUrl, WebhookUrlRule, 2048, "a webhook URL", true,
    |v| check_url(v)
);

/// The most endpoints a merchant may have.
pub const ENDPOINTS_PER_MERCHANT_MAX: usize = 16;
/// How long a rotated-out secret stays valid.
pub const OLD_SECRET_NANOS: u64 = NANOS_PER_DAY;

/// The events a merchant can subscribe to, by name.
pub const EVENT_TYPES: [&str; 7] = [
    "payment.approved",
    "payment.succeeded",
    "payment.canceled",
    "payment.expired",
    "refund.succeeded",
    "payout.paid",
    "payout.failed",
];

fn check_url(v: &str) -> Result<(), String> {
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a webhook URL is printable ASCII without spaces".into());
    }
    let (rest, local_only) = if let Some(rest) = v.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = v.strip_prefix("http://") {
        (rest, true)
    } else {
        return Err("a webhook URL starts with https://".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("a webhook URL has no user or password".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() {
        return Err("a webhook URL names a host".into());
    }
    let local = host == "localhost" || host == "127.0.0.1";
    if local_only && !local {
        return Err("a webhook URL starts with https:// (http:// only to localhost)".into());
    }
    if !local {
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !is_public(ip) {
                return Err(format!("a webhook URL may not point at the private address {ip}"));
            }
        }
        let lower = host.to_ascii_lowercase();
        if lower == "localhost"
            || lower.ends_with(".localhost")
            || lower.ends_with(".internal")
            || lower.ends_with(".localdomain")
        {
            return Err("a webhook URL over https goes to a public host".into());
        }
    }
    Ok(())
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A set of event types, one bit per entry of [`EVENT_TYPES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct EventTypes(u8);

impl EventTypes {
    /// The set of the named types; `None` if a name is unknown.
    pub fn named<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<EventTypes> {
        let mut bits = 0u8;
        for name in names {
            bits |= 1 << EVENT_TYPES.iter().position(|t| *t == name)?;
        }
        Some(EventTypes(bits))
    }

    /// Whether `name` is in the set.
    pub fn has(self, name: &str) -> bool {
        EVENT_TYPES.iter().position(|t| *t == name).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The names in the set, in [`EVENT_TYPES`] order.
    pub fn names(self) -> Vec<&'static str> {
        EVENT_TYPES.iter().enumerate().filter(|(i, _)| self.0 & (1 << i) != 0).map(|(_, t)| *t).collect()
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<u8> for EventTypes {
    type Error = String;
    fn try_from(value: u8) -> Result<EventTypes, String> {
        if value >> EVENT_TYPES.len() == 0 {
            Ok(EventTypes(value))
        } else {
            Err(format!("event types {value:#x} name an unknown type"))
        }
    }
}

impl From<EventTypes> for u8 {
    fn from(types: EventTypes) -> u8 {
        types.0
    }
}

/// A signing secret as the state keeps it: sealed with the data key, which only the HTTP
/// layer holds (XChaCha20-Poly1305: nonce, ciphertext and tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Nonce, ciphertext and tag.
    pub ciphertext: BoundedVec<u8, 128>,
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose endpoint.
    pub merchant_id: u64,
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// Which events.
    pub events: EventTypes,
    /// The signing secret.
    pub secret: SealedSecret,
    /// The secret before the last rotation, and until when it still signs.
    pub old_secret: Option<(SealedSecret, u64)>,
    /// When it was created.
    pub created_at: u64,
    /// When it was deleted (0: it was not). Deleted endpoints get no deliveries.
    pub deleted_at: u64,
    /// The seq of the last event it was given or does not want: deliveries go on after it.
    pub delivered_through: u64,
    /// When deliveries started failing (0: they do not); after [`FAILING_NANOS_MAX`] the
    /// endpoint is disabled.
    pub failing_since: u64,
    /// When it was disabled for failing too long (0: it was not). An operator or the merchant
    /// turns it back on by rotating its secret or creating it again.
    pub disabled_at: u64,
    /// When it was made, or last enabled again: failures reported from before it are stale.
    pub enabled_at: u64,
}

impl WebhookEndpoint {
    /// Whether it gets deliveries.
    pub fn is_live(&self) -> bool {
        self.deleted_at == 0 && self.disabled_at == 0
    }
}

/// How long deliveries to an endpoint may fail before it is disabled: 3 days.
pub const FAILING_NANOS_MAX: u64 = 3 * NANOS_PER_DAY;

/// The delivery progress of one endpoint, as the webhook consumer records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryProgress {
    /// Which endpoint.
    pub endpoint_id: u64,
    /// Everything up to this event seq was delivered (or is not for it).
    pub delivered_through: u64,
    /// When deliveries started failing (0: they succeed).
    pub failing_since: u64,
}

/// What a key asks of the merchant's webhook endpoints (scope `webhooks:manage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookCommand {
    /// Adds an endpoint.
    Create {
        /// Where deliveries go.
        url: WebhookUrl,
        /// Which events (not empty).
        events: EventTypes,
        /// The signing secret, sealed.
        secret: SealedSecret,
    },
    /// Deletes an endpoint: no more deliveries.
    Delete {
        /// Which endpoint (one of the merchant's).
        endpoint_id: u64,
    },
    /// Replaces the signing secret; the old one signs too for 24 more hours.
    RotateSecret {
        /// Which endpoint (one of the merchant's).
        endpoint_id: u64,
        /// The new secret, sealed.
        secret: SealedSecret,
    },
}

impl WebhookCommand {
    /// The scope a key needs.
    pub fn scope(&self) -> Scopes {
        Scopes::named("webhooks:manage").expect("a known scope")
    }
}

/// Why a webhook command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookError {
    /// No such endpoint of this merchant (or it was deleted).
    UnknownEndpoint,
    /// The merchant has [`ENDPOINTS_PER_MERCHANT_MAX`] endpoints.
    TooManyEndpoints,
    /// An endpoint needs at least one event type.
    NoEvents,
}

impl Merchants {
    pub(super) fn apply_webhook(
        &mut self,
        merchant_id: u64,
        command: &WebhookCommand,
        ctx: &mut super::Ctx,
    ) -> Result<WebhookEndpoint, WebhookError> {
        let now = ctx.now();
        match command {
            WebhookCommand::Create { url, events, secret } => {
                if events.is_empty() {
                    return Err(WebhookError::NoEvents);
                }
                if self.endpoints_of(merchant_id).count() >= ENDPOINTS_PER_MERCHANT_MAX {
                    return Err(WebhookError::TooManyEndpoints);
                }
                let endpoint = WebhookEndpoint {
                    id: self.endpoints.len() as u64 + 1,
                    merchant_id,
                    url: url.clone(),
                    events: *events,
                    secret: secret.clone(),
                    old_secret: None,
                    created_at: now,
                    deleted_at: 0,
                    delivered_through: ctx.last_event,
                    failing_since: 0,
                    disabled_at: 0,
                    enabled_at: now,
                };
                self.endpoints.push_back(endpoint.clone());
                self.live_endpoints.insert((merchant_id, endpoint.id));
                ctx.emit(super::Event::WebhookEndpointChanged { merchant_id, endpoint_id: endpoint.id });
                Ok(endpoint)
            }
            WebhookCommand::Delete { endpoint_id } => {
                let endpoint = self.live_endpoint_mut(merchant_id, *endpoint_id)?;
                endpoint.deleted_at = now;
                let endpoint = endpoint.clone();
                self.live_endpoints.remove(&(merchant_id, endpoint.id));
                ctx.emit(super::Event::WebhookEndpointChanged { merchant_id, endpoint_id: endpoint.id });
                Ok(endpoint)
            }
            WebhookCommand::RotateSecret { endpoint_id, secret } => {
                let endpoint = self.live_endpoint_mut(merchant_id, *endpoint_id)?;
                let old = std::mem::replace(&mut endpoint.secret, secret.clone());
                endpoint.old_secret = Some((old, now.saturating_add(OLD_SECRET_NANOS)));
                // A disabled endpoint comes back with new deliveries only: what it missed
                // while disabled is in `GET /v1/events` (and can be redelivered).
                if endpoint.disabled_at != 0 {
                    endpoint.disabled_at = 0;
                    endpoint.failing_since = 0;
                    endpoint.enabled_at = now;
                    endpoint.delivered_through = ctx.last_event;
                }
                let endpoint = endpoint.clone();
                ctx.emit(super::Event::WebhookEndpointChanged { merchant_id, endpoint_id: endpoint.id });
                Ok(endpoint)
            }
        }
    }

    /// Records the webhook consumer's progress: positions only move forward, and an endpoint
    /// that has failed for [`FAILING_NANOS_MAX`] is disabled. Returns how many endpoints moved.
    pub(super) fn record_deliveries(&mut self, progress: &[DeliveryProgress], ctx: &mut super::Ctx) -> u32 {
        let now = ctx.now();
        let mut moved = 0;
        for p in progress {
            let Some(endpoint) = p.endpoint_id.checked_sub(1).and_then(|i| self.endpoints.get_mut(i as usize)) else {
                continue;
            };
            // A report from before the endpoint was enabled again (a lane of the disabled one
            // still failing) must not disable it at once.
            if !endpoint.is_live() || (p.failing_since != 0 && p.failing_since < endpoint.enabled_at) {
                continue;
            }
            endpoint.delivered_through = endpoint.delivered_through.max(p.delivered_through);
            endpoint.failing_since = p.failing_since.min(now);
            moved += 1;
            if endpoint.failing_since != 0 && now.saturating_sub(endpoint.failing_since) >= FAILING_NANOS_MAX {
                endpoint.disabled_at = now;
                let (merchant_id, endpoint_id) = (endpoint.merchant_id, endpoint.id);
                ctx.emit(super::Event::WebhookEndpointDisabled { merchant_id, endpoint_id });
            }
        }
        moved
    }

    fn live_endpoint_mut(&mut self, merchant_id: u64, id: u64) -> Result<&mut WebhookEndpoint, WebhookError> {
        id.checked_sub(1)
            .and_then(|i| self.endpoints.get_mut(i as usize))
            .filter(|e| e.merchant_id == merchant_id && e.deleted_at == 0)
            .ok_or(WebhookError::UnknownEndpoint)
    }

    /// Every endpoint, deleted and disabled ones too, oldest first.
    pub fn all_endpoints(&self) -> impl Iterator<Item = &WebhookEndpoint> + '_ {
        self.endpoints.iter()
    }

    /// The endpoint with this id.
    pub fn endpoint(&self, id: u64) -> Option<&WebhookEndpoint> {
        id.checked_sub(1).and_then(|i| self.endpoints.get(i as usize))
    }

    /// A merchant's endpoints that are not deleted, oldest first.
    pub fn endpoints_of(&self, merchant_id: u64) -> impl Iterator<Item = &WebhookEndpoint> + '_ {
        self.live_endpoints.range((merchant_id, 0)..=(merchant_id, u64::MAX)).filter_map(|&(_, id)| self.endpoint(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_go_to_public_https_hosts_or_the_local_machine() {
        for good in [
            "https://shop.example/hooks/kasa",
            "https://shop.example:8443/hooks?x=1",
            "https://8.8.8.8/hook",
            "https://[2606:4700::1111]/hook",
            "http://localhost:8080/hook",
            "http://127.0.0.1:9000/",
            "https://localhost/hook",
        ] {
            assert_eq!(WebhookUrl::new(good).map(|_| ()), Ok(()), "{good}");
        }
        for bad in [
            "ftp://shop.example/",
            "http://shop.example/hook",
            "https://10.0.0.8/hook",
            "https://192.168.1.10/",
            "https://172.16.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://localhost.localdomain/",
            "https://metadata.internal/",
            "https://user:pw@shop.example/",
            "https:///nohost",
            "https://shop.example/a b",
            "http://localhost.evil.example/",
        ] {
            assert!(WebhookUrl::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_are_a_fixed_point() {
        let types = EventTypes::named(["payment.succeeded", "refund.succeeded"]).unwrap();
        assert_eq!(types.names(), ["payment.succeeded", "refund.succeeded"]);
        assert!(types.has("refund.succeeded") && !types.has("payout.paid"));
        assert!(EventTypes::named(["payment.everything"]).is_none());
        assert!(EventTypes::try_from(0x80).is_err());
        assert_eq!(EventTypes::try_from(u8::from(types)), Ok(types));
    }
}
