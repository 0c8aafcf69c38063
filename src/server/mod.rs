//! The dedicated server: the server plugins with the RTS simulation, a
//! world with bots, a status line, and a clean shutdown on Ctrl-C; with
//! `--cluster`, one member of a cluster sharing the universe by sector.

pub mod bots;
pub mod cluster;
pub mod replay;
mod status;
pub mod takeover;

use std::time::Duration;

use bevy::app::{ScheduleRunnerPlugin, TerminalCtrlCHandlerPlugin};
use bevy::log::LogPlugin;
use bevy::prelude::*;
use galaxy_net::{
    GalaxyServerPlugin, NetcodeTransportPlugin, ServerAddress, ServerAuth, ServerKey,
    ServerTransport, TickPolicy, TransportError,
};
use galaxy_protocol::WorldPos;

use crate::cli::ServerOptions;
use crate::sim::SimPlugin;

/// The server side of the game in `app`: the network (ticking with the
/// simulation), the transport from `auth` and the RTS simulation. Returns
/// the address the socket was bound to.
pub fn add_game_server(app: &mut App, auth: ServerAuth) -> Result<std::net::SocketAddr, String> {
    let addr = serve(app, auth, SimPlugin::default())?;
    app.add_plugins(takeover::AiTakeoverPlugin);
    Ok(addr)
}

/// The network (ticking with the simulation), the transport from `auth`
/// and `sim` in `app`; the address the socket was bound to.
pub(crate) fn serve(
    app: &mut App,
    auth: ServerAuth,
    sim: SimPlugin,
) -> Result<std::net::SocketAddr, String> {
    app.insert_resource(ServerTransport {
        auth,
        extra_public: Vec::new(),
    })
    .add_plugins((
        GalaxyServerPlugin {
            tick: TickPolicy::Manual,
        },
        NetcodeTransportPlugin,
        sim,
    ));
    match app.world().get_resource::<ServerAddress>() {
        Some(addr) => Ok(addr.0),
        None => Err(app
            .world()
            .get_resource::<TransportError>()
            .map_or_else(|| "the transport did not start".into(), |e| e.0.clone())),
    }
}

/// Runs a dedicated server until Ctrl-C (or `--exit-after`).
pub fn run(opts: ServerOptions) -> Result<(), String> {
    let auth = if opts.insecure {
        ServerAuth::Insecure
    } else {
        let path = opts
            .config
            .key_file
            .clone()
            .unwrap_or_else(|| "server.key".into());
        let key = ServerKey::load_or_create(&path)
            .map_err(|e| format!("key file {}: {e}", path.display()))?;
        ServerAuth::Secure(key)
    };
    let mut app = App::new();
    app.add_plugins(
        MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
            1.0 / 120.0,
        ))),
    )
    .add_plugins((LogPlugin::default(), TerminalCtrlCHandlerPlugin))
    .insert_resource(opts.config.clone());
    let addr = add_game_server(&mut app, auth.clone())?;
    let home = match &opts.cluster {
        Some(c) => {
            let plugin = cluster::ClusterPlugin::join(c.clone(), addr.to_string(), auth.clone())?;
            let home = plugin.bot_home();
            app.add_plugins(plugin);
            home
        }
        None => Some((WorldPos::new(0, 0), 150_000)),
    };
    let first_player = bots::FIRST_BOT_PLAYER
        + opts
            .cluster
            .as_ref()
            .map_or(0, |c| 1000 * u64::from(c.server_id));
    app.add_plugins(bots::BotPlugin {
        bots: opts.bots,
        units_per_bot: opts.units_per_bot,
        first_player,
        home,
    })
    .add_plugins(status::StatusPlugin {
        every: opts.status_every,
        exit_after: opts.exit_after,
    });
    if let Some(path) = &opts.record {
        crate::sim::record::record_game(&mut app, path)?;
    }
    let mode = match auth {
        ServerAuth::Secure(_) => "secure tokens",
        ServerAuth::Insecure => "INSECURE: any client may connect",
    };
    info!(
        "Galaxy RTS server listening on {addr} ({mode}); {} bots",
        opts.bots
    );
    app.run();
    info!("server stopped");
    Ok(())
}
