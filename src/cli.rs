//! Command-line parsing for the `galaxy_rts` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use galaxy_net::CONFIG_FLAGS;
use galaxy_net::NetworkConfig;

/// What the binary was asked to do.
#[derive(Debug)]
pub enum Command {
    /// Print usage.
    Help,
    /// Run a dedicated server.
    Server(ServerOptions),
    /// Issue a connect token from the server's key file.
    Token(TokenOptions),
    /// Run the game client.
    Client(ClientOptions),
    /// Print the cluster's servers and sector owners.
    ClusterStatus(ClusterStatusOptions),
    /// Play a recorded game (`replay FILE`), or check it (`--verify`).
    Replay(ReplayOptions),
}

/// Options of `replay FILE`.
#[derive(Debug, Default, PartialEq)]
pub struct ReplayOptions {
    /// The recording (from `--record FILE`).
    pub file: PathBuf,
    /// Play it headless to the end, checking every recorded hash, and
    /// exit non-zero on a mismatch.
    pub verify: bool,
    /// Save a PNG of the window after `exit_after` seconds, then exit.
    pub screenshot: Option<PathBuf>,
    /// Stop after this many seconds.
    pub exit_after: Option<f32>,
    /// Playback speed to start at (0.25 to 8).
    pub speed: f32,
}

/// Options of `cluster status`.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterStatusOptions {
    /// NATS URL.
    pub nats: String,
    /// Bucket prefix of the universe.
    pub prefix: String,
}

/// Options of a dedicated server.
#[derive(Debug)]
pub struct ServerOptions {
    /// Network settings (file + overrides).
    pub config: NetworkConfig,
    /// AI players to add.
    pub bots: u32,
    /// Units each bot starts with.
    pub units_per_bot: u32,
    /// Accept clients without tokens (local testing only).
    pub insecure: bool,
    /// Seconds between status lines.
    pub status_every: f32,
    /// Stop after this many seconds (for scripts and tests).
    pub exit_after: Option<f32>,
    /// Join a cluster (`--cluster URL --server-id N`).
    pub cluster: Option<crate::server::cluster::ClusterOptions>,
    /// Record the game to this file (`galaxy_rts replay FILE` plays it).
    pub record: Option<PathBuf>,
}

/// Options of the game client.
#[derive(Debug, Default)]
pub struct ClientOptions {
    /// Join this dedicated server instead of starting an embedded one.
    pub connect: Option<SocketAddr>,
    /// Connect token file for `connect` (from `galaxy_rts token`).
    pub token: Option<PathBuf>,
    /// Player id to claim on an insecure server (without `--token`).
    pub player: u64,
    /// Save a PNG of the window after `exit_after` seconds, then exit.
    pub screenshot: Option<PathBuf>,
    /// Stop after this many seconds.
    pub exit_after: Option<f32>,
    /// Units per army on the embedded server.
    pub units: u32,
    /// AI opponents on the embedded server.
    pub bots: u32,
    /// Key and mouse bindings file (defaults: `config/bindings.toml`).
    pub bindings: Option<PathBuf>,
    /// The link this client is on (`--profile mobile`: 32 kbps, 10 Hz).
    pub profile: galaxy_net::LinkProfile,
    /// Record the embedded server's game to this file.
    pub record: Option<PathBuf>,
    /// Join as a spectator (no army; orders refused). With `--token`, the
    /// token must be a spectator's (`token --spectator`).
    pub spectate: bool,
}

/// Options of the `token` subcommand.
#[derive(Debug)]
pub struct TokenOptions {
    /// The server's private key file.
    pub key_file: PathBuf,
    /// The player id the token grants.
    pub player: u64,
    /// Server addresses, in the order the client should try them.
    pub servers: Vec<SocketAddr>,
    /// Seconds the token stays valid.
    pub valid_secs: u64,
    /// Where to write it.
    pub out: PathBuf,
    /// netcode protocol id.
    pub protocol_id: u64,
    /// A spectator's token (its client id is `spectator_id(player)`).
    pub spectator: bool,
}

