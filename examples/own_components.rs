//! A small game that is not the RTS, replicated with `galaxy_net`: ships with
//! their own `Position`, `Hull` and `Shield` components and their own
//! movement system, sent by sector interest from a server app to a client
//! app over real UDP. The client's ships are entities with the same
//! components. `cargo run --example own_components`
use std::{collections::BTreeMap, net::SocketAddr, time::Duration, time::Instant};

use bevy::{ecs::query::Or, prelude::*};
use galaxy_net::*;

#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position(pub WorldPos);
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hull(pub u16);
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shield(pub u16);

unit_snapshot! {
    /// A ship as clients see it: one line per replicated field.
    pub struct ShipState { pub position: WorldPos, pub hull: u16, pub shield: u16 }
}

/// Which components make a ship's snapshot, and which a client's ship gets.
pub struct Ships;
type Parts<'a> = (&'a Position, &'a Hull, &'a Shield);

impl UnitReplication for Ships {
    type Snapshot = ShipState;
    type Components = Parts<'static>;
    type Changed = Or<(Changed<Position>, Changed<Hull>, Changed<Shield>)>;
    fn snapshot((p, h, s): Parts, _: Option<&ShipState>, _: &SnapshotContext) -> ShipState {
        let (position, hull, shield) = (p.0, h.0, s.0);
        ShipState {
            position,
            hull,
            shield,
        }
    }
    fn components(s: &ShipState, _tick: u64) -> impl Bundle {
        (Position(s.position), Hull(s.hull), Shield(s.shield))
    }
}

/// The game's own rule: ships fly north-east while their shields recharge.
fn fly(mut ships: Query<(&mut Position, &mut Shield)>) {
    for (mut p, mut shield) in ships.iter_mut().filter(|(_, s)| s.0 < 100) {
        p.0 = WorldPos::new(p.0.x + 30, p.0.y + 20);
        shield.0 += 1;
    }
}

/// A server on any free port: 12 ships near the origin, 5 ships 50 km away.
pub fn server() -> (App, SocketAddr) {
    let config = NetworkConfig {
        port: 0,
        ..default()
    };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config)
        .insert_resource(ServerTransport::new(ServerAuth::Insecure))
        .add_plugins((GalaxyServerPlugin::default(), NetcodeTransportPlugin))
        .replicate_unit::<Ships>()
        .add_systems(FixedUpdate, fly.in_set(NetSet::Simulate));
    for i in 0..17u64 {
        let x = if i < 12 { i as i64 * 500 } else { 5_000_000 };
        let at = Position(WorldPos::new(x, 0));
        app.world_mut()
            .spawn((NetUnit(i + 1), at, Hull(100), Shield(50)));
    }
    let addr = app.world().resource::<ServerAddress>().0;
    (app, addr)
}

/// A client looking at the origin (a 1 km view).
pub fn client(server: SocketAddr) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(View(WorldRect::around(WorldPos::new(0, 0), 50_000)))
        .insert_resource(ClientTransport::to(ClientAuth::insecure(1, server)))
        .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
        .replicate_unit::<Ships>();
    app
}

/// Every ship of an app's entities: its components, by id.
pub fn ships(app: &mut App) -> BTreeMap<UnitId, (Position, Hull, Shield)> {
    let mut q = app.world_mut().query::<(&NetUnit, Parts)>();
    let all = q
        .iter(app.world())
        .map(|(id, (p, h, s))| (id.0, (*p, *h, *s)));
    all.collect()
}

/// Runs both apps until the client has the server's ships in its view, all shields full.
pub fn run_until_converged(server: &mut App, client: &mut App, timeout: Duration) -> bool {
    let interest = Interest::of(client.world().resource::<View>().0);
    let start = Instant::now();
    while start.elapsed() < timeout {
        server.update();
        client.update();
        let mut want = ships(server);
        want.retain(|_, (p, _, _)| interest.contains_pos(p.0));
        if want.len() == 12 && want.values().all(|s| s.2.0 == 100) && ships(client) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn main() {
    let (mut server, addr) = server();
    let mut client = client(addr);
    let ok = run_until_converged(&mut server, &mut client, Duration::from_secs(20));
    let bytes = client.world().resource::<NetworkStats>().bytes_received;
    let seen = ships(&mut client).len();
    println!("converged: {ok}; the client has {seen} of the 17 ships as entities, {bytes} B in");
}
