//! The authoritative tick: apply the commands received and step the
//! simulation (each fixed tick); then, once per frame, mirror what changed
//! into the ECS with its replicated (dead-reckoned) state.

use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use galaxy_protocol::{
    ChurnRoom, CombatEvent, CompressedCommand, DeadReckoner, IdHashMap, QuantizedUnit,
    ReckonConfig, ReckonerStats, SectorId, UnitId,
};

use super::{RemoteUnits, Sessions, SimWorld};
use crate::components::{NetUnit, Replicated, Sector};
use crate::config::NetworkConfig;
use crate::stats::NetworkStats;

/// Commands received this frame, applied at the next simulation tick.
#[derive(Resource, Default)]
pub(crate) struct CommandQueue(pub(crate) Vec<(ClientId, CompressedCommand)>);

/// Events from simulation ticks not yet sent.
#[derive(Resource, Default)]
pub(crate) struct PendingEvents(pub(crate) Vec<CombatEvent>);

/// One unit as the server replicates it.
#[derive(Clone, Copy, Debug)]
struct Mirrored {
    entity: Entity,
    /// The sector of where it was last seen.
    sector: SectorId,
    track: QuantizedUnit,
}

/// What one unit's mirror becomes this tick: worked out for many units at
/// once (on several threads), then applied.
#[derive(Clone, Copy, Debug)]
enum Mirroring {
    /// A unit seen for the first time.
    New(SectorId, QuantizedUnit),
    /// A new sector or track.
    Changed(SectorId, QuantizedUnit),
    /// No longer there.
    Gone,
}

/// Units per chunk when the mirror is worked out on several threads.
const MIRROR_CHUNK: usize = 4096;

/// Every unit this server shows clients (its own, its structures and its
/// neighbours' ghosts) with its dead-reckoning track (one for all clients;
/// see [`DeadReckoner`], threshold from `NetworkConfig::reckoning_threshold_cm`).
/// Each tick looks only at what the simulation says changed (and the
/// ghosts), so units that stand still cost nothing; ECS components are
/// written only for units whose sector or track changed.
#[derive(Resource, Default)]
pub struct ReplicatedUnits {
    reckoner: DeadReckoner,
    units: IdHashMap<UnitId, Mirrored>,
    /// Room in `units` for units dying and spawning (see [`ChurnRoom`]).
    room: ChurnRoom,
    /// Ids shown as ghosts last tick.
    ghosts: Vec<UnitId>,
    /// Ids to look at this tick (kept for its allocation).
    todo: Vec<UnitId>,
}

impl ReplicatedUnits {
    /// Replication with this dead-reckoning threshold.
    pub fn new(config: ReckonConfig) -> Self {
        Self {
            reckoner: DeadReckoner::new(config),
            ..Self::default()
        }
    }

    /// The track clients get for unit `id`, if the server shows it.
    pub fn track(&self, id: UnitId) -> Option<&QuantizedUnit> {
        self.units.get(&id).map(|m| &m.track)
    }

    /// The track of unit `id` if the server shows it and it is in the
    /// scale-0 sector `sector` (one lookup for both questions).
    pub fn track_in(&self, id: UnitId, sector: SectorId) -> Option<&QuantizedUnit> {
        self.units
            .get(&id)
            .filter(|m| m.sector == sector)
            .map(|m| &m.track)
    }

    /// True if the server shows unit `id`.
    pub fn contains(&self, id: UnitId) -> bool {
        self.units.contains_key(&id)
    }

    /// Units shown.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when no unit is shown.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// What the dead reckoning did (samples seen, new anchors).
    pub fn stats(&self) -> ReckonerStats {
        self.reckoner.stats()
    }
}

/// Bevy's compute task pool and the chunk size for `len` items, if the
/// work is worth splitting: a pool is there, `threads` allows it (not 1),
/// and there are at least two chunks of `min_chunk`.
fn parallel_plan(
    len: usize,
    min_chunk: usize,
    threads: usize,
) -> Option<(&'static bevy::tasks::ComputeTaskPool, usize)> {
    let pool = bevy::tasks::ComputeTaskPool::try_get().filter(|_| threads != 1)?;
    let threads = pool.thread_num() + 1;
    (threads >= 2 && len >= 2 * min_chunk).then(|| (pool, len.div_ceil(threads).max(min_chunk)))
}

