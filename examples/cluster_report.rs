//! Cluster report: planned handoffs and kill -9 failovers between real
//! `galaxy_rts server --cluster` processes, timed and audited.
//!
//! ```text
//! cargo run --release --example cluster_report -- --handoffs 120 --kills 5 --units 200 --json
//! ```
//!
//! Starts its own `nats-server` (JetStream, free port, temporary store) and
//! three dedicated servers (ids 1..3, one bot with `--units` units each in
//! its home sector; bots of different servers never meet, so no unit dies
//! and none is born after the start). Then:
//!
//! - **Handoffs**: picks a sector at random and asks its owner
//!   (`Cluster::request_migration`) to hand it to another live server;
//!   waits until an observer on the owners bucket sees the new owner.
//!   `handoff_ms` is what the old owner reports (`handed sector .. in X
//!   ms`: from sending the drained state to the new owner's confirmation);
//!   `freeze_ms` is from the old owner's drain (`handing sector` log line)
//!   to the new owner's import (`took over` log line), by the servers' log
//!   timestamps: how long the sector's units stand still;
//!   `request_to_owned_ms` is from the request to the observer seeing the
//!   new owner (polled every 2 ms).
//! - **Kills**: every `handoffs / (kills + 1)` handoffs, kill -9 a server
//!   that owns a sector (rotating), time until an observer (polling every
//!   10 ms) sees each of its sectors owned by a survivor (`failover_ms`),
//!   then restart that server id (it rejoins owning nothing and spawns no
//!   bots; later handoffs may give it sectors again).
//! - **Census** (after 2 s of quiet): the units the live servers report in
//!   their status lines against the units spawned at the start:
//!   `units_lost`, `units_duplicated`. Each handoff's `N units drained` is
//!   checked against the new owner's `took over .. N units`, and each
//!   adoption's `N units restored` against the dead owner's last snapshot.
//! - **Double owners**: `double_owner_events` counts (a) entries of a
//!   sector's owner history (the KV bucket's revisions) whose epoch does not
//!   grow, or whose server equals the previous entry's (the same owner
//!   written twice: no owner change explains it), and (b) every `lost
//!   sector` line of any server (a server that acted for a sector someone
//!   else owned). Owner changes in the history that none of the report's
//!   handoffs or failovers explains are counted apart
//!   (`unexplained_owner_changes`).
//!
//! - **Fencing of snapshots**: after each handoff the stored snapshot of
//!   the sector must carry the new owner's epoch (`stale_snapshot_writes`
//!   counts handoffs after which it did not), and at the end every sector's
//!   snapshot must carry its owner's epoch (`stale_snapshots`). A sector
//!   whose owner answers a handoff with "not ours" while the owners table
//!   names it is counted in `stuck_sectors` and left alone until its owner
//!   changes (a kill hands it to an heir).
//!
//! The servers run without their balancer (`--balance-every 0`): every
//! owner change is the report's own. `--logs DIR` keeps every server's
//! log. Progress goes to stderr; the table (and with `--json` one JSON
//! line) to stdout. Children are killed on exit and on panic.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use galaxy_cluster::SectorSnapshot;
use galaxy_cluster::{Cluster, ClusterConfig, NatsServer, Ownership};
use galaxy_protocol::SectorId;
use galaxy_protocol::link_model::SplitMix64;

/// Sector scale of the servers (their default: 8 km sectors).
const SCALE: u8 = 3;
/// Snapshot interval of the servers, in seconds.
const SNAPSHOT_EVERY: f32 = 0.5;
/// How long a handoff may take before it counts as failed.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a failover may take before it counts as failed.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(20);

struct Args {
    handoffs: u32,
    kills: u32,
    units: u32,
    lease_ms: u64,
    seed: u64,
    json: bool,
    logs: Option<PathBuf>,
}

const USAGE: &str = "usage: cluster_report [--handoffs 120] [--kills 5] [--units 200] [--lease-ms 2000] [--seed 1] [--logs DIR] [--json]";

fn parse() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.iter().any(|x| x == "--help" || x == "-h") {
        return Err(USAGE.into());
    }
    let known = [
        "--handoffs",
        "--kills",
        "--units",
        "--lease-ms",
        "--seed",
        "--logs",
        "--json",
    ];
    let mut i = 0;
    while i < a.len() {
        if !known.contains(&a[i].as_str()) {
            return Err(format!("unknown argument {:?}\n{USAGE}", a[i]));
        }
        i += if a[i] == "--json" { 1 } else { 2 };
    }
    let get = |f: &str, d: u64| -> Result<u64, String> {
        match a.iter().position(|x| x == f) {
            Some(i) => a
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{f} needs a whole number\n{USAGE}")),
            None => Ok(d),
        }
    };
    Ok(Args {
        handoffs: get("--handoffs", 120)? as u32,
        kills: get("--kills", 5)? as u32,
        units: get("--units", 200)?.max(1) as u32,
        lease_ms: get("--lease-ms", 2000)?.max(100),
        seed: get("--seed", 1)?,
        json: a.iter().any(|x| x == "--json"),
        logs: a
            .iter()
            .position(|x| x == "--logs")
            .and_then(|i| a.get(i + 1))
            .map(PathBuf::from),
    })
}

