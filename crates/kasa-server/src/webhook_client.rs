//! The HTTP client that delivers webhooks: one kept-alive HTTP/1.1 connection per endpoint,
//! over TLS (rustls, the Mozilla roots of `webpki-roots`) for `https://` and in the clear
//! for `http://localhost` development endpoints.
//!
//! **Addresses are checked at delivery time.** The URL was checked when the endpoint was
//! made, but a name can resolve to anything later (DNS rebinding): every connection resolves
//! the host and refuses to connect to an address that is not public, unless the endpoint is
//! a development one on the local machine or the operator allowed private addresses
//! (`kasa serve --webhooks-allow-private`).
//!
//! Kasa's calls to partners use it too. It hands back a signed answer's headers with the
//! status and body ([`Reply`]) but checks no signature: what an answer must be to count is the
//! caller's business (`consumers/partner_answer.rs`).

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kasa_core::merchant::webhook::is_public;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long one delivery may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of a response read: webhooks read it only to reuse the connection, partner
/// notifications for its `result`, which is a few hundred bytes.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// The longest value of a signed answer's header that is kept: an Ed25519 `Signature` header
/// is about 130 bytes, an RFC 3339 time 35, a partner's id a few.
pub const SIGNED_HEADER_BYTES_MAX: usize = 256;

/// A parsed delivery URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// TLS or not.
    pub tls: bool,
    /// The host, without brackets.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The path and query, from `/`.
    pub path: String,
}

impl Target {
    /// Parses an endpoint's URL (checked when the endpoint was made: `https://` or
    /// `http://localhost` / `http://127.0.0.1`).
    pub fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("not an http(s) URL".into());
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or("an unclosed IPv6 address")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| "a bad port")?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(Target { tls, host: host.to_ascii_lowercase(), port, path })
    }

    /// Whether this is a development endpoint on the local machine (plain HTTP).
    fn local_development(&self) -> bool {
        !self.tls && (self.host == "localhost" || self.host == "127.0.0.1")
    }
}

/// What one delivery gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer: why (connection refused, timeout, a private address, TLS).
    Failed(String),
}

impl Delivered {
    /// Whether it counts as delivered (a 2xx answer).
    pub fn ok(&self) -> bool {
        matches!(self, Delivered::Status(s) if (200..300).contains(s))
    }
}

/// What an endpoint answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, or `None` for a body over [`RESPONSE_BYTES_MAX`] or cut short.
    pub body: Option<Vec<u8>>,
    /// The headers of a signed answer, which a partner's answers carry (merchants' webhook
    /// receivers send none, and their deliveries never read them).
    pub signed: SignedHeaders,
}

/// A signed answer's headers (Alipay+'s): each present as text of at most
/// [`SIGNED_HEADER_BYTES_MAX`] bytes, or `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Client-Id`.
    pub client_id: Option<String>,
    /// `Response-Time`.
    pub response_time: Option<String>,
    /// `Signature`.
    pub signature: Option<String>,
}

impl SignedHeaders {
    fn of(headers: &hyper::HeaderMap) -> SignedHeaders {
        let text = |name: &str| {
            headers
                .get(name)
                .filter(|v| v.len() <= SIGNED_HEADER_BYTES_MAX)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        SignedHeaders {
            client_id: text("client-id"),
            response_time: text("response-time"),
            signature: text("signature"),
        }
    }
}

/// One endpoint's connection, kept between deliveries.
pub struct Connection {
    target: Target,
    allow_private: bool,
    sender: Option<SendRequest<http_body_util_full::Full>>,
}

impl Connection {
    /// A client for `target` that connects at its first delivery.
    pub fn new(target: Target, allow_private: bool) -> Connection {
        Connection { target, allow_private, sender: None }
    }

    /// POSTs `body` with `headers`, in at most [`ATTEMPT_TIMEOUT`].
    pub async fn deliver(&mut self, body: bytes::Bytes, headers: &[(&str, String)]) -> Delivered {
        match self.exchange(body, headers).await {
            Ok(reply) => Delivered::Status(reply.status),
            Err(why) => Delivered::Failed(why),
        }
    }

    /// POSTs `body` with `headers` to the target's URL, in at most [`ATTEMPT_TIMEOUT`] (the
    /// answer's body included): what it answered, or why there was no answer.
    pub async fn exchange(&mut self, body: bytes::Bytes, headers: &[(&str, String)]) -> Result<Reply, String> {
        let path = self.target.path.clone();
        self.call(&path, body, headers, ATTEMPT_TIMEOUT).await
    }

