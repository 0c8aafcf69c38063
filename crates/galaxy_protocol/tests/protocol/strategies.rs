//! proptest strategies for every message of the protocol.

use galaxy_protocol::command::MAX_COMMAND_UNITS;
use galaxy_protocol::*;
use proptest::collection::vec;
use proptest::prelude::*;

pub fn world_pos() -> impl Strategy<Value = WorldPos> {
    prop_oneof![
        (any::<i64>(), any::<i64>()).prop_map(|(x, y)| WorldPos::new(x, y)),
        (-10_000_000i64..10_000_000, -10_000_000i64..10_000_000)
            .prop_map(|(x, y)| WorldPos::new(x, y)),
    ]
}

pub fn sector() -> impl Strategy<Value = SectorId> {
    (world_pos(), 0..=MAX_SCALE)
        .prop_map(|(p, s)| SectorId::containing(p, s).expect("scale in range"))
}

pub fn velocity() -> impl Strategy<Value = Velocity> {
    prop_oneof![
        Just(Velocity::ZERO),
        (-1000i32..1000, -1000i32..1000).prop_map(|(x, y)| Velocity::new(x, y)),
        (any::<i32>(), any::<i32>()).prop_map(|(x, y)| Velocity::new(x, y)),
    ]
}

/// A unit whose track is anchored at or before `latest` (as in an update at that tick).
pub fn unit_anchored_by(latest: u64) -> impl Strategy<Value = QuantizedUnit> {
    (
        (any::<u64>(), any::<u8>(), world_pos(), velocity()),
        prop_oneof![0..=latest.min(100), 0..=latest],
        -10.0f32..40_000.0,
        any::<u8>(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |((owner, kind, position, velocity), anchor, health, state, target)| {
                quantize_at(
                    &UnitSample {
                        owner,
                        kind,
                        position,
                        velocity,
                        health,
                        state: UnitState(state),
                        target,
                    },
                    anchor,
                )
            },
        )
}

fn position_change() -> impl Strategy<Value = PositionChange> {
    prop_oneof![
        (any::<i16>(), any::<i16>()).prop_map(|(x, y)| PositionChange::Delta(x, y)),
        (-40i16..40, -40i16..40).prop_map(|(x, y)| PositionChange::Delta(x, y)),
        world_pos().prop_map(PositionChange::Absolute),
    ]
}

fn velocity_change() -> impl Strategy<Value = VelocityChange> {
    prop_oneof![
        (
            -MAX_VELOCITY_DELTA..=MAX_VELOCITY_DELTA,
            -MAX_VELOCITY_DELTA..=MAX_VELOCITY_DELTA
        )
            .prop_map(|(x, y)| VelocityChange::Delta(x, y)),
        (-9i16..9, -9i16..9).prop_map(|(x, y)| VelocityChange::Delta(x, y)),
        velocity().prop_map(VelocityChange::Absolute),
    ]
}

fn motion_change(timestamp: u64) -> impl Strategy<Value = MotionChange> {
    (
        prop_oneof![Just(0u64), 0u64..5, any::<u64>()],
        position_change(),
        proptest::option::of(velocity_change()),
    )
        .prop_map(move |(age, position, velocity)| MotionChange {
            anchor_tick: timestamp.saturating_sub(age),
            position,
            velocity,
        })
}

fn body(timestamp: u64) -> impl Strategy<Value = DeltaBody> {
    let changes = (
        1..=timestamp.max(1),
        proptest::option::of(motion_change(timestamp)),
        proptest::option::of(any::<i16>()),
        proptest::option::of(any::<u8>().prop_map(UnitState)),
        proptest::option::of(proptest::option::of(any::<u64>())),
    )
        .prop_map(move |(age, motion, health_delta, state_changes, target)| {
            DeltaBody::Changes {
                baseline_tick: timestamp - age,
                changes: FieldChanges {
                    motion,
                    health_delta,
                    state_changes,
                    target,
                },
            }
        });
    let full = unit_anchored_by(timestamp).prop_map(DeltaBody::Full);
    if timestamp == 0 {
        prop_oneof![full, Just(DeltaBody::Removed)].boxed()
    } else {
        prop_oneof![4 => changes, 1 => full, 1 => Just(DeltaBody::Removed)].boxed()
    }
}

pub fn unit_update() -> impl Strategy<Value = UnitUpdate> {
    (sector(), any::<u16>(), prop_oneof![0u64..5, any::<u64>()]).prop_flat_map(
        |(sector_id, sequence, timestamp)| {
            (vec(any::<u64>(), 0..60), vec(body(timestamp), 60)).prop_map(
                move |(mut ids, bodies)| {
                    ids.sort_unstable();
                    ids.dedup();
                    UnitUpdate {
                        sector_id,
                        sequence,
                        timestamp,
                        updates: ids
                            .into_iter()
                            .zip(bodies)
                            .map(|(unit_id, body)| UnitDelta { unit_id, body })
                            .collect(),
                    }
                },
            )
        },
    )
}

pub fn id_list() -> impl Strategy<Value = UnitIdList> {
    prop_oneof![
        vec(any::<u64>(), 0..50),
        (any::<u64>(), 0..2000u64).prop_map(|(s, n)| (0..n).map(|i| s.saturating_add(i)).collect()),
        (0..MAX_COMMAND_UNITS).prop_map(|n| vec![u64::MAX - n, u64::MAX]),
    ]
    .prop_map(|ids| UnitIdList::from_ids(ids).expect("within the limit"))
}

pub fn command() -> impl Strategy<Value = CompressedCommand> {
    prop_oneof![
        (id_list(), world_pos()).prop_map(|(units, to)| CompressedCommand::Move { units, to }),
        (id_list(), world_pos())
            .prop_map(|(units, to)| CompressedCommand::AttackMove { units, to }),
        (id_list(), any::<u64>())
            .prop_map(|(units, target)| CompressedCommand::Attack { units, target }),
        id_list().prop_map(|units| CompressedCommand::Stop { units }),
    ]
}

fn event_type() -> impl Strategy<Value = CombatEventType> {
    prop_oneof![
        Just(CombatEventType::UnitDestroyed),
        Just(CombatEventType::MassiveBattle),
        Just(CombatEventType::ResourceCapture),
        Just(CombatEventType::BaseDestroyed),
    ]
}

fn redirect() -> impl Strategy<Value = Redirect> {
    let addr = prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| { std::net::SocketAddr::from((ip, port)).to_string() }),
        (any::<[u16; 8]>(), any::<u16>())
            .prop_map(|(ip, port)| { std::net::SocketAddr::from((ip, port)).to_string() }),
        // Anything within the bound: the codec does not parse addresses.
        "\\PC{0,16}",
    ];
    let token = prop_oneof![
        Just(Vec::new()),
        vec(any::<u8>(), 0..300),
        vec(any::<u8>(), MAX_CONNECT_TOKEN_BYTES),
    ];
    (addr, token, any::<u64>()).prop_map(|(server_addr, connect_token, epoch)| Redirect {
        server_addr,
        connect_token,
        epoch,
    })
}

