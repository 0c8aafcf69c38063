//! AI takeover: when a player's connection drops, their army is not left
//! standing. After a grace period (default 5 s, [`AiTakeover::grace_secs`])
//! the server's AI commands it: every second, idle units attack-move onto
//! the nearest enemy within [`DEFEND_RADIUS_CM`] of them, so the army
//! defends itself and keeps fighting. When the player connects again,
//! control returns at once and the AI issues no further order. Each time a
//! player connects, the server tells them (`galaxy_protocol::ArmyControl`)
//! who commands their army, what the AI did while they were away and the
//! grace period, which the client's HUD shows.

use std::collections::{BTreeMap, BTreeSet};

use bevy::prelude::*;
use galaxy_net::{OutgoingArmyControl, Sessions};
use galaxy_protocol::{CompressedCommand, PlayerId, UnitIdList, WorldPos, distance_cm};
use galaxy_sim::Order;

use crate::sim::SimWorld;

/// The default grace period before the AI takes a disconnected army.
pub const DEFAULT_GRACE_SECS: f64 = 5.0;
/// Ticks between two rounds of AI orders (1 s at 20 Hz).
const THINK_EVERY_TICKS: u64 = 20;
/// How far from one of its units the AI looks for an enemy to fight.
pub const DEFEND_RADIUS_CM: i64 = 150_000;

/// Adds AI takeover to a game server.
pub struct AiTakeoverPlugin;

/// Configuration: how long a player may be gone before the AI takes over.
#[derive(Resource, Clone, Copy, Debug)]
pub struct AiTakeover {
    /// Seconds after a disconnect before the AI commands the army.
    pub grace_secs: f64,
}

impl Default for AiTakeover {
    fn default() -> Self {
        Self {
            grace_secs: DEFAULT_GRACE_SECS,
        }
    }
}

/// Who commands each player's army: every player that was ever connected.
/// (What the server tells the player is `galaxy_protocol::ArmyControl`.)
#[derive(Resource, Default, Debug)]
pub struct Armies {
    players: BTreeMap<PlayerId, Control>,
}

/// One player's army: whether they are connected and whether the AI has it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Control {
    /// The player has a session now.
    pub connected: bool,
    /// Local time (seconds) of the last connect or disconnect.
    pub since: f64,
    /// The AI commands the army.
    pub ai: bool,
    /// Orders the AI issued for this army, over all takeovers.
    pub ai_orders: u64,
    /// Times the AI took the army over.
    pub takeovers: u32,
}

impl Armies {
    /// The control state of `player`'s army, if they ever connected.
    pub fn get(&self, player: PlayerId) -> Option<&Control> {
        self.players.get(&player)
    }
}

impl Plugin for AiTakeoverPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<AiTakeover>()
            .init_resource::<Armies>()
            .add_systems(
                FixedUpdate,
                (track, think)
                    .chain()
                    .before(galaxy_net::NetSet::Simulate)
                    .run_if(super::cluster::acting)
                    .run_if(resource_exists::<Sessions>),
            );
    }
}

/// Notes connects and disconnects; hands an army to the AI once its player
/// has been gone for the grace period, and back the moment they return.
fn track(
    sessions: Res<Sessions>,
    config: Res<AiTakeover>,
    time: Res<Time<Real>>,
    mut control: ResMut<Armies>,
    mut notices: ResMut<OutgoingArmyControl>,
) {
    let now = time.elapsed_secs_f64();
    let connected: BTreeSet<PlayerId> = sessions.iter().map(|(_, s)| s.player()).collect();
    for &player in &connected {
        let c = control.players.entry(player).or_default();
        if !c.connected {
            c.connected = true;
            c.since = now;
            if c.ai {
                c.ai = false;
                info!("player {player} is back: their army is theirs again");
            }
            // Tell them who commands their army, and what the AI did.
            notices.0.push(galaxy_protocol::ArmyControl {
                player_id: player,
                grace_ms: (config.grace_secs * 1000.0).clamp(0.0, f64::from(u32::MAX)) as u32,
                ai_orders: u32::try_from(c.ai_orders).unwrap_or(u32::MAX),
                takeovers: c.takeovers,
            });
        }
    }
    for (&player, c) in control.players.iter_mut() {
        if c.connected && !connected.contains(&player) {
            c.connected = false;
            c.since = now;
        }
        if !c.connected && !c.ai && now - c.since >= config.grace_secs {
            c.ai = true;
            c.takeovers += 1;
            info!(
                "player {player} gone for {:.0} s: the AI commands their army",
                now - c.since
            );
        }
    }
}

/// Every second, for each army under AI: idle units attack-move onto the
/// nearest enemy within [`DEFEND_RADIUS_CM`] of their group's centre.
fn think(mut sim: ResMut<SimWorld>, mut control: ResMut<Armies>) {
    if !sim.0.tick().is_multiple_of(THINK_EVERY_TICKS) {
        return;
    }
    for (&player, c) in control.players.iter_mut().filter(|(_, c)| c.ai) {
        let idle: Vec<(u64, WorldPos)> = sim
            .0
            .units()
            .filter(|(_, u)| u.owner == player && u.order == Order::Idle)
            .map(|(id, u)| (id, u.position))
            .collect();
        if idle.is_empty() {
            continue;
        }
        let n = idle.len() as i64;
        let centre = WorldPos::new(
            idle.iter().map(|(_, p)| p.x / n).sum(),
            idle.iter().map(|(_, p)| p.y / n).sum(),
        );
        let reach = DEFEND_RADIUS_CM as u64 + spread(&idle, centre);
        let nearest = sim
            .0
            .units()
            .filter(|(_, u)| u.owner != player)
            .map(|(_, u)| (distance_cm(centre, u.position), u.position))
            .filter(|(d, _)| *d <= reach)
            .min_by_key(|(d, _)| *d);
        let Some((_, to)) = nearest else { continue };
        if let Ok(units) = UnitIdList::from_ids(idle.iter().map(|(id, _)| *id)) {
            sim.0
                .apply_command(player, &CompressedCommand::AttackMove { units, to });
            c.ai_orders += 1;
        }
    }
}

/// How far the farthest of `units` stands from `centre`.
fn spread(units: &[(u64, WorldPos)], centre: WorldPos) -> u64 {
    units
        .iter()
        .map(|(_, p)| distance_cm(centre, *p))
        .max()
        .unwrap_or(0)
}
