//! Player migration: clients follow their view to the server that owns it.

use bevy::prelude::*;
use galaxy_net::{NetworkConfig, PendingRedirects, Sessions, redirect_to};
use galaxy_protocol::WorldPos;

use super::ClusterState;

/// Player migration: a client whose view is centred in a sector another
/// live server owns is sent there (a `Redirect` with a fresh token), once
/// per target, again after 5 s if it is still here.
pub(super) fn redirect_clients(
    mut state: ResMut<ClusterState>,
    sessions: Res<Sessions>,
    config: Res<NetworkConfig>,
    mut pending: ResMut<PendingRedirects>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    if !state.acting || now - state.last_redirect_check < 0.25 {
        return;
    }
    state.last_redirect_check = now;
    state.redirected.retain(|c, _| sessions.get(*c).is_some());
    let me = state.server_id();
    for (client, session) in sessions.iter() {
        let Some(view) = session.view() else {
            continue;
        };
        let centre = WorldPos::new(
            view.min.x + (view.max.x - view.min.x) / 2,
            view.min.y + (view.max.y - view.min.y) / 2,
        );
        let sector = state.sector_of(centre);
        let Some(owner) = state.owners.get(&sector).copied() else {
            continue;
        };
        if owner.server == me || state.owned.contains_key(&sector) {
            continue;
        }
        let Some(target) = state
            .peers
            .get(&owner.server)
            .and_then(|p| p.address.parse().ok())
        else {
            continue; // its owner is not live: failover will bring it here or elsewhere
        };
        if state
            .redirected
            .get(&client)
            .is_some_and(|&(to, at)| to == owner.server && now - at < 5.0)
        {
            continue;
        }
        let player = session.player();
        match redirect_to(&state.auth, &config, player, target, owner.epoch) {
            Ok(r) => {
                info!(
                    "player {player} redirected to server {} at {target}: its view is in {sector:?}",
                    owner.server
                );
                pending.0.push((client, r));
                state.redirected.insert(client, (owner.server, now));
                state.redirects += 1;
            }
            Err(e) => warn!("cannot redirect player {player}: {e}"),
        }
    }
}
