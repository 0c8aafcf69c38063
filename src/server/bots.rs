//! AI players living on the server, so it is never empty: each gets a base,
//! an army, and every few seconds sends part of it to attack-move somewhere.

use bevy::prelude::*;
use galaxy_net::SimWorld;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{CompressedCommand, UnitIdList, WorldPos};

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
    /// Where their bases stand and their raids go (a cluster member's home
    /// sector); `None`: no bots (a rejoining cluster member).
    pub home: Option<WorldPos>,
}

#[derive(Resource)]
struct Bots {
    players: Vec<u64>,
    home: WorldPos,
    rng: SplitMix64,
}

impl Plugin for BotPlugin {
    fn build(&self, app: &mut App) {
        let Some(home) = self.home else {
            return;
        };
        let (bots, per_bot) = (self.bots, self.units_per_bot);
        app.insert_resource(Bots {
            players: (0..u64::from(bots))
                .map(|i| self.first_player + i)
                .collect(),
            home,
            rng: SplitMix64::new(7),
        })
        .add_systems(
            Startup,
            move |mut sim: ResMut<SimWorld>, bots: Res<Bots>| {
                for (i, &player) in bots.players.iter().enumerate() {
                    // Bases on a circle 1.5 km around the origin; armies next to them.
                    let angle = i as f64 / bots.players.len().max(1) as f64 * std::f64::consts::TAU;
                    let around = WorldPos::from_metres(angle.cos() * 1500.0, angle.sin() * 1500.0);
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
                        bots.home.x + (k % 2) * 60_000 - 30_000,
                        bots.home.y + (k / 2) * 60_000 - 30_000,
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

/// Every ~3 s, each bot sends a random third of its army to a random point
/// within 1 km of home.
fn think(mut sim: ResMut<SimWorld>, mut bots: ResMut<Bots>) {
    let tick = sim.0.tick();
    if !tick.is_multiple_of(60) {
        return;
    }
    let Bots { players, home, rng } = &mut *bots;
    let bots_home = *home;
    for &player in players.iter() {
        let units: Vec<u64> = sim
            .0
            .units()
            .filter(|(_, u)| u.owner == player)
            .map(|(id, _)| id)
            .filter(|_| rng.chance(0.33))
            .collect();
        if units.is_empty() {
            continue;
        }
        let to = WorldPos::new(
            bots_home.x + rng.below(200_000) as i64 - 100_000,
            bots_home.y + rng.below(200_000) as i64 - 100_000,
        );
        if let Ok(units) = UnitIdList::from_ids(units) {
            sim.0
                .apply_command(player, &CompressedCommand::AttackMove { units, to });
        }
    }
}
