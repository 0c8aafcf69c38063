//! Builds server and client apps of a small test game and pumps them in
//! real time.
//!
//! The game is not the RTS: ships with an owner, a position, a hull and a
//! goal, walking 25 cm per tick toward their goal; players order their own
//! ships with `Move` and `Stop`; a ship whose hull reaches zero sinks and is
//! announced with a `UnitDestroyed` event. Only its components are
//! replicated, through `UnitReplication`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bevy::ecs::query::Or;
use bevy::prelude::*;
use galaxy_net::*;

/// The player owning a ship.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner(pub PlayerId);

/// Where a ship is.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position(pub WorldPos);

/// A ship's hull points; it sinks at zero.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hull(pub u16);

/// Where a ship is going (server only: not replicated).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Goal(pub Option<WorldPos>);

/// Centimetres a ship moves per tick.
pub const SPEED: u64 = 25;

unit_snapshot! {
    /// A ship as clients see it.
    pub struct ShipState {
        pub owner: u64,
        pub position: WorldPos,
        pub hull: u16,
    }
}

/// How ships are replicated.
pub struct Ships;

impl UnitReplication for Ships {
    type Snapshot = ShipState;
    type Components = (&'static Owner, &'static Position, &'static Hull);
    type Changed = Or<(Changed<Owner>, Changed<Position>, Changed<Hull>)>;

    fn snapshot(
        (owner, position, hull): (&Owner, &Position, &Hull),
        _previous: Option<&ShipState>,
        _ctx: &SnapshotContext,
    ) -> ShipState {
        ShipState {
            owner: owner.0,
            position: position.0,
            hull: hull.0,
        }
    }

    fn components(s: &ShipState, _tick: u64) -> impl Bundle {
        (Owner(s.owner), Position(s.position), Hull(s.hull))
    }
}

/// The game's server rules: orders, movement, sinking.
pub struct ShipRules;

impl Plugin for ShipRules {
    fn build(&self, app: &mut App) {
        app.init_resource::<NextId>().add_systems(
            FixedUpdate,
            (apply_orders, sail, sink).chain().in_set(NetSet::Simulate),
        );
    }
}

/// The next unit id to give a ship.
#[derive(Resource, Default)]
pub struct NextId(pub u64);

/// Players may order only their own ships; others are refused and counted.
fn apply_orders(
    mut received: ResMut<ReceivedCommands>,
    mut ships: Query<(&NetUnit, &Owner, &mut Goal)>,
    mut stats: ResMut<NetworkStats>,
) {
    for (player, command) in received.0.drain(..) {
        let goal = match &command {
            CompressedCommand::Move { to, .. } | CompressedCommand::AttackMove { to, .. } => {
                Some(*to)
            }
            _ => None,
        };
        let units = command.units();
        for (id, owner, mut g) in &mut ships {
            if units.contains(id.0) {
                if owner.0 == player {
                    g.0 = goal;
                } else {
                    stats.reject("not_owned", 1);
                }
            }
        }
    }
}

fn sail(mut ships: Query<(&mut Position, &mut Goal)>) {
    for (mut p, mut goal) in &mut ships {
        if let Some(to) = goal.0 {
            p.0 = galaxy_net::protocol::step_towards(p.0, to, SPEED);
            if p.0 == to {
                goal.0 = None;
            }
        }
    }
}

fn sink(
    ships: Query<(Entity, &NetUnit, &Position, &Hull)>,
    tick: Res<ServerTick>,
    mut events: ResMut<OutgoingEvents>,
    mut commands: Commands,
) {
    for (e, id, p, hull) in &ships {
        if hull.0 == 0 {
            events.0.push(CombatEvent {
                sector_id: SectorId::at(p.0),
                event_type: CombatEventType::UnitDestroyed,
                participants: vec![id.0],
                timestamp: tick.0,
            });
            commands.entity(e).despawn();
        }
    }
}

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
        .insert_resource(config)
        .insert_resource(ServerTransport {
            auth,
            extra_public: extra_public.to_vec(),
        })
        .add_plugins((GalaxyServerPlugin::default(), NetcodeTransportPlugin))
        .replicate_unit::<Ships>()
        .add_plugins(ShipRules);
    let addr = app.world().resource::<ServerAddress>().0;
    (app, addr)
}

pub fn client(auth: ClientAuth, view: WorldRect) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config())
        .insert_resource(View(view))
        .insert_resource(ClientTransport::to(auth))
        .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
        .replicate_unit::<Ships>();
    app
}