// ---------------------------------------------------------------- processes

/// The `galaxy_rts` binary next to this example (target/<profile>/), built
/// first (same profile) if it is missing or older than the example.
fn server_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("GALAXY_RTS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/examples/cluster_report -> target/<profile>/galaxy_rts
    let dir = me
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let bin = dir.join(format!("galaxy_rts{}", std::env::consts::EXE_SUFFIX));
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (mtime(&bin), mtime(&me)) {
        (None, _) => true,
        (Some(b), Some(e)) => b < e,
        (Some(_), None) => false,
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--bin", "galaxy_rts"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        eprintln!(
            "cluster_report: {} is missing or older than this example; building it: {cargo} build{} --bin galaxy_rts",
            bin.display(),
            if cfg!(debug_assertions) {
                ""
            } else {
                " --release"
            }
        );
        let ok = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("{cargo} build: {e}"))?
            .success();
        if !ok {
            return Err("building galaxy_rts failed".into());
        }
    }
    if !bin.is_file() {
        return Err(format!("{} not found", bin.display()));
    }
    Ok(bin)
}

/// One log line: when this process read it, and the text.
#[derive(Clone)]
struct Line {
    at: Instant,
    text: String,
}

/// One `galaxy_rts server --cluster` process, its log collected line by line.
struct ServerProcess {
    id: u32,
    child: Child,
    log: Arc<Mutex<Vec<Line>>>,
    dead: bool,
}

