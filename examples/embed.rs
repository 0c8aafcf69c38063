//! Embedding `galaxy_net` in your own Bevy app: a server that spawns an army
//! and a client that watches it and orders it to move, in one process.
//!
//! `cargo run --example embed`

use std::time::Duration;

use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::{CompressedCommand, UnitIdList, WorldPos, WorldRect};

const PLAYER: u64 = 1;

fn main() {
    let config = NetworkConfig {
        port: 0,
        ..default()
    };

    // The server: the plugin in server mode plus the game's own spawning.
    let mut server = App::new();
    server
        .add_plugins(MinimalPlugins)
        .insert_resource(config.clone())
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Server,
        })
        .add_systems(Startup, spawn_army);
    let addr = start_server(server.world_mut(), &config, ServerAuth::Insecure, &[])
        .expect("bind a UDP port");

    // The client: say what it looks at; read what it sees; send orders.
    let mut client = App::new();
    client
        .add_plugins(MinimalPlugins)
        .insert_resource(config.clone())
        .insert_resource(View(WorldRect::around(WorldPos::new(0, 0), 50_000)))
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Client(PLAYER),
        })
        .add_systems(Update, (order_march, report));
    connect_client(
        client.world_mut(),
        &config,
        ClientAuth::Insecure {
            player: PLAYER,
            server: addr,
        },
    )
    .expect("open a socket");

    // A real game calls `app.run()`; two apps in one process take turns.
    for _ in 0..800 {
        server.update();
        client.update();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Twenty infantry in a row at the origin.
fn spawn_army(mut sim: ResMut<SimWorld>) {
    for i in 0..20 {
        sim.0.spawn_unit(PLAYER, 0, WorldPos::new(i * 300, 0));
    }
}

/// Once our units are visible, march them 10 m north-east.
fn order_march(
    replica: Res<ClientReplica>,
    mut out: ResMut<OutgoingCommands>,
    mut sent: Local<bool>,
) {
    let mine: Vec<u64> = replica
        .receiver
        .units()
        .filter(|(_, u)| u.owner() == PLAYER)
        .map(|(id, _)| id)
        .collect();
    if *sent || mine.len() < 20 {
        return;
    }
    *sent = true;
    let units = UnitIdList::from_ids(mine).expect("20 ids");
    out.0.push(CompressedCommand::Move {
        units,
        to: WorldPos::new(1_000, 1_000),
    });
    println!("ordered 20 units to (10 m, 10 m)");
}

/// Twice a second: connection, units seen, their mean position, bytes in.
fn report(
    time: Res<Time<Real>>,
    status: Res<ConnectionStatus>,
    replica: Res<ClientReplica>,
    stats: Res<NetworkStats>,
    mut last: Local<f32>,
) {
    if time.elapsed_secs() - *last < 0.5 {
        return;
    }
    *last = time.elapsed_secs();
    let units: Vec<_> = replica
        .receiver
        .units()
        .map(|(_, u)| u.position())
        .collect();
    let n = units.len().max(1) as f64;
    let (x, y) = units.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + p.x as f64 / n, y + p.y as f64 / n)
    });
    println!(
        "{:?}: {} units, centre ({:.1} m, {:.1} m), {} bytes received",
        *status,
        units.len(),
        x / 100.0,
        y / 100.0,
        stats.bytes_received
    );
}
