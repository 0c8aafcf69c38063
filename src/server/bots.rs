//! AI players living on the server, so it is never empty: each gets a base,
//! an army, and every few seconds sends part of it to attack-move somewhere.

use crate::sim::SimWorld;
use bevy::prelude::*;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{CompressedCommand, UnitIdList, WorldPos};
use galaxy_sim::Order;

/// Bot player ids start here, far from netcode client ids handed to people.
pub const FIRST_BOT_PLAYER: u64 = 1_000_000;

/// Adds `bots` AI players with `units_per_bot` units each.
pub struct BotPlugin {
    /// How many bots.
    pub bots: u32,
    /// Units each bot starts with.
    pub units_per_bot: u32,
    /// The first bot's player id (the others follow); cluster members use
    /// their own range so bots of different servers never share an id.
    pub first_player: u64,
    /// Where their bases stand and their raids go, and the radius of the
    /// circle of bases (raids go within two thirds of it): a cluster
    /// member's home sector; `None`: no bots (a rejoining cluster member).
    pub home: Option<(WorldPos, i64)>,
}

#[derive(Resource)]
struct Bots {
    players: Vec<u64>,
    home: WorldPos,
    radius: i64,
    rng: SplitMix64,
}

impl Plugin for BotPlugin {
    fn build(&self, app: &mut App) {
        let Some((home, radius)) = self.home else {
            return;
        };
        let (bots, per_bot) = (self.bots, self.units_per_bot);
        app.insert_resource(Bots {
            players: (0..u64::from(bots))
                .map(|i| self.first_player + i)
                .collect(),
            home,
            radius,
            rng: SplitMix64::new(7),
        })
        .add_systems(
            Startup,
            move |mut sim: ResMut<SimWorld>, bots: Res<Bots>| {
                for (i, &player) in bots.players.iter().enumerate() {
                    // Bases on a circle 1.5 km around the origin; armies next to them.
                    let angle = i as f64 / bots.players.len().max(1) as f64 * std::f64::consts::TAU;
                    let r = bots.radius as f64;
                    let around = WorldPos::new((angle.cos() * r) as i64, (angle.sin() * r) as i64);
                    let base = WorldPos::new(bots.home.x + around.x, bots.home.y + around.y);
                    sim.0.spawn_base(player, base);
                    for u in 0..i64::from(per_bot) {
                        let p =
                            WorldPos::new(base.x + (u % 20) * 300, base.y + (u / 20) * 300 + 2_000);
                        sim.0.spawn_unit(player, (u % 3) as u8, p);
                    }
                }
                for k in 0..4 {
                    sim.0.spawn_resource(WorldPos::new(
                        bots.home.x + ((k % 2) * 2 - 1) * bots.radius / 5,
                        bots.home.y + ((k / 2) * 2 - 1) * bots.radius / 5,
                    ));
                }
            },
        )
        .add_systems(
            FixedUpdate,
            think
                .before(galaxy_net::NetSet::Simulate)
                .run_if(super::cluster::acting),
        );
    }
}

/// Every ~3 s, each bot sends a random third of its idle units to a random
/// point within two thirds of its radius from home (1 km by default); units
/// under orders (a player's, in tests that play as a bot) are left alone.
fn think(mut sim: ResMut<SimWorld>, mut bots: ResMut<Bots>) {
    let tick = sim.0.tick();
    if !tick.is_multiple_of(60) {
        return;
    }
    let Bots {
        players,
        home,
        radius,
        rng,
    } = &mut *bots;
    let (bots_home, reach) = (*home, (*radius * 2 / 3).max(1));
    for &player in players.iter() {
        let units: Vec<u64> = sim
            .0
            .units()
            .filter(|(_, u)| u.owner == player && u.order == Order::Idle)
            .map(|(id, _)| id)
            .filter(|_| rng.chance(0.33))
            .collect();
        if units.is_empty() {
            continue;
        }
        let to = WorldPos::new(
            bots_home.x + rng.below(reach as u64 * 2) as i64 - reach,
            bots_home.y + rng.below(reach as u64 * 2) as i64 - reach,
        );
        if let Ok(units) = UnitIdList::from_ids(units) {
            sim.0
                .apply_command(player, &CompressedCommand::AttackMove { units, to });
        }
    }
}
