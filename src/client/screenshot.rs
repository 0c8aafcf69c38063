//! `--screenshot PATH --exit-after SECS`: render normally, save a PNG of the
//! window after SECS, then exit with 0 only if the client was connected and
//! had received units (for automated checks).

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use galaxy_net::{ClientUnits, ConnectionStatus};

/// Takes the screenshot and exits.
pub struct ScreenshotPlugin {
    /// Where to save the PNG.
    pub path: PathBuf,
    /// Seconds after start.
    pub after: f32,
}

/// Just exits after this many seconds (no screenshot).
pub struct ExitAfter(pub f32);

#[derive(Resource)]
struct Shot {
    path: PathBuf,
    after: f32,
    taken: bool,
    healthy: bool,
}

impl Plugin for ScreenshotPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Shot {
            path: self.path.clone(),
            after: self.after,
            taken: false,
            healthy: false,
        })
        .add_systems(Update, take);
    }
}

impl Plugin for ExitAfter {
    fn build(&self, app: &mut App) {
        let after = self.0;
        app.add_systems(
            Update,
            move |time: Res<Time<Real>>, mut exit: MessageWriter<AppExit>| {
                if time.elapsed_secs() >= after {
                    exit.write(AppExit::Success);
                }
            },
        );
    }
}

fn take(
    mut commands: Commands,
    time: Res<Time<Real>>,
    mut shot: ResMut<Shot>,
    status: Res<ConnectionStatus>,
    units: Res<ClientUnits>,
) {
    if shot.taken || time.elapsed_secs() < shot.after {
        return;
    }
    shot.taken = true;
    let units = units.len();
    shot.healthy = *status == ConnectionStatus::Connected && units > 0;
    info!("screenshot: {status:?}, {units} units visible");
    let healthy = shot.healthy;
    commands
        .spawn(Screenshot::primary_window())
        .observe(save_to_disk(shot.path.clone()))
        .observe(
            move |_: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                exit.write(if healthy {
                    AppExit::Success
                } else {
                    AppExit::from_code(3)
                });
            },
        );
}
