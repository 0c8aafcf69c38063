//! The `galaxy_rts` binary as a user runs it: the dedicated server with its
//! status line, the token subcommand, and help.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_galaxy_rts"))
}

#[test]
fn dedicated_server_logs_status_with_real_numbers_and_stops() {
    let out = bin()
        .args([
            "server",
            "--insecure",
            "--port",
            "0",
            "--bots",
            "2",
            "--units-per-bot",
            "50",
            "--status-every",
            "1",
            "--exit-after",
            "3.5",
        ])
        .output()
        .expect("binary runs");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");
    let status: Vec<&str> = log.lines().filter(|l| l.contains("status:")).collect();
    assert!(status.len() >= 2, "{log}");
    let last = status.last().unwrap();
    assert!(last.contains("100 units"), "{last}");
    // The tick counter advances at about 20 Hz: more than 40 ticks after 3 s.
    let tick: u64 = last
        .split("tick ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("tick number");
    assert!(tick > 40, "{last}");
    assert!(log.contains("server stopped"), "{log}");
}

#[test]
fn token_subcommand_writes_a_token_for_the_player() {
    let dir = std::env::temp_dir().join(format!("galaxy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("server.key");
    galaxy_net::ServerKey::load_or_create(&key).unwrap();
    let token = dir.join("p7.token");
    let out = bin()
        .args([
            "token",
            "--key-file",
            key.to_str().unwrap(),
            "--player",
            "7",
            "--server",
            "127.0.0.1:5000",
            "--out",
            token.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = galaxy_net::tokens::token_from_bytes(&std::fs::read(&token).unwrap()).unwrap();
    assert_eq!(t.client_id, 7);
    // A missing key file is a clear error, not a panic.
    let out = bin()
        .args([
            "token",
            "--key-file",
            "/nonexistent",
            "--player",
            "1",
            "--server",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_lists_the_options() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--bots",
        "--insecure",
        "token",
        "--key-file",
        "--exit-after",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn ctrl_c_shuts_the_server_down_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut server = bin();
    server
        .args([
            "server",
            "--insecure",
            "--port",
            "0",
            "--bots",
            "1",
            "--units-per-bot",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A test run started in the background (`cmd &` in a script, nohup)
    // inherits SIGINT ignored, and a server that inherits that keeps
    // ignoring Ctrl-C, as it should; this test is about Ctrl-C, so its
    // server starts with the default disposition.
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe.
    unsafe {
        server.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = server.spawn().unwrap();
    // Wait for the server to say where it listens (the log goes to stdout or stderr).
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut log = String::new();
    while !log.contains("listening on") && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    assert!(log.contains("listening on"), "{log}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Bounded: a server that does not stop fails the test, not hangs it.
    let stop_deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > stop_deadline {
            let _ = child.kill();
            panic!("the server did not stop within 30 s of SIGINT\n{log}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("server stopped"), "{log}");
}

/// `cluster status` prints live servers and who owns which sector, and
/// marks sectors whose owner's lease has expired.
#[test]
fn cluster_status_prints_servers_and_the_ownership_table() {
    use galaxy_cluster::{Cluster, ClusterConfig, LoadReport, NatsServer};
    use galaxy_protocol::SectorId;
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Server 7 (live, with a load report) owns two sectors; server 9 owned
    // one and then went silent. The lease time is the cluster's (the lease
    // bucket's max age), so both use the same one.
    let lease = std::time::Duration::from_millis(800);
    let (_live, _dead) = rt.block_on(async {
        let config = |id| {
            let mut c = ClusterConfig::new(nats.url.clone(), id);
            c.lease = lease;
            c
        };
        let mut dead = Cluster::connect(config(9)).await.unwrap();
        dead.renew_lease(&LoadReport::default()).await.unwrap();
        dead.claim(SectorId::new(5, 5, 0)).await.unwrap();
        let mut live = Cluster::connect(config(7)).await.unwrap();
        let load = LoadReport {
            address: "127.0.0.1:5007".into(),
            units: 1234,
            clients: 3,
            ..LoadReport::default()
        };
        live.renew_lease(&load).await.unwrap();
        live.claim(SectorId::new(0, 0, 0)).await.unwrap();
        live.claim(SectorId::new(-2, 1, 0)).await.unwrap();
        // Server 9's lease runs out; server 7 renews just before the query.
        tokio::time::sleep(lease + std::time::Duration::from_millis(400)).await;
        live.renew_lease(&load).await.unwrap();
        (live, dead)
    });
    let out = bin()
        .args(["cluster", "status", "--nats", &nats.url])
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("live servers: 1"), "{text}");
    assert!(
        text.contains("127.0.0.1:5007") && text.contains("units 1234"),
        "{text}"
    );
    assert!(text.contains("owned sectors: 3"), "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or("")
            .to_owned()
    };
    assert!(row("0: -2, 1").contains(" live"), "{text}");
    assert!(row("0: 5, 5").contains("EXPIRED"), "{text}");
    // Without a reachable NATS it says so and fails.
    let out = bin()
        .args(["cluster", "status", "--nats", "nats://127.0.0.1:1"])
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nats"));
}

/// The crates `cargo tree` lists for the game package with `args`.
fn dependency_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "galaxy_rts",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The dedicated server built without the client feature has no windowing
/// or rendering crate at all; the default build (the client) does.
#[test]
fn the_headless_build_has_no_renderer() {
    let renderer = |tree: &str| -> Vec<String> {
        tree.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| {
                ["winit", "wgpu", "bevy_render", "bevy_winit", "bevy_egui"].contains(name)
            })
            .map(String::from)
            .collect()
    };
    let headless = dependency_tree(&["--no-default-features", "--features", "headless"]);
    assert!(headless.contains("galaxy_net"), "{headless}");
    assert_eq!(renderer(&headless), Vec::<String>::new());
    let client = dependency_tree(&[]);
    let found = renderer(&client);
    assert!(
        found.contains(&"bevy_render".to_string()) && found.contains(&"winit".to_string()),
        "{found:?}"
    );
}

/// `server --record FILE` records the game (bots spawning, fighting, giving
/// orders), and `replay FILE --verify` plays it again to every recorded hash.
#[test]
fn a_recorded_server_game_replays_to_every_hash() {
    let dir = std::env::temp_dir().join(format!("galaxy-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("game.rpl");
    let out = bin()
        .args([
            "server",
            "--insecure",
            "--port",
            "0",
            "--bots",
            "3",
            "--units-per-bot",
            "300",
            "--exit-after",
            "4",
            "--record",
            file.to_str().unwrap(),
        ])
        .output()
        .expect("binary runs");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    assert!(log.contains("recorded "), "{log}");
    let out = bin()
        .args(["replay", file.to_str().unwrap(), "--verify"])
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (matched, of) = text
        .lines()
        .find_map(|l| {
            let l = l.strip_suffix(|_: char| true)?;
            let (m, rest) = l.split_once(" of ")?;
            let (n, _) = rest.split_once(" hashes match")?;
            Some((m.parse::<u64>().ok()?, n.parse::<u64>().ok()?))
        })
        .expect("a summary line");
    assert!(of >= 3, "{text}");
    assert_eq!(matched, of, "{text}");
    // Not a replay: a clear error, exit code 2.
    let junk = dir.join("junk.rpl");
    std::fs::write(&junk, b"not a replay").unwrap();
    let out = bin()
        .args(["replay", junk.to_str().unwrap(), "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a replay file"));
    std::fs::remove_dir_all(&dir).unwrap();
}
