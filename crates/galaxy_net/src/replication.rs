//! What a game registers to be replicated, and the few things both sides
//! agree on: the unit's identity ([`NetUnit`]), the tick ([`ServerTick`],
//! [`TickRate`]) and, for big worlds, which entities changed
//! ([`ChangeJournal`]).
//!
//! A game describes its units once, with a [`UnitReplication`]: which of
//! its components make a unit's [`UnitSnapshot`] on the server, and which
//! components a client's entity gets from one. `app.replicate_unit::<R>()`
//! ([`AppReplicationExt`]) then adds the systems that carry them: on the
//! server, changed entities are snapshotted, indexed by sector and sent to
//! each client whose interest holds them as deltas against what it
//! acknowledged; on the client, every unit in view is an entity with a
//! [`NetUnit`], a [`crate::Replica`] of its newest snapshot and the game's
//! own components.

use bevy::ecs::lifecycle::HookContext;
use bevy::ecs::query::{QueryFilter, ROQueryItem, ReadOnlyQueryData};
use bevy::ecs::world::DeferredWorld;
use bevy::prelude::*;
use galaxy_protocol::{UnitId, UnitSnapshot};

/// A replicated unit's universe-wide id, the same on the server and every
/// client (and across the servers of a cluster). On the server, an entity
/// with a `NetUnit` and the components of the registered
/// [`UnitReplication`] is replicated; despawning it (or removing this
/// component) removes the unit from every client. Immutable: give an
/// entity another id by inserting a new `NetUnit`.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[component(immutable, on_discard = net_unit_discarded)]
pub struct NetUnit(pub UnitId);

/// Unit ids whose [`NetUnit`] left an entity (despawned, removed or
/// replaced) since the server last looked; filled by the component's hook.
#[derive(Resource, Default, Debug)]
pub(crate) struct DepartedUnits(pub(crate) Vec<UnitId>);

fn net_unit_discarded(mut world: DeferredWorld, ctx: HookContext) {
    let Some(id) = world.get::<NetUnit>(ctx.entity).map(|u| u.0) else {
        return;
    };
    // Only a server keeps the list (a client's units come and go by its replica).
    if let Some(mut departed) = world.get_resource_mut::<DepartedUnits>() {
        departed.0.push(id);
    }
}

/// What a snapshot is made with besides the components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotContext {
    /// The server tick the snapshot is for.
    pub tick: u64,
    /// Dead reckoning: a unit whose track still holds within this many
    /// centimetres keeps its previous track (`NetworkConfig::reckoning_threshold_cm`).
    pub reckoning_threshold_cm: u32,
}

/// How one kind of game unit is replicated; register it with
/// [`AppReplicationExt::replicate_unit`]. One per app.
///
/// ```
/// use bevy::ecs::query::Or;
/// use bevy::prelude::*;
/// use galaxy_net::*;
///
/// #[derive(Component, Clone, Copy)]
/// struct Position(WorldPos);
/// #[derive(Component, Clone, Copy)]
/// struct Hull(u16);
///
/// unit_snapshot! {
///     /// A ship as clients see it.
///     pub struct ShipState {
///         pub position: WorldPos,
///         pub hull: u16,
///     }
/// }
///
/// struct Ships;
///
/// impl UnitReplication for Ships {
///     type Snapshot = ShipState;
///     type Components = (&'static Position, &'static Hull);
///     type Changed = Or<(Changed<Position>, Changed<Hull>)>;
///
///     fn snapshot((p, h): (&Position, &Hull), _: Option<&ShipState>, _: &SnapshotContext) -> ShipState {
///         ShipState { position: p.0, hull: h.0 }
///     }
///
///     fn components(s: &ShipState, _tick: u64) -> impl Bundle {
///         (Position(s.position), Hull(s.hull))
///     }
/// }
/// ```
pub trait UnitReplication: Send + Sync + 'static {
    /// The replicated state of one unit (quantized: integers only).
    type Snapshot: UnitSnapshot;

    /// Server: the components a snapshot is made from.
    type Components: ReadOnlyQueryData + 'static;

    /// Server: the entities whose snapshot may have changed, usually
    /// `Or<(Changed<A>, Changed<B>, ...)>` over [`Self::Components`]. Not
    /// used while a [`ChangeJournal`] is enabled.
    type Changed: QueryFilter + 'static;

    /// Server: the snapshot of one unit at `ctx.tick`. `previous` is the
    /// one clients were last given (dead reckoning keeps a track while the
    /// unit stays on it).
    fn snapshot(
        components: ROQueryItem<'_, '_, Self::Components>,
        previous: Option<&Self::Snapshot>,
        ctx: &SnapshotContext,
    ) -> Self::Snapshot;

    /// Client: the game's components for a unit in state `snapshot` at
    /// server tick `tick`, inserted when it appears and each time it
    /// changes.
    fn components(snapshot: &Self::Snapshot, tick: u64) -> impl Bundle;
}

