//! Messages between the servers of a cluster (the design's `ServerSync`,
//! `LoadBalance`, `SectorTransfer`, and players' commands forwarded to the
//! server that simulates their units), as one [`ClusterMessage`] enum, and
//! their bytes. Clients never see these: a game server's client channel
//! decodes `galaxy_protocol::ClientMessage` only.

use std::collections::BTreeMap;

use galaxy_protocol::codec::{DecodeError, EncodeError, check_sector, decode_value, encode_value};
use galaxy_protocol::{BatchCommand, CompressedUnit, PlayerId, SectorId};
use serde::{Deserialize, Serialize};

/// Most units in one snapshot or transfer: 32,768 units of the largest
/// encoding (70 bytes each) take 2.3 MB, within the 4 MiB any message may
/// take ([`galaxy_protocol::codec::MAX_MESSAGE_BYTES`]; encoding a larger
/// message is refused with `EncodeError::TooLarge`, so a sender learns it
/// at once instead of its peer refusing it).
pub const MAX_SNAPSHOT_UNITS: usize = 1 << 15;

/// Most order batches in one snapshot (they share the 4 MiB with the units).
pub const MAX_SNAPSHOT_ORDERS: usize = 1 << 12;

/// Most sectors named in one cluster message.
pub const MAX_SECTORS_PER_MESSAGE: usize = 1 << 16;

/// One sector's complete state at a tick, for inter-server sync, handoff and failover.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectorSnapshot {
    /// Server tick of the snapshot.
    pub tick: u64,
    /// Ownership epoch (fencing token) of the server that took it.
    pub epoch: u64,
    /// Every unit in the sector.
    #[serde(deserialize_with = "galaxy_protocol::codec::bounded::vec::<_, _, MAX_SNAPSHOT_UNITS>")]
    pub units: Vec<CompressedUnit>,
    /// The standing orders of those units, as the commands that would give
    /// them again (so a restored or handed-over unit keeps walking).
    #[serde(
        deserialize_with = "galaxy_protocol::codec::bounded::vec::<_, _, MAX_SNAPSHOT_ORDERS>"
    )]
    pub orders: Vec<BatchCommand>,
}

/// Border state a server shares with its neighbours (the design's `ServerSync`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerSync {
    /// The sending server.
    pub server_id: u32,
    /// Snapshots of the sectors it owns on the border.
    #[serde(
        deserialize_with = "galaxy_protocol::codec::bounded::map::<_, _, _, MAX_SECTORS_PER_MESSAGE>"
    )]
    pub sector_states: BTreeMap<SectorId, SectorSnapshot>,
    /// Sender's tick.
    pub timestamp: u64,
}

/// A balancer's order to move sectors to another server (the design's `LoadBalance`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadBalance {
    /// Server that should take the sectors.
    pub target_server: u32,
    /// The sectors to move.
    #[serde(
        deserialize_with = "galaxy_protocol::codec::bounded::vec::<_, _, MAX_SECTORS_PER_MESSAGE>"
    )]
    pub sectors_to_migrate: Vec<SectorId>,
}

/// A player's units moving between sectors owned by different servers
/// (the design's `SectorTransfer`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectorTransfer {
    /// The player whose units move.
    pub player_id: PlayerId,
    /// Sector they leave.
    pub from_sector: SectorId,
    /// Sector they enter.
    pub to_sector: SectorId,
    /// Ownership epoch of the sending owner (stale owners are refused).
    pub epoch: u64,
    /// The units, whole.
    #[serde(deserialize_with = "galaxy_protocol::codec::bounded::vec::<_, _, MAX_SNAPSHOT_UNITS>")]
    pub units: Vec<CompressedUnit>,
    /// Their standing orders, as commands (so they keep walking over there).
    #[serde(
        deserialize_with = "galaxy_protocol::codec::bounded::vec::<_, _, MAX_SNAPSHOT_ORDERS>"
    )]
    pub orders: Vec<BatchCommand>,
}

/// Every message one server sends another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterMessage {
    /// A player's commands for units this server simulates, forwarded by
    /// the server the player is connected to.
    BatchCommand(BatchCommand),
    /// Border sync, and the sector state of a handoff.
    ServerSync(ServerSync),
    /// Sector migration order.
    LoadBalance(LoadBalance),
    /// Units handed over at a border.
    SectorTransfer(SectorTransfer),
}

/// Wire tags (the same bytes as before the messages were split by
/// direction; 6 and up are outside every client-server tag).
mod tag {
    pub const BATCH_COMMAND: u8 = 4;
    pub const SERVER_SYNC: u8 = 6;
    pub const LOAD_BALANCE: u8 = 7;
    pub const SECTOR_TRANSFER: u8 = 8;
}