/// Usage text.
pub fn usage() -> String {
    format!(
        "Galaxy RTS\n\n\
USAGE:\n  galaxy_rts [CLIENT OPTIONS]          the game client (with --features headless: the dedicated server)\n  \
galaxy_rts server [SERVER OPTIONS]   the dedicated server in any build\n  \
galaxy_rts token --key-file FILE --player ID --server ADDR [--server ADDR ...] [--valid-secs N] [--out FILE] [--spectator]\n  \
galaxy_rts cluster status [--nats URL] [--prefix NAME]   live servers and the sector ownership table\n  \
galaxy_rts replay FILE [--speed X] [--verify]   play a recorded game (pause, speed x0.25..x8, seek);\n                                      --verify: check every recorded hash, headless\n\n\
CLIENT OPTIONS:\n  --connect HOST:PORT  join a dedicated server (default: start an embedded one)\n  \
--token FILE         connect token for --connect\n  --player ID          player id on an --insecure server\n  \
--screenshot PATH    save a PNG of the window after --exit-after seconds, exit 0 only if connected with units\n  \
--exit-after SECS    stop after SECS seconds\n  --units N            units per army on the embedded server (default 60)\n  \
--bots N             AI opponents on the embedded server (default 2)\n  \
--bindings FILE      key and mouse bindings (format and defaults: config/bindings.toml)\n  \
--profile NAME       desktop (default) or mobile: ask the server for 32 kbps at 10 Hz\n  \
--record FILE        record the embedded server's game (play it with `replay FILE`)\n  \
--spectate           join as a spectator: no army, look anywhere, orders refused\n\n\
SERVER OPTIONS:\n  {CONFIG_FLAGS}\n  \
--bots N             AI players (default 2)\n  --units-per-bot N    units per AI player (default 200)\n  \
--insecure           accept clients without tokens (local testing only)\n  --status-every SECS  seconds between status lines (default 5)\n  \
--exit-after SECS    stop after SECS seconds\n  \
--record FILE        record the game: its inputs, a hash a second, keyframes every 3 s\n\n\
CLUSTER (server options):\n  --cluster URL        join the cluster on this NATS server (e.g. nats://127.0.0.1:4222)\n  \
--server-id N        this server's id, unique in the cluster (required with --cluster)\n  \
--cluster-prefix P   bucket prefix: one universe per prefix (default galaxy)\n  \
--sector-scale S     scale of the sectors servers own (default 3: 8 km)\n  \
--snapshot-every S   seconds between snapshots of owned sectors (default 1)\n  \
--lease-ms MS        lease time, the same on every server (default 2000)\n  \
--home-sector X,Y    the sector to start in (default: 2*ID,0)\n  \
--balance-every S    if elected balancer, move at most one sector per S seconds (default 5; 0: never)\n  \
--balance-gap N      units between busiest and idlest server that trigger a move (default 100)\n  \
-h, --help           this text\n"
    )
}

fn value<T: std::str::FromStr>(args: &[String], i: usize) -> Result<T, String> {
    let flag = &args[i];
    let v = args
        .get(i + 1)
        .ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: invalid value {v:?}"))
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String], headless: bool) -> Result<Command, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let args = match args.first().map(String::as_str) {
        Some("token") => return parse_token(&args[1..]),
        Some("cluster") => return parse_cluster(&args[1..]),
        Some("replay") => return parse_replay(&args[1..]),
        Some("server") => &args[1..],
        _ if headless => args,
        _ => return parse_client(args),
    };
    let mut config = NetworkConfig::default();
    let rest = config.apply_args(args).map_err(|e| e.to_string())?;
    let mut opts = ServerOptions {
        config,
        bots: 2,
        units_per_bot: 200,
        insecure: false,
        status_every: 5.0,
        exit_after: None,
        cluster: None,
        record: None,
    };
    let mut url = None;
    let mut server_id = None;
    let mut cluster = crate::server::cluster::ClusterOptions::new(String::new(), 0);
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "--bots" => opts.bots = value(&rest, i)?,
            "--units-per-bot" => opts.units_per_bot = value(&rest, i)?,
            "--status-every" => opts.status_every = value(&rest, i)?,
            "--exit-after" => opts.exit_after = Some(value(&rest, i)?),
            "--record" => opts.record = Some(value(&rest, i)?),
            "--cluster" => url = Some(value::<String>(&rest, i)?),
            "--server-id" => server_id = Some(value(&rest, i)?),
            "--cluster-prefix" => cluster.prefix = value(&rest, i)?,
            "--sector-scale" => cluster.scale = value(&rest, i)?,
            "--snapshot-every" => cluster.snapshot_every = value(&rest, i)?,
            "--lease-ms" => cluster.lease_ms = value(&rest, i)?,
            "--balance-every" => cluster.balance_every = value(&rest, i)?,
            "--balance-gap" => cluster.balance_gap = value(&rest, i)?,
            "--home-sector" => {
                let v: String = value(&rest, i)?;
                let parsed = v
                    .split_once(',')
                    .and_then(|(x, y)| Some((x.trim().parse().ok()?, y.trim().parse().ok()?)));
                cluster.home =
                    Some(parsed.ok_or(format!("--home-sector: expected X,Y, got {v:?}"))?);
            }
            "--insecure" => {
                opts.insecure = true;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown option {other:?}; see --help")),
        }
        i += 2;
    }
    match (url, server_id) {
        (Some(url), Some(id)) => {
            if cluster.scale > 40 {
                return Err("--sector-scale: at most 40".into());
            }
            cluster.url = url;
            cluster.server_id = id;
            opts.cluster = Some(cluster);
        }
        (None, None) => {}
        _ => return Err("--cluster URL and --server-id N go together".into()),
    }
    Ok(Command::Server(opts))
}

