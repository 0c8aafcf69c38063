//! A local `nats-server` with JetStream on a free port and a temporary
//! store, stopped (and its store removed) on drop: for tests, reports and
//! trying a cluster on one machine.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` child process.
pub struct NatsServer {
    child: Child,
    dir: PathBuf,
    /// Its URL, `nats://127.0.0.1:PORT`.
    pub url: String,
}

/// Why a local nats-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    /// No `nats-server` binary on `PATH` or in `/usr/sbin`.
    #[error(
        "nats-server not found: install it (apt-get install nats-server; scripts/test.sh does)"
    )]
    NotInstalled,
    /// It could not be started or did not listen in time.
    #[error("nats-server did not start: {0}")]
    Start(String),
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin"])
        .map(|dir| PathBuf::from(dir).join("nats-server"))
        .find(|p| p.is_file())
}

impl NatsServer {
    /// Starts `nats-server -js` on a free loopback port with a fresh store,
    /// and waits until it accepts connections.
    pub fn start() -> Result<NatsServer, NatsServerError> {
        let binary = binary().ok_or(NatsServerError::NotInstalled)?;
        let start = |e: std::io::Error| NatsServerError::Start(e.to_string());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(start)?
            .port();
        let dir = std::env::temp_dir().join(format!("galaxy-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(start)?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(start)?;
        let mut server = NatsServer {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
                return Err(NatsServerError::Start(format!("not listening on {port}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
