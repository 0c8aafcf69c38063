//! Player migration: server A redirects a client to server B; the client
//! reconnects there at once and sees B's units. Bad redirects are refused
//! and counted, and the client stays where it is.

use std::time::Duration;

use bevy::prelude::App;
use galaxy_net::protocol::Redirect;
use galaxy_net::tokens::issue_token;
use galaxy_net::*;

use crate::harness::*;

const PLAYER: u64 = 1;

fn sessions_have(app: &App, player: u64) -> bool {
    app.world().resource::<Sessions>().get(player).is_some()
}

fn stats(app: &App) -> &NetworkStats {
    app.world().resource::<NetworkStats>()
}

fn redirects_followed(app: &App) -> u32 {
    app.world().resource::<ClientConnector>().redirects
}

/// A and B (sharing `key` if secure) both hold units of the player in view;
/// the client plays on A, A redirects it to B.
fn migrate(key: Option<ServerKey>) {
    let auth = || key.clone().map_or(ServerAuth::Insecure, ServerAuth::Secure);
    let (mut a, a_addr) = server(auth(), &[]);
    let (mut b, b_addr) = server(auth(), &[]);
    spawn_block(&mut a, PLAYER, WorldPos::new(0, 0), 3);
    spawn_row(&mut b, PLAYER, WorldPos::new(10_000, 5_000), 5);
    let view = view_at(WorldPos::new(0, 0));
    let client_auth = match &key {
        Some(key) => {
            let t = issue_token(key, config().protocol_id, PLAYER, vec![a_addr], 60, 5).unwrap();
            ClientAuth::Token(Box::new(t))
        }
        None => ClientAuth::Insecure {
            player: PLAYER,
            server: a_addr,
        },
    };
    let mut c = client(client_auth, view);
    let ok = pump_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |x| connected(x[2]) && client_units(x[2]) == expected_for(x[0], view),
    );
    assert!(ok, "the client never saw A's units");
    assert_eq!(client_units(&mut c).len(), 9);
    assert_ne!(expected_for(&mut a, view), expected_for(&mut b, view));

    let redirect = redirect_to(&auth(), &config(), PLAYER, b_addr, 42).unwrap();
    assert_eq!(redirect.connect_token.is_empty(), key.is_none());
    a.world_mut()
        .resource_mut::<PendingRedirects>()
        .0
        .push((PLAYER, redirect));
    let mut saw_connecting = false;
    let ok = pump_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(15),
        |x| {
            saw_connecting |=
                *x[2].world().resource::<ConnectionStatus>() == ConnectionStatus::Connecting;
            let want = expected_for(x[1], view);
            redirects_followed(x[2]) == 1
                && connected(x[2])
                && sessions_have(x[1], PLAYER)
                && !sessions_have(x[0], PLAYER)
                && !want.is_empty()
                && client_units(x[2]) == want
        },
    );
    assert!(
        ok,
        "not migrated: followed {}, on B {}, on A {}, {} units, client stats {:?}",
        redirects_followed(&c),
        sessions_have(&b, PLAYER),
        sessions_have(&a, PLAYER),
        client_units(&mut c).len(),
        stats(&c)
    );
    assert!(saw_connecting, "the client never showed Connecting");
    assert_eq!(stats(&a).redirects_sent, 1);
    assert_eq!(stats(&c).redirects_followed, 1);
    assert_eq!(stats(&c).rejected.get("bad_redirect"), None);
    let targets = c.world().resource::<ClientConnector>().targets();
    assert_eq!(targets[0].server(), Some(b_addr), "B first");
    assert_eq!(targets[1].server(), Some(a_addr), "A kept as a fallback");

    // Sent once, followed once: the client stays on B with B's units only.
    pump_for(&mut [&mut a, &mut b, &mut c], Duration::from_millis(500));
    assert_eq!(stats(&a).redirects_sent, 1);
    assert_eq!(redirects_followed(&c), 1);
    assert!(connected(&c) && sessions_have(&b, PLAYER) && !sessions_have(&a, PLAYER));
    assert_eq!(client_units(&mut c), expected_for(&mut b, view));
}

