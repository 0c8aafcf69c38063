//! `--hostile N`: N attacking clients beside the fair ones, on a thread of
//! their own. They stand for machines elsewhere, so by default that thread
//! runs at nice 19 (`--attacker-nice`, 0 to share the cores evenly): it
//! takes the CPU the server and the fair clients leave, and what the run
//! measures is the server's handling of the attacks, not two cores shared
//! with attacker work (`attackers_cpu_pct` says how much it got; the
//! message counts say whether the attack kept its pace). Each is a real netcode
//! connection that never speaks the game protocol honestly; attacker `i`
//! does [`Attack::ALL`]`[i % 7]` (all of them do one with `--attack NAME`,
//! e.g. `--attack views_under_limit`). When the server disconnects one, it
//! connects again a second later (same player id), so the pressure lasts
//! the whole run.

use std::collections::BTreeMap;

use bevy_renet::RenetClient;
use galaxy_net::channels::{ACKS, COMMANDS};
use galaxy_protocol::{
    BatchCommand, ClientMessage, SectorId, UpdateAck, ViewUpdate, encode_client,
};

use super::*;

/// What one attacker does, every frame of its thread (60 a second) unless
/// said otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Attack {
    /// 20 small commands a frame (1,200 a second, 20 times the limit).
    Flood,
    /// One command naming 65,536 ids (0..65,536: every player's) a frame.
    HugeIds,
    /// One command a second naming 19,000 ids of other players: under
    /// every rate limit, so it is never disconnected; the simulation stops
    /// looking after `FOREIGN_ID_ALLOWANCE` of them.
    IdsUnderLimit,
    /// A view change a frame, each over another battle (60 a second).
    ViewSpam,
    /// A view change every seventh frame (8.6 a second, under the 40 that
    /// disconnect), each over another battle, and never an ack: the server
    /// would keep every unit it sent; it disconnects the client after
    /// `idle_timeout_secs` owing acks.
    ViewsUnderLimit,
    /// Five messages of random bytes a frame, on both channels.
    Garbage,
    /// One 256 KiB message a second (past `MAX_CLIENT_MESSAGE_BYTES` and
    /// the byte rate limit).
    Oversized,
}

impl Attack {
    pub(crate) const ALL: [Attack; 7] = [
        Attack::Flood,
        Attack::HugeIds,
        Attack::IdsUnderLimit,
        Attack::ViewSpam,
        Attack::ViewsUnderLimit,
        Attack::Garbage,
        Attack::Oversized,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Attack::Flood => "flood",
            Attack::HugeIds => "huge_ids",
            Attack::IdsUnderLimit => "ids_under_limit",
            Attack::ViewSpam => "view_spam",
            Attack::ViewsUnderLimit => "views_under_limit",
            Attack::Garbage => "garbage",
            Attack::Oversized => "oversized",
        }
    }
}

/// What the attackers saw: per attack, connections made, disconnects by
/// the server, messages sent; and the CPU their thread used.
#[derive(Default, Debug)]
pub(crate) struct AttackReport {
    pub(crate) by_attack: BTreeMap<&'static str, AttackCounts>,
    /// The attackers' thread's CPU time over the run, percent of one core.
    pub(crate) cpu_pct: Option<f64>,
}

/// CPU seconds the calling thread has used (`/proc/thread-self/stat`).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th of them, in clock ticks.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// Sets the calling thread's nice value (Linux: per thread).
fn nice_this_thread(nice: i32) {
    // SAFETY: gettid and setpriority take and return plain integers.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if r != 0 {
        eprintln!(
            "attackers: could not set nice {nice}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// One attack's counts over all the attackers doing it.
#[derive(Default, Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct AttackCounts {
    pub(crate) attackers: u64,
    pub(crate) connections: u64,
    pub(crate) disconnected_by_server: u64,
    pub(crate) messages_sent: u64,
}

struct Attacker {
    player: PlayerId,
    attack: Attack,
    app: Option<App>,
    was_connected: bool,
    reconnect_at: f64,
    counts: AttackCounts,
}

/// A renet connection with our settings that never runs the game protocol.
fn raw_client(player: PlayerId, server: std::net::SocketAddr) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(bevy_renet::RenetClientPlugin)
        .insert_resource(NetworkConfig {
            port: 0,
            ..default()
        })
        .insert_resource(ClientTransport::to(ClientAuth::Insecure { player, server }))
        .add_plugins(NetcodeTransportPlugin);
    single_threaded(&mut app);
    app
}

fn batch(player: PlayerId, command: CompressedCommand) -> Vec<u8> {
    encode_client(&ClientMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(0, 0, 0),
        commands: vec![command],
        player_id: player,
    }))
    .expect("a batch encodes")
}

