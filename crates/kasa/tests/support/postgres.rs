//! A throwaway PostgreSQL server for the read model's tests: `initdb` on a temporary
//! directory, `pg_ctl` on a free port on 127.0.0.1 (its unix socket in the same directory),
//! stopped at the end (`Drop`). The binaries are found on PATH or in
//! `/usr/lib/postgresql/*/bin` (Debian's layout); when they are missing, `.ci/install-postgres`
//! installs Debian's `postgresql` package. PostgreSQL refuses to run as root: as root, the
//! server runs as the `postgres` user (or `nobody`) through `runuser`, on a directory given
//! to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway PostgreSQL server.
pub struct Postgres {
    /// The temporary directory: `data/` (the cluster), `sock/`, `log`.
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The user PostgreSQL runs as, when the tests run as root.
    run_as: Option<String>,
    pub port: u16,
}

impl Postgres {
    /// Initialises and starts a server.
    pub fn start() -> Postgres {
        let bin = binaries();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = run_as();
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        if let Some(user) = &run_as {
            let status = Command::new("chown").arg("-R").arg(user).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown {} to {user}", dir.path().display());
        }
        let port = free_port();
        let pg = Postgres { dir, bin, run_as, port };
        let data = pg.dir.path().join("data");
        let status = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "kasa", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        pg.start_again();
        pg
    }

    /// The URL of its `postgres` database, as user `kasa` (trusted: any password is taken).
    pub fn url(&self) -> String {
        format!("postgres://kasa@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().join("sock").display()
        );
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run pg_ctl start");
        assert!(status.success(), "pg_ctl start failed: {}", self.log());
    }

    /// Stops the server at once (`immediate`: as a crash would).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            None => Command::new(path),
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory of `initdb` and `pg_ctl`, installing them if they are missing.
fn binaries() -> PathBuf {
    if let Some(dir) = find_binaries() {
        return dir;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/install-postgres");
    let status = Command::new(&script).status().expect("run .ci/install-postgres");
    assert!(status.success(), "PostgreSQL's initdb and pg_ctl are missing and .ci/install-postgres failed");
    find_binaries().expect("initdb and pg_ctl after .ci/install-postgres")
}

fn find_binaries() -> Option<PathBuf> {
    // Debian's versioned directories first (PATH may hold only wrappers), newest first.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    if let Some(newest) = versions.pop() {
        return Some(newest);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// As root, the user to run PostgreSQL as.
fn run_as() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let exists = |user: &str| Command::new("id").arg("-u").arg(user).output().is_ok_and(|o| o.status.success());
    ["postgres", "nobody"].into_iter().find(|u| exists(u)).map(str::to_string)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().unwrap().port()
}

/// Runs `sql` on `url` and gives every row as strings (a column's text, `NULL` as "null").
#[track_caller]
pub fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    match run(url, sql) {
        Ok(rows) => rows,
        Err(error) => panic!("{sql}: {error}"),
    }
}

/// [`query`], or `None` if PostgreSQL refused it (or could not be reached).
pub fn try_query(url: &str, sql: &str) -> Option<Vec<Vec<String>>> {
    run(url, sql).ok()
}

fn run(url: &str, sql: &str) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).unwrap_or("null").to_string()).collect())
                }
                _ => None,
            })
            .collect())
    })
}
