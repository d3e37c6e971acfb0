//! Minimal HTTP/1.1 clients over one keep-alive TCP connection: a blocking one for tests and
//! an async one for the benchmark (many connections on one thread, so that a load of 64
//! connections does not cost 64 threads' context switches on the machine being measured).
//! They speak only what `kasa serve` answers (Content-Length bodies), so that the client's own
//! overhead is a few syscalls per request and the numbers measure the server.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// How long [`Client`] keeps a connection idle before it connects again: under the server's
/// 10 seconds, after which it closes an idle keep-alive connection (as a client's pool
/// would, so that a test that waited on something else does not send into a closed socket).
const IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// One connection to the server.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
    key: String,
    request: Vec<u8>,
    /// The server, and the local address the connection was bound to, to connect again.
    addr: SocketAddr,
    from: Option<std::net::IpAddr>,
    /// When the last response was read (or the connection made).
    last: std::time::Instant,
}

/// A response: status, headers (names in lower case) and body.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Client {
    /// Connects to `addr`, authenticating requests with the operator `key`.
    pub fn connect(addr: SocketAddr, key: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        Client::over(stream, addr, None, key, 1 << 20)
    }

    /// A client over a connected `stream`, with a request buffer of `capacity` bytes to start.
    fn over(
        stream: TcpStream,
        addr: SocketAddr,
        from: Option<std::net::IpAddr>,
        key: &str,
        capacity: usize,
    ) -> anyhow::Result<Client> {
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone()?),
            writer: stream,
            host: addr.to_string(),
            key: key.to_string(),
            request: Vec::with_capacity(capacity),
            addr,
            from,
            last: std::time::Instant::now(),
        })
    }

    /// Connects again if the connection was idle for [`IDLE_MAX`] (the server may have closed
    /// it); keeps the key and the local address.
    fn fresh(&mut self) -> anyhow::Result<()> {
        if self.last.elapsed() < IDLE_MAX {
            return Ok(());
        }
        let timeout = self.writer.read_timeout()?;
        let again = match self.from {
            Some(from) => Client::connect_from(self.addr, from, &self.key)?,
            None => Client::connect(self.addr, &self.key)?,
        };
        self.reader = again.reader;
        self.writer = again.writer;
        self.writer.set_read_timeout(timeout)?;
        self.last = std::time::Instant::now();
        Ok(())
    }

    /// Connects to `addr` from the local address `from` (any of 127.0.0.0/8 reaches a server
    /// on 127.0.0.1), so that tests can act as several clients whose addresses differ (rate
    /// limits are per client address).
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr, key: &str) -> anyhow::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let stream = runtime.block_on(async {
            let socket =
                if from.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.bind(SocketAddr::new(from, 0))?;
            socket.connect(addr).await
        });
        let stream = stream.with_context(|| format!("connecting to {addr} from {from}"))?.into_std()?;
        stream.set_nonblocking(false)?;
        Client::over(stream, addr, Some(from), key, 1 << 16)
    }

    /// Sends one request with exactly these headers (and `Host` and `Content-Length`): no
    /// operator key unless a header carries one. For tests of what each caller may do.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        self.fresh()?;
        write_with_headers(&mut self.request, method, path, &self.host, headers, body);
        self.writer.write_all(&self.request)?;
        self.read_response()
    }

    /// A partner's signed `POST` (Alipay+'s layout, see `kasa_server::partner_signature`):
    /// `Client-Id`, `Request-Time` and `Signature` with key version `version`, no operator key.
    pub fn send_signed(
        &mut self,
        path: &str,
        client_id: &str,
        (signer, version): (&kasa_server::partner_signature::Signer, u32),
        request_time: &str,
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let signature = signature_header(path, client_id, (signer, version), request_time, body);
        self.request("POST", path, &signed_headers(client_id, request_time, &signature), body)
    }

    /// Bounds how long a read of a response may wait (`None`: for ever), so that a test of a
    /// server that stops answering fails instead of hanging.
    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> anyhow::Result<()> {
        self.writer.set_read_timeout(timeout)?;
        Ok(())
    }

    /// Sends a request with an `Authorization` header of your own (or none) instead of the
    /// operator key: for tests of authentication.
    pub fn send_raw(&mut self, head: &str, body: &[u8]) -> anyhow::Result<Response> {
        self.fresh()?;
        self.request.clear();
        self.request.extend_from_slice(head.as_bytes());
        write!(self.request, "Host: {}\r\nContent-Length: {}\r\n\r\n", self.host, body.len())?;
        self.request.extend_from_slice(body);
        self.writer.write_all(&self.request)?;
        self.read_response()
    }

    /// Writes `raw` bytes as they are (a hand-made request, possibly incomplete) and reads a
    /// response: for tests of what the server does with odd requests.
    pub fn send_bytes(&mut self, raw: &[u8]) -> anyhow::Result<Response> {
        self.writer.write_all(raw)?;
        self.read_response()
    }

    /// Sends one request and reads its response.
    pub fn send(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> anyhow::Result<Response> {
        self.fresh()?;
        write_request(&mut self.request, method, path, &self.host, &self.key, content_type, body);
        self.writer.write_all(&self.request)?;
        self.read_response()
    }

    fn read_response(&mut self) -> anyhow::Result<Response> {
        let mut head = Head::default();
        let mut line = String::new();
        loop {
            line.clear();
            if (&mut self.reader).take(HEAD_LINE_BYTES_MAX).read_line(&mut line)? == 0 {
                bail!("connection closed in the response head");
            }
            if head.line(&line)? {
                break;
            }
        }
        let body = if head.chunked {
            self.read_chunks()?
        } else {
            let mut body = vec![0; head.body_length(RESPONSE_BODY_BYTES_MAX)?];
            self.reader.read_exact(&mut body)?;
            body
        };
        self.last = std::time::Instant::now();
        Ok(Response { status: head.status, headers: head.headers, body })
    }
}