/// This frame's messages of `attack`: `(channel, bytes)`.
fn messages(
    attack: Attack,
    player: PlayerId,
    frame: u64,
    layout: &Layout,
    rng: &mut SplitMix64,
) -> Vec<(u8, Vec<u8>)> {
    let somewhere = |rng: &mut SplitMix64| {
        let o = layout.origin(rng.below(layout.battles), rng.below(2));
        WorldPos::new(o.x + 2_000, o.y + 2_000)
    };
    match attack {
        Attack::Flood => (0..20)
            .map(|k| {
                let units = UnitIdList::from_ids([frame * 20 + k]).expect("one id");
                (COMMANDS, batch(player, CompressedCommand::Stop { units }))
            })
            .collect(),
        Attack::HugeIds => {
            let units = UnitIdList::from_ids(0..65_536).expect("a range");
            let to = somewhere(rng);
            vec![(
                COMMANDS,
                batch(player, CompressedCommand::Move { units, to }),
            )]
        }
        Attack::IdsUnderLimit if frame.is_multiple_of(60) => {
            let start = rng.below(40_000);
            let units = UnitIdList::from_ids(start..start + 19_000).expect("a range");
            let to = somewhere(rng);
            vec![(
                COMMANDS,
                batch(player, CompressedCommand::AttackMove { units, to }),
            )]
        }
        Attack::IdsUnderLimit => Vec::new(),
        Attack::ViewsUnderLimit if !frame.is_multiple_of(7) => Vec::new(),
        Attack::ViewSpam | Attack::ViewsUnderLimit => {
            let view = WorldRect::around(somewhere(rng), 50_000);
            let msg = ClientMessage::ViewUpdate(ViewUpdate {
                view,
                max_update_hz: 0,
                profile: Default::default(),
            });
            vec![(COMMANDS, encode_client(&msg).expect("a view encodes"))]
        }
        Attack::Garbage => {
            let mut msgs: Vec<(u8, Vec<u8>)> = (0..5)
                .map(|k| {
                    let len = 1 + rng.below(1_200) as usize;
                    let bytes = galaxy_protocol::fuzz::random_message(rng, len, 5);
                    (if k % 2 == 0 { COMMANDS } else { ACKS }, bytes)
                })
                .collect();
            // A well-formed ack for sequences never sent.
            let ack = ClientMessage::UpdateAck(UpdateAck {
                latest: rng.next_u64() as u16,
                mask: rng.next_u64(),
            });
            msgs.push((ACKS, encode_client(&ack).expect("an ack encodes")));
            msgs
        }
        Attack::Oversized if frame.is_multiple_of(60) => {
            let mut bytes = vec![4u8]; // BatchCommand's tag
            bytes.extend((0..256 * 1024).map(|_| rng.next_u64() as u8));
            vec![(COMMANDS, bytes)]
        }
        Attack::Oversized => Vec::new(),
    }
}

/// Runs `n` attackers against `server` until `control.stop`; players
/// `first_player..first_player + n`.
pub(crate) fn run_attackers(
    args: &Args,
    n: u64,
    first_player: PlayerId,
    server: std::net::SocketAddr,
    control: &Control,
) -> AttackReport {
    ON_CLIENTS.with(|on| on.set(true));
    if args.attacker_nice != 0 {
        nice_this_thread(args.attacker_nice);
    }
    let cpu_start = thread_cpu_secs();
    let layout = Layout::new(args);
    let mut rng = SplitMix64::new(0xbad);
    let mut attackers: Vec<Attacker> = (0..n)
        .map(|i| Attacker {
            player: first_player + i,
            attack: args
                .attack
                .unwrap_or(Attack::ALL[i as usize % Attack::ALL.len()]),
            app: None,
            was_connected: false,
            reconnect_at: 0.0,
            counts: AttackCounts {
                attackers: 1,
                ..default()
            },
        })
        .collect();
    let frame_time = Duration::from_secs_f64(1.0 / 60.0);
    let start = Instant::now();
    let mut frame = 0u64;
    while !control.stop.load(Ordering::Relaxed) {
        let frame_start = Instant::now();
        let now = start.elapsed().as_secs_f64();
        for a in attackers.iter_mut() {
            if a.app.is_none() && now >= a.reconnect_at {
                a.app = Some(raw_client(a.player, server));
                a.was_connected = false;
            }
            let Some(app) = a.app.as_mut() else { continue };
            app.update();
            let (connected, disconnected) = app
                .world()
                .get_resource::<RenetClient>()
                .map_or((false, true), |c| (c.is_connected(), c.is_disconnected()));
            if connected && !a.was_connected {
                a.was_connected = true;
                a.counts.connections += 1;
            }
            if disconnected {
                if a.was_connected {
                    a.counts.disconnected_by_server += 1;
                }
                a.app = None;
                a.reconnect_at = now + 1.0;
                continue;
            }
            if connected {
                let msgs = messages(a.attack, a.player, frame, &layout, &mut rng);
                let mut client = app.world_mut().resource_mut::<RenetClient>();
                for (channel, bytes) in msgs {
                    client.send_message(channel, bytes);
                    a.counts.messages_sent += 1;
                }
            }
        }
        frame += 1;
        std::thread::sleep(frame_time.saturating_sub(frame_start.elapsed()));
    }
    let mut report = AttackReport {
        cpu_pct: cpu_start
            .zip(thread_cpu_secs())
            .map(|(a, b)| round1((b - a) * 100.0 / start.elapsed().as_secs_f64())),
        ..default()
    };
    for a in attackers {
        let c = report.by_attack.entry(a.attack.name()).or_default();
        c.attackers += a.counts.attackers;
        c.connections += a.counts.connections;
        c.disconnected_by_server += a.counts.disconnected_by_server;
        c.messages_sent += a.counts.messages_sent;
    }
    report
}