#[test]
fn a_redirected_client_moves_to_the_other_server() {
    migrate(None);
}

#[test]
fn a_redirected_client_moves_between_secure_servers_sharing_a_key() {
    migrate(Some(ServerKey::random()));
}

#[test]
fn bad_redirects_are_counted_and_the_client_stays() {
    let (mut a, a_addr) = server(ServerAuth::Insecure, &[]);
    spawn_block(&mut a, PLAYER, WorldPos::new(0, 0), 2);
    let view = view_at(WorldPos::new(0, 0));
    let mut c = player(PLAYER, a_addr, view);
    assert!(pump_until(
        &mut [&mut a, &mut c],
        Duration::from_secs(10),
        |x| { connected(x[1]) && client_units(x[1]).len() == 4 }
    ));
    let elsewhere = "127.0.0.1:9".parse().unwrap();
    let token = issue_token(
        &ServerKey::random(),
        config().protocol_id,
        PLAYER,
        vec![elsewhere],
        60,
        5,
    )
    .unwrap();
    let bad = [
        Redirect {
            server_addr: "not an address".into(),
            connect_token: vec![],
            epoch: 1,
        },
        Redirect {
            server_addr: "127.0.0.1:10".into(),
            connect_token: galaxy_net::tokens::token_to_bytes(&token),
            epoch: 1,
        },
        Redirect {
            server_addr: "127.0.0.1:10".into(),
            connect_token: vec![0; 100],
            epoch: 1,
        },
    ];
    a.world_mut()
        .resource_mut::<PendingRedirects>()
        .0
        .extend(bad.into_iter().map(|r| (PLAYER, r)));
    let ok = pump_until(&mut [&mut a, &mut c], Duration::from_secs(10), |x| {
        stats(x[1]).rejected.get("bad_redirect") == Some(&3)
    });
    assert!(ok, "bad redirects not counted: {:?}", stats(&c));
    pump_for(&mut [&mut a, &mut c], Duration::from_millis(500));
    assert_eq!(stats(&a).redirects_sent, 3);
    assert_eq!(stats(&c).redirects_followed, 0);
    assert_eq!(redirects_followed(&c), 0);
    assert!(connected(&c) && sessions_have(&a, PLAYER));
    assert_eq!(client_units(&mut c), expected_for(&mut a, view));
    assert_eq!(c.world().resource::<ClientConnector>().targets().len(), 1);
}

/// A client sent to a server with nothing in its view keeps the old
/// server's ships a moment (the new one might still send them), then,
/// once the grace after connecting is over, has no stale entities left.
#[test]
fn units_of_the_old_server_go_when_the_new_one_has_none() {
    let (mut a, a_addr) = server(ServerAuth::Insecure, &[]);
    let (mut b, b_addr) = server(ServerAuth::Insecure, &[]);
    spawn_block(&mut a, PLAYER, WorldPos::new(0, 0), 2);
    let view = view_at(WorldPos::new(0, 0));
    let mut c = player(PLAYER, a_addr, view);
    assert!(pump_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |x| client_units(x[2]).len() == 4
    ));
    let redirect = redirect_to(&ServerAuth::Insecure, &config(), PLAYER, b_addr, 1).unwrap();
    a.world_mut()
        .resource_mut::<PendingRedirects>()
        .0
        .push((PLAYER, redirect));
    assert!(pump_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |x| sessions_have(x[1], PLAYER) && connected(x[2])
    ));
    assert_eq!(
        client_units(&mut c).len(),
        4,
        "kept while the new session starts"
    );
    let ok = pump_until(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |x| client_units(x[2]).is_empty(),
    );
    assert!(ok, "stale units left: {:?}", client_units(&mut c));
    let mut all = c.world_mut().query::<&NetUnit>();
    assert_eq!(all.iter(c.world()).count(), 0);
}
