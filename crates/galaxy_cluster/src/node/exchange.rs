//! A member's exchanges with other servers over core NATS: handoffs and
//! transfers (request and answer), border syncs and forwarded commands
//! (published), and what it answers when another server asks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use galaxy_protocol::SectorId;
use serde::{Deserialize, Serialize};

use super::{Member, NodeEvent, Origin};
use crate::cluster::{Cluster, Epoch};
use crate::messages::{ClusterMessage, SectorSnapshot, SectorTransfer, ServerSync};

impl Member {
    pub(super) async fn publish(&mut self, cluster: &Cluster, to: u32, msg: &ClusterMessage) {
        let sent = match msg.encode() {
            Ok(bytes) => cluster
                .nats_client()
                .publish(cluster.server_subject(to), Bytes::from(bytes))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            self.emit(NodeEvent::Error(format!("{} to {to}: {e}", msg.kind())));
        }
    }

    /// Gives units to the owner of the sector they walked into and waits
    /// for its answer; without one, they come back (the receiver skips
    /// units it already has, so a late duplicate cannot double them).
    pub(super) async fn transfer(&mut self, cluster: &Cluster, to: u32, transfer: SectorTransfer) {
        let started = Instant::now();
        let msg = ClusterMessage::SectorTransfer(transfer.clone());
        let reply = ask(cluster, to, &msg).await;
        match reply {
            Ok(HandoffReply::Accepted { .. }) => self.emit(NodeEvent::TransferDone {
                to,
                units: transfer.units.len(),
                elapsed: started.elapsed(),
            }),
            Ok(HandoffReply::Refused { reason }) | Err(reason) => {
                self.emit(NodeEvent::TransferFailed {
                    to,
                    transfer,
                    reason,
                })
            }
        }
    }

    /// Old owner: sends the sector's state to `to` and waits for it to take
    /// ownership by revision. Without an answer, the owners table decides.
    pub(super) async fn hand_off(
        &mut self,
        cluster: &mut Cluster,
        sector: SectorId,
        to: u32,
        snapshot: SectorSnapshot,
    ) {
        let started = Instant::now();
        let Some(&epoch) = self.owned.get(&sector) else {
            return self.emit(NodeEvent::HandoffFailed {
                sector,
                to,
                reason: "not ours".into(),
            });
        };
        let msg = ClusterMessage::ServerSync(ServerSync {
            server_id: cluster.server_id(),
            timestamp: snapshot.tick,
            sector_states: BTreeMap::from([(sector, SectorSnapshot { epoch, ..snapshot })]),
        });
        let reply = ask(cluster, to, &msg).await;
        let outcome = match reply {
            Ok(HandoffReply::Accepted { epoch }) => Ok(epoch),
            Ok(HandoffReply::Refused { reason }) => Err(reason),
            // Lost answer: the record says whether it happened.
            Err(e) => match cluster.owner(sector).await {
                Ok(Some(o)) if o.server == to && o.epoch > epoch => Ok(o.epoch),
                _ => Err(e),
            },
        };
        match outcome {
            Ok(new_epoch) => {
                self.owned.remove(&sector);
                cluster.release(sector);
                self.emit(NodeEvent::HandedOff {
                    sector,
                    to,
                    epoch: new_epoch,
                    elapsed: started.elapsed(),
                });
            }
            Err(reason) => self.emit(NodeEvent::HandoffFailed { sector, to, reason }),
        }
    }

