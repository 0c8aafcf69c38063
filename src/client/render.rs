//! Drawing the replicated world: one sprite per unit in its owner's colour
//! with a health bar, placed relative to the camera's fixed-point focus so
//! nothing jitters far from the origin; arrow keys / WASD pan, Q / E zoom.

use std::collections::HashMap;

use bevy::prelude::*;
use galaxy_net::ClientReplica;
use galaxy_protocol::{MAX_HEALTH, UnitId, WorldPos};

use super::HOME;

/// Draws the units a client sees.
pub struct RenderPlugin {
    /// The local player (drawn brighter).
    pub player: u64,
}

/// Where the camera looks, in exact world centimetres.
#[derive(Resource)]
pub struct CameraFocus(pub WorldPos);

#[derive(Resource, Default)]
struct UnitSprites(HashMap<UnitId, Entity>);

#[derive(Component)]
struct HealthBar;

#[derive(Resource)]
struct LocalPlayer(u64);

impl Plugin for RenderPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ClearColor(Color::srgb(0.02, 0.02, 0.06)))
            .insert_resource(CameraFocus(HOME))
            .insert_resource(LocalPlayer(self.player))
            .init_resource::<UnitSprites>()
            .add_systems(Startup, |mut commands: Commands| {
                commands.spawn((
                    Camera2d,
                    Projection::Orthographic(OrthographicProjection {
                        scale: 4.0,
                        ..OrthographicProjection::default_2d()
                    }),
                ));
            })
            .add_systems(Update, (pan_camera, sync_units).chain());
    }
}

/// Owner colours: the local player is green, others from a palette.
fn owner_colour(owner: u64, local: u64) -> Color {
    const PALETTE: [(f32, f32, f32); 6] = [
        (0.95, 0.25, 0.2),
        (0.25, 0.5, 1.0),
        (0.95, 0.8, 0.2),
        (0.8, 0.3, 0.9),
        (0.2, 0.9, 0.9),
        (1.0, 0.55, 0.1),
    ];
    if owner == local {
        return Color::srgb(0.2, 0.95, 0.3);
    }
    let (r, g, b) = PALETTE[(owner % PALETTE.len() as u64) as usize];
    Color::srgb(r, g, b)
}

fn pan_camera(
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time>,
    mut focus: ResMut<CameraFocus>,
    mut proj: Query<&mut Projection, With<Camera2d>>,
) {
    let mut d = Vec2::ZERO;
    if keys.any_pressed([KeyCode::ArrowLeft, KeyCode::KeyA]) {
        d.x -= 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowRight, KeyCode::KeyD]) {
        d.x += 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowUp, KeyCode::KeyW]) {
        d.y += 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowDown, KeyCode::KeyS]) {
        d.y -= 1.0;
    }
    let Ok(mut p) = proj.single_mut() else { return };
    let Projection::Orthographic(o) = &mut *p else {
        return;
    };
    if keys.pressed(KeyCode::KeyQ) {
        o.scale *= 1.0 + time.delta_secs();
    }
    if keys.pressed(KeyCode::KeyE) {
        o.scale /= 1.0 + time.delta_secs();
    }
    // Pan speed in centimetres per second scales with zoom.
    let speed = 60_000.0 * o.scale;
    focus.0 = focus
        .0
        .checked_offset(
            (d.x * speed * time.delta_secs()) as i64,
            (d.y * speed * time.delta_secs()) as i64,
        )
        .unwrap_or(focus.0);
}

/// One sprite per visible unit; a metre relative to the focus is 10 world
/// units (2.5 pixels at the default zoom).
#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn sync_units(
    mut commands: Commands,
    replica: Res<ClientReplica>,
    focus: Res<CameraFocus>,
    local: Res<LocalPlayer>,
    mut sprites: ResMut<UnitSprites>,
    mut transforms: Query<&mut Transform>,
    mut bars: Query<&mut Sprite, With<HealthBar>>,
    children: Query<&Children>,
) {
    let mut seen = std::collections::HashSet::new();
    for (id, u) in replica.receiver.units() {
        seen.insert(id);
        let (x, y) = u.position().metres_from(focus.0);
        let at = Vec3::new(x as f32 * 10.0, y as f32 * 10.0, 1.0);
        let health = f32::from(u.health()) / f32::from(MAX_HEALTH.min(1000));
        match sprites.0.get(&id) {
            Some(&e) => {
                if let Ok(mut t) = transforms.get_mut(e) {
                    t.translation = at;
                }
                for child in children.get(e).into_iter().flatten() {
                    if let Ok(mut bar) = bars.get_mut(*child) {
                        bar.custom_size = Some(Vec2::new(50.0 * health.clamp(0.0, 1.0), 6.0));
                    }
                }
            }
            None => {
                let e = commands
                    .spawn((
                        Sprite::from_color(owner_colour(u.owner(), local.0), Vec2::splat(40.0)),
                        Transform::from_translation(at),
                    ))
                    .with_children(|c| {
                        c.spawn((
                            HealthBar,
                            Sprite::from_color(
                                Color::srgb(0.9, 0.9, 0.9),
                                Vec2::new(50.0 * health.clamp(0.0, 1.0), 6.0),
                            ),
                            Transform::from_xyz(0.0, 30.0, 0.1),
                        ));
                    })
                    .id();
                sprites.0.insert(id, e);
            }
        }
    }
    sprites.0.retain(|id, e| {
        let keep = seen.contains(id);
        if !keep {
            commands.entity(*e).despawn();
        }
        keep
    });
}
