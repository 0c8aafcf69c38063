//! Ownership, leases, fencing and failover.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use galaxy_cluster::*;
use galaxy_protocol::{
    CompressedUnit, SectorId, UnitSample, UnitState, Velocity, WorldPos, quantize,
};

fn config(nats: &NatsServer, id: u32) -> ClusterConfig {
    let mut c = ClusterConfig::new(nats.url.clone(), id);
    c.lease = Duration::from_millis(1500);
    c
}

async fn node(nats: &NatsServer, id: u32) -> Cluster {
    let mut c = Cluster::connect(config(nats, id)).await.expect("connect");
    c.renew_lease(&LoadReport::default()).await.unwrap();
    c
}

fn snapshot(tick: u64, epoch: u64, n: u64) -> SectorSnapshot {
    let units = (0..n)
        .map(|i| {
            let q = quantize(&UnitSample {
                owner: 7,
                kind: 0,
                position: WorldPos::new(i as i64 * 100, 5),
                velocity: Velocity::ZERO,
                health: 50.0,
                state: UnitState::IDLE,
                target: None,
            });
            CompressedUnit {
                unit_id: i + 1,
                unit: q,
            }
        })
        .collect();
    SectorSnapshot {
        tick,
        epoch,
        units,
        orders: Vec::new(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn claims_are_exclusive_and_take_overs_are_fenced_by_revision() {
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    rt().block_on(async {
        let a = node(&nats, 1).await;
        let b = node(&nats, 2).await;
        let s = SectorId::new(-4, 9, 0);
        let e1 = a.claim(s).await.unwrap();
        assert!(matches!(
            b.claim(s).await,
            Err(ClusterError::AlreadyOwned { owner: 1, .. })
        ));
        assert_eq!(
            a.owner(s).await.unwrap(),
            Some(Ownership {
                server: 1,
                epoch: e1
            })
        );
        // A take-over must name the epoch it saw: a wrong one is refused.
        assert!(matches!(
            b.take_over(s, e1 + 100).await,
            Err(ClusterError::Fenced(_))
        ));
        let e2 = b.take_over(s, e1).await.unwrap();
        assert!(e2 > e1);
        // The old owner, acting on its old epoch, cannot take it back.
        assert!(matches!(
            a.take_over(s, e1).await,
            Err(ClusterError::Fenced(_))
        ));
        let history = a.owner_history(s).await.unwrap();
        assert_eq!(
            history,
            vec![
                Ownership {
                    server: 1,
                    epoch: e1
                },
                Ownership {
                    server: 2,
                    epoch: e2
                }
            ]
        );
        let table = b.ownership_table().await.unwrap();
        assert_eq!(
            table,
            BTreeMap::from([(
                s,
                Ownership {
                    server: 2,
                    epoch: e2
                }
            )])
        );
    });
}

/// Server 1 owns eight sectors and snapshots them, then falls silent (its
/// lease is not renewed, as after kill -9). Servers 2 and 3 notice the
/// expired lease and adopt every sector exactly once, each restored from
/// its last snapshot, within 3 s of the silence.
#[test]
fn a_silent_servers_sectors_are_adopted_from_snapshots() {
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    rt().block_on(async {
        let mut dead = node(&nats, 1).await;
        let mut b = node(&nats, 2).await;
        let mut c = node(&nats, 3).await;
        let sectors: Vec<SectorId> = (0..8).map(|i| SectorId::new(i, -i, 0)).collect();
        for (i, &s) in sectors.iter().enumerate() {
            let epoch = dead.claim(s).await.unwrap();
            dead.write_snapshot(s, &snapshot(100 + i as u64, epoch, 3 + i as u64))
                .await
                .unwrap();
        }
        let silent_at = Instant::now();
        let mut adopted: BTreeMap<SectorId, (u32, Option<SectorSnapshot>)> = BTreeMap::new();
        while adopted.len() < sectors.len() {
            assert!(
                silent_at.elapsed() < Duration::from_secs(3),
                "only {} of 8 sectors adopted after 3 s",
                adopted.len()
            );
            for node in [&mut b, &mut c] {
                node.renew_lease(&LoadReport::default()).await.unwrap();
                for (s, _, snap) in node.adopt_orphans().await.unwrap() {
                    let id = node.server_id();
                    assert!(
                        adopted.insert(s, (id, snap)).is_none(),
                        "{s:?} adopted twice"
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !dead.lease_valid(),
            "the silent server must consider itself fenced"
        );
        for (i, s) in sectors.iter().enumerate() {
            let (heir, snap) = &adopted[s];
            let snap = snap.as_ref().expect("restored from a snapshot");
            assert_eq!(snap.tick, 100 + i as u64);
            assert_eq!(snap.units.len(), 3 + i);
            // Never two owners: one revision-checked change from 1 to the heir.
            let history = b.owner_history(*s).await.unwrap();
            assert_eq!(history.len(), 2, "{s:?}: {history:?}");
            assert_eq!(history[0].server, 1);
            assert_eq!(history[1].server, *heir);
            assert!(history[1].epoch > history[0].epoch);
        }
        // Both survivors got a share (sectors are spread by hash).
        let by_b = adopted.values().filter(|v| v.0 == 2).count();
        assert!(by_b > 0 && by_b < 8, "b adopted {by_b} of 8");
    });
}

/// A server paused past its lease (as by SIGSTOP) and resumed: it knows
/// its lease lapsed and writes nothing; once it renews, its old sector's
/// snapshot write is refused as fenced, and it rejoins owning only what it
/// claims afresh.
#[test]
fn a_paused_owner_is_fenced_and_rejoins_cleanly() {
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    rt().block_on(async {
        let mut paused = node(&nats, 1).await;
        let mut heir = node(&nats, 2).await;
        let s = SectorId::new(3, 3, 0);
        let e1 = paused.claim(s).await.unwrap();
        paused
            .write_snapshot(s, &snapshot(10, e1, 2))
            .await
            .unwrap();
        // The pause: server 1 does nothing while its lease runs out.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (_, e2, restored) = loop {
            assert!(Instant::now() < deadline, "sector not adopted");
            heir.renew_lease(&LoadReport::default()).await.unwrap();
            if let Some(won) = heir.adopt_orphans().await.unwrap().pop() {
                break won;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(restored.unwrap().tick, 10);
        heir.write_snapshot(s, &snapshot(11, e2, 2)).await.unwrap();
        // Resumed: the lease check stops it before any write.
        assert!(!paused.lease_valid());
        assert!(matches!(
            paused.write_snapshot(s, &snapshot(12, e1, 2)).await,
            Err(ClusterError::LeaseExpired)
        ));
        // Renewed, it is alive again, but its old sector is fenced.
        paused.renew_lease(&LoadReport::default()).await.unwrap();
        assert!(matches!(
            paused.write_snapshot(s, &snapshot(12, e1, 2)).await,
            Err(ClusterError::Fenced(_))
        ));
        assert_eq!(heir.read_snapshot(s).await.unwrap().unwrap().tick, 11);
        assert_eq!(paused.owner(s).await.unwrap().unwrap().server, 2);
        // It rejoins cleanly: a fresh claim works, and both are live.
        paused.release(s);
        let other = SectorId::new(-3, -3, 0);
        paused.claim(other).await.unwrap();
        let live = heir.live_servers().await.unwrap();
        assert_eq!(live.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    });
}

/// After a handoff the old owner has forgotten its write position, so its
/// next snapshot would be a "first write": it must still be refused,
/// because its epoch is not the owner record's (found by cluster_report:
/// an empty snapshot queued during a handoff overwrote the new owner's).
#[test]
fn a_snapshot_at_an_old_epoch_is_refused_even_as_a_first_write() {
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    rt().block_on(async {
        let mut old = node(&nats, 1).await;
        let mut new = node(&nats, 2).await;
        let s = SectorId::new(3, 3, 3);
        let e1 = old.claim(s).await.unwrap();
        old.write_snapshot(s, &snapshot(1, e1, 5)).await.unwrap();
        let e2 = new.take_over(s, e1).await.unwrap();
        new.write_snapshot(s, &snapshot(2, e2, 5)).await.unwrap();
        old.release(s);
        assert!(matches!(
            old.write_snapshot(s, &snapshot(3, e1, 0)).await,
            Err(ClusterError::Fenced(_))
        ));
        // Nor may anyone write at an epoch that is not theirs.
        assert!(matches!(
            old.write_snapshot(s, &snapshot(3, e2, 0)).await,
            Err(ClusterError::Fenced(_))
        ));
        let stored = new.read_snapshot(s).await.unwrap().unwrap();
        assert_eq!((stored.tick, stored.epoch, stored.units.len()), (2, e2, 5));
        new.write_snapshot(s, &snapshot(4, e2, 5)).await.unwrap();
    });
}
