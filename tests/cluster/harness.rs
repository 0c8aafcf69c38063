//! Real processes for cluster tests: `galaxy_rts server --cluster` children
//! whose logs are collected line by line, an observer on the cluster's
//! buckets, and an in-process game client on real UDP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use galaxy_cluster::{Cluster, ClusterConfig, NatsServer};
use galaxy_net::{
    AppReplicationExt, ClientAuth, ClientConnector, ClientReplica, ClientTransport,
    ConnectionStatus, DrawnPosition, GalaxyClientPlugin, NetUnit, NetcodeTransportPlugin, Replica,
    SmoothingPlugin, View,
};
use galaxy_protocol::{QuantizedUnit, SectorId, UnitId, WorldPos, WorldRect};
use galaxy_rts::sim::RtsUnits;

/// One cluster test at a time: each runs three servers and a nats-server,
/// and the timing checks (owned again within 3 s) must not compete for
/// the two cores with another test's processes.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sector scale the test clusters use (the default: 8 km sectors).
pub const SCALE: u8 = 3;
/// Snapshot interval of the test servers, in seconds.
pub const SNAPSHOT_EVERY: f32 = 0.5;

/// One `galaxy_rts server --cluster` process.
pub struct ServerProcess {
    pub id: u32,
    home: SectorId,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    pub addr: SocketAddr,
    dead: bool,
}

impl ServerProcess {
    /// Starts server `id` (one bot with `units` units in its home sector)
    /// and waits until it listens and has joined the cluster.
    pub fn start(nats: &NatsServer, id: u32, units: u32) -> ServerProcess {
        let home = SectorId::new(2 * i64::from(id), 0, SCALE);
        Self::start_with(nats, id, units, home)
    }

    /// Like [`ServerProcess::start`], with its home sector (and scale) chosen.
    pub fn start_with(nats: &NatsServer, id: u32, units: u32, home: SectorId) -> ServerProcess {
        Self::start_args(nats, id, units, home, &["--balance-every", "0"])
    }