/// Entities whose replicated components changed this frame, pushed by
/// the game itself. When enabled, the server looks only at these (and at
/// departed units) instead of asking Bevy's change detection about every
/// replicated entity: a world of 100,000 units of which a few change pays
/// for the few. A game that writes its components from a simulation that
/// already knows what changed (the RTS does) enables it.
#[derive(Resource, Default, Debug)]
pub struct ChangeJournal {
    enabled: bool,
    entities: Vec<Entity>,
}

impl ChangeJournal {
    /// A journal the server reads instead of change detection.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            entities: Vec::new(),
        }
    }

    /// Whether the server reads this journal.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records that `entity`'s replicated components changed (or that it
    /// is new). Duplicates are fine.
    pub fn push(&mut self, entity: Entity) {
        if self.enabled {
            self.entities.push(entity);
        }
    }

    /// Takes the entities recorded since the last call.
    pub(crate) fn take(&mut self, into: &mut Vec<Entity>) {
        into.clear();
        std::mem::swap(into, &mut self.entities);
    }
}

/// The server's tick: the time of every snapshot, track and update. Both
/// sides count in it; a client learns it from each update.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerTick(pub u64);

/// Fixed ticks per second, the one rate the server simulates and
/// replicates at (it sets Bevy's `Time<Fixed>`; velocities are per tick).
/// From `NetworkConfig::update_rate` unless the app inserts its own.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct TickRate(pub f64);

impl TickRate {
    /// Seconds per tick.
    pub fn tick_secs(self) -> f64 {
        1.0 / self.0.max(f64::MIN_POSITIVE)
    }
}

/// Who advances the [`ServerTick`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TickPolicy {
    /// The server plugin, once per fixed tick (in `FixedFirst`, before the
    /// game's simulation).
    #[default]
    EveryFixedTick,
    /// The game, e.g. from its own simulation's tick (which may pause).
    Manual,
}

/// Which snapshot type the app registered (one per app).
#[derive(Resource)]
pub(crate) struct Registered(pub(crate) &'static str);

/// Registers a game's [`UnitReplication`] with the app.
pub trait AppReplicationExt {
    /// Replicates the game's units described by `R`. Add
    /// [`crate::GalaxyServerPlugin`] or [`crate::GalaxyClientPlugin`] first;
    /// one registration per app.
    fn replicate_unit<R: UnitReplication>(&mut self) -> &mut Self;
}

impl AppReplicationExt for App {
    fn replicate_unit<R: UnitReplication>(&mut self) -> &mut Self {
        let name = std::any::type_name::<R>();
        if let Some(other) = self.world().get_resource::<Registered>() {
            panic!(
                "replicate_unit::<{name}>: {} is already registered (one unit replication per app)",
                other.0
            );
        }
        self.insert_resource(Registered(name));
        let server = self
            .world()
            .contains_resource::<crate::server::ServerMarker>();
        let client = self
            .world()
            .contains_resource::<crate::client::ClientMarker>();
        if !server && !client {
            panic!(
                "replicate_unit::<{name}>: add GalaxyServerPlugin or GalaxyClientPlugin before registering units"
            );
        }
        if server {
            crate::server::build_replication::<R>(self);
        }
        if client {
            crate::client::build_replication::<R>(self);
        }
        self
    }
}