    /// Messages from other servers: migration orders, handoffs (answered),
    /// forwarded commands. Anything else is reported, never trusted.
    pub(super) async fn inbound(&mut self, cluster: &mut Cluster, message: async_nats::Message) {
        let decoded = ClusterMessage::decode(&message.payload);
        match decoded {
            Ok(ClusterMessage::LoadBalance(lb)) => self.emit(NodeEvent::MigrateOut {
                sectors: lb.sectors_to_migrate,
                to: lb.target_server,
            }),
            Ok(ClusterMessage::BatchCommand(batch)) => self.emit(NodeEvent::Forwarded(batch)),
            Ok(ClusterMessage::ServerSync(sync)) if message.reply.is_none() => {
                self.emit(NodeEvent::Sync(sync))
            }
            Ok(ClusterMessage::SectorTransfer(t)) => {
                let reply = match self.take_transfer(cluster, t).await {
                    Ok(epoch) => HandoffReply::Accepted { epoch },
                    Err(reason) => HandoffReply::Refused { reason },
                };
                if let (Some(to), Ok(bytes)) = (message.reply, serde_json::to_vec(&reply)) {
                    let _ = cluster.nats_client().publish(to, Bytes::from(bytes)).await;
                }
            }
            Ok(ClusterMessage::ServerSync(sync)) if sync.sector_states.len() == 1 => {
                let from = sync.server_id;
                let Some((sector, snapshot)) = sync.sector_states.into_iter().next() else {
                    return;
                };
                let reply = match self.take_handoff(cluster, from, sector, snapshot).await {
                    Ok(epoch) => HandoffReply::Accepted { epoch },
                    Err(reason) => HandoffReply::Refused { reason },
                };
                if let (Some(to), Ok(bytes)) = (message.reply, serde_json::to_vec(&reply)) {
                    let _ = cluster.nats_client().publish(to, Bytes::from(bytes)).await;
                }
            }
            Ok(other) => self.emit(NodeEvent::Error(format!(
                "unexpected {} from another server",
                other.kind()
            ))),
            Err(e) => self.emit(NodeEvent::Error(format!("bad cluster message: {e}"))),
        }
    }

    /// Units walking in: accepted if we own the sector they entered and the
    /// sender really owns (at the epoch it names) the sector they left.
    async fn take_transfer(
        &mut self,
        cluster: &Cluster,
        t: SectorTransfer,
    ) -> Result<Epoch, String> {
        if !cluster.lease_valid() {
            return Err("lease expired".into());
        }
        let Some(&epoch) = self.owned.get(&t.to_sector) else {
            return Err(format!("{:?} is not ours", t.to_sector));
        };
        match cluster.owner(t.from_sector).await {
            Ok(Some(o)) if o.epoch == t.epoch => {}
            Ok(o) => return Err(format!("stale sender for {:?}: {o:?}", t.from_sector)),
            Err(e) => return Err(e.to_string()),
        }
        self.emit(NodeEvent::TransferIn(t));
        Ok(epoch)
    }

    /// New owner: takes the sector by revision against the epoch the old
    /// owner sent (a stale sender is refused), persists the state at once
    /// under our epoch (fencing the old owner's snapshot writes), then
    /// hands it to the game.
    async fn take_handoff(
        &mut self,
        cluster: &mut Cluster,
        from: u32,
        sector: SectorId,
        snapshot: SectorSnapshot,
    ) -> Result<Epoch, String> {
        let epoch = cluster
            .take_over(sector, snapshot.epoch)
            .await
            .map_err(|e| e.to_string())?;
        self.owned.insert(sector, epoch);
        let mine = SectorSnapshot {
            epoch,
            ..snapshot.clone()
        };
        if let Err(e) = cluster.write_snapshot(sector, &mine).await {
            self.emit(NodeEvent::WriteRefused {
                sector,
                reason: e.to_string(),
            });
        }
        self.emit(NodeEvent::Owned {
            sector,
            epoch,
            snapshot: Some(snapshot),
            origin: Origin::HandedOver(from),
        });
        Ok(epoch)
    }
}

/// Sends `msg` to server `to` and waits (at most [`HANDOFF_TIMEOUT`]) for
/// its answer to a handoff or transfer.
async fn ask(cluster: &Cluster, to: u32, msg: &ClusterMessage) -> Result<HandoffReply, String> {
    let bytes = msg.encode().map_err(|e| e.to_string())?;
    let request = cluster
        .nats_client()
        .request(cluster.server_subject(to), Bytes::from(bytes));
    let answer = tokio::time::timeout(HANDOFF_TIMEOUT, request)
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&answer.payload).map_err(|e| e.to_string())
}

/// How long the old owner waits for the new owner's answer (well inside
/// the lease, which this loop must keep renewing).
const HANDOFF_TIMEOUT: Duration = Duration::from_millis(800);

/// The new owner's answer to a handoff.
#[derive(Debug, Serialize, Deserialize)]
enum HandoffReply {
    Accepted { epoch: Epoch },
    Refused { reason: String },
}
