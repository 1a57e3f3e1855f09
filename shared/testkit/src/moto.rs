//! A moto server (a DynamoDB and SQS emulator speaking the real wire
//! protocols) for the DynamoDB and SQS tests: one per test binary, started
//! on first use.
//!
//! The server lives in a `static`, and Rust never drops statics, so the end
//! of the test process cannot be left to `Drop`. Instead moto runs under a
//! small `sh` watchdog whose stdin is a pipe from the test process: when
//! the test process ends, however it ends (even SIGKILL), the kernel closes
//! the pipe, the watchdog's `read` returns, and it kills moto. No `prctl`,
//! no `atexit`. A `MotoServer` that is dropped (one not kept in the static)
//! closes the pipe itself and waits for the watchdog to finish.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// moto, then `kill` it when our end of the pipe on fd 3 closes; the script
/// ends when moto ends, so an early death of moto is seen as the child's.
const WATCHDOG: &str = r#"exec 3<&0
"$0" -H 127.0.0.1 -p "$1" </dev/null &
moto=$!
{ read -r _ <&3; kill "$moto" 2>/dev/null; } &
wait "$moto""#;

pub struct MotoServer {
    endpoint: String,
    child: Child,
    /// Closing it stops the server (see the module docs).
    stdin: Option<ChildStdin>,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

static SERVER: OnceLock<Result<MotoServer, String>> = OnceLock::new();

/// The endpoint of this test binary's server, starting it on first use.
/// Panics, with what to do about it, if moto cannot be found or started:
/// a DynamoDB test never silently skips.
pub fn endpoint() -> &'static str {
    match SERVER.get_or_init(MotoServer::start) {
        Ok(server) => &server.endpoint,
        Err(message) => panic!("{message}"),
    }
}

/// An SDK config builder for the shared server: its endpoint, us-east-1 and
/// static test credentials. Build a new client per test: a client keeps
/// connections that belong to the tokio runtime of the test that made them.
pub fn config() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
}

pub fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(config().build())
}

/// An SQS client for the shared server, configured as [`config`] is.
#[allow(dead_code)] // not every test binary that includes this file uses SQS
pub fn sqs_client() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn workspace_root() -> PathBuf {
    // shared/<crate>: the workspace is two levels up.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn install_hint() -> String {
    format!(
        "install it with: cd {} && python3 -m venv .venv && .venv/bin/pip install 'moto[server]' \
         (or point MOTO_SERVER at a moto_server executable)",
        workspace_root().display()
    )
}

impl MotoServer {
    fn start() -> Result<Self, String> {
        let program = match std::env::var_os("MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => workspace_root().join(".venv/bin/moto_server"),
        };
        if !program.is_file() {
            return Err(format!(
                "moto_server not found at {}; {}",
                program.display(),
                install_hint()
            ));
        }
        let port = free_port().map_err(|e| format!("no free port for moto: {e}"))?;
        let log_path = std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(&program)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e}; {}",
                    program.display(),
                    install_hint()
                )
            })?;
        let stdin = child.stdin.take();
        let mut server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            stdin,
        };
        server.wait_until_ready(port, &log_path)?;
        Ok(server)
    }

    fn wait_until_ready(&mut self, port: u16, log_path: &Path) -> Result<(), String> {
        let failed = |why: String| {
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            format!(
                "moto_server did not start: {why}\nlog {}:\n{tail}\n{}",
                log_path.display(),
                install_hint()
            )
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers_http(port) {
                return Ok(());
            }
            // The watchdog ends when moto does.
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(failed(format!("it exited ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "no HTTP answer on port {port} within {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A port nobody listens on now (the OS picks it; there is a small window
/// before moto binds it, acceptable for tests).
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