/// Runs `work` on every item, in chunks of at least `min_chunk`, on Bevy's
/// compute task pool when there is one and the work is big enough.
pub(crate) fn in_parallel_mut<T: Send>(
    items: &mut [T],
    min_chunk: usize,
    threads: usize,
    work: impl Fn(&mut T) + Sync,
) {
    let Some((pool, chunk)) = parallel_plan(items.len(), min_chunk, threads) else {
        items.iter_mut().for_each(work);
        return;
    };
    let work = &work;
    pool.scope(|scope| {
        for part in items.chunks_mut(chunk) {
            scope.spawn(async move { part.iter_mut().for_each(work) });
        }
    });
}

/// Runs `work` on `items` cut in chunks of at least `min_chunk`, on Bevy's
/// compute task pool when there is one and the work is big enough, and
/// returns each chunk's result in order.
pub(crate) fn map_chunks<I: Sync, T: Send + 'static>(
    items: &[I],
    min_chunk: usize,
    threads: usize,
    work: impl Fn(&[I]) -> T + Sync,
) -> Vec<T> {
    let Some((pool, chunk)) = parallel_plan(items.len(), min_chunk, threads) else {
        return vec![work(items)];
    };
    let work = &work;
    pool.scope(|scope| {
        for part in items.chunks(chunk) {
            scope.spawn(async move { work(part) });
        }
    })
}

/// Units that left the simulation since the last replication.
#[derive(Resource, Default)]
pub(crate) struct UnitEntities {
    pub(crate) departed: Vec<UnitId>,
    /// Departed units that moved to another server ([`RemoteUnits`]): not
    /// removed from clients, who keep their last state until they follow.
    pub(crate) moved_away: Vec<UnitId>,
}

pub(crate) fn apply_commands(
    mut sim: ResMut<SimWorld>,
    mut queue: ResMut<CommandQueue>,
    mut sessions: ResMut<Sessions>,
    mut stats: ResMut<NetworkStats>,
    mut remote: ResMut<RemoteUnits>,
) {
    for (client, cmd) in queue.0.drain(..) {
        let before = remote.forwarded.len();
        let local = remote.split(client, cmd);
        stats.commands_forwarded += (remote.forwarded.len() - before) as u64;
        let Some(cmd) = local else {
            continue;
        };
        stats.commands_applied += 1;
        let out = sim.0.apply_command(client, &cmd);
        let reasons = [
            ("not_owned", out.not_owned),
            ("unknown_unit", out.unknown),
            ("invalid_target", u64::from(out.invalid_target)),
        ];
        for (reason, n) in reasons.into_iter().filter(|r| r.1 > 0) {
            stats.reject(reason, n);
            if let Some(s) = sessions.0.get_mut(&client) {
                s.log_once(reason);
            }
        }
    }
}

pub(crate) fn step_simulation(mut sim: ResMut<SimWorld>, mut events: ResMut<PendingEvents>) {
    let new = sim.0.step();
    events.0.extend(new);
}