impl ServerProcess {
    /// Starts server `id` and waits until it listens and has joined.
    fn start(
        bin: &Path,
        nats: &str,
        id: u32,
        units: u32,
        lease_ms: u64,
    ) -> Result<ServerProcess, String> {
        let mut child = Command::new(bin)
            .args(["server", "--insecure", "--port", "0", "--bots", "1"])
            .args(["--units-per-bot", &units.to_string()])
            .args(["--status-every", "0.5", "--cluster", nats])
            .args(["--server-id", &id.to_string()])
            .args(["--snapshot-every", &SNAPSHOT_EVERY.to_string()])
            .args(["--lease-ms", &lease_ms.to_string()])
            // The report moves sectors itself: no balancer moving them too.
            .args(["--balance-every", "0"])
            // The report moves sectors itself; the automatic balancer stays off.
            .args(["--balance-every", "0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for text in BufReader::new(stream).lines().map_while(Result::ok) {
                    let line = Line {
                        at: Instant::now(),
                        text,
                    };
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let mut server = ServerProcess {
            id,
            child,
            log,
            dead: false,
        };
        server.wait_for("listening on", 0, Duration::from_secs(60))?;
        server.wait_for("joined cluster", 0, Duration::from_secs(30))?;
        Ok(server)
    }

    fn home(&self) -> SectorId {
        SectorId::new(2 * i64::from(self.id), 0, SCALE)
    }

    fn lines(&self) -> Vec<Line> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn len(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The first line after the first `skip` containing every needle.
    fn find(&self, needles: &[&str], skip: usize) -> Option<Line> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .skip(skip)
            .find(|l| needles.iter().all(|n| l.text.contains(n)))
            .cloned()
    }

    /// Waits for a line containing `needle` after the first `skip`.
    fn wait_for(&mut self, needle: &str, skip: usize, timeout: Duration) -> Result<Line, String> {
        self.wait_for_all(&[needle], skip, timeout)
    }

    fn wait_for_all(
        &mut self,
        needles: &[&str],
        skip: usize,
        timeout: Duration,
    ) -> Result<Line, String> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.find(needles, skip) {
                return Ok(l);
            }
            let exited = self.child.try_wait().ok().flatten();
            if start.elapsed() > timeout || exited.is_some() {
                let tail: Vec<String> = self
                    .lines()
                    .iter()
                    .rev()
                    .take(15)
                    .rev()
                    .map(|l| l.text.clone())
                    .collect();
                return Err(format!(
                    "server {}: no line with {needles:?} within {timeout:?}{}; last lines:\n{}",
                    self.id,
                    exited
                        .map(|s| format!(" (it exited: {s})"))
                        .unwrap_or_default(),
                    tail.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// kill -9; returns when the process is gone.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dead = true;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.dead {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An observer on the cluster's buckets (server id 0: no lease, never claims).
struct Observer {
    rt: tokio::runtime::Runtime,
    cluster: Cluster,
}

impl Observer {
    /// The stored snapshot of `sector` if it was written at another epoch
    /// than `owner_epoch` (nobody but the owner may write it).
    fn stale_snapshot(&self, sector: SectorId, owner_epoch: u64) -> Option<SectorSnapshot> {
        self.rt
            .block_on(self.cluster.read_snapshot_entry(sector))
            .ok()
            .flatten()
            .map(|(snap, _)| snap)
            .filter(|snap| snap.epoch != owner_epoch)
    }

    fn new(url: &str, lease_ms: u64) -> Result<Observer, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut config = ClusterConfig::new(url, 0);
        config.lease = Duration::from_millis(lease_ms);
        let cluster = rt
            .block_on(Cluster::connect(config))
            .map_err(|e| format!("observer cannot connect to {url}: {e}"))?;
        Ok(Observer { rt, cluster })
    }

    fn owner(&self, s: SectorId) -> Option<Ownership> {
        self.rt.block_on(self.cluster.owner(s)).ok().flatten()
    }

    fn table(&self) -> BTreeMap<SectorId, Ownership> {
        self.rt
            .block_on(self.cluster.ownership_table())
            .unwrap_or_default()
    }

    fn history(&self, s: SectorId) -> Vec<Ownership> {
        self.rt
            .block_on(self.cluster.owner_history(s))
            .unwrap_or_default()
    }

    /// Units and structures of a sector's last snapshot, and its units only.
    fn snapshot_counts(&self, s: SectorId) -> Option<(usize, usize, SystemTime)> {
        let (snap, at) = self
            .rt
            .block_on(self.cluster.read_snapshot_entry(s))
            .ok()
            .flatten()?;
        let units = snap
            .units
            .iter()
            .filter(|c| !galaxy_sim::is_structure(c.unit.kind()))
            .count();
        Some((snap.units.len(), units, at))
    }
}

// ---------------------------------------------------------------- parsing

/// The number just before `suffix` in `line`, e.g. `num_before(l, " units drained")`.
fn num_before(line: &str, suffix: &str) -> Option<f64> {
    let head = &line[..line.find(suffix)?];
    head.split_whitespace().last()?.parse().ok()
}

/// The tracing timestamp at the start of a log line
/// (`2026-11-25T06:36:33.354023Z`), as seconds since the Unix epoch.
fn log_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let h: f64 = t.next()?.parse().ok()?;
    let min: f64 = t.next()?.parse().ok()?;
    let s: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile (0 for no samples).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

// ---------------------------------------------------------------- the run

/// The report's numbers; the JSON line has exactly these fields.
#[derive(serde::Serialize, Default)]
struct Report {
    servers: u32,
    units_per_server: u32,
    lease_ms: u64,
    snapshot_every_s: f32,
    handoffs_requested: u32,
    handoffs: u32,
    failed_handoffs: u32,
    handoff_ms_p50: f64,
    handoff_ms_p99: f64,
    handoff_ms_max: f64,
    freeze_ms_p50: f64,
    freeze_ms_p99: f64,
    freeze_ms_max: f64,
    request_to_owned_ms_p50: f64,
    request_to_owned_ms_p99: f64,
    request_to_owned_ms_max: f64,
    handoff_unit_mismatches: u32,
    /// Sectors the owners table gives to a live server that says it does
    /// not own them (it refused a handoff as "not ours").
    stuck_sectors: u32,
    /// Handoffs not even asked for: no sector left to move.
    no_movable_sector: u32,
    kills: u32,
    failed_failovers: u32,
    failover_ms_p50: f64,
    failover_ms_p99: f64,
    failover_ms_max: f64,
    snapshot_age_at_kill_ms_max: f64,
    restore_mismatches: u32,
    /// Handoffs after which the stored snapshot was not the new owner's.
    stale_snapshot_writes: u32,
    stale_snapshots: u32,
    units_expected: u64,
    units_found: u64,
    units_lost: u64,
    units_duplicated: u64,
    double_owner_events: u32,
    unexplained_owner_changes: u32,
    history_truncated_sectors: u32,
    warnings: u32,
    duration_s: f64,
}

/// Everything worth showing that is not a number.
#[derive(Default)]
struct Notes {
    problems: Vec<String>,
}

impl Notes {
    fn add(&mut self, s: String) {
        eprintln!("cluster_report: {s}");
        self.problems.push(s);
    }
}

struct Run {
    bin: PathBuf,
    url: String,
    units: u32,
    lease_ms: u64,
    observer: Observer,
    /// Live server processes by id.
    live: BTreeMap<u32, ServerProcess>,
    /// Killed ones (their logs still count).
    dead: Vec<ServerProcess>,
    /// Owners each sector is expected to have had, oldest first.
    expected_owners: BTreeMap<SectorId, Vec<u32>>,
    units_expected: u64,
    /// Sectors whose owner (at this epoch) refused to hand them off as
    /// "not ours": left alone until their owner changes.
    stuck: BTreeMap<SectorId, u64>,
    notes: Notes,
    handoff_ms: Vec<f64>,
    freeze_ms: Vec<f64>,
    request_ms: Vec<f64>,
    failover_ms: Vec<f64>,
    snapshot_age_ms: Vec<f64>,
    report: Report,
}

impl Run {
    fn start_server(&mut self, id: u32) -> Result<(), String> {
        let s = ServerProcess::start(&self.bin, &self.url, id, self.units, self.lease_ms)?;
        self.live.insert(id, s);
        Ok(())
    }

    /// One planned handoff of a random sector to another live server.
    fn handoff(&mut self, rng: &mut SplitMix64) {
        self.report.handoffs_requested += 1;
        let table = self.observer.table();
        let candidates: Vec<(SectorId, Ownership)> = table
            .iter()
            .filter(|(s, o)| {
                self.live.contains_key(&o.server) && self.stuck.get(s) != Some(&o.epoch)
            })
            .map(|(&s, &o)| (s, o))
            .collect();
        if candidates.is_empty() || self.live.len() < 2 {
            self.report.failed_handoffs += 1;
            self.report.no_movable_sector += 1;
            if self.report.no_movable_sector == 1 {
                self.notes.add(format!(
                    "handoff {}: no sector left that a live server would hand off (stuck: {:?})",
                    self.report.handoffs_requested, self.stuck
                ));
            }
            return;
        }
        let (sector, before) = candidates[rng.below(candidates.len() as u64) as usize];
        let from = before.server;
        let others: Vec<u32> = self.live.keys().copied().filter(|&id| id != from).collect();
        let to = others[rng.below(others.len() as u64) as usize];
        let s = format!("{sector:?}");
        let skip_from = self.live[&from].len();
        let skip_to = self.live[&to].len();

        let asked = Instant::now();
        if let Err(e) = self
            .observer
            .rt
            .block_on(
                self.observer
                    .cluster
                    .request_migration(from, to, vec![sector]),
            )
        {
            self.report.failed_handoffs += 1;
            self.notes.add(format!("request_migration failed: {e}"));
            return;
        }
        let owned = loop {
            if let Some(o) = self.observer.owner(sector).filter(|o| o.server != from) {
                break Some((o, asked.elapsed()));
            }
            // The old owner refused or gave up: no need to wait any longer.
            let f = &self.live[&from];
            let not_ours = f.find(&["but it is not ours", &s], skip_from).is_some();
            if not_ours && self.stuck.insert(sector, before.epoch) != Some(before.epoch) {
                self.report.stuck_sectors += 1;
            }
            let refused = not_ours || f.find(&["handing", &s, "failed"], skip_from).is_some();
            if asked.elapsed() > HANDOFF_TIMEOUT || refused {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let Some((now, took)) = owned else {
            self.report.failed_handoffs += 1;
            let why: Vec<String> = self.live[&from]
                .lines()
                .into_iter()
                .skip(skip_from)
                .filter(|l| l.text.contains("WARN"))
                .map(|l| l.text)
                .collect();
            self.notes.add(format!(
                "handoff {} of {s} from {from} to {to}: the sector did not move (waited {:.0} ms); server {from} warned: {why:?}",
                self.report.handoffs_requested,
                ms(asked.elapsed())
            ));
            return;
        };
        if now.server != to || now.epoch <= before.epoch {
            self.notes.add(format!(
                "handoff of {s} from {from} to {to}: the observer sees {now:?} (before {before:?})"
            ));
        }
        self.report.handoffs += 1;
        self.request_ms.push(ms(took));
        self.expected_owners
            .entry(sector)
            .or_default()
            .push(now.server);

        // The servers' own account: drained, handed (timed), taken over.
        let wait = Duration::from_secs(5);
        let to_s = format!("to server {to}");
        let lines = {
            let f = self.live.get_mut(&from).expect("live");
            let drained = f.wait_for_all(&["handing sector", &s, &to_s], skip_from, wait);
            let handed = f.wait_for_all(&["handed sector", &s, &to_s], skip_from, wait);
            let t = self.live.get_mut(&to).expect("live");
            let took = t.wait_for_all(&["took over sector", &s], skip_to, wait);
            (drained, handed, took)
        };
        match lines {
            (Ok(drained), Ok(handed), Ok(took)) => {
                let d = drained.text.as_str();
                if let Some(x) = num_before(&handed.text, " ms: ") {
                    self.handoff_ms.push(x);
                }
                if let (Some(a), Some(b)) = (log_time(d), log_time(&took.text)) {
                    self.freeze_ms.push((b - a) * 1000.0);
                }
                let n_drained = num_before(d, " units drained");
                let n_handed = num_before(&handed.text, " units,");
                let n_took = num_before(&took.text, " units");
                if n_drained.is_none() || n_drained != n_took || n_drained != n_handed {
                    self.report.handoff_unit_mismatches += 1;
                    self.notes.add(format!(
                        "handoff of {s} from {from} to {to}: unit counts differ:\n  {}\n  {}\n  {}",
                        d, handed.text, took.text
                    ));
                }
            }
            (a, b, c) => {
                for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
                    self.notes
                        .add(format!("handoff of {s} from {from} to {to}: {e}"));
                }
            }
        }
        // The stored snapshot must now be the new owner's (it writes one at
        // once when it takes over; nobody else may write after that).
        std::thread::sleep(Duration::from_millis(5));
        if let Some(snap) = self.observer.stale_snapshot(sector, now.epoch) {
            self.report.stale_snapshot_writes += 1;
            self.notes.add(format!(
                "handoff {} of {s} from {from} to {to} (epoch {} -> {}): the stored snapshot is at epoch {}, tick {}, {} units and structures",
                self.report.handoffs_requested,
                before.epoch,
                now.epoch,
                snap.epoch,
                snap.tick,
                snap.units.len()
            ));
        }
    }

    /// kill -9 of a server owning a sector (preferring `prefer`), timed
    /// until its sectors are owned by survivors; then restarts it.
    fn kill(&mut self, prefer: u32) -> Result<(), String> {
        let table = self.observer.table();
        let owns = |id: u32| -> Vec<SectorId> {
            table
                .iter()
                .filter(|(_, o)| o.server == id)
                .map(|(&s, _)| s)
                .collect()
        };
        let ids: Vec<u32> = self.live.keys().copied().collect();
        if ids.len() < 3 {
            self.notes
                .add("kill skipped: fewer than 3 live servers".into());
            return Ok(());
        }
        let start = ids.iter().position(|&i| i == prefer).unwrap_or(0);
        let victim = (0..ids.len())
            .map(|k| ids[(start + k) % ids.len()])
            .find(|&id| !owns(id).is_empty())
            .unwrap_or(prefer);
        let sectors = owns(victim);
        // A status line newer than the last handoff, to compare with the
        // snapshots the heirs restore.
        let skip = self.live[&victim].len();
        let last_status = self
            .live
            .get_mut(&victim)
            .expect("live")
            .wait_for("status:", skip, Duration::from_secs(2))
            .ok();
        let skips: BTreeMap<u32, usize> = self.live.iter().map(|(&id, p)| (id, p.len())).collect();

        let mut proc_ = self.live.remove(&victim).expect("live");
        let killed = Instant::now();
        let killed_at = SystemTime::now();
        proc_.kill9();
        self.dead.push(proc_);
        self.report.kills += 1;
        // The dead server's last snapshots: what the heirs must restore.
        let snaps: BTreeMap<SectorId, (usize, usize, SystemTime)> = sectors
            .iter()
            .filter_map(|&s| self.observer.snapshot_counts(s).map(|c| (s, c)))
            .collect();
        for (_, _, at) in snaps.values() {
            self.snapshot_age_ms
                .push((unix_secs(killed_at) - unix_secs(*at)).max(0.0) * 1000.0);
        }
        let heirs = loop {
            let t = self.observer.table();
            let moved: Option<Vec<(SectorId, u32)>> = sectors
                .iter()
                .map(|s| {
                    t.get(s)
                        .filter(|o| o.server != victim)
                        .map(|o| (*s, o.server))
                })
                .collect();
            if let Some(m) = moved {
                self.failover_ms.push(ms(killed.elapsed()));
                break Some(m);
            }
            if killed.elapsed() > FAILOVER_TIMEOUT {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let Some(heirs) = heirs else {
            self.report.failed_failovers += 1;
            self.notes.add(format!(
                "kill -9 of server {victim}: its sectors {sectors:?} not owned by a survivor within {FAILOVER_TIMEOUT:?}"
            ));
            return Ok(());
        };
        eprintln!(
            "cluster_report: kill -9 server {victim} ({} sectors): owned again after {:.0} ms by {:?}",
            sectors.len(),
            self.failover_ms.last().copied().unwrap_or(0.0),
            heirs.iter().map(|(_, h)| h).collect::<Vec<_>>()
        );
        let mut restored_units = 0usize;
        let mut snapshot_units = 0usize;
        for &(sector, heir) in &heirs {
            self.expected_owners.entry(sector).or_default().push(heir);
            let s = format!("{sector:?}");
            let Some(p) = self.live.get_mut(&heir) else {
                self.notes.add(format!(
                    "{s} adopted by server {heir}, which this report did not start"
                ));
                continue;
            };
            let from = format!("from dead server {victim}");
            match p.wait_for_all(
                &["adopted sector", &s, &from],
                skips[&heir],
                Duration::from_secs(5),
            ) {
                Ok(line) => {
                    let n = num_before(&line.text, " units restored").unwrap_or(-1.0) as i64;
                    restored_units += n.max(0) as usize;
                    match snaps.get(&sector) {
                        Some(&(all, units, _)) => {
                            snapshot_units += units;
                            if n != all as i64 {
                                self.report.restore_mismatches += 1;
                                self.notes.add(format!(
                                    "{s}: the snapshot held {all} units and structures, server {heir} restored {n}: {}",
                                    line.text
                                ));
                            }
                        }
                        None => self.notes.add(format!(
                            "{s}: no snapshot of server {victim} to compare with: {}",
                            line.text
                        )),
                    }
                }
                Err(e) => self.notes.add(e),
            }
        }
        if let Some(st) = last_status
            && let Some(n) = num_before(&st.text, " units, tick")
            && n as usize != snapshot_units
        {
            self.notes.add(format!(
                "server {victim} reported {n} units in its last status, its sectors' last snapshots held {snapshot_units} ({restored_units} units and structures restored)"
            ));
        }
        // Restart it: it finds its home owned by someone and spawns nothing.
        self.start_server(victim)?;
        let joined = self.live[&victim]
            .find(&["joined cluster"], 0)
            .map(|l| l.text)
            .unwrap_or_default();
        if !joined.contains("rejoining: no bots") {
            self.units_expected += u64::from(self.units);
            self.notes.add(format!(
                "restarted server {victim} spawned bots (its home was free): {joined}"
            ));
        }
        Ok(())
    }

    /// Counts units against the start, audits the owner histories and the logs.
    fn audit(&mut self) {
        // Settle: no handoff or failover in flight, fresh status lines.
        std::thread::sleep(Duration::from_secs(2));
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(1200));
        let mut found = 0u64;
        for p in self.live.values() {
            let status = p
                .lines()
                .into_iter()
                .rev()
                .find(|l| l.at >= since && l.text.contains("status:"));
            match status.and_then(|l| num_before(&l.text, " units, tick")) {
                Some(n) => found += n as u64,
                None => self
                    .notes
                    .add(format!("server {}: no status line to count", p.id)),
            }
        }
        let r = &mut self.report;
        r.units_expected = self.units_expected;
        r.units_found = found;
        r.units_lost = self.units_expected.saturating_sub(found);
        r.units_duplicated = found.saturating_sub(self.units_expected);
        if r.units_lost + r.units_duplicated > 0 {
            let lines: Vec<String> = self
                .live
                .values()
                .filter_map(|p| {
                    p.lines()
                        .into_iter()
                        .rev()
                        .find(|l| l.text.contains("status:"))
                })
                .map(|l| l.text)
                .collect();
            self.notes.add(format!(
                "census: {found} units found, {} expected:\n  {}",
                self.units_expected,
                lines.join("\n  ")
            ));
        }

        // Owner histories.
        let table = self.observer.table();
        for (&sector, now) in &table {
            let h = self.observer.history(sector);
            if h.len() >= 64 {
                self.report.history_truncated_sectors += 1;
            }
            for w in h.windows(2) {
                if w[1].epoch <= w[0].epoch || w[1].server == w[0].server {
                    self.report.double_owner_events += 1;
                    self.notes.add(format!(
                        "{sector:?}: owner history {:?} then {:?}",
                        w[0], w[1]
                    ));
                }
            }
            if let Some(snap) = self.observer.stale_snapshot(sector, now.epoch) {
                self.report.stale_snapshots += 1;
                self.notes.add(format!(
                    "{sector:?}: its stored snapshot has epoch {} ({} units and structures, tick {}), its owner {now:?}",
                    snap.epoch,
                    snap.units.len(),
                    snap.tick
                ));
            }
            if h.last() != Some(now) {
                self.notes.add(format!(
                    "{sector:?}: history ends with {:?}, the owner is {now:?}",
                    h.last()
                ));
            }
            let servers: Vec<u32> = h.iter().map(|o| o.server).collect();
            let expected = self
                .expected_owners
                .get(&sector)
                .cloned()
                .unwrap_or_default();
            // A truncated history is compared with the tail of what we expect.
            let tail = &expected[expected.len().saturating_sub(servers.len())..];
            if servers != tail {
                let extra = servers
                    .len()
                    .abs_diff(tail.len())
                    .max(servers.iter().zip(tail).filter(|(a, b)| a != b).count());
                self.report.unexplained_owner_changes += extra.max(1) as u32;
                self.notes.add(format!(
                    "{sector:?}: owners in the KV history {servers:?}, expected from the report's handoffs and failovers {expected:?}"
                ));
            }
        }
        // Logs: lost sectors (fenced stale owners), and every warning.
        let mut warn_kinds: BTreeMap<String, u32> = BTreeMap::new();
        for p in self.live.values().chain(self.dead.iter()) {
            for l in p.lines() {
                if l.text.contains("lost sector") {
                    self.report.double_owner_events += 1;
                    self.notes.add(format!("server {}: {}", p.id, l.text));
                }
                if l.text.contains(" WARN ") || l.text.contains(" ERROR ") {
                    self.report.warnings += 1;
                    // `TIME  WARN target: message`: group by the message's start.
                    let msg = l.text.split_once(": ").map_or(l.text.as_str(), |(_, m)| m);
                    let kind: String = msg.chars().take(50).collect();
                    *warn_kinds.entry(kind).or_default() += 1;
                }
            }
        }
        for (kind, n) in warn_kinds {
            self.notes
                .add(format!("{n} server warning(s) like: {kind}..."));
        }
    }
}

fn run(args: &Args) -> Result<(Report, Notes), String> {
    let bin = server_binary()?;
    let started = Instant::now();
    let nats = NatsServer::start().map_err(|e| e.to_string())?;
    eprintln!("cluster_report: nats-server at {}", nats.url);
    let observer = Observer::new(&nats.url, args.lease_ms)?;
    let mut run = Run {
        bin,
        url: nats.url.clone(),
        units: args.units,
        lease_ms: args.lease_ms,
        observer,
        live: BTreeMap::new(),
        dead: Vec::new(),
        expected_owners: BTreeMap::new(),
        units_expected: 0,
        stuck: BTreeMap::new(),
        notes: Notes::default(),
        handoff_ms: Vec::new(),
        freeze_ms: Vec::new(),
        request_ms: Vec::new(),
        failover_ms: Vec::new(),
        snapshot_age_ms: Vec::new(),
        report: Report::default(),
    };
    for id in 1..=3 {
        run.start_server(id)?;
        run.units_expected += u64::from(args.units);
    }
    // Each owns its home.
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in run.live.values() {
        loop {
            match run.observer.owner(p.home()) {
                Some(o) if o.server == p.id => {
                    run.expected_owners.insert(p.home(), vec![p.id]);
                    break;
                }
                other if Instant::now() > deadline => {
                    return Err(format!(
                        "server {} does not own its home {:?}: {other:?}",
                        p.id,
                        p.home()
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    eprintln!(
        "cluster_report: 3 servers up with {} units each ({:.1} s); {} handoffs, {} kills",
        args.units,
        started.elapsed().as_secs_f64(),
        args.handoffs,
        args.kills
    );
    // Let a few snapshots be written before anything moves.
    std::thread::sleep(Duration::from_secs(1));

    let mut rng = SplitMix64::new(args.seed);
    let every = (args.handoffs / (args.kills + 1)).max(1);
    let mut kills_done = 0;
    for i in 1..=args.handoffs {
        run.handoff(&mut rng);
        if i % 10 == 0 {
            eprintln!(
                "cluster_report: {i}/{} handoffs ({} failed), last {:.2} ms (request to owned {:.1} ms)",
                args.handoffs,
                run.report.failed_handoffs,
                run.handoff_ms.last().copied().unwrap_or(0.0),
                run.request_ms.last().copied().unwrap_or(0.0),
            );
        }
        if i % every == 0 && kills_done < args.kills {
            run.kill(kills_done % 3 + 1)?;
            kills_done += 1;
        }
    }
    while kills_done < args.kills {
        run.kill(kills_done % 3 + 1)?;
        kills_done += 1;
    }
    eprintln!("cluster_report: settling, then counting");
    run.audit();

    let r = &mut run.report;
    r.servers = 3;
    r.units_per_server = args.units;
    r.lease_ms = args.lease_ms;
    r.snapshot_every_s = SNAPSHOT_EVERY;
    r.handoff_ms_p50 = pct(&run.handoff_ms, 0.5);
    r.handoff_ms_p99 = pct(&run.handoff_ms, 0.99);
    r.handoff_ms_max = max(&run.handoff_ms);
    r.freeze_ms_p50 = pct(&run.freeze_ms, 0.5);
    r.freeze_ms_p99 = pct(&run.freeze_ms, 0.99);
    r.freeze_ms_max = max(&run.freeze_ms);
    r.request_to_owned_ms_p50 = pct(&run.request_ms, 0.5);
    r.request_to_owned_ms_p99 = pct(&run.request_ms, 0.99);
    r.request_to_owned_ms_max = max(&run.request_ms);
    r.failover_ms_p50 = pct(&run.failover_ms, 0.5);
    r.failover_ms_p99 = pct(&run.failover_ms, 0.99);
    r.failover_ms_max = max(&run.failover_ms);
    r.snapshot_age_at_kill_ms_max = max(&run.snapshot_age_ms);
    r.duration_s = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.logs {
        save_logs(dir, &run).map_err(|e| format!("--logs {}: {e}", dir.display()))?;
    }
    let report = std::mem::take(&mut run.report);
    let notes = std::mem::take(&mut run.notes);
    // `run` (servers) and then `nats` are dropped here: every child killed.
    drop(run);
    drop(nats);
    Ok((report, notes))
}

/// Writes every server's log (the killed ones' too) to `dir`.
fn save_logs(dir: &Path, run: &Run) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut runs: BTreeMap<u32, u32> = BTreeMap::new();
    for p in run.dead.iter().chain(run.live.values()) {
        let n = runs.entry(p.id).or_default();
        *n += 1;
        let text: Vec<String> = p.lines().into_iter().map(|l| l.text).collect();
        let path = dir.join(format!("server-{}-run-{n}.log", p.id));
        std::fs::write(&path, text.join("\n") + "\n")?;
    }
    eprintln!("cluster_report: server logs in {}", dir.display());
    Ok(())
}

fn print_table(r: &Report, notes: &Notes) {
    let f = |x: f64| format!("{x:.2}");
    let rows: Vec<(&str, String)> = vec![
        (
            "servers x units",
            format!("{} x {}", r.servers, r.units_per_server),
        ),
        (
            "lease / snapshot every",
            format!("{} ms / {} s", r.lease_ms, r.snapshot_every_s),
        ),
        (
            "handoffs (ok / requested)",
            format!("{} / {}", r.handoffs, r.handoffs_requested),
        ),
        ("failed handoffs", r.failed_handoffs.to_string()),
        (
            "handoff_ms p50 / p99 / max",
            format!(
                "{} / {} / {}",
                f(r.handoff_ms_p50),
                f(r.handoff_ms_p99),
                f(r.handoff_ms_max)
            ),
        ),
        (
            "freeze_ms p50 / p99 / max",
            format!(
                "{} / {} / {}",
                f(r.freeze_ms_p50),
                f(r.freeze_ms_p99),
                f(r.freeze_ms_max)
            ),
        ),
        (
            "request_to_owned_ms p50 / p99 / max",
            format!(
                "{} / {} / {}",
                f(r.request_to_owned_ms_p50),
                f(r.request_to_owned_ms_p99),
                f(r.request_to_owned_ms_max)
            ),
        ),
        (
            "handoff unit-count mismatches",
            r.handoff_unit_mismatches.to_string(),
        ),
        (
            "stuck sectors (owner says \"not ours\")",
            r.stuck_sectors.to_string(),
        ),
        ("kills (kill -9)", r.kills.to_string()),
        ("failed failovers", r.failed_failovers.to_string()),
        (
            "failover_ms p50 / p99 / max",
            format!(
                "{:.0} / {:.0} / {:.0}",
                r.failover_ms_p50, r.failover_ms_p99, r.failover_ms_max
            ),
        ),
        (
            "snapshot age at kill, max ms",
            format!("{:.0}", r.snapshot_age_at_kill_ms_max),
        ),
        ("restore mismatches", r.restore_mismatches.to_string()),
        (
            "handoffs followed by a stale snapshot",
            r.stale_snapshot_writes.to_string(),
        ),
        (
            "stale snapshots (epoch != owner's) at the end",
            r.stale_snapshots.to_string(),
        ),
        (
            "units expected / found",
            format!("{} / {}", r.units_expected, r.units_found),
        ),
        ("units_lost", r.units_lost.to_string()),
        ("units_duplicated", r.units_duplicated.to_string()),
        ("double_owner_events", r.double_owner_events.to_string()),
        (
            "unexplained_owner_changes",
            r.unexplained_owner_changes.to_string(),
        ),
        ("server warnings", r.warnings.to_string()),
        ("duration", format!("{:.1} s", r.duration_s)),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("cluster report");
    for (k, v) in &rows {
        println!("  {k:<w$}  {v}");
    }
    println!(
        "  handoff_ms: the old owner's `handed sector .. in X ms` (drained state sent -> new owner's confirmation)\n  \
         freeze_ms: old owner's drain log line -> new owner's `took over` log line (units standing still)\n  \
         double_owner_events: owner-history entries whose epoch does not grow or whose server repeats the\n  \
         previous one, plus `lost sector` lines (a server acting for a sector another server owned)\n  \
         stale snapshots: sectors whose stored snapshot was written at another epoch than the owner's"
    );
    if !notes.problems.is_empty() {
        println!("notes:");
        for n in &notes.problems {
            println!("  - {n}");
        }
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok((report, notes)) => {
            print_table(&report, &notes);
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("cluster_report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cluster_report: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_lines() {
        let l = "2026-11-25T06:36:33.354023Z  INFO galaxy_rts::server::cluster::handoff: handed sector SectorId { x: 2, y: 0, scale: 3 } to server 2 (epoch 7) in 2.72 ms: 205 units, 1 held commands forwarded";
        assert_eq!(num_before(l, " ms: "), Some(2.72));
        assert_eq!(num_before(l, " units,"), Some(205.0));
        let t = log_time(l).unwrap();
        let expect = 1_795_588_593.354_023; // date -d 2026-11-25T06:36:33Z +%s
        assert!((t - expect).abs() < 1e-3, "{t}");
        assert_eq!(pct(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(pct(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    }
}