impl Client {
    /// A chunked body (a streamed file), its chunks joined.
    fn read_chunks(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // The trailer, if any, ends with a blank line.
                loop {
                    line.clear();
                    if self.reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            line.clear();
            self.reader.read_line(&mut line)?;
        }
    }
}

/// Formats a request with the operator key into `out`.
fn write_request(out: &mut Vec<u8>, method: &str, path: &str, host: &str, key: &str, content_type: &str, body: &[u8]) {
    out.clear();
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

/// Formats a request with exactly `headers` (and `Host` and `Content-Length`) into `out`.
fn write_with_headers(out: &mut Vec<u8>, method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &[u8]) {
    out.clear();
    let _ = write!(out, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

/// The `Signature` header of a partner's signed `POST` of `body` to `path`.
fn signature_header(
    path: &str,
    client_id: &str,
    (signer, version): (&kasa_server::partner_signature::Signer, u32),
    request_time: &str,
    body: &[u8],
) -> String {
    let message = kasa_server::partner_signature::message("POST", path, client_id, request_time, body);
    signer.header(version, &message)
}

/// The headers of a partner's signed request: no operator key.
fn signed_headers<'a>(client_id: &'a str, request_time: &'a str, signature: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("Content-Type", "application/json"),
        ("Client-Id", client_id),
        ("Request-Time", request_time),
        ("Signature", signature),
    ]
}

/// A response head read line by line.
/// The longest line of a response's head this client reads.
const HEAD_LINE_BYTES_MAX: u64 = 16 * 1024;
/// The most header lines of a response this client reads.
const HEADERS_MAX: usize = 128;
/// The longest `Content-Length` body this client takes unless told otherwise.
pub const RESPONSE_BODY_BYTES_MAX: usize = 1 << 30;

#[derive(Default)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    length: Option<usize>,
    chunked: bool,
}

impl Head {
    /// The body's length: the Content-Length (at most `max`), or none for a 204 or 304.
    fn body_length(&self, max: usize) -> anyhow::Result<usize> {
        match (self.length, self.status) {
            (Some(length), _) if length > max => bail!("a response body of {length} bytes (at most {max} are taken)"),
            (Some(length), _) => Ok(length),
            (None, 204 | 304) => Ok(0),
            (None, status) => bail!("a {status} response without Content-Length"),
        }
    }