    /// Like [`ServerProcess::start_with`], with more arguments (the
    /// balancer is off unless they turn it on).
    pub fn start_args(
        nats: &NatsServer,
        id: u32,
        units: u32,
        home: SectorId,
        extra: &[&str],
    ) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_galaxy_rts"))
            .args(["server", "--insecure", "--port", "0", "--bots", "1"])
            .args(["--units-per-bot", &units.to_string()])
            .args(["--status-every", "0.5", "--cluster", &nats.url])
            .args(["--server-id", &id.to_string()])
            .args(["--snapshot-every", &SNAPSHOT_EVERY.to_string()])
            .args(["--sector-scale", &home.scale.to_string()])
            .args(["--home-sector", &format!("{},{}", home.x, home.y)])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("galaxy_rts runs");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut server = ServerProcess {
            id,
            home,
            child,
            log,
            addr: "0.0.0.0:0".parse().unwrap(),
            dead: false,
        };
        let line = server.wait_for_log("listening on", Duration::from_secs(60));
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("address in the log");
        server.addr = addr.parse().expect("a socket address");
        server.wait_for_log("joined cluster", Duration::from_secs(30));
        server
    }

    /// Its home sector.
    pub fn home(&self) -> SectorId {
        self.home
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a log line containing `needle` (panics with the log after `timeout`).
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            if start.elapsed() > timeout || self.child.try_wait().ok().flatten().is_some() {
                panic!(
                    "server {}: no {needle:?} within {timeout:?}:\n{}",
                    self.id,
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (10 s at most) for a line after the first `skip` containing `needle`.
    pub fn wait_for_log_after(&self, skip: usize, needle: &str) -> String {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(l) = self
                .log()
                .into_iter()
                .skip(skip)
                .find(|l| l.contains(needle))
            {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server {}: no {needle:?} after line {skip}:\n{}",
            self.id,
            self.log().join("\n")
        );
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        self.dead = true;
    }

    /// Sends a signal (`STOP`, `CONT`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{name}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.dead {
            return;
        }
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An observer on the cluster's buckets (no lease, never claims).
pub struct Observer {
    pub rt: tokio::runtime::Runtime,
    pub cluster: Cluster,
}

impl Observer {
    pub fn new(nats: &NatsServer) -> Observer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cluster = rt
            .block_on(Cluster::connect(ClusterConfig::new(nats.url.clone(), 0)))
            .expect("observer connects");
        Observer { rt, cluster }
    }

    /// The current owner's epoch of `s` (it must be owned).
    pub fn epoch(&self, s: SectorId) -> u64 {
        self.rt
            .block_on(self.cluster.owner(s))
            .expect("owner readable")
            .expect("owned")
            .epoch
    }

    pub fn owner(&self, s: SectorId) -> Option<u32> {
        self.rt
            .block_on(self.cluster.owner(s))
            .expect("owner readable")
            .map(|o| o.server)
    }

    /// Polls until `s` is owned by someone other than `not`; returns the
    /// new owner and how long it took.
    pub fn wait_for_new_owner(&self, s: SectorId, not: u32, timeout: Duration) -> (u32, Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(o) = self.owner(s).filter(|&o| o != not) {
                return (o, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{s:?} not owned by another server than {not} within {timeout:?}");
    }
}

/// Servers 1, 2 and 3, each with one bot of `units` units in its home.
pub fn three_servers(nats: &NatsServer, units: u32) -> Vec<ServerProcess> {
    (1..=3)
        .map(|id| ServerProcess::start(nats, id, units))
        .collect()
}

/// The centre of a sector.
pub fn centre(s: SectorId) -> WorldPos {
    let r = s.bounds().unwrap();
    WorldPos::new(
        r.min.x + (r.max.x - r.min.x) / 2,
        r.min.y + (r.max.y - r.min.y) / 2,
    )
}

/// A headless game client watching `view`, trying `servers` in turn.
pub fn client(player: u64, servers: &[SocketAddr], view: WorldRect) -> App {
    let targets = servers
        .iter()
        .map(|&server| ClientAuth::insecure(player, server))
        .collect();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(View(view))
        .insert_resource(ClientTransport { targets })
        .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
        .replicate_unit::<RtsUnits>()
        .add_plugins(SmoothingPlugin::<QuantizedUnit>::default());
    app
}

/// The units the client draws, from its entities: id, drawn position and
/// newest state.
pub fn drawn(app: &App) -> Vec<(UnitId, (f64, f64), QuantizedUnit)> {
    let world = app.world();
    let Some(mut q) = world.try_query::<(&NetUnit, &DrawnPosition, &Replica<QuantizedUnit>)>()
    else {
        return Vec::new();
    };
    q.iter(world)
        .map(|(id, d, r)| (id.0, d.position, r.state))
        .collect()
}

/// Updates the client until `done` or `timeout`; true if done.
pub fn pump_until(app: &mut App, timeout: Duration, mut done: impl FnMut(&App) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        app.update();
        if done(app) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

pub fn connected(app: &App) -> bool {
    *app.world().resource::<ConnectionStatus>() == ConnectionStatus::Connected
}

/// Times the client connected again (after a loss or a redirect).
pub fn reconnects(app: &App) -> u32 {
    let c = app.world().resource::<ClientConnector>();
    c.reconnects + c.redirects
}

/// Unit ids the client's current session delivered (its entities of an
/// earlier session stay a moment longer, until the new one replaces them).
pub fn visible(app: &App) -> Vec<UnitId> {
    let mut ids: Vec<UnitId> = app
        .world()
        .resource::<ClientReplica<QuantizedUnit>>()
        .receiver
        .units()
        .map(|(id, _)| id)
        .collect();
    ids.sort_unstable();
    ids
}