fn parse_client(args: &[String]) -> Result<Command, String> {
    let mut o = ClientOptions {
        player: 1,
        units: 60,
        bots: 2,
        ..ClientOptions::default()
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--connect" => o.connect = Some(value(args, i)?),
            "--token" => o.token = Some(value(args, i)?),
            "--player" => o.player = value(args, i)?,
            "--screenshot" => o.screenshot = Some(value(args, i)?),
            "--exit-after" => o.exit_after = Some(value(args, i)?),
            "--units" => o.units = value(args, i)?,
            "--bots" => o.bots = value(args, i)?,
            "--bindings" => o.bindings = Some(value(args, i)?),
            "--record" => o.record = Some(value(args, i)?),
            "--spectate" => {
                o.spectate = true;
                i += 1;
                continue;
            }
            "--profile" => {
                let name: String = value(args, i)?;
                o.profile = galaxy_net::LinkProfile::from_name(&name)
                    .ok_or_else(|| format!("--profile: {name:?} is not desktop or mobile"))?;
            }
            other => return Err(format!("unknown option {other:?}; see --help")),
        }
        i += 2;
    }
    if o.token.is_some() && o.connect.is_none() {
        return Err("--token needs --connect HOST:PORT".into());
    }
    Ok(Command::Client(o))
}

fn parse_replay(args: &[String]) -> Result<Command, String> {
    let mut o = ReplayOptions {
        speed: 1.0,
        ..ReplayOptions::default()
    };
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--verify" => {
                o.verify = true;
                i += 1;
                continue;
            }
            "--speed" => o.speed = value(args, i)?,
            "--screenshot" => o.screenshot = Some(value(args, i)?),
            "--exit-after" => o.exit_after = Some(value(args, i)?),
            other if !other.starts_with("--") && file.is_none() => {
                file = Some(PathBuf::from(other));
                i += 1;
                continue;
            }
            other => return Err(format!("replay: unknown option {other:?}; see --help")),
        }
        i += 2;
    }
    if !(0.25..=8.0).contains(&o.speed) {
        return Err(format!("replay: --speed {} is not within 0.25..8", o.speed));
    }
    o.file = file.ok_or("replay: which file? `galaxy_rts replay FILE`")?;
    Ok(Command::Replay(o))
}

fn parse_cluster(args: &[String]) -> Result<Command, String> {
    if args.first().map(String::as_str) != Some("status") {
        return Err("cluster: expected `cluster status --nats URL`; see --help".into());
    }
    let mut o = ClusterStatusOptions {
        nats: "nats://127.0.0.1:4222".into(),
        prefix: "galaxy".into(),
    };
    let rest = &args[1..];
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "--nats" => o.nats = value(rest, i)?,
            "--prefix" => o.prefix = value(rest, i)?,
            other => {
                return Err(format!(
                    "cluster status: unknown option {other:?}; see --help"
                ));
            }
        }
        i += 2;
    }
    Ok(Command::ClusterStatus(o))
}

