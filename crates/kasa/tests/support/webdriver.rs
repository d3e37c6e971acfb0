//! A minimal WebDriver client for the approval page's browser test: it starts `chromedriver`
//! on a free port, opens a headless Chromium, and speaks the W3C WebDriver protocol (JSON over
//! HTTP/1.1) through the project's own test client, one connection per command. Only what
//! the test uses: navigate, find by CSS selector, type, click, read text, URL and cookies.
//!
//! The browser comes from Debian's packages (`.ci/install-browser`); when `chromedriver` is
//! missing the test runs that script once, and fails with what to do if it cannot.

use kasa::client::Client;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to start listening.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long a form's submit may take to load its answer (an Argon2 check and a journal sync).
const NAVIGATION_WAIT: Duration = Duration::from_secs(30);

/// A headless Chromium driven through chromedriver; both end when dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

/// `chromedriver` on PATH (or Debian's `/usr/bin/chromedriver`), installed by
/// `.ci/install-browser` if it is missing.
fn chromedriver() -> PathBuf {
    let find = || {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|p| p.join("chromedriver")).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/chromedriver")])
            .find(|p| p.is_file())
    };
    if let Some(found) = find() {
        return found;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/install-browser");
    eprintln!("chromedriver not found: running {}", script.display());
    let status = Command::new("bash").arg(&script).status();
    find().unwrap_or_else(|| {
        panic!(
            "the approval page's browser test needs Chromium and chromedriver, and {} could not install them \
             ({status:?}): run it as root, or `apt-get install chromium chromium-driver`",
            script.display()
        )
    })
}

impl Browser {
    /// A headless Chromium whose preferred language is `lang` (`ko-KR`, `en-US`).
    pub fn start(lang: &str) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut browser = Browser { driver, addr, session: String::new() };
        let deadline = Instant::now() + START_WAIT;
        while !matches!(browser.call("GET", "/status", None), Ok(status) if status["ready"] == true) {
            assert!(Instant::now() < deadline, "chromedriver did not start within {START_WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--lang={lang}")],
            "prefs": {"intl.accept_languages": lang},
        });
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}});
        let session = browser.call("POST", "/session", Some(&caps)).expect("a browser session");
        browser.session = session["sessionId"].as_str().expect("a session id").to_string();
        browser
    }

    /// One WebDriver command: its `value`, or the error WebDriver answered.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut c = Client::connect(self.addr, "").map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let headers = [("Content-Type", "application/json; charset=utf-8")];
        let r = c.request(method, path, &headers, body.as_bytes()).map_err(|e| e.to_string())?;
        let value = r.json()["value"].clone();
        if r.status == 200 {
            Ok(value)
        } else {
            Err(format!("{method} {path}: {} {value}", r.status))
        }
    }

    /// A command of this session that must succeed.
    #[track_caller]
    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    /// Loads `url` and waits for it.
    pub fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({"url": url})));
    }

    /// The URL the browser is at.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The document's title.
    pub fn title(&self) -> String {
        self.session_call("GET", "/title", None).as_str().unwrap_or_default().to_string()
    }

    /// The elements that match a CSS selector.
    pub fn all(&self, css: &str) -> Vec<String> {
        let found = self.session_call("POST", "/elements", Some(&json!({"using": "css selector", "value": css})));
        found.as_array().into_iter().flatten().filter_map(|e| e[ELEMENT].as_str().map(str::to_string)).collect()
    }

    /// The one element that matches a CSS selector.
    #[track_caller]
    pub fn find(&self, css: &str) -> String {
        let mut found = self.all(css);
        assert_eq!(found.len(), 1, "one {css} on {}: {}", self.url(), self.text("body"));
        found.remove(0)
    }

    /// Types `text` into the element `css`.
    pub fn type_in(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_call("POST", &format!("/element/{element}/value"), Some(&json!({"text": text})));
    }

    /// Clicks the element `css`, a form's button, and waits until the browser left the page
    /// for the answer: a click can return before the navigation it starts, and an answer
    /// may come back to the same URL, so the sign is that the old page's `<main>` is gone.
    pub fn click(&self, css: &str) {
        let old = self.find("main");
        let element = self.find(css);
        self.session_call("POST", &format!("/element/{element}/click"), Some(&json!({})));
        let deadline = Instant::now() + NAVIGATION_WAIT;
        let name = format!("/session/{}/element/{old}/name", self.session);
        while self.call("GET", &name, None).is_ok() {
            assert!(Instant::now() < deadline, "clicking {css} did not leave the page in {NAVIGATION_WAIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The rendered text of the element `css`.
    pub fn text(&self, css: &str) -> String {
        let found = self.session_call("POST", "/element", Some(&json!({"using": "css selector", "value": css})));
        let element = found[ELEMENT].as_str().unwrap_or_default().to_string();
        self.session_call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or_default().to_string()
    }

    /// The `data-state` of the page's `<main>` (see the page's `render.rs`).
    pub fn state(&self) -> String {
        let main = self.find("main");
        let state = self.session_call("GET", &format!("/element/{main}/attribute/data-state"), None);
        state.as_str().unwrap_or_default().to_string()
    }

    /// The value of the cookie `name` (HttpOnly ones too: WebDriver sees them).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.session_call("GET", "/cookie", None);
        cookies.as_array()?.iter().find(|c| c["name"] == name).and_then(|c| c["value"].as_str()).map(str::to_string)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
