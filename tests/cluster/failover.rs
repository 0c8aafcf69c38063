//! Failover (kill -9) and fencing (SIGSTOP) of real server processes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use galaxy_cluster::NatsServer;
use galaxy_protocol::{UnitId, WorldRect};

use crate::harness::*;

const UNITS: u32 = 40;

fn nats() -> NatsServer {
    NatsServer::start().expect("nats-server (scripts/test.sh installs it)")
}

/// kill -9 of the server a client plays on: its sector is owned again
/// within 3 s (revision-checked, exactly one owner change in the KV
/// history), restored from a snapshot at most one snapshot interval (plus
/// the write's own latency) old, and the client reconnects and sees
/// exactly the restored units.
#[test]
fn killed_servers_sector_is_adopted_from_its_snapshot_and_its_client_reconnects() {
    let _one_at_a_time = serial();
    let nats = nats();
    let observer = Observer::new(&nats);
    let mut servers = three_servers(&nats, UNITS);
    for s in &servers {
        assert_eq!(observer.owner(s.home()), Some(s.id), "home of {}", s.id);
    }
    let home = servers[0].home();
    let view = WorldRect::around(centre(home), 200_000);
    // Fallbacks in the order 1, 2, 3: whichever survivor the client lands
    // on first, it ends on the heir (directly, or redirected there). With
    // these sector and server ids the hash makes server 3 the heir, so the
    // redirect from server 2 is what brings it there.
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let mut client = client(77, &addrs, view);
    // The bot's units, base and resources: 1 + 4 + UNITS.
    let all_there = |app: &bevy::prelude::App| connected(app) && visible(app).len() == 45;
    assert!(
        pump_until(&mut client, Duration::from_secs(20), all_there),
        "client sees server 1's units: {}",
        visible(&client).len()
    );
    // Let a few snapshots be written, then kill -9 server 1.
    pump_until(&mut client, Duration::from_secs(2), |_| false);
    let e1 = observer.epoch(home);
    servers[0].kill9();
    let killed_at = SystemTime::now();
    let (last, written_at) = observer
        .rt
        .block_on(observer.cluster.read_snapshot_entry(home))
        .unwrap()
        .expect("server 1 wrote snapshots");
    let age = killed_at
        .duration_since(written_at)
        .unwrap_or(Duration::ZERO);
    assert!(
        age <= Duration::from_secs_f32(SNAPSHOT_EVERY) + Duration::from_millis(250),
        "last snapshot was {age:?} old at the kill"
    );
    assert_eq!(last.epoch, e1, "written by the owner at its epoch");
    let (heir, took) = observer.wait_for_new_owner(home, 1, Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "owned again after {took:?}");
    // Exactly one revision-checked owner change, from 1 to the heir.
    let history = observer
        .rt
        .block_on(observer.cluster.owner_history(home))
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!((history[0].server, history[1].server), (1, heir));
    assert!(history[1].epoch > history[0].epoch);
    for s in &servers[1..] {
        assert_eq!(
            observer.owner(s.home()),
            Some(s.id),
            "survivors keep theirs"
        );
    }
    // The heir restored exactly the last snapshot's units.
    let heir_proc = servers.iter_mut().find(|s| s.id == heir).unwrap();
    let line = heir_proc.wait_for_log("adopted sector", Duration::from_secs(5));
    assert!(
        line.contains(&format!("{} units restored", last.units.len())),
        "{line}"
    );
    // The client reconnects (its fallbacks, then a redirect to the heir)
    // and sees those units: none lost, none duplicated.
    let restored: BTreeSet<UnitId> = last.units.iter().map(|c| c.unit_id).collect();
    let sees_restored = |app: &bevy::prelude::App| {
        reconnects(app) > 0
            && connected(app)
            && visible(app).into_iter().collect::<BTreeSet<_>>() == restored
    };
    assert!(
        pump_until(&mut client, Duration::from_secs(30), sees_restored),
        "client after failover ({} reconnects) sees {} units, the snapshot had {}",
        reconnects(&client),
        visible(&client).len(),
        restored.len()
    );
    let heir_proc = servers.iter().find(|s| s.id == heir).unwrap();
    assert!(
        heir_proc
            .log()
            .iter()
            .any(|l| l.contains("player 77 connected")),
        "the client plays on the heir {heir}:\n{}",
        heir_proc.log().join("\n")
    );
    if heir != 2 {
        let first = servers.iter().find(|s| s.id == 2).unwrap();
        assert!(
            first
                .log()
                .iter()
                .any(|l| l.contains(&format!("player 77 redirected to server {heir}"))),
            "server 2 sent the client to the heir"
        );
    }
}

/// A server paused (SIGSTOP) past its lease loses its sector to a
/// survivor; resumed, it writes nothing (no snapshot at its old epoch, no
/// owner record), drops the sector's units, and rejoins with a live lease.
#[test]
fn paused_server_is_fenced_and_rejoins() {
    let _one_at_a_time = serial();
    let nats = nats();
    let observer = Observer::new(&nats);
    let mut servers = three_servers(&nats, UNITS);
    let home = servers[1].home();
    std::thread::sleep(Duration::from_secs(1));
    let e_old = observer.epoch(home);
    servers[1].signal("STOP");
    let (heir, _) = observer.wait_for_new_owner(home, 2, Duration::from_secs(10));
    // Well past the take-over, with the new owner's snapshots written.
    std::thread::sleep(Duration::from_secs(2));
    let before = servers[1].log().len();
    servers[1].signal("CONT");
    servers[1].wait_for_log("lost sector", Duration::from_secs(10));
    servers[1].wait_for_log("acting again for 0 sectors", Duration::from_secs(10));
    // Watch for 2 s: every snapshot of the sector is the new owner's.
    let e_new = observer
        .rt
        .block_on(observer.cluster.owner(home))
        .unwrap()
        .unwrap();
    assert_eq!(e_new.server, heir);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let (snap, _) = observer
            .rt
            .block_on(observer.cluster.read_snapshot_entry(home))
            .unwrap()
            .unwrap();
        assert_eq!(snap.epoch, e_new.epoch, "a stale snapshot was written");
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = observer
        .rt
        .block_on(observer.cluster.owner_history(home))
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|o| (o.server, o.epoch))
            .collect::<Vec<_>>(),
        vec![(2, e_old), (heir, e_new.epoch)]
    );
    // Rejoined: a live lease, acting, owning nothing, its units gone.
    let live = observer
        .rt
        .block_on(observer.cluster.live_servers())
        .unwrap();
    assert!(live.contains_key(&2), "lease renewed: {live:?}");
    let status = servers[1].wait_for_log_after(before, "server 2 acting, 0 sectors");
    assert!(status.contains(" 0 units"), "{status}");
}
