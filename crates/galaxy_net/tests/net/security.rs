//! Authority and admission: commands carry the connection's player, a
//! client without a valid token gets nothing, flooders, silent sessions
//! and senders of garbage are disconnected and counted.

use std::time::Duration;

use galaxy_net::tokens::issue_token;
use galaxy_net::*;

use crate::harness::*;

/// The server trusts the connection, not the message: a batch claiming
/// another player's id is counted and applied as the connection's
/// player, so the game refuses orders for the other player's ships.
#[test]
fn commands_carry_the_connections_player_not_the_claimed_one() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let mine = spawn_row(&mut server, 1, WorldPos::new(0, 0), 5);
    let theirs = spawn_row(&mut server, 2, WorldPos::new(0, 5_000), 7);
    let view = view_at(WorldPos::new(0, 0));
    let mut cheat = player(1, addr, view);
    assert!(pump_until(
        &mut [&mut server, &mut cheat],
        Duration::from_secs(10),
        |a| connected(a[1])
    ));
    let before = server_units(&mut server);
    // Connected as player 1, claiming to be player 2.
    cheat.insert_resource(LocalPlayer(2));
    let order = CompressedCommand::Move {
        units: UnitIdList::from_ids(theirs.iter().copied()).unwrap(),
        to: WorldPos::new(90_000, 0),
    };
    cheat
        .world_mut()
        .resource_mut::<OutgoingCommands>()
        .0
        .push(order);
    let ok = pump_until(
        &mut [&mut server, &mut cheat],
        Duration::from_secs(5),
        |a| {
            let rejected = &a[0].world().resource::<NetworkStats>().rejected;
            rejected.get("not_owned") == Some(&7) && rejected.get("claimed_player") == Some(&1)
        },
    );
    assert!(
        ok,
        "rejections not counted: {:?}",
        server.world().resource::<NetworkStats>().rejected
    );
    pump_for(&mut [&mut server, &mut cheat], Duration::from_millis(300));
    let after = server_units(&mut server);
    for id in &theirs {
        assert_eq!(
            after[id].position, before[id].position,
            "a foreign ship moved"
        );
    }
    assert!(mine.iter().all(|id| after.contains_key(id)));
}

#[test]
fn without_a_valid_token_no_game_data() {
    let key = ServerKey::random();
    let (mut server, addr) = server(ServerAuth::Secure(key.clone()), &[]);
    spawn_row(&mut server, 1, WorldPos::new(0, 0), 10);
    let view = view_at(WorldPos::new(0, 0));
    // A token signed with the wrong key, and no token at all.
    let forged = issue_token(
        &ServerKey::random(),
        config().protocol_id,
        1,
        vec![addr],
        60,
        5,
    )
    .unwrap();
    let mut bad = client(ClientAuth::Token(Box::new(forged)), view);
    let mut none = player(3, addr, view);
    let good_token = issue_token(&key, config().protocol_id, 2, vec![addr], 60, 5).unwrap();
    let mut good = client(ClientAuth::Token(Box::new(good_token)), view);
    let ok = pump_until(
        &mut [&mut server, &mut bad, &mut none, &mut good],
        Duration::from_secs(10),
        |a| client_units(a[3]).len() == 10,
    );
    assert!(ok, "the client with a valid token got no units");
    pump_for(
        &mut [&mut server, &mut bad, &mut none, &mut good],
        Duration::from_millis(500),
    );
    for app in [&mut bad, &mut none] {
        assert!(client_units(app).is_empty());
        assert_eq!(app.world().resource::<NetworkStats>().bytes_received, 0);
        assert!(!connected(app));
    }
    assert_eq!(server.world().resource::<Sessions>().len(), 1);
}