/// A message of either direction, as one value for tests that take both.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Client to server.
    Client(ClientMessage),
    /// Server to client.
    Server(ServerMessage),
}

impl Message {
    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Client(m) => encode_client(m).expect("valid messages encode"),
            Message::Server(m) => encode_server(m).expect("valid messages encode"),
        }
    }

    /// `bytes` decoded by this message's direction's decoder.
    pub fn decode_like(&self, bytes: &[u8]) -> Result<Message, DecodeError> {
        match self {
            Message::Client(_) => decode_client(bytes).map(Message::Client),
            Message::Server(_) => decode_server(bytes).map(Message::Server),
        }
    }
}

/// Any message a client sends, with every variant represented.
pub fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u64>(), "\\PC{0,40}", any::<u16>()).prop_map(
            |(player_id, auth_token, protocol_version)| {
                ClientMessage::Connect(Connect {
                    player_id,
                    auth_token,
                    protocol_version,
                })
            }
        ),
        (any::<u16>(), any::<u64>())
            .prop_map(|(latest, mask)| ClientMessage::UpdateAck(UpdateAck { latest, mask })),
        (
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<[u64; 16]>()
        )
            .prop_map(|(latest, mask, tick, units, buckets)| {
                ClientMessage::StateDigest(StateDigest {
                    ack: UpdateAck { latest, mask },
                    tick,
                    units,
                    buckets,
                })
            }),
        (world_pos(), world_pos(), any::<u8>(), any::<bool>()).prop_map(
            |(a, b, max_update_hz, mobile)| {
                ClientMessage::ViewUpdate(ViewUpdate {
                    view: WorldRect::from_corners(a, b),
                    max_update_hz,
                    profile: if mobile {
                        LinkProfile::Mobile
                    } else {
                        LinkProfile::Desktop
                    },
                })
            }
        ),
        (sector(), vec(command(), 0..6), any::<u64>()).prop_map(
            |(sector_id, commands, player_id)| {
                ClientMessage::BatchCommand(BatchCommand {
                    sector_id,
                    commands,
                    player_id,
                })
            }
        ),
    ]
}

/// Any message a server sends a client, with every variant represented.
pub fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        unit_update().prop_map(ServerMessage::UnitUpdate),
        (
            sector(),
            event_type(),
            vec(any::<u64>(), 0..20),
            any::<u64>()
        )
            .prop_map(|(sector_id, event_type, participants, timestamp)| {
                ServerMessage::CombatEvent(CombatEvent {
                    sector_id,
                    event_type,
                    participants,
                    timestamp,
                })
            }),
        redirect().prop_map(ServerMessage::Redirect),
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(player_id, grace_ms, ai_orders, takeovers)| {
                ServerMessage::ArmyControl(ArmyControl {
                    player_id,
                    grace_ms,
                    ai_orders,
                    takeovers,
                })
            }
        ),
    ]
}

/// Any message of either direction.
pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        client_message().prop_map(Message::Client),
        server_message().prop_map(Message::Server),
    ]
}
