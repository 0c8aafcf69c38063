//! Tag: which replicated units changed this frame, as snapshots, indexed by
//! sector; and which left.
//!
//! The server keeps, per unit, the snapshot clients were last given and its
//! scale-0 sector ([`ReplicatedUnits`]). Each frame it looks only at the
//! entities that changed (Bevy's change detection over the registered
//! components, or the game's [`ChangeJournal`]), makes their snapshots and
//! records what really changed in the [`SectorIndex`]: a unit walking its
//! dead-reckoned track makes the same snapshot and costs no update.

use std::collections::HashMap;

use bevy::ecs::query::Or;
use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use galaxy_protocol::{
    AckJoin, ChurnRoom, DeltaConfig, DeltaSender, IdHashMap, SectorId, UnitId, UnitSnapshot,
    UpdateAck,
};

use super::delay::{Delayed, DelayedView};
use super::{Sessions, map_chunks};
use crate::config::NetworkConfig;
use crate::interest::SectorIndex;
use crate::replication::{
    ChangeJournal, DepartedUnits, NetUnit, ServerTick, SnapshotContext, UnitReplication,
};

/// Entities per chunk when a journal's snapshots are made on several threads.
const SNAPSHOT_CHUNK: usize = 4096;

/// One unit as the server replicates it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mirrored<S> {
    /// The scale-0 sector its snapshot puts it in.
    sector: SectorId,
    snapshot: S,
}

/// What one unit's record becomes this frame: worked out for many units at
/// once (on several threads), then applied (and, with a spectator delay,
/// applied again to the delayed copy later).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change<S> {
    /// A unit seen for the first time.
    New(SectorId, S),
    /// A new sector or snapshot.
    Changed(SectorId, S),
}

/// A unit that left, with the sector it was in.
pub(crate) type Departed = (UnitId, Option<SectorId>);

/// Every client's replication state.
pub(crate) type Clients<S> = HashMap<ClientId, ClientReplication<S>>;

/// One client's replication state for units of type `S`.
pub(crate) struct ClientReplication<S: UnitSnapshot> {
    pub(crate) sender: DeltaSender<S>,
    /// Tick of this client's last update of each sector in its interest.
    pub(crate) last_sent: IdHashMap<SectorId, u64>,
    /// Encoded updates waiting to be handed to renet.
    pub(crate) outbox: Vec<Vec<u8>>,
    /// Scratch: units leaving the client's interest.
    pub(crate) leaving: Vec<UnitId>,
    /// Spectators sharing these updates besides this client (see
    /// [`super::groups`]).
    pub(crate) members: Vec<ClientId>,
    /// With members: every member's acks (this client's too), joined.
    pub(crate) join: AckJoin<ClientId>,
    /// The joined ack last given to the sender.
    pub(crate) joined: Option<UpdateAck>,
    /// Highest update rate this client's group asks for (0: no limit).
    pub(crate) max_update_hz: u8,
}

impl<S: UnitSnapshot> ClientReplication<S> {
    pub(crate) fn new(config: &NetworkConfig) -> Self {
        Self::with(
            DeltaSender::new(DeltaConfig {
                deltas: config.compression_enabled,
                ..Default::default()
            }),
            IdHashMap::default(),
        )
    }

    /// A client's state continuing `sender`'s stream.
    fn with(sender: DeltaSender<S>, last_sent: IdHashMap<SectorId, u64>) -> Self {
        Self {
            sender,
            last_sent,
            outbox: Vec::new(),
            leaving: Vec::new(),
            members: Vec::new(),
            join: AckJoin::default(),
            joined: None,
            max_update_hz: 0,
        }
    }

    /// What a member leaving this client's group continues with: the
    /// same stream, alone (every baseline it names, the member acked).
    pub(crate) fn for_leaver(&self) -> Self {
        Self::with(self.sender.clone(), self.last_sent.clone())
    }

    /// Takes member `m` out of this client's group.
    pub(crate) fn remove_member(&mut self, m: ClientId) {
        self.members.retain(|&x| x != m);
        self.join.remove(m);
        self.alone_if_no_members();
    }

    /// With no member left, this client's own acks drive the sender again.
    pub(crate) fn alone_if_no_members(&mut self) {
        if self.members.is_empty() {
            self.join = AckJoin::default();
            self.joined = None;
        }
    }

    /// True while it has sent nothing (a spectator that may still join a
    /// group without a stream to leave).
    pub(crate) fn is_fresh(&self) -> bool {
        self.members.is_empty()
            && self.sender.packets_in_flight() == 0
            && self.sender.tracked_units().next().is_none()
    }
}