    /// POSTs `body` to `path` on the target's host (a partner's API), in at most `timeout`:
    /// what it answered (as [`Connection::exchange`]), or why there is no answer.
    pub async fn call(
        &mut self,
        path: &str,
        body: bytes::Bytes,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Reply, String> {
        match tokio::time::timeout(timeout, self.send(path, body, headers)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(why)) => {
                self.sender = None;
                Err(why)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {} ms", timeout.as_millis()))
            }
        }
    }

    async fn send(&mut self, path: &str, body: bytes::Bytes, headers: &[(&str, String)]) -> Result<Reply, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| format!("the connection closed: {e}"))?;
        let host = if self.target.port == if self.target.tls { 443 } else { 80 } {
            self.target.host.clone()
        } else {
            format!("{}:{}", self.target.host, self.target.port)
        };
        let mut request = hyper::Request::post(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "Kasa-Webhooks/1");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request.body(http_body_util_full::Full::new(body)).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("the request failed: {e}"))?;
        let status = response.status().as_u16();
        let signed = SignedHeaders::of(response.headers());
        // Read (a bounded part of) the body, so the connection can carry the next delivery;
        // past the bound, or cut short, the connection is dropped and the body is not given.
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)).await
        {
            match frame {
                Ok(frame) => {
                    let data = frame.data_ref().map_or(&[][..], |d| &d[..]);
                    if kept.len() + data.len() > RESPONSE_BYTES_MAX {
                        self.sender = None;
                        return Ok(Reply { status, body: None, signed });
                    }
                    kept.extend_from_slice(data);
                }
                Err(_) => {
                    self.sender = None;
                    return Ok(Reply { status, body: None, signed });
                }
            }
        }
        Ok(Reply { status, body: Some(kept), signed })
    }

    async fn connect(&self) -> Result<SendRequest<http_body_util_full::Full>, String> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| format!("the host does not resolve: {e}"))?
            .collect();
        let allowed = |a: &SocketAddr| {
            is_public(a.ip()) || self.allow_private || (self.target.local_development() && a.ip().is_loopback())
        };
        if addresses.is_empty() {
            return Err("the host resolves to no address".into());
        }
        if let Some(bad) = addresses.iter().find(|a| !allowed(a)) {
            return Err(format!("the host resolves to the private address {}", bad.ip()));
        }
        let mut last = String::new();
        for address in &addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return if self.target.tls { self.handshake_tls(stream).await } else { handshake(stream).await };
                }
                Err(e) => last = format!("connecting to {address}: {e}"),
            }
        }
        Err(last)
    }

    async fn handshake_tls(&self, stream: TcpStream) -> Result<SendRequest<http_body_util_full::Full>, String> {
        let name = rustls::pki_types::ServerName::try_from(self.target.host.clone())
            .map_err(|_| "the host is not a valid TLS server name".to_string())?;
        let stream = tls_connector().connect(name, stream).await.map_err(|e| format!("TLS: {e}"))?;
        handshake(stream).await
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<http_body_util_full::Full>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The TLS client configuration: Mozilla's roots, TLS 1.2 and 1.3.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// A request body of one buffer (what `http-body-util`'s `Full` is, without the crate).
mod http_body_util_full {
    use hyper::body::{Body, Frame, SizeHint};
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// One buffer, sent whole.
    pub struct Full(Option<bytes::Bytes>);

    impl Full {
        pub fn new(data: bytes::Bytes) -> Full {
            Full(Some(data))
        }
    }

    impl Body for Full {
        type Data = bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Infallible>>> {
            Poll::Ready(self.0.take().map(|d| Ok(Frame::data(d))))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.0.as_ref().map_or(0, |d| d.len() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = Target::parse("https://Shop.example/hooks/kasa?x=1").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port, t.path.as_str()), (true, "shop.example", 443, "/hooks/kasa?x=1"));
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port, t.path.as_str()), (false, "127.0.0.1", 8080, "/"));
        let t = Target::parse("https://[2001:db8::1]:8443/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 8443));
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("https://:80/").is_err());
        assert!(Target::parse("https://h:99999/").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_at_delivery() {
        // `localhost` over https is not a development endpoint: it resolves to loopback.
        let mut c = Connection::new(Target::parse("https://localhost:1/").unwrap(), false);
        let d = c.deliver(bytes::Bytes::from_static(b"{}"), &[]).await;
        assert!(matches!(&d, Delivered::Failed(why) if why.contains("private address")), "{d:?}");
        // With the operator's permission it gets as far as connecting (nothing listens).
        let mut c = Connection::new(Target::parse("https://localhost:1/").unwrap(), true);
        let d = c.deliver(bytes::Bytes::from_static(b"{}"), &[]).await;
        assert!(matches!(&d, Delivered::Failed(why) if !why.contains("private address")), "{d:?}");
    }
}