#[test]
fn a_flooding_client_is_disconnected_while_others_play() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let units = spawn_row(&mut server, 1, WorldPos::new(0, 0), 5);
    let view = view_at(WorldPos::new(0, 0));
    let mut flood = player(9, addr, view);
    let mut fair = player(1, addr, view);
    assert!(pump_until(
        &mut [&mut server, &mut flood, &mut fair],
        Duration::from_secs(10),
        |a| connected(a[1]) && connected(a[2])
    ));
    let stop = CompressedCommand::Stop {
        units: UnitIdList::from_ids([units[0]]).unwrap(),
    };
    let ok = pump_until(
        &mut [&mut server, &mut flood, &mut fair],
        Duration::from_secs(10),
        |a| {
            a[1].world_mut()
                .resource_mut::<OutgoingCommands>()
                .0
                .extend(std::iter::repeat_n(stop.clone(), 100));
            a[0].world().resource::<NetworkStats>().kicked_clients == 1
        },
    );
    assert!(ok, "the flooder was not disconnected");
    assert!(pump_until(
        &mut [&mut server, &mut flood, &mut fair],
        Duration::from_secs(5),
        |a| !connected(a[1])
    ));
    assert!(
        server
            .world()
            .resource::<NetworkStats>()
            .rejected
            .get("rate_limited")
            .copied()
            .unwrap_or(0)
            > 0
    );
    // The fair client still plays.
    fair.world_mut()
        .resource_mut::<OutgoingCommands>()
        .0
        .push(CompressedCommand::Move {
            units: UnitIdList::from_ids(units.iter().copied()).unwrap(),
            to: WorldPos::new(2_000, 0),
        });
    let ok = pump_until(
        &mut [&mut server, &mut flood, &mut fair],
        Duration::from_secs(10),
        |a| {
            client_units(a[2])
                .get(&units[0])
                .is_some_and(|u| u.position == WorldPos::new(2_000, 0))
        },
    );
    assert!(ok && connected(&fair));
}

#[test]
fn a_silent_session_times_out_but_a_quiet_player_does_not() {
    // Three heartbeats (one a second) fit in the timeout, even on a busy machine.
    let cfg = NetworkConfig {
        idle_timeout_secs: 3,
        ..config()
    };
    let (mut server, addr) = server_with(cfg, ServerAuth::Insecure, &[]);
    // A transport-level connection that never speaks the game protocol.
    let mut silent = raw_client(5, addr);
    // A real client looking at an empty place: nothing to ack, but it sends heartbeats.
    let mut quiet = player(6, addr, view_at(WorldPos::new(0, 0)));
    let ok = pump_until(
        &mut [&mut server, &mut silent, &mut quiet],
        Duration::from_secs(10),
        |a| {
            a[0].world()
                .resource::<NetworkStats>()
                .rejected
                .get("idle_timeout")
                == Some(&1)
        },
    );
    assert!(
        ok,
        "the silent session was not dropped: {:?}, sessions {:?}",
        server.world().resource::<NetworkStats>(),
        server
            .world()
            .resource::<Sessions>()
            .iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    );
    pump_for(
        &mut [&mut server, &mut silent, &mut quiet],
        Duration::from_millis(1500),
    );
    let sessions = server.world().resource::<Sessions>();
    assert_eq!(sessions.len(), 1);
    assert!(sessions.get(6).is_some(), "the quiet player was dropped");
    assert!(connected(&quiet));
}

#[test]
fn garbage_is_counted_by_kind_and_repeat_offenders_are_disconnected() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let mut raw = raw_client(4, addr);
    let garbage: [&[u8]; 3] = [
        &[0xff, 1, 2],
        &[],
        &[
            4, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
    ];
    let mut sent = 0;
    let ok = pump_until(&mut [&mut server, &mut raw], Duration::from_secs(10), |a| {
        let mut client = a[1].world_mut().resource_mut::<bevy_renet::RenetClient>();
        if client.is_connected() && sent < 60 {
            client.send_message(galaxy_net::channels::COMMANDS, garbage[sent % 3].to_vec());
            sent += 1;
        }
        a[0].world()
            .resource::<NetworkStats>()
            .rejected
            .get("malformed_messages")
            == Some(&1)
    });
    let stats = server.world().resource::<NetworkStats>().clone();
    assert!(ok, "the sender of garbage was not disconnected: {stats:?}");
    for kind in ["unknown_tag", "empty", "malformed"] {
        assert!(
            stats.decode_errors.get(kind).copied().unwrap_or(0) > 0,
            "{kind} not counted: {stats:?}"
        );
    }
    assert!(server.world().resource::<Sessions>().is_empty());
}