/// Every unit the server shows clients, with the snapshot they were last
/// given (one for all clients), and each client's delta sender.
#[derive(Resource)]
pub struct ReplicatedUnits<S: UnitSnapshot> {
    threshold_cm: u32,
    units: IdHashMap<UnitId, Mirrored<S>>,
    /// Room in `units` for units dying and spawning (see [`ChurnRoom`]).
    room: ChurnRoom,
    pub(crate) clients: Clients<S>,
    /// Units gone this frame, with the sector they were in.
    departed: Vec<Departed>,
    /// Scratch: the journal's entities.
    journal: Vec<Entity>,
    /// Snapshots made (units looked at) so far.
    snapshots: u64,
    /// The world as delayed spectators see it (`spectator_delay_secs` > 0).
    pub(crate) delayed: Option<Delayed<S>>,
}

impl<S: UnitSnapshot> ReplicatedUnits<S> {
    pub(crate) fn new(threshold_cm: u32, delay_ticks: u64) -> Self {
        Self {
            delayed: (delay_ticks > 0).then(|| Delayed::new(delay_ticks)),
            threshold_cm,
            units: IdHashMap::default(),
            room: ChurnRoom::default(),
            clients: HashMap::new(),
            departed: Vec::new(),
            journal: Vec::new(),
            snapshots: 0,
        }
    }

    /// The snapshot clients get for unit `id`, if the server shows it.
    pub fn snapshot(&self, id: UnitId) -> Option<&S> {
        self.units.get(&id).map(|m| &m.snapshot)
    }

    /// The units (read), the delayed spectators' copy if one is due, and
    /// the clients' states (written), apart.
    pub(crate) fn split_mut(
        &mut self,
    ) -> (
        UnitsView<'_, S>,
        Option<DelayedView<'_, S>>,
        &mut Clients<S>,
    ) {
        let delayed = self.delayed.as_ref().and_then(Delayed::view);
        (UnitsView(&self.units), delayed, &mut self.clients)
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

    /// Snapshots made so far (one per changed unit per frame).
    pub fn snapshots_made(&self) -> u64 {
        self.snapshots
    }

    /// One client's delta sender (what it was sent and acknowledged), for
    /// diagnostics and tests. A spectator sharing a group's updates gets
    /// the group's: what every member acknowledged.
    pub fn sender(&self, client: ClientId) -> Option<&DeltaSender<S>> {
        self.clients
            .get(&client)
            .or_else(|| self.clients.values().find(|c| c.members.contains(&client)))
            .map(|c| &c.sender)
    }
}

/// The units' snapshots, read while the clients' states are written.
pub(crate) struct UnitsView<'a, S>(pub(crate) &'a IdHashMap<UnitId, Mirrored<S>>);

impl<S> UnitsView<'_, S> {
    /// The snapshot of unit `id`, if the server shows it.
    pub(crate) fn snapshot(&self, id: UnitId) -> Option<&S> {
        self.0.get(&id).map(|m| &m.snapshot)
    }

    /// The snapshot of unit `id` if the server shows it and it is in the
    /// scale-0 sector `sector` (one lookup for both questions).
    pub(crate) fn snapshot_in(&self, id: UnitId, sector: SectorId) -> Option<&S> {
        self.0
            .get(&id)
            .filter(|m| m.sector == sector)
            .map(|m| &m.snapshot)
    }
}

/// First in Tag: starts the index's tick and forgets the units whose
/// [`NetUnit`] left an entity (their clients are told after the changes,
/// in case the unit came back on another entity).
pub(crate) fn remove_departed<S: UnitSnapshot>(
    mut departed: ResMut<DepartedUnits>,
    mut replicated: ResMut<ReplicatedUnits<S>>,
    mut index: ResMut<SectorIndex>,
    tick: Res<ServerTick>,
) {
    index.begin_tick(tick.0);
    let r = &mut *replicated;
    for id in departed.0.drain(..) {
        if let Some(sector) = remove_unit(&mut r.units, &mut index, id) {
            r.departed.push((id, sector));
            if let Some(d) = &mut r.delayed {
                d.record(tick.0, id, None);
            }
        }
    }
}

/// Forgets unit `id` in `units` and `index`; `Some(its sector)` if it was there.
pub(crate) fn remove_unit<S>(
    units: &mut IdHashMap<UnitId, Mirrored<S>>,
    index: &mut SectorIndex,
    id: UnitId,
) -> Option<Option<SectorId>> {
    units.remove(&id)?;
    let sector = index.sector_of(id);
    index.remove(id);
    Some(sector)
}

/// Applies one unit's change to `units` and records it in `index`.
pub(crate) fn apply_change<S: UnitSnapshot>(
    units: &mut IdHashMap<UnitId, Mirrored<S>>,
    room: &mut ChurnRoom,
    index: &mut SectorIndex,
    id: UnitId,
    change: Change<S>,
) {
    match change {
        Change::New(sector, snapshot) => {
            units.insert(id, Mirrored { sector, snapshot });
            room.make_room(units);
            index.place(id, sector);
            index.changed(id);
        }
        Change::Changed(sector, snapshot) => {
            if let Some(m) = units.get_mut(&id) {
                if m.sector != sector {
                    index.place(id, sector);
                }
                if m.snapshot != snapshot {
                    index.changed(id);
                }
                *m = Mirrored { sector, snapshot };
            }
        }
    }
}

