//! A local `nats-server` with JetStream on a free port and a temporary
//! store, stopped (and its store removed) on drop: for tests, reports and
//! trying a cluster on one machine.

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
    /// Starts `nats-server -js` on a loopback port it picks itself (so
    /// servers started side by side never race for one), with a fresh
    /// store, and waits until it accepts connections.
    pub fn start() -> Result<NatsServer, NatsServerError> {
        let binary = binary().ok_or(NatsServerError::NotInstalled)?;
        let start = |e: std::io::Error| NatsServerError::Start(e.to_string());
        let dir = std::env::temp_dir().join(format!(
            "galaxy-nats-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(start)?;
        // `-p -1`: a random free port, written to `<dir>/nats-server_<pid>.ports`.
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(&dir)
            .arg("-sd")
            .arg(dir.join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(start)?;
        let mut server = NatsServer {
            child,
            dir,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(port) = server.port()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                server.url = format!("nats://127.0.0.1:{port}");
                return Ok(server);
            }
            if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
                return Err(NatsServerError::Start(
                    "no client port announced within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client port from the server's ports file, once it is written
    /// (`{"nats":["nats://127.0.0.1:PORT"]}`).
    fn port(&self) -> Option<u16> {
        let file = self
            .dir
            .join(format!("nats-server_{}.ports", self.child.id()));
        let text = std::fs::read_to_string(file).ok()?;
        let after = &text[text.find("nats://")? + "nats://".len()..];
        let end = after.find('"')?;
        after[..end].rsplit(':').next()?.parse().ok()
    }
}

/// Numbers the store directories of one process's servers.
static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
