//! The playable client: a window onto the replicated world, with its own
//! embedded server unless `--connect` names one.

mod camera;
mod effects;
mod hud;
mod input;
mod orders;
mod overlay;
mod render;
pub mod replay;
mod screenshot;
mod units;

use std::net::SocketAddr;
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use galaxy_net::tokens::{issue_token, token_from_bytes};
use galaxy_net::{
    AppReplicationExt, ClientAuth, ClientTransport, GalaxyClientPlugin, NetcodeTransportPlugin,
    NetworkConfig, ServerAuth, ServerKey, SmoothingPlugin, TransportError, View,
};
use galaxy_protocol::{CompressedCommand, QuantizedUnit, UnitIdList, WorldPos, WorldRect};

use crate::cli::ClientOptions;
use crate::sim::{RtsUnits, SimWorld};

/// The local player's id on the embedded server.
const LOCAL_PLAYER: u64 = 1;

/// Where the local player's army starts.
pub const HOME: WorldPos = WorldPos::new(0, 0);

/// Runs a server app in a thread of its own: `build` adds its plugins and
/// returns the address it listens on. Returns that address, and a token
/// for `player` to join it.
fn server_thread(
    name: &str,
    player: u64,
    build: impl FnOnce(&mut App, ServerAuth) -> Result<SocketAddr, String> + Send + 'static,
) -> Result<ClientAuth, String> {
    let key = ServerKey::random();
    let config = NetworkConfig {
        port: 0,
        ..default()
    };
    let (tx, rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let server_key = key.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut app = App::new();
            app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(
                Duration::from_secs_f64(1.0 / 120.0),
            )))
            .insert_resource(config);
            match build(&mut app, ServerAuth::Secure(server_key)) {
                Ok(addr) => {
                    let _ = tx.send(Ok(addr));
                    app.run();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let addr = rx.recv().map_err(|e| e.to_string())??;
    let token = issue_token(
        &key,
        NetworkConfig::default().protocol_id,
        player,
        vec![addr],
        24 * 3600,
        10,
    )
    .map_err(|e| e.to_string())?;
    Ok(ClientAuth::Token(Box::new(token)))
}

/// Starts an embedded server in a thread (bots and an army for the local
/// player; recording to `record` if given) and returns a token to join it
/// (a spectator's, watching that army, with `spectate`).
fn embedded_server(
    units: u32,
    bots: u32,
    record: Option<std::path::PathBuf>,
    spectate: bool,
) -> Result<ClientAuth, String> {
    let joiner = if spectate {
        galaxy_net::tokens::spectator_id(LOCAL_PLAYER)
    } else {
        LOCAL_PLAYER
    };
    server_thread("embedded-server", joiner, move |app, auth| {
        let addr = crate::server::add_game_server(app, auth)?;
        app.add_plugins(crate::server::bots::BotPlugin {
            bots,
            units_per_bot: units,
            first_player: crate::server::bots::FIRST_BOT_PLAYER,
            home: Some((WorldPos::new(0, 0), 150_000)),
        });
        if let Some(path) = &record {
            crate::sim::record::record_game(app, path)?;
        }
        let mut sim = app.world_mut().resource_mut::<SimWorld>();
        for i in 0..i64::from(units) {
            sim.0.spawn_unit(
                LOCAL_PLAYER,
                (i % 3) as u8,
                WorldPos::new(
                    HOME.x + (i % 12) * 700 - 4_000,
                    HOME.y + (i / 12) * 700 - 4_000,
                ),
            );
        }
        // The player's base, and a resource point to take, next to the army.
        sim.0
            .spawn_base(LOCAL_PLAYER, WorldPos::new(HOME.x - 8_000, HOME.y));
        sim.0
            .spawn_resource(WorldPos::new(HOME.x + 6_000, HOME.y - 7_000));
        // A raiding party of the first bot, 110 m away and coming:
        // a fight to watch within seconds.
        let raiders: Vec<u64> = (0..i64::from(units / 3))
            .map(|i| {
                let pos = WorldPos::new(HOME.x + 11_000 + (i % 10) * 500, HOME.y + (i / 10) * 500);
                sim.0
                    .spawn_unit(crate::server::bots::FIRST_BOT_PLAYER, 0, pos)
            })
            .collect();
        if let Ok(units) = UnitIdList::from_ids(raiders) {
            sim.0.apply_command(
                crate::server::bots::FIRST_BOT_PLAYER,
                &CompressedCommand::AttackMove { units, to: HOME },
            );
        }
        Ok(addr)
    })
}

/// Runs the client until its window closes (or `--exit-after`).
pub fn run(opts: ClientOptions) -> Result<(), String> {
    let bindings = match &opts.bindings {
        Some(path) => input::Bindings::load(path).map_err(|e| e.to_string())?,
        None => input::Bindings::defaults(),
    };
    let auth = match (&opts.connect, &opts.token) {
        (Some(_), Some(file)) => {
            let bytes =
                std::fs::read(file).map_err(|e| format!("token file {}: {e}", file.display()))?;
            let token = token_from_bytes(&bytes).map_err(|e| e.to_string())?;
            ClientAuth::Token(Box::new(token))
        }
        (Some(addr), None) => ClientAuth::Insecure {
            player: if opts.spectate {
                galaxy_net::tokens::spectator_id(opts.player)
            } else {
                opts.player
            },
            server: *addr,
        },
        (None, _) => embedded_server(opts.units, opts.bots, opts.record.clone(), opts.spectate)?,
    };
    let app = client_app(ClientSetup {
        auth,
        profile: opts.profile,
        bindings,
        start: HOME,
        screenshot: opts.screenshot.clone(),
        exit_after: opts.exit_after,
    });
    run_app(app)
}

/// What a client app is built from.
struct ClientSetup {
    auth: ClientAuth,
    profile: galaxy_net::LinkProfile,
    bindings: input::Bindings,
    /// Where the camera starts.
    start: WorldPos,
    screenshot: Option<std::path::PathBuf>,
    exit_after: Option<f32>,
}

/// The client: a window onto the server `setup.auth` joins.
fn client_app(setup: ClientSetup) -> App {
    let config = NetworkConfig {
        port: 0,
        ..default()
    }
    .with_profile(setup.profile);
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "Galaxy RTS".into(),
            resolution: (1280, 720).into(),
            ..default()
        }),
        ..default()
    }))
    .insert_resource(config)
    .insert_resource(View(WorldRect::around(setup.start, 150_000)))
    .insert_resource(ClientTransport::to(setup.auth))
    .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
    .replicate_unit::<RtsUnits>()
    .add_plugins(SmoothingPlugin::<QuantizedUnit>::default())
    .add_plugins(bevy_egui::EguiPlugin::default())
    .add_plugins(input::InputPlugin {
        bindings: setup.bindings,
    })
    .add_plugins(camera::CameraPlugin { start: setup.start })
    .add_plugins((
        orders::OrdersPlugin,
        render::RenderPlugin,
        overlay::OverlayPlugin,
        effects::EffectsPlugin,
        hud::HudPlugin,
    ));
    if let Some(path) = setup.screenshot {
        app.add_plugins(screenshot::ScreenshotPlugin {
            path,
            after: setup.exit_after.unwrap_or(5.0),
        });
    } else if let Some(after) = setup.exit_after {
        app.add_plugins(screenshot::ExitAfter(after));
    }
    app
}

/// Runs a client app to its end.
fn run_app(mut app: App) -> Result<(), String> {
    if let Some(e) = app.world().get_resource::<TransportError>() {
        return Err(e.0.clone());
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => Err(format!("client exited with code {code}")),
    }
}