fn parse_token(args: &[String]) -> Result<Command, String> {
    let mut key_file = None;
    let mut player = None;
    let mut servers = Vec::new();
    let mut valid_secs = 3600;
    let mut out = PathBuf::from("client.token");
    let mut protocol_id = NetworkConfig::default().protocol_id;
    let mut spectator = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--spectator" => {
                spectator = true;
                i += 1;
                continue;
            }
            "--key-file" => key_file = Some(value::<PathBuf>(args, i)?),
            "--player" => player = Some(value(args, i)?),
            "--server" => servers.push(value(args, i)?),
            "--valid-secs" => valid_secs = value(args, i)?,
            "--out" => out = value(args, i)?,
            "--protocol-id" => protocol_id = value(args, i)?,
            other => return Err(format!("token: unknown option {other:?}; see --help")),
        }
        i += 2;
    }
    let key_file = key_file.ok_or("token: --key-file is required")?;
    let player = player.ok_or("token: --player is required")?;
    if servers.is_empty() {
        return Err("token: at least one --server ADDR is required".into());
    }
    Ok(Command::Token(TokenOptions {
        key_file,
        player,
        servers,
        valid_secs,
        out,
        protocol_id,
        spectator,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn server_flags() {
        let Ok(Command::Server(o)) =
            parse(&a("--port 6000 --bots 3 --insecure --exit-after 2.5"), true)
        else {
            panic!()
        };
        assert_eq!(
            (o.config.port, o.bots, o.insecure, o.exit_after),
            (6000, 3, true, Some(2.5))
        );
        assert!(parse(&a("--bogus"), true).is_err());
        assert!(parse(&a("--bots x"), true).is_err());
        assert!(matches!(parse(&a(""), false), Ok(Command::Client(_))));
        assert!(
            matches!(parse(&a("--screenshot x.png --exit-after 3"), false), Ok(Command::Client(o)) if o.exit_after == Some(3.0))
        );
        assert!(parse(&a("--token t"), false).is_err());
        assert!(
            matches!(parse(&a("server --bots 1"), false), Ok(Command::Server(o)) if o.bots == 1)
        );
    }

    #[test]
    fn profile_flags() {
        use galaxy_net::LinkProfile;
        assert!(
            matches!(parse(&a("--profile mobile"), false), Ok(Command::Client(o)) if o.profile == LinkProfile::Mobile)
        );
        assert!(
            matches!(parse(&a(""), false), Ok(Command::Client(o)) if o.profile == LinkProfile::Desktop)
        );
        assert!(parse(&a("--profile phone"), false).is_err());
        let Ok(Command::Server(o)) = parse(&a("--profile mobile"), true) else {
            panic!("a server takes the profile too")
        };
        assert_eq!(o.config.profile, LinkProfile::Mobile);
        assert_eq!(o.config.client_budget_kbps, 32.0);
    }

    #[test]
    fn cluster_flags() {
        let Ok(Command::Server(o)) = parse(
            &a(
                "--cluster nats://127.0.0.1:4222 --server-id 3 --snapshot-every 0.5 --lease-ms 1500",
            ),
            true,
        ) else {
            panic!()
        };
        let c = o.cluster.expect("cluster options");
        assert_eq!(
            (
                c.url.as_str(),
                c.server_id,
                c.snapshot_every,
                c.lease_ms,
                c.scale
            ),
            ("nats://127.0.0.1:4222", 3, 0.5, 1500, 3)
        );
        assert!(parse(&a("--cluster nats://x"), true).is_err());
        let Ok(Command::Server(o)) = parse(
            &a("--cluster nats://x --server-id 2 --home-sector -1,4"),
            true,
        ) else {
            panic!()
        };
        assert_eq!(
            o.cluster.unwrap().home_sector(),
            galaxy_protocol::SectorId::new(-1, 4, 3)
        );
        assert!(parse(&a("--cluster nats://x --server-id 2 --home-sector 1"), true).is_err());
        assert!(parse(&a("--server-id 2"), true).is_err());
        assert!(
            parse(
                &a("--cluster nats://x --server-id 2 --sector-scale 99"),
                true
            )
            .is_err()
        );
    }

    #[test]
    fn replay_and_record_flags() {
        let Ok(Command::Replay(o)) = parse(&a("replay game.rpl --speed 4"), false) else {
            panic!()
        };
        assert_eq!((o.file, o.speed, o.verify), ("game.rpl".into(), 4.0, false));
        assert!(matches!(parse(&a("replay g --verify"), true), Ok(Command::Replay(o)) if o.verify));
        assert!(parse(&a("replay"), false).is_err());
        assert!(parse(&a("replay g --speed 16"), false).is_err());
        assert!(parse(&a("replay g --bogus 1"), false).is_err());
        assert!(
            matches!(parse(&a("--record r.rpl"), true), Ok(Command::Server(o)) if o.record == Some("r.rpl".into()))
        );
        assert!(
            matches!(parse(&a("--record r.rpl"), false), Ok(Command::Client(o)) if o.record == Some("r.rpl".into()))
        );
    }

    #[test]
    fn spectator_delay_flag() {
        let Ok(Command::Server(o)) = parse(&a("server --spectator-delay 30s"), false) else {
            panic!()
        };
        assert_eq!(o.config.spectator_delay_secs, 30.0);
        assert!(parse(&a("--spectator-delay 1h"), true).is_err());
    }

    #[test]
    fn token_flags() {
        let Ok(Command::Token(t)) = parse(
            &a("token --key-file k --player 7 --server 127.0.0.1:5000 --server 127.0.0.1:5001"),
            true,
        ) else {
            panic!()
        };
        assert_eq!((t.player, t.servers.len(), t.spectator), (7, 2, false));
        assert!(matches!(
            parse(&a("token --key-file k --player 7 --server 127.0.0.1:5000 --spectator"), true),
            Ok(Command::Token(t)) if t.spectator
        ));
        assert!(
            matches!(parse(&a("--spectate --units 5"), false), Ok(Command::Client(o)) if o.spectate && o.units == 5)
        );
        assert!(parse(&a("token --player 7"), false).is_err());
    }
}
