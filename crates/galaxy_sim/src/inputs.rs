//! Everything done to a world from outside its own ticks, as data: a
//! world that records ([`World::record_inputs`]) notes each call that
//! changes it (a command, a spawn, an import...), so that the same calls on
//! the same world, with the same ticks between them, give the same world
//! again. That is what a replay holds between its keyframes.

use galaxy_protocol::{CompressedCommand, CompressedUnit, PlayerId, UnitId, WorldPos};
use serde::{Deserialize, Serialize};

use crate::world::{SimUnit, World};

/// One change made to a world from outside: the call, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorldInput {
    /// [`World::apply_command`] (also each command of [`World::apply_orders`]).
    Command {
        /// Who gave it.
        player: PlayerId,
        /// The command.
        command: CompressedCommand,
    },
    /// [`World::spawn_unit`].
    Spawn {
        /// Owner.
        owner: PlayerId,
        /// Unit type.
        kind: u8,
        /// Where.
        position: WorldPos,
    },
    /// [`World::insert_unit`].
    Insert {
        /// Its id.
        id: UnitId,
        /// The unit, whole.
        unit: SimUnit,
    },
    /// [`World::remove_unit`] and [`World::remove_where`]: these ids went
    /// (units, resources or bases).
    Remove(Vec<UnitId>),
    /// [`World::spawn_resource`].
    SpawnResource {
        /// Where.
        position: WorldPos,
    },
    /// [`World::spawn_base`].
    SpawnBase {
        /// Owner.
        owner: PlayerId,
        /// Where.
        position: WorldPos,
    },
    /// [`World::use_id_block`].
    IdBlock {
        /// First id of the block.
        first: UnitId,
        /// Ids in it.
        len: u64,
    },
    /// [`World::import`].
    Import(Vec<CompressedUnit>),
}

impl World {
    /// Starts (or stops) noting every change made from outside; see
    /// [`WorldInput`]. Stopping drops what was not taken.
    pub fn record_inputs(&mut self, on: bool) {
        self.inputs = on.then(Vec::new);
    }

    /// True while the world notes its inputs.
    pub fn is_recording_inputs(&self) -> bool {
        self.inputs.is_some()
    }

    /// The inputs noted since the last call, in the order they were made.
    pub fn take_inputs(&mut self) -> Vec<WorldInput> {
        self.inputs.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Notes an input, if recording (built only then).
    pub(crate) fn log(&mut self, input: impl FnOnce() -> WorldInput) {
        if let Some(log) = &mut self.inputs {
            log.push(input());
        }
    }

    /// Makes the call `input` notes, as it was made.
    pub fn apply_input(&mut self, input: &WorldInput) {
        match input {
            WorldInput::Command { player, command } => {
                self.apply_command(*player, command);
            }
            &WorldInput::Spawn {
                owner,
                kind,
                position,
            } => {
                self.spawn_unit(owner, kind, position);
            }
            &WorldInput::Insert { id, unit } => self.insert_unit(id, unit),
            WorldInput::Remove(ids) => self.remove_ids(ids),
            &WorldInput::SpawnResource { position } => {
                self.spawn_resource(position);
            }
            &WorldInput::SpawnBase { owner, position } => {
                self.spawn_base(owner, position);
            }
            &WorldInput::IdBlock { first, len } => self.use_id_block(first, len),
            WorldInput::Import(records) => {
                self.import(records);
            }
        }
    }

    /// Removes these units, resources and bases (noted as one input).
    pub(crate) fn remove_ids(&mut self, ids: &[UnitId]) {
        self.log(|| WorldInput::Remove(ids.to_vec()));
        for &id in ids {
            self.touch_place(id);
            if self.units.remove(&id).is_none() && self.resources.remove(&id).is_none() {
                self.bases.remove(&id);
            }
        }
    }
}
