//! A small HTTP/1.1 receiver on 127.0.0.1 for the tests of Kasa's outgoing calls (webhooks,
//! partner notifications): it reads each request on a kept-alive connection and answers what
//! the test's `answer` says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// One request: its path, headers (lower-case names) and body.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }
}

/// Listens on a free port of 127.0.0.1 and answers each request with `answer`'s status and
/// body; the port.
pub fn listen(answer: impl Fn(Request) -> (u16, String) + Send + Sync + 'static) -> u16 {
    listen_with_headers(move |request| {
        let (status, body) = answer(request);
        (status, Vec::new(), body)
    })
}

/// As [`listen`], with headers in the answers (a partner signs its answers in them).
pub fn listen_with_headers(
    answer: impl Fn(Request) -> (u16, Vec<(String, String)>, String) + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let answer = answer.clone();
            std::thread::spawn(move || serve_connection(stream, &*answer));
        }
    });
    port
}

type Answer = dyn Fn(Request) -> (u16, Vec<(String, String)>, String);

fn serve_connection(stream: std::net::TcpStream, answer: &Answer) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, headers, body) = answer(Request { path, headers, body });
        let headers: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let answer = format!("HTTP/1.1 {status} X\r\n{headers}content-length: {}\r\n\r\n{body}", body.len());
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