impl ClusterMessage {
    /// Short name of the variant, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BatchCommand(_) => "BatchCommand",
            Self::ServerSync(_) => "ServerSync",
            Self::LoadBalance(_) => "LoadBalance",
            Self::SectorTransfer(_) => "SectorTransfer",
        }
    }

    /// The wire bytes: a tag, then the message in the protocol's codec.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match self {
            Self::BatchCommand(m) => encode_value(tag::BATCH_COMMAND, m, &mut out)?,
            Self::ServerSync(m) => encode_value(tag::SERVER_SYNC, m, &mut out)?,
            Self::LoadBalance(m) => encode_value(tag::LOAD_BALANCE, m, &mut out)?,
            Self::SectorTransfer(m) => encode_value(tag::SECTOR_TRANSFER, m, &mut out)?,
        }
        Ok(out)
    }

    /// Decodes one whole message: a typed error for anything else (the
    /// codec's limits bound what a forged length can reserve), and every
    /// sector named must exist.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&t, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let msg = match t {
            tag::BATCH_COMMAND => Self::BatchCommand(decode_value(body)?),
            tag::SERVER_SYNC => Self::ServerSync(decode_value(body)?),
            tag::LOAD_BALANCE => Self::LoadBalance(decode_value(body)?),
            tag::SECTOR_TRANSFER => Self::SectorTransfer(decode_value(body)?),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        match &msg {
            Self::BatchCommand(b) => check_sector(&b.sector_id)?,
            Self::ServerSync(s) => s.sector_states.keys().try_for_each(check_sector)?,
            Self::LoadBalance(l) => l.sectors_to_migrate.iter().try_for_each(check_sector)?,
            Self::SectorTransfer(t) => {
                check_sector(&t.from_sector)?;
                check_sector(&t.to_sector)?;
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use galaxy_protocol::{
        CompressedCommand, QuantizedUnit, UnitIdList, UnitSample, UnitState, Velocity, WorldPos,
        quantize_at,
    };
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn sector() -> impl Strategy<Value = SectorId> {
        (any::<i64>(), any::<i64>(), 0u8..=galaxy_protocol::MAX_SCALE).prop_map(|(x, y, s)| {
            SectorId::containing(WorldPos::new(x, y), s).expect("scale in range")
        })
    }

    fn unit() -> impl Strategy<Value = CompressedUnit> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            (any::<i64>(), any::<i64>(), any::<i32>(), any::<i32>()),
            0.0f32..40_000.0,
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(unit_id, owner, kind, (x, y, vx, vy), health, target)| {
                let sample = UnitSample {
                    owner,
                    kind,
                    position: WorldPos::new(x, y),
                    velocity: Velocity::new(vx, vy),
                    health,
                    state: UnitState(kind % 5),
                    target,
                };
                CompressedUnit {
                    unit_id,
                    unit: quantize_at(&sample, 7),
                }
            })
    }

    fn batch() -> impl Strategy<Value = BatchCommand> {
        (sector(), vec(any::<u64>(), 0..20), any::<u64>()).prop_map(|(sector_id, ids, player)| {
            BatchCommand {
                sector_id,
                commands: vec![CompressedCommand::Stop {
                    units: UnitIdList::from_ids(ids).expect("few ids"),
                }],
                player_id: player,
            }
        })
    }

    fn snapshot() -> impl Strategy<Value = SectorSnapshot> {
        (
            any::<u64>(),
            any::<u64>(),
            vec(unit(), 0..8),
            vec(batch(), 0..3),
        )
            .prop_map(|(tick, epoch, units, orders)| SectorSnapshot {
                tick,
                epoch,
                units,
                orders,
            })
    }

    fn message() -> impl Strategy<Value = ClusterMessage> {
        prop_oneof![
            batch().prop_map(ClusterMessage::BatchCommand),
            (
                any::<u32>(),
                vec((sector(), snapshot()), 0..4),
                any::<u64>()
            )
                .prop_map(|(server_id, states, timestamp)| ClusterMessage::ServerSync(
                    ServerSync {
                        server_id,
                        sector_states: states.into_iter().collect(),
                        timestamp,
                    }
                )),
            (any::<u32>(), vec(sector(), 0..20)).prop_map(|(target_server, sectors)| {
                ClusterMessage::LoadBalance(LoadBalance {
                    target_server,
                    sectors_to_migrate: sectors,
                })
            }),
            (
                any::<u64>(),
                sector(),
                sector(),
                any::<u64>(),
                vec(unit(), 0..10),
                vec(batch(), 0..3)
            )
                .prop_map(
                    |(player_id, from_sector, to_sector, epoch, units, orders)| {
                        ClusterMessage::SectorTransfer(SectorTransfer {
                            player_id,
                            from_sector,
                            to_sector,
                            epoch,
                            units,
                            orders,
                        })
                    }
                ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn every_message_round_trips(msg in message()) {
            let bytes = msg.encode().expect("valid messages encode");
            prop_assert_eq!(ClusterMessage::decode(&bytes), Ok(msg));
        }

        /// Truncated or bit-flipped bytes give a message or a typed error.
        #[test]
        fn damaged_bytes_never_panic(msg in message(), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
            let mut bytes = msg.encode().expect("valid messages encode");
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1;
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = ClusterMessage::decode(&bytes);
        }
    }

    /// Varint (bincode standard) of `n`, the way a forger would write a length.
    fn varint(n: u64) -> Vec<u8> {
        let mut v = vec![0xfd];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }

    #[test]
    fn forged_lengths_and_bad_values_are_refused() {
        let sector = [0u8, 0, 0];
        let forged = [
            // ServerSync with 2^40 sectors.
            [vec![6u8, 1], varint(1 << 40)].concat(),
            // LoadBalance with 2^40 sectors.
            [vec![7u8, 1], varint(1 << 40)].concat(),
            // SectorTransfer with 2^40 units.
            [
                vec![8u8, 1],
                sector.to_vec(),
                sector.to_vec(),
                vec![1],
                varint(1 << 40),
            ]
            .concat(),
        ];
        for input in &forged {
            assert!(ClusterMessage::decode(input).is_err(), "{input:02x?}");
        }
        assert_eq!(ClusterMessage::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            ClusterMessage::decode(&[1, 0]),
            Err(DecodeError::UnknownTag(1))
        );
        // A sector above the maximum scale.
        let bad_sector = ClusterMessage::LoadBalance(LoadBalance {
            target_server: 1,
            sectors_to_migrate: vec![SectorId::new(0, 0, 99)],
        });
        assert_eq!(
            ClusterMessage::decode(&bad_sector.encode().unwrap()),
            Err(DecodeError::InvalidSector(SectorId::new(0, 0, 99)))
        );
        // Health above the maximum inside a transferred unit.
        let unit: QuantizedUnit = galaxy_protocol::quantize(&UnitSample {
            owner: 1,
            kind: 0,
            position: WorldPos::new(0, 0),
            velocity: Velocity::ZERO,
            health: 5.0,
            state: UnitState::IDLE,
            target: None,
        });
        let mut t = ClusterMessage::SectorTransfer(SectorTransfer {
            player_id: 1,
            from_sector: SectorId::new(0, 0, 0),
            to_sector: SectorId::new(0, 0, 0),
            epoch: 0,
            units: vec![CompressedUnit { unit_id: 1, unit }],
            orders: vec![],
        })
        .encode()
        .unwrap();
        // health is the u16 after owner, kind, x, y: replace `5` with the varint of 40,000.
        let pos = t.iter().rposition(|&b| b == 5).unwrap();
        t.splice(pos..=pos, [251, 0x40, 0x9c]);
        assert!(matches!(
            ClusterMessage::decode(&t),
            Err(DecodeError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod limits {
    use galaxy_protocol::codec::MAX_MESSAGE_BYTES;
    use galaxy_protocol::{UnitSample, UnitState, Velocity, WorldPos, quantize_at};

    use super::*;

    /// A unit whose every field takes its longest encoding.
    fn widest(unit_id: u64) -> CompressedUnit {
        let sample = UnitSample {
            owner: u64::MAX,
            kind: u8::MAX,
            position: WorldPos::new(i64::MIN, i64::MAX),
            velocity: Velocity::new(i32::MIN, i32::MAX),
            health: 32_767.0,
            state: UnitState(255),
            target: Some(u64::MAX),
        };
        CompressedUnit {
            unit_id: u64::MAX - unit_id,
            unit: quantize_at(&sample, u64::MAX),
        }
    }

    fn transfer(units: usize, orders: Vec<BatchCommand>) -> ClusterMessage {
        ClusterMessage::SectorTransfer(SectorTransfer {
            player_id: u64::MAX,
            from_sector: SectorId::new(0, 0, 0),
            to_sector: SectorId::new(1, 0, 0),
            epoch: u64::MAX,
            units: (0..units as u64).map(widest).collect(),
            orders,
        })
    }

    /// The documented limit and the codec agree (issue 19, item 7): the
    /// most units a transfer may hold, each of the widest encoding, round
    /// trip; one more is refused by the decoder, and a transfer too big
    /// for any decoder is refused when it is encoded, not by the peer.
    #[test]
    fn the_snapshot_limit_fits_a_message() {
        let full = transfer(MAX_SNAPSHOT_UNITS, vec![]);
        let bytes = full.encode().expect("the most units encode");
        assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
        assert_eq!(ClusterMessage::decode(&bytes), Ok(full));
        let over = transfer(MAX_SNAPSHOT_UNITS + 1, vec![]).encode().unwrap();
        assert!(matches!(
            ClusterMessage::decode(&over),
            Err(DecodeError::Malformed(_))
        ));
        let orders = (0..MAX_SNAPSHOT_ORDERS as u64)
            .map(|k| BatchCommand {
                sector_id: SectorId::new(0, 0, 0),
                commands: vec![galaxy_protocol::CompressedCommand::Stop {
                    units: galaxy_protocol::UnitIdList::from_ids(
                        (0..600).map(|i| (k << 20) | (i * 2)),
                    )
                    .unwrap(),
                }],
                player_id: 1,
            })
            .collect();
        assert!(matches!(
            transfer(MAX_SNAPSHOT_UNITS, orders).encode(),
            Err(EncodeError::TooLarge { .. })
        ));
    }
}