/// One command may name thousands of units: the rate limit is charged per
/// id, so a client cannot make the server look up more ids a second than
/// its limit (issue 19, item 4); four times the limit disconnects.
#[test]
fn the_command_rate_limit_is_charged_per_unit_id() {
    let cfg = NetworkConfig {
        max_command_units_per_second: 1_000,
        ..config()
    };
    let (mut server, addr) = server_with(cfg, ServerAuth::Insecure, &[]);
    let mut c = player(1, addr, view_at(WorldPos::new(0, 0)));
    assert!(pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |a| connected(a[1])
    ));
    let stop = |from: u64| CompressedCommand::Stop {
        units: UnitIdList::from_ids(from..from + 600).unwrap(),
    };
    c.world_mut().resource_mut::<OutgoingCommands>().0.extend([
        stop(0),
        stop(10_000),
        stop(20_000),
    ]);
    let limited = |a: &bevy::prelude::App| {
        a.world()
            .resource::<NetworkStats>()
            .rejected
            .get("rate_limited")
            .copied()
    };
    assert!(pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(5),
        |a| limited(a[0]) == Some(2)
    ));
    pump_for(&mut [&mut server, &mut c], Duration::from_millis(300));
    assert_eq!(limited(&server), Some(2), "only the ids past the limit");
    assert!(connected(&c), "1,800 ids a second is not a flood");
    // 5,000 ids in a second is.
    c.world_mut()
        .resource_mut::<OutgoingCommands>()
        .0
        .extend((0..9).map(|k| stop(100_000 + k * 1_000)));
    assert!(pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(5),
        |a| a[0].world().resource::<NetworkStats>().kicked_clients == 1
    ));
}

