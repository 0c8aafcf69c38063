//! Builds server and client apps and pumps them in real time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::{PlayerId, QuantizedUnit, SectorId, UnitId, WorldPos, WorldRect, quantize};

pub fn config() -> NetworkConfig {
    NetworkConfig {
        port: 0,
        ..NetworkConfig::default()
    }
}

pub fn server(auth: ServerAuth, extra_public: &[SocketAddr]) -> (App, SocketAddr) {
    server_with(config(), auth, extra_public)
}

pub fn server_with(
    config: NetworkConfig,
    auth: ServerAuth,
    extra_public: &[SocketAddr],
) -> (App, SocketAddr) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config.clone())
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Server,
        });
    let addr = start_server(app.world_mut(), &config, auth, extra_public).expect("server binds");
    (app, addr)
}

pub fn client(player: PlayerId, auth: ClientAuth, view: WorldRect) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config())
        .insert_resource(View(view))
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Client(player),
        });
    connect_client(app.world_mut(), &config(), auth).expect("client socket");
    app
}

/// Updates every app, round robin, until `done` or `timeout`; true if done.
pub fn pump_until(
    apps: &mut [&mut App],
    timeout: Duration,
    mut done: impl FnMut(&mut [&mut App]) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Updates every app for `time`.
pub fn pump_for(apps: &mut [&mut App], time: Duration) {
    pump_until(apps, time, |_| false);
}

/// The server's units, quantized, keyed by id.
pub fn server_units(server: &App) -> BTreeMap<UnitId, QuantizedUnit> {
    server
        .world()
        .resource::<SimWorld>()
        .0
        .units()
        .map(|(id, u)| (id, quantize(&u.sample())))
        .collect()
}

/// The units a client sees.
pub fn client_units(client: &App) -> BTreeMap<UnitId, QuantizedUnit> {
    client
        .world()
        .resource::<ClientReplica>()
        .receiver
        .units()
        .map(|(id, u)| (id, *u))
        .collect()
}

/// Spawns `n` units for `owner` in a row starting at `origin`, 3 m apart.
pub fn spawn_row(server: &mut App, owner: PlayerId, origin: WorldPos, n: i64) -> Vec<UnitId> {
    let mut sim = server.world_mut().resource_mut::<SimWorld>();
    (0..n)
        .map(|i| {
            sim.0
                .spawn_unit(owner, 0, WorldPos::new(origin.x + i * 300, origin.y))
        })
        .collect()
}

/// Spawns `side` x `side` units for `owner` in a square from `origin`, 2 m apart.
pub fn spawn_block(server: &mut App, owner: PlayerId, origin: WorldPos, side: i64) -> Vec<UnitId> {
    let mut sim = server.world_mut().resource_mut::<SimWorld>();
    (0..side * side)
        .map(|i| {
            sim.0.spawn_unit(
                owner,
                0,
                WorldPos::new(origin.x + (i % side) * 200, origin.y + (i / side) * 200),
            )
        })
        .collect()
}

/// A view of 1 km x 1 km around `center`.
pub fn view_at(center: WorldPos) -> WorldRect {
    WorldRect::around(center, 50_000)
}

/// The server's units inside the interest of a view (near and far rings).
pub fn expected_for(server: &App, view: WorldRect) -> BTreeMap<UnitId, QuantizedUnit> {
    let (near, far) = galaxy_net::interest::interest(view);
    server_units(server)
        .into_iter()
        .filter(|(_, u)| galaxy_net::interest::in_interest(SectorId::at(u.position()), &near, &far))
        .collect()
}

pub fn connected(app: &App) -> bool {
    *app.world().resource::<ConnectionStatus>() == ConnectionStatus::Connected
}
