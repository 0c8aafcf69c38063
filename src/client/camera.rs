//! The camera: a fixed-point focus in world centimetres (so drawing is
//! relative to it and nothing jitters far from the origin), panned by
//! actions or the screen edge and zoomed by actions.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use galaxy_net::View;
use galaxy_protocol::{WorldPos, WorldRect};
use leafwing_input_manager::prelude::ActionState;

use super::input::Action;

/// World centimetres per render unit (a render unit is a pixel at zoom 1).
pub const CM_PER_RENDER_UNIT: f64 = 10.0;

/// Pixels from the window edge that scroll the camera.
const EDGE_PX: f32 = 8.0;

/// Where the camera looks, in exact world centimetres.
#[derive(Resource)]
pub struct CameraFocus(pub WorldPos);

/// Render-space position of a world point given in centimetres.
pub fn to_render(world_cm: (f64, f64), focus: WorldPos) -> Vec2 {
    Vec2::new(
        ((world_cm.0 - focus.x as f64) / CM_PER_RENDER_UNIT) as f32,
        ((world_cm.1 - focus.y as f64) / CM_PER_RENDER_UNIT) as f32,
    )
}

/// World position under a render-space point.
pub fn from_render(render: Vec2, focus: WorldPos) -> Option<WorldPos> {
    focus.checked_offset(
        (f64::from(render.x) * CM_PER_RENDER_UNIT).round() as i64,
        (f64::from(render.y) * CM_PER_RENDER_UNIT).round() as i64,
    )
}

/// World position under the window pixel `screen`.
pub fn cursor_world(
    camera: &Camera,
    transform: &GlobalTransform,
    focus: WorldPos,
    screen: Vec2,
) -> Option<WorldPos> {
    let render = camera.viewport_to_world_2d(transform, screen).ok()?;
    from_render(render, focus)
}

/// Camera movement.
pub struct CameraPlugin {
    /// Where the camera starts.
    pub start: WorldPos,
}

impl Plugin for CameraPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(CameraFocus(self.start))
            .add_systems(Startup, spawn_camera)
            .add_systems(Update, (pan_and_zoom, follow_view).chain());
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scale: 4.0,
            ..OrthographicProjection::default_2d()
        }),
    ));
}

fn pan_and_zoom(
    actions: Query<&ActionState<Action>>,
    time: Res<Time>,
    window: Query<&Window, With<PrimaryWindow>>,
    mut focus: ResMut<CameraFocus>,
    mut proj: Query<&mut Projection, With<Camera2d>>,
) {
    let Ok(actions) = actions.single() else {
        return;
    };
    let mut d = Vec2::ZERO;
    let dirs = [
        (Action::PanLeft, Vec2::NEG_X),
        (Action::PanRight, Vec2::X),
        (Action::PanUp, Vec2::Y),
        (Action::PanDown, Vec2::NEG_Y),
    ];
    for (action, dir) in dirs {
        if actions.pressed(&action) {
            d += dir;
        }
    }
    if let Ok(w) = window.single()
        && let Some(c) = w.cursor_position()
    {
        let (wd, ht) = (w.width(), w.height());
        if c.x <= EDGE_PX {
            d.x -= 1.0;
        } else if c.x >= wd - EDGE_PX {
            d.x += 1.0;
        }
        // Window y grows downwards.
        if c.y <= EDGE_PX {
            d.y += 1.0;
        } else if c.y >= ht - EDGE_PX {
            d.y -= 1.0;
        }
    }
    let Ok(mut p) = proj.single_mut() else { return };
    let Projection::Orthographic(o) = &mut *p else {
        return;
    };
    let dt = time.delta_secs();
    for (action, grow) in [(Action::ZoomOut, true), (Action::ZoomIn, false)] {
        let k = if actions.just_pressed(&action) {
            1.2
        } else if actions.pressed(&action) {
            1.0 + 1.5 * dt
        } else {
            continue;
        };
        o.scale = if grow { o.scale * k } else { o.scale / k };
    }
    o.scale = o.scale.clamp(0.25, 400.0);
    // Half the screen per second, whatever the zoom.
    let speed = 640.0 * o.scale * CM_PER_RENDER_UNIT as f32;
    let step = d.clamp_length_max(1.0) * speed * dt;
    focus.0 = focus
        .0
        .checked_offset(step.x as i64, step.y as i64)
        .unwrap_or(focus.0);
}

/// The view the server replicates follows the camera: the visible area,
/// rounded to 100 m steps so panning does not send a view update a frame.
fn follow_view(
    focus: Res<CameraFocus>,
    window: Query<&Window, With<PrimaryWindow>>,
    proj: Query<&Projection, With<Camera2d>>,
    mut view: ResMut<View>,
) {
    let (Ok(w), Ok(Projection::Orthographic(o))) = (window.single(), proj.single()) else {
        return;
    };
    let half = f64::from(w.width().max(w.height()) * o.scale) / 2.0 * CM_PER_RENDER_UNIT;
    let half = ((half / 10_000.0).ceil() * 10_000.0) as i64;
    let snap = |v: i64| v.div_euclid(10_000) * 10_000;
    let centre = WorldPos::new(snap(focus.0.x), snap(focus.0.y));
    // At most 20 km each way: a wider view would ask for thousands of sectors.
    let rect = WorldRect::around(centre, half.clamp(10_000, 2_000_000));
    view.set_if_neq(View(rect));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_coordinates_are_exact_relative_to_a_far_focus() {
        let far = WorldPos::new(4_000_000_000_000_000, -4_000_000_000_000_000);
        let unit = (far.x as f64 + 1_230.0, far.y as f64 - 50.0);
        assert_eq!(to_render(unit, far), Vec2::new(123.0, -5.0));
        assert_eq!(
            from_render(Vec2::new(123.0, -5.0), far),
            Some(WorldPos::new(far.x + 1_230, far.y - 50))
        );
        assert_eq!(
            from_render(Vec2::new(1e30, 0.0), WorldPos::new(i64::MAX, 0)),
            None
        );
    }
}