/// An insecure client of `server` playing as `player`.
pub fn player(player: PlayerId, server: SocketAddr, view: WorldRect) -> App {
    client(ClientAuth::Insecure { player, server }, view)
}

/// Like [`player`], with its own network settings (e.g. a link profile).
pub fn player_with(
    player: PlayerId,
    server: SocketAddr,
    view: WorldRect,
    config: NetworkConfig,
) -> App {
    let mut app = client(ClientAuth::Insecure { player, server }, view);
    app.insert_resource(config);
    app
}

/// A renet connection that never speaks the game protocol.
pub fn raw_client(player: PlayerId, server: SocketAddr) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(bevy_renet::RenetClientPlugin)
        .insert_resource(config())
        .insert_resource(ClientTransport::to(ClientAuth::Insecure { player, server }))
        .add_plugins(NetcodeTransportPlugin);
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

/// Ships as `(id, state)` from an app's entities: the server's truth, or
/// the entities a client made from its updates.
pub fn ships(app: &mut App) -> BTreeMap<UnitId, ShipState> {
    let mut q = app
        .world_mut()
        .query::<(&NetUnit, &Owner, &Position, &Hull)>();
    q.iter(app.world())
        .map(|(id, o, p, h)| {
            (
                id.0,
                ShipState {
                    owner: o.0,
                    position: p.0,
                    hull: h.0,
                },
            )
        })
        .collect()
}

/// The server's ships.
pub fn server_units(server: &mut App) -> BTreeMap<UnitId, ShipState> {
    ships(server)
}

/// The ships a client has as entities (made from its updates).
pub fn client_units(client: &mut App) -> BTreeMap<UnitId, ShipState> {
    ships(client)
}

/// The ships in a client's baseline store (what its entities are made from).
pub fn replica_units(client: &App) -> BTreeMap<UnitId, ShipState> {
    client
        .world()
        .resource::<ClientReplica<ShipState>>()
        .receiver
        .units()
        .map(|(id, s)| (id, *s))
        .collect()
}

/// Spawns `n` ships for `owner` in a row starting at `origin`, 3 m apart.
pub fn spawn_row(server: &mut App, owner: PlayerId, origin: WorldPos, n: i64) -> Vec<UnitId> {
    (0..n)
        .map(|i| spawn_ship(server, owner, WorldPos::new(origin.x + i * 300, origin.y)))
        .collect()
}

/// Spawns `side` x `side` ships for `owner` in a square from `origin`, 2 m apart.
pub fn spawn_block(server: &mut App, owner: PlayerId, origin: WorldPos, side: i64) -> Vec<UnitId> {
    (0..side * side)
        .map(|i| {
            let at = WorldPos::new(origin.x + (i % side) * 200, origin.y + (i / side) * 200);
            spawn_ship(server, owner, at)
        })
        .collect()
}

/// One ship, with the next free id.
pub fn spawn_ship(server: &mut App, owner: PlayerId, at: WorldPos) -> UnitId {
    let id = {
        let mut next = server.world_mut().resource_mut::<NextId>();
        next.0 += 1;
        next.0
    };
    server.world_mut().spawn((
        NetUnit(id),
        Owner(owner),
        Position(at),
        Hull(100),
        Goal(None),
    ));
    id
}

/// Orders ships on the server directly (as the game's own AI would).
pub fn set_goal(server: &mut App, ids: &[UnitId], to: WorldPos) {
    let mut q = server.world_mut().query::<(&NetUnit, &mut Goal)>();
    for (id, mut goal) in q.iter_mut(server.world_mut()) {
        if ids.contains(&id.0) {
            goal.0 = Some(to);
        }
    }
}

/// Stops ships where they are.
pub fn stop(server: &mut App, ids: &[UnitId]) {
    let mut q = server.world_mut().query::<(&NetUnit, &mut Goal)>();
    for (id, mut goal) in q.iter_mut(server.world_mut()) {
        if ids.contains(&id.0) {
            goal.0 = None;
        }
    }
}

/// A view of 1 km x 1 km around `center`.
pub fn view_at(center: WorldPos) -> WorldRect {
    WorldRect::around(center, 50_000)
}

/// The server's ships inside the interest of a view (near and far rings).
pub fn expected_for(server: &mut App, view: WorldRect) -> BTreeMap<UnitId, ShipState> {
    let interest = Interest::of(view);
    server_units(server)
        .into_iter()
        .filter(|(_, s)| interest.contains_pos(s.position))
        .collect()
}

pub fn connected(app: &App) -> bool {
    *app.world().resource::<ConnectionStatus>() == ConnectionStatus::Connected
}
