//! The local AWS emulator (moto in server mode) as a child process of a test.
//!
//! `scripts/emulator install` provides `.venv/` with the pinned moto; each
//! [`Emulator`] is one `moto_server` on a free loopback port, killed when the
//! value is dropped. A watchdog shell also kills it when the test process
//! ends without dropping it (a static, a panic with `panic = abort`, a
//! SIGKILL), so no test run leaves servers behind.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;

pub struct Emulator {
    server: Child,
    /// Closing its stdin (our exit) makes it kill the server.
    watchdog: Child,
    watchdog_stdin: Option<ChildStdin>,
    port: u16,
}

impl Emulator {
    /// Starts a fresh emulator, installing moto first if this test process
    /// has not checked yet.
    pub fn start() -> io::Result<Emulator> {
        install()?;
        let mut last_error = None;
        // The free port can be taken by someone else before moto binds it.
        for _ in 0..START_ATTEMPTS {
            match Self::spawn_on(free_port()?) {
                Ok(e) => return Ok(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("moto_server did not start")))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// Wipes every resource in every region.
    pub fn reset(&self) -> io::Result<()> {
        match http(self.port, "POST", "/moto-api/reset")? {
            200 => Ok(()),
            code => Err(io::Error::other(format!(
                "POST /moto-api/reset answered {code}"
            ))),
        }
    }

    fn spawn_on(port: u16) -> io::Result<Emulator> {
        let root = repo_root();
        let log_path = next_log_path(&root)?;
        let log = std::fs::File::create(&log_path)?;
        let server = Command::new(root.join(".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawning moto_server: {e}")))?;
        let mut watchdog = Command::new("sh")
            .args(["-c", "read -r _; kill \"$1\" 2>/dev/null", "watchdog"])
            .arg(server.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let watchdog_stdin = watchdog.stdin.take();
        let mut emulator = Emulator {
            server,
            watchdog,
            watchdog_stdin,
            port,
        };
        emulator.wait_until_ready(&log_path)?;
        Ok(emulator)
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.server.try_wait()? {
                return Err(io::Error::other(format!(
                    "moto_server exited at start ({status}); log: {}",
                    log_path.display()
                )));
            }
            // The dashboard path answers without changing any state.
            if matches!(http(self.port, "GET", "/moto-api/"), Ok(200)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "moto_server did not answer on port {} within {START_TIMEOUT:?}; log: {}",
                        self.port,
                        log_path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Stop the watchdog first, so it cannot kill a reused pid later.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        drop(self.watchdog_stdin.take());
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/emulator install` once per test process; the script's own
/// file lock keeps parallel test binaries from installing at the same time.
fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let script = repo_root().join("scripts/emulator");
            let out = Command::new(&script)
                .arg("install")
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} install failed ({}):\n{}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
        .map_err(io::Error::other)
}

/// One log file per emulator of this test binary, overwritten by the next
/// run, so logs stay readable after a failure and do not pile up.
fn next_log_path(root: &Path) -> io::Result<PathBuf> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = root.join(".emulator");
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let name = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("test")
        .to_string();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("test-{name}-{n}.log")))
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A bodyless HTTP/1.1 request; returns the status code.
fn http(port: u16, method: &str, path: &str) -> io::Result<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    text.lines()
        .next()
        .and_then(|status_line| status_line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {:.80}", text)))
}

/// The emulator shared by the tests of one binary, lent to one test at a
/// time and wiped before each, so tests cannot see each other's resources.
pub async fn exclusive() -> Exclusive {
    static SHARED: OnceLock<Result<Emulator, String>> = OnceLock::new();
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = TURN.lock().await;
    let emulator = match SHARED.get_or_init(|| Emulator::start().map_err(|e| e.to_string())) {
        Ok(e) => e,
        Err(e) => panic!("starting the emulator: {e}"),
    };
    if let Err(e) = emulator.reset() {
        panic!("resetting the emulator: {e}");
    }
    Exclusive {
        _turn: turn,
        emulator,
    }
}

pub struct Exclusive {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    emulator: &'static Emulator,
}

impl std::ops::Deref for Exclusive {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        self.emulator
    }
}