    /// Takes one line of the head (read with at most [`HEAD_LINE_BYTES_MAX`] bytes); returns
    /// whether it was the blank line that ends it.
    fn line(&mut self, line: &str) -> anyhow::Result<bool> {
        if !line.ends_with('\n') {
            bail!("a response head line longer than {HEAD_LINE_BYTES_MAX} bytes, or cut short");
        }
        let line = line.trim_end();
        if self.status == 0 {
            self.status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("bad status line {line:?}"))?;
            return Ok(false);
        }
        if line.is_empty() {
            return Ok(true);
        }
        if self.headers.len() >= HEADERS_MAX {
            bail!("a response head of more than {HEADERS_MAX} header lines");
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.to_ascii_lowercase();
            if name == "content-length" {
                self.length = Some(value.trim().parse::<usize>()?);
            }
            if name == "transfer-encoding" && value.trim().eq_ignore_ascii_case("chunked") {
                self.chunked = true;
            }
            self.headers.push((name, value.trim().to_string()));
        }
        Ok(false)
    }
}

/// The async twin of [`Client`], for the benchmark's many connections on one thread.
pub struct AsyncClient {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
    host: String,
    key: String,
    request: Vec<u8>,
    body_max: usize,
}

impl AsyncClient {
    /// Authenticates the next requests with `key` (an operator key or a session token).
    pub fn set_key(&mut self, key: &str) {
        if self.key != key {
            self.key = key.to_string();
        }
    }

    /// Connects to `addr`, authenticating requests with the operator `key`.
    pub async fn connect(addr: SocketAddr, key: &str) -> anyhow::Result<AsyncClient> {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(AsyncClient {
            stream: tokio::io::BufStream::with_capacity(1 << 16, 1 << 16, stream),
            host: addr.to_string(),
            key: key.to_string(),
            request: Vec::with_capacity(1 << 20),
            body_max: RESPONSE_BODY_BYTES_MAX,
        })
    }

    /// Takes response bodies of at most `bytes` from now on (a larger `Content-Length` is an
    /// error before anything is allocated).
    pub fn set_body_max(&mut self, bytes: usize) {
        self.body_max = bytes;
    }

    /// Sends one request and reads its response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<Response> {
        write_request(&mut self.request, method, path, &self.host, &self.key, content_type, body);
        self.exchange().await
    }

    /// A partner's signed `POST`, as [`Client::send_signed`] sends it.
    pub async fn send_signed(
        &mut self,
        path: &str,
        client_id: &str,
        signer: (&kasa_server::partner_signature::Signer, u32),
        request_time: &str,
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let signature = signature_header(path, client_id, signer, request_time, body);
        let headers = signed_headers(client_id, request_time, &signature);
        write_with_headers(&mut self.request, "POST", path, &self.host, &headers, body);
        self.exchange().await
    }

    /// Writes the formatted request and reads its response (Content-Length bodies only).
    async fn exchange(&mut self) -> anyhow::Result<Response> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&self.request).await?;
        self.stream.flush().await?;
        let mut head = Head::default();
        let mut line = String::new();
        loop {
            line.clear();
            if (&mut self.stream).take(HEAD_LINE_BYTES_MAX).read_line(&mut line).await? == 0 {
                bail!("connection closed in the response head");
            }
            if head.line(&line)? {
                break;
            }
        }
        if head.chunked {
            bail!("a chunked response (this client reads Content-Length bodies only)");
        }
        let mut body = vec![0; head.body_length(self.body_max)?];
        self.stream.read_exact(&mut body).await?;
        Ok(Response { status: head.status, headers: head.headers, body })
    }
}

/// Reads a starting `kasa serve`'s stdout until it says where it listens (it does so once
/// recovery is done and the port is bound), then keeps draining stdout in the background.
pub fn wait_for_listening(stdout: std::process::ChildStdout) -> anyhow::Result<SocketAddr> {
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            bail!("kasa serve exited before it listened");
        }
        if let Some(addr) = line.trim().strip_prefix("kasa listening on http://") {
            let addr = addr.parse()?;
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            return Ok(addr);
        }
    }
}
