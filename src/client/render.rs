//! Drawing the replicated world: one sprite per unit in its owner's colour
//! with a health bar and a selection marker, and bigger shapes for bases
//! and resource points. Positions are the units' `DrawnPosition`s from
//! `galaxy_net`'s smoothing (interpolated or predicted) and are placed relative to the camera's
//! fixed-point focus, so nothing jitters far from the origin.

use std::collections::{HashMap, VecDeque};

use bevy::prelude::*;
use galaxy_net::{LocalPlayer, SmoothingSet};
use galaxy_protocol::UnitId;
use galaxy_sim::{KIND_BASE, KIND_RESOURCE, SimConfig, max_health};

use super::camera::{CameraFocus, to_render};
use super::orders::Selection;
use super::units::DrawnUnits;

/// Draws the units a client sees.
pub struct RenderPlugin;

#[derive(Resource, Default)]
struct UnitSprites(HashMap<UnitId, Entity>);

/// Where units that vanished were last drawn (for effects of their death).
#[derive(Resource, Default)]
pub struct Vanished {
    /// `(unit, world position in cm, local time)`, newest last, a few seconds' worth.
    pub recent: VecDeque<(UnitId, (f64, f64), f64)>,
}

impl Vanished {
    const KEEP_SECS: f64 = 3.0;

    /// Where `id` was last drawn, if it vanished recently.
    pub fn position(&self, id: UnitId) -> Option<(f64, f64)> {
        self.recent.iter().rev().find(|v| v.0 == id).map(|v| v.1)
    }
}

#[derive(Component)]
struct HealthBar;

#[derive(Component)]
struct SelectionMarker;

/// Last drawn world position, for [`Vanished`].
#[derive(Component)]
struct DrawnAt((f64, f64));

impl Plugin for RenderPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ClearColor(Color::srgb(0.02, 0.02, 0.06)))
            .init_resource::<UnitSprites>()
            .init_resource::<Vanished>()
            .add_systems(Update, sync_units.after(SmoothingSet));
    }
}

/// Owner colours: the local player is green, nobody is grey, others from a palette.
pub fn owner_colour(owner: u64, local: u64) -> Color {
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
    if owner == 0 {
        return Color::srgb(0.6, 0.6, 0.6);
    }
    let (r, g, b) = PALETTE[(owner % PALETTE.len() as u64) as usize];
    Color::srgb(r, g, b)
}

/// Size in render units, and health as a fraction, of a unit of `kind`.
fn shape(kind: u8, health: u16) -> (f32, f32) {
    match kind {
        KIND_BASE => (
            160.0,
            f32::from(health) / SimConfig::default().base_health as f32,
        ),
        KIND_RESOURCE => (
            90.0,
            f32::from(health) / SimConfig::default().capture_ticks as f32,
        ),
        k => (30.0, f32::from(health) / f32::from(max_health(k).max(1))),
    }
}

fn spawn_unit(commands: &mut Commands, colour: Color, size: f32, kind: u8, at: Vec3) -> Entity {
    let mut transform = Transform::from_translation(at);
    if kind == KIND_RESOURCE {
        transform.rotate_z(std::f32::consts::FRAC_PI_4);
    }
    commands
        .spawn((Sprite::from_color(colour, Vec2::splat(size)), transform))
        .with_children(|c| {
            c.spawn((
                HealthBar,
                Sprite::from_color(Color::srgb(0.9, 0.9, 0.9), Vec2::new(size * 1.2, 6.0)),
                Transform::from_xyz(0.0, size * 0.75, 0.1),
            ));
            c.spawn((
                SelectionMarker,
                Sprite::from_color(Color::WHITE, Vec2::splat(size + 14.0)),
                Transform::from_xyz(0.0, 0.0, -0.1),
                Visibility::Hidden,
            ));
        })
        .id()
}

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn sync_units(
    mut commands: Commands,
    drawn: DrawnUnits,
    focus: Res<CameraFocus>,
    local: Res<LocalPlayer>,
    selection: Res<Selection>,
    time: Res<Time<Real>>,
    mut sprites: ResMut<UnitSprites>,
    mut vanished: ResMut<Vanished>,
    mut units: Query<(&mut Transform, &mut DrawnAt, &mut Sprite)>,
    mut bars: Query<&mut Sprite, (With<HealthBar>, Without<DrawnAt>)>,
    mut markers: Query<&mut Visibility, With<SelectionMarker>>,
    children: Query<&Children>,
) {
    let now = time.elapsed_secs_f64();
    let mut seen = std::collections::HashSet::new();
    for (id, u) in drawn.iter() {
        seen.insert(id);
        let kind = u.state.kind();
        let (size, health) = shape(kind, u.state.health());
        // Structures sit below units.
        let z = if galaxy_sim::is_structure(kind) {
            0.5
        } else {
            1.0
        };
        let at = to_render(u.position, focus.0).extend(z);
        let colour = owner_colour(u.state.owner(), local.0);
        let e = match sprites.0.get(&id) {
            Some(&e) => e,
            None => {
                let e = spawn_unit(&mut commands, colour, size, kind, at);
                commands.entity(e).insert(DrawnAt(u.position));
                sprites.0.insert(id, e);
                continue;
            }
        };
        if let Ok((mut t, mut drawn_at, mut sprite)) = units.get_mut(e) {
            t.translation = at;
            drawn_at.0 = u.position;
            if sprite.color != colour {
                // Resources change colour when captured.
                sprite.color = colour;
            }
        }
        for child in children.get(e).into_iter().flatten() {
            if let Ok(mut bar) = bars.get_mut(*child) {
                bar.custom_size = Some(Vec2::new(size * 1.2 * health.clamp(0.0, 1.0), 6.0));
            }
            if let Ok(mut v) = markers.get_mut(*child) {
                v.set_if_neq(if selection.0.contains(&id) {
                    Visibility::Inherited
                } else {
                    Visibility::Hidden
                });
            }
        }
    }
    let mut gone = Vec::new();
    sprites.0.retain(|id, e| {
        let keep = seen.contains(id);
        if !keep {
            gone.push((*id, *e));
        }
        keep
    });
    for (id, e) in gone {
        if let Ok((_, drawn_at, _)) = units.get(e) {
            vanished.recent.push_back((id, drawn_at.0, now));
        }
        commands.entity(e).despawn();
    }
    while vanished
        .recent
        .front()
        .is_some_and(|v| now - v.2 > Vanished::KEEP_SECS)
    {
        vanished.recent.pop_front();
    }
}