/// Each view change can make the server rescan and resend whole sectors:
/// it takes at most one per `MIN_VIEW_INTERVAL_SECS` from a client (issue
/// 19, item 6), and the newest view always wins in the end; a client of
/// the plugin moving its view every frame is not refused anything, and one
/// sending views four times faster than that is disconnected.
#[test]
fn view_changes_are_rate_limited() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    spawn_block(&mut server, 1, WorldPos::new(0, 0), 4);
    let mut fair = player(1, addr, view_at(WorldPos::new(0, 0)));
    let mut raw = raw_client(2, addr);
    assert!(pump_until(
        &mut [&mut server, &mut fair, &mut raw],
        Duration::from_secs(10),
        |a| connected(a[1])
            && a[2]
                .world()
                .resource::<bevy_renet::RenetClient>()
                .is_connected()
    ));
    // The raw client sends 30 views a second; the fair one moves its view every frame.
    let start = std::time::Instant::now();
    let (mut raw_sent, mut frames) = (0u64, 0i64);
    let mut last = view_at(WorldPos::new(0, 0));
    let mut fair_last = last;
    while start.elapsed() < Duration::from_secs(1) {
        frames += 1;
        fair_last = view_at(WorldPos::new(frames * 500, 0));
        fair.insert_resource(View(fair_last));
        if start.elapsed().as_secs_f64() * 30.0 >= raw_sent as f64 {
            raw_sent += 1;
            last = view_at(WorldPos::new(0, raw_sent as i64 * 10_000));
            let bytes = galaxy_net::protocol::encode_client(
                &galaxy_net::protocol::ClientMessage::ViewUpdate(
                    galaxy_net::protocol::ViewUpdate {
                        view: last,
                        max_update_hz: 0,
                        profile: Default::default(),
                    },
                ),
            )
            .unwrap();
            raw.world_mut()
                .resource_mut::<bevy_renet::RenetClient>()
                .send_message(galaxy_net::channels::COMMANDS, bytes);
        }
        for app in [&mut server, &mut fair, &mut raw] {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    pump_for(
        &mut [&mut server, &mut fair, &mut raw],
        Duration::from_millis(400),
    );
    let sessions = server.world().resource::<Sessions>();
    let attacker = sessions.get(2).expect("30 views a second is not a flood");
    let allowed = (secs / MIN_VIEW_INTERVAL_SECS).ceil() as u64 + 3;
    assert!(raw_sent >= 25, "{raw_sent} views sent");
    assert!(
        attacker.views_applied() <= allowed,
        "{} of {raw_sent} views taken in {secs:.2} s",
        attacker.views_applied()
    );
    assert_eq!(attacker.view(), Some(last), "the newest view wins");
    let rejected = server
        .world()
        .resource::<NetworkStats>()
        .rejected
        .get("view_rate_limited")
        .copied();
    assert!(rejected.unwrap_or(0) >= 10, "{rejected:?}");
    let player = sessions.get(1).expect("the fair client stays");
    assert_eq!(player.view(), Some(fair_last));
    assert!(frames > 30, "{frames} frames");
    // 200 views in a moment is a flood.
    for k in 0..200 {
        let bytes = galaxy_net::protocol::encode_client(
            &galaxy_net::protocol::ClientMessage::ViewUpdate(galaxy_net::protocol::ViewUpdate {
                view: view_at(WorldPos::new(k, 7)),
                max_update_hz: 0,
                profile: Default::default(),
            }),
        )
        .unwrap();
        raw.world_mut()
            .resource_mut::<bevy_renet::RenetClient>()
            .send_message(galaxy_net::channels::COMMANDS, bytes);
    }
    assert!(pump_until(
        &mut [&mut server, &mut fair, &mut raw],
        Duration::from_secs(5),
        |a| a[0].world().resource::<Sessions>().get(2).is_none()
    ));
    let stats = server.world().resource::<NetworkStats>();
    assert_eq!(stats.kicked_clients, 1);
    assert!(server.world().resource::<Sessions>().get(1).is_some());
}

/// A client that keeps talking (view changes) but never acknowledges an
/// update would make the server keep every unit it ever sent it; after
/// `idle_timeout_secs` owing acks it is disconnected, and a player that
/// acks is not.
#[test]
fn a_client_that_never_acks_is_disconnected() {
    let cfg = NetworkConfig {
        idle_timeout_secs: 2,
        ..config()
    };
    let (mut server, addr) = server_with(cfg, ServerAuth::Insecure, &[]);
    spawn_block(&mut server, 1, WorldPos::new(0, 0), 4);
    let mut fair = player(1, addr, view_at(WorldPos::new(0, 0)));
    let mut raw = raw_client(2, addr);
    let view = galaxy_net::protocol::encode_client(
        &galaxy_net::protocol::ClientMessage::ViewUpdate(galaxy_net::protocol::ViewUpdate {
            view: view_at(WorldPos::new(0, 0)),
            max_update_hz: 0,
            profile: Default::default(),
        }),
    )
    .unwrap();
    let mut last_view = std::time::Instant::now() - Duration::from_secs(1);
    let ok = pump_until(
        &mut [&mut server, &mut fair, &mut raw],
        Duration::from_secs(15),
        |a| {
            // Twice a second, the same view: talking, so never idle.
            let mut client = a[2].world_mut().resource_mut::<bevy_renet::RenetClient>();
            if client.is_connected() && last_view.elapsed() >= Duration::from_millis(500) {
                client.send_message(galaxy_net::channels::COMMANDS, view.clone());
                last_view = std::time::Instant::now();
            }
            a[0].world()
                .resource::<NetworkStats>()
                .rejected
                .get("no_acks")
                == Some(&1)
        },
    );
    let stats = server.world().resource::<NetworkStats>().clone();
    assert!(
        ok,
        "the client that never acks was not disconnected: {stats:?}"
    );
    assert_eq!(stats.rejected.get("idle_timeout"), None, "{stats:?}");
    let sessions = server.world().resource::<Sessions>();
    assert!(sessions.get(2).is_none() && sessions.get(1).is_some());
    assert!(connected(&fair));
}