/// Mirrors what changed in the simulation (units, resources and bases),
/// and the neighbours' ghosts, into [`ReplicatedUnits`] and the ECS: each
/// changed unit's track is dead-reckoned, and its `Sector` and `Replicated`
/// components are written only when they change. Units no longer there are
/// despawned and listed as departed.
///
/// Runs once per frame (first in [`crate::NetSet::Tag`]), at the last tick
/// the frame stepped: clients are sent one state per frame, so the ticks in
/// between need no track of their own. A frame that catches up several
/// ticks (after a slow one) pays for one mirror, not one per tick.
pub(crate) fn mirror_units(
    mut commands: Commands,
    mut sim: ResMut<SimWorld>,
    remote: Res<RemoteUnits>,
    mut replicated: ResMut<ReplicatedUnits>,
    mut gone: ResMut<UnitEntities>,
    mut units: Query<(&mut Sector, &mut Replicated)>,
    config: Res<NetworkConfig>,
) {
    let tick = sim.0.tick();
    let r = &mut *replicated;
    let mut todo = std::mem::take(&mut r.todo);
    if sim.0.take_changes(&mut todo).is_none() {
        // The change list was dropped: look at everything.
        todo.extend(r.units.keys().copied());
        todo.extend(sim.0.units().map(|(id, _)| id));
        todo.extend(sim.0.structures().map(|(id, _)| id));
    }
    // Ghosts are refreshed every tick (there are few); last tick's too, to
    // drop those that are no longer sent.
    let ghosts: Vec<UnitId> = remote
        .ghosts
        .keys()
        .copied()
        .filter(|&id| sim.0.sample(id).is_none())
        .collect();
    todo.extend(std::mem::replace(&mut r.ghosts, ghosts.clone()));
    todo.extend(ghosts);
    // Sorted already but for the ghosts: the stable sort merges runs in O(n).
    todo.sort();
    todo.dedup();
    // Worked out in chunks (on two threads for a big world), then applied:
    // most units keep their sector and track, and need no write at all.
    let (world, reckoner, mirror) = (&sim.0, &r.reckoner, &r.units);
    let ghosts = &remote.ghosts;
    let parts = map_chunks(&todo, MIRROR_CHUNK, config.server_threads, |ids| {
        let (mut out, mut observed, mut anchors) = (Vec::new(), 0u64, 0u64);
        world.samples_of(ids, |id, sample| {
            let sample = sample.or_else(|| ghosts.get(&id).map(|g| g.to_sample()));
            let Some(sample) = sample else {
                if mirror.contains_key(&id) {
                    out.push((id, Mirroring::Gone));
                }
                return;
            };
            observed += 1;
            let m = mirror.get(&id);
            let (track, anchored) = reckoner.next_track(m.map(|m| &m.track), tick, &sample);
            anchors += u64::from(anchored);
            let sector = SectorId::at(sample.position);
            match m {
                None => out.push((id, Mirroring::New(sector, track))),
                Some(m) if track != m.track || sector != m.sector => {
                    out.push((id, Mirroring::Changed(sector, track)));
                }
                Some(_) => {}
            }
        });
        (out, observed, anchors)
    });
    for (out, observed, anchors) in parts {
        r.reckoner.count(observed, anchors);
        for (id, change) in out {
            match change {
                Mirroring::Changed(sector, track) => {
                    if let Some(m) = r.units.get_mut(&id) {
                        if let Ok((mut s, mut q)) = units.get_mut(m.entity) {
                            s.set_if_neq(Sector(sector));
                            q.set_if_neq(Replicated(track));
                        }
                        (m.sector, m.track) = (sector, track);
                    }
                }
                Mirroring::Gone => {
                    if let Some(m) = r.units.remove(&id) {
                        commands.entity(m.entity).despawn();
                        gone.departed.push(id);
                    }
                }
                Mirroring::New(sector, track) => {
                    let entity = commands
                        .spawn((NetUnit(id), Sector(sector), Replicated(track)))
                        .id();
                    r.units.insert(
                        id,
                        Mirrored {
                            entity,
                            sector,
                            track,
                        },
                    );
                    r.room.make_room(&mut r.units);
                }
            }
        }
    }
    r.todo = todo;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks worked on the compute pool come back whole and in order, as
    /// the mirror needs to apply changes in id order.
    #[test]
    fn map_chunks_keeps_every_item_in_order() {
        bevy::tasks::ComputeTaskPool::get_or_init(|| {
            bevy::tasks::TaskPoolBuilder::new().num_threads(2).build()
        });
        let items: Vec<u64> = (0..50_000).collect();
        for threads in [0, 1] {
            let parts = map_chunks(&items, 1000, threads, |part| part.to_vec());
            assert_eq!(parts.len() > 1, threads == 0, "threads {threads}");
            assert_eq!(parts.concat(), items);
        }
    }
}
