//! A UDP link conditioner: a proxy between clients and a server that loses,
//! delays, jitters (reorders) and duplicates datagrams, since this kernel has
//! no `netem`. Used by the end-to-end tests and the load test.
//!
//! Clients send to [`LinkConditioner::addr`]; the proxy gives each client its
//! own upstream socket, so the server sees one address per client. Random
//! decisions come from a seeded generator; timing is real time.

use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use galaxy_protocol::link_model::SplitMix64;

/// How one direction of the link misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Fixed delay.
    pub latency: Duration,
    /// Extra random delay in `0..=jitter`; datagrams overtake each other.
    pub jitter: Duration,
}

impl LinkFaults {
    /// A clean link.
    pub const NONE: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        latency: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// The same loss, duplication and delay in a symmetric, reordering link.
    pub fn lossy(loss: f64, duplicate: f64, latency_ms: u64, jitter_ms: u64) -> Self {
        Self {
            loss,
            duplicate,
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
        }
    }
}

/// Counters of what the conditioner did (both directions).
#[derive(Debug, Default)]
pub struct ConditionerStats {
    /// Datagrams received from either side.
    pub received: AtomicU64,
    /// Datagrams dropped on purpose.
    pub dropped: AtomicU64,
    /// Extra copies delivered.
    pub duplicated: AtomicU64,
    /// Datagrams forwarded (copies included).
    pub forwarded: AtomicU64,
    /// Bytes forwarded toward clients.
    pub bytes_to_clients: AtomicU64,
    /// Datagrams waiting in the proxy right now (a backlog means it cannot keep up).
    pub queued: AtomicU64,
}

/// Most datagrams waiting at once; more are dropped (a full router queue).
const MAX_QUEUED: usize = 100_000;

struct Pending {
    due: Instant,
    order: u64,
    upstream: bool,
    client: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.order) == (o.due, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Earliest first in a max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.order).cmp(&(self.due, self.order))
    }
}

/// Faults currently applied, changeable while running.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Client to server.
    pub up: LinkFaults,
    /// Server to client.
    pub down: LinkFaults,
}

/// A running proxy; stops when dropped.
pub struct LinkConditioner {
    addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<ConditionerStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LinkConditioner {
    /// Starts a proxy on 127.0.0.1 (any free port) in front of `server`.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> io::Result<Self> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let faults = Arc::new(Mutex::new(faults));
        let stats = Arc::new(ConditionerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            front,
            server,
            upstreams: HashMap::new(),
            by_upstream: HashMap::new(),
            queue: BinaryHeap::new(),
            order: 0,
            rng: SplitMix64::new(seed),
            faults: faults.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("link-conditioner".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            addr,
            faults,
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// The address clients should send to instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.faults.lock() {
            *f = faults;
        }
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> &ConditionerStats {
        &self.stats
    }
}

impl Drop for LinkConditioner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    front: UdpSocket,
    server: SocketAddr,
    upstreams: HashMap<SocketAddr, UdpSocket>,
    by_upstream: HashMap<SocketAddr, SocketAddr>,
    queue: BinaryHeap<Pending>,
    order: u64,
    rng: SplitMix64,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<ConditionerStats>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        while !self.stop.load(Ordering::Relaxed) {
            let mut busy = false;
            let faults = self.faults.lock().map(|f| *f).unwrap_or_default();
            // Client -> proxy.
            while let Ok((n, from)) = self.front.recv_from(&mut buf) {
                busy = true;
                if self.upstream_for(from).is_some() {
                    self.schedule(true, from, &buf[..n], faults.up);
                }
            }
            // Server -> proxy, per client.
            let mut arrivals = Vec::new();
            for (client, sock) in &self.upstreams {
                while let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if from == self.server {
                        arrivals.push((*client, buf[..n].to_vec()));
                    }
                }
            }
            for (client, data) in arrivals {
                busy = true;
                self.schedule(false, client, &data, faults.down);
            }
            busy |= self.deliver();
            self.stats
                .queued
                .store(self.queue.len() as u64, Ordering::Relaxed);
            // Every pass drains every socket; between passes the proxy
            // sleeps (briefly while traffic flows, so it adds under a
            // millisecond of delay but does not spin a core polling
            // hundreds of sockets under load).
            std::thread::sleep(Duration::from_micros(if busy { 500 } else { 1_000 }));
        }
    }

    fn upstream_for(&mut self, client: SocketAddr) -> Option<&UdpSocket> {
        if !self.upstreams.contains_key(&client) {
            let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
            sock.set_nonblocking(true).ok()?;
            self.by_upstream.insert(sock.local_addr().ok()?, client);
            self.upstreams.insert(client, sock);
        }
        self.upstreams.get(&client)
    }

    fn schedule(&mut self, upstream: bool, client: SocketAddr, data: &[u8], f: LinkFaults) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if self.rng.chance(f.loss) || self.queue.len() >= MAX_QUEUED {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if self.rng.chance(f.duplicate) {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_us = self.rng.below(f.jitter.as_micros() as u64 + 1);
            self.queue.push(Pending {
                due: Instant::now() + f.latency + Duration::from_micros(jitter_us),
                order: self.order,
                upstream,
                client,
                data: data.to_vec(),
            });
            self.order += 1;
        }
    }

    fn deliver(&mut self) -> bool {
        let now = Instant::now();
        let mut any = false;
        while self.queue.peek().is_some_and(|p| p.due <= now) {
            let p = self.queue.pop().expect("peeked");
            any = true;
            let sent = if p.upstream {
                self.upstreams
                    .get(&p.client)
                    .map(|s| s.send_to(&p.data, self.server))
            } else {
                self.stats
                    .bytes_to_clients
                    .fetch_add(p.data.len() as u64, Ordering::Relaxed);
                Some(self.front.send_to(&p.data, p.client))
            };
            if matches!(sent, Some(Ok(_))) {
                self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        (addr, stop, t)
    }

    fn exchange(faults: Faults, n: u32) -> (Vec<u32>, Duration) {
        let (server, stop, t) = echo_server();
        let proxy = LinkConditioner::start(server, faults, 7).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let start = Instant::now();
        for i in 0..n {
            client.send_to(&i.to_le_bytes(), proxy.addr()).unwrap();
            if i % 20 == 19 {
                // Pace the burst so kernel socket buffers, not the proxy, never drop.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok((len, _)) = client.recv_from(&mut buf) {
            assert_eq!(len, 4);
            got.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        (got, elapsed)
    }

    #[test]
    fn clean_link_forwards_everything_in_order() {
        let (got, _) = exchange(Faults::default(), 200);
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn faults_drop_duplicate_delay_and_reorder() {
        let f = LinkFaults::lossy(0.2, 0.1, 30, 20);
        let (got, elapsed) = exchange(Faults { up: f, down: f }, 1000);
        let unique: std::collections::BTreeSet<_> = got.iter().collect();
        // Two passes of 20 % loss keep about 64 %.
        assert!(
            (500..780).contains(&unique.len()),
            "{} arrived",
            unique.len()
        );
        assert!(got.len() > unique.len(), "no duplicates");
        assert!(got.windows(2).any(|w| w[0] > w[1]), "no reordering");
        assert!(
            elapsed >= Duration::from_millis(60),
            "no delay: {elapsed:?}"
        );
    }
}