/// Entities whose id or replicated components changed.
type ChangedUnits<R> = Or<(Changed<NetUnit>, <R as UnitReplication>::Changed)>;

/// Makes the snapshots of the units that changed and records what really
/// changed: sector moves and new snapshots, in the index.
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
pub(crate) fn collect_changes<R: UnitReplication>(
    changed: Query<(&NetUnit, R::Components), ChangedUnits<R>>,
    units: Query<(&NetUnit, R::Components)>,
    mut journal: ResMut<ChangeJournal>,
    mut replicated: ResMut<ReplicatedUnits<R::Snapshot>>,
    mut index: ResMut<SectorIndex>,
    tick: Res<ServerTick>,
    config: Res<NetworkConfig>,
) {
    let r = &mut *replicated;
    let ctx = SnapshotContext {
        tick: tick.0,
        reckoning_threshold_cm: r.threshold_cm,
    };
    let mirror = &r.units;
    let judge = |id: UnitId, snapshot: R::Snapshot| -> Option<Change<R::Snapshot>> {
        let sector = SectorId::at(snapshot.position_at(ctx.tick));
        match mirror.get(&id) {
            None => Some(Change::New(sector, snapshot)),
            Some(m) if m.snapshot != snapshot || m.sector != sector => {
                Some(Change::Changed(sector, snapshot))
            }
            Some(_) => None,
        }
    };
    let mut looked = 0u64;
    let parts: Vec<Vec<(UnitId, Change<R::Snapshot>)>> = if journal.is_enabled() {
        let mut entities = std::mem::take(&mut r.journal);
        journal.take(&mut entities);
        let parts = map_chunks(&entities, SNAPSHOT_CHUNK, config.server_threads, |chunk| {
            let mut out = Vec::new();
            for &e in chunk {
                if let Ok((unit, components)) = units.get(e) {
                    let previous = mirror.get(&unit.0).map(|m| &m.snapshot);
                    let snapshot = R::snapshot(components, previous, &ctx);
                    out.extend(judge(unit.0, snapshot).map(|c| (unit.0, c)));
                }
            }
            out
        });
        looked += entities.len() as u64;
        r.journal = entities;
        parts
    } else {
        let mut out = Vec::new();
        for (unit, components) in &changed {
            looked += 1;
            let previous = mirror.get(&unit.0).map(|m| &m.snapshot);
            let snapshot = R::snapshot(components, previous, &ctx);
            out.extend(judge(unit.0, snapshot).map(|c| (unit.0, c)));
        }
        vec![out]
    };
    r.snapshots += looked;
    for (id, change) in parts.into_iter().flatten() {
        apply_change(&mut r.units, &mut r.room, &mut index, id, change);
        if let Some(d) = &mut r.delayed {
            d.record(tick.0, id, Some(change));
        }
    }
}

/// Last in Tag: each unit that left is removed from every client whose
/// interest held its sector (a client shows only units in its interest),
/// unless it came back this frame. Delayed spectators are told when their
/// delayed copy of the world loses it ([`advance_delayed`]).
pub(crate) fn drop_departed_from_clients<S: UnitSnapshot>(
    mut replicated: ResMut<ReplicatedUnits<S>>,
    sessions: Res<Sessions>,
) {
    let r = &mut *replicated;
    drop_from_clients(&mut r.clients, &sessions, &r.departed, &r.units, false);
    r.departed.clear();
}

/// Removes each of `departed` not back in `units` from the senders of the
/// clients (delayed ones or live ones, as `delayed` says) whose interest
/// may hold its sector.
fn drop_from_clients<S: UnitSnapshot>(
    clients: &mut Clients<S>,
    sessions: &Sessions,
    departed: &[Departed],
    units: &IdHashMap<UnitId, Mirrored<S>>,
    delayed: bool,
) {
    for &(id, sector) in departed {
        if units.contains_key(&id) {
            continue; // back on another entity
        }
        for (client, c) in clients.iter_mut() {
            let holds = sessions.0.get(client).is_some_and(|s| {
                s.delayed == delayed && sector.is_none_or(|sector| s.may_hold(sector))
            });
            if holds {
                c.sender.remove_unit(id);
            }
        }
    }
}

/// After Tag, with a spectator delay: the delayed copy of the world takes
/// the changes now `delay` ticks old, and the delayed spectators lose the
/// units that left it.
pub(crate) fn advance_delayed<S: UnitSnapshot>(
    mut replicated: ResMut<ReplicatedUnits<S>>,
    sessions: Res<Sessions>,
    tick: Res<ServerTick>,
) {
    let r = &mut *replicated;
    let Some(d) = &mut r.delayed else { return };
    d.advance(tick.0);
    let (departed, units) = d.departed_and_units();
    drop_from_clients(&mut r.clients, &sessions, departed, units, true);
}
