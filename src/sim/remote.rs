//! Units another server of the cluster simulates: where commands for them
//! go, and the neighbours' border units shown as read-only ghosts.

use std::collections::{BTreeMap, HashMap};

use bevy::prelude::Resource;
use galaxy_protocol::{CompressedCommand, PlayerId, QuantizedUnit, UnitId, UnitIdList};

/// Units simulated by another server (a cluster member's neighbours):
/// commands naming them are split off into `forwarded` for the game to
/// pass on, instead of being refused as unknown; `ghosts` are replicated
/// to clients read-only, so a view across a server border shows both sides.
#[derive(Resource, Default, Debug)]
pub struct RemoteUnits {
    /// Unit -> the server that simulates it now.
    pub units: HashMap<UnitId, u32>,
    /// Units near our border that a neighbour simulates, as it last sent
    /// them (`ServerSync`): shown to clients, never simulated here.
    pub ghosts: HashMap<UnitId, QuantizedUnit>,
    /// (player, server, command for that server's units), oldest first.
    pub forwarded: Vec<(PlayerId, u32, CompressedCommand)>,
}

impl RemoteUnits {
    /// Splits `cmd`: the part for local units is returned; the parts for
    /// remote units are queued in `forwarded`, one per server.
    pub fn split(&mut self, player: PlayerId, cmd: CompressedCommand) -> Option<CompressedCommand> {
        if self.units.is_empty() || !cmd.units().iter().any(|u| self.units.contains_key(&u)) {
            return Some(cmd);
        }
        let mut local = Vec::new();
        let mut remote: BTreeMap<u32, Vec<UnitId>> = BTreeMap::new();
        for u in cmd.units().iter() {
            match self.units.get(&u) {
                Some(&server) => remote.entry(server).or_default().push(u),
                None => local.push(u),
            }
        }
        for (server, ids) in remote {
            if let Ok(list) = UnitIdList::from_ids(ids) {
                self.forwarded.push((player, server, cmd.with_units(list)));
            }
        }
        UnitIdList::from_ids(local)
            .ok()
            .filter(|l| !l.is_empty())
            .map(|l| cmd.with_units(l))
    }
}
