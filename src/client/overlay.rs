//! The sector grid overlay (toggled by an action): lines at the sector
//! scale the zoom shows, about a dozen across the screen, with the sector
//! under the camera outlined. The box being dragged is drawn here too.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use galaxy_protocol::{SectorId, WorldPos, sector::sector_size_cm};
use leafwing_input_manager::prelude::ActionState;

use super::camera::{CM_PER_RENDER_UNIT, CameraFocus, to_render};
use super::input::Action;
use super::orders::PointerState;

/// Whether the sector grid is shown.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowSectors(pub bool);

/// Grid overlay and selection box.
pub struct OverlayPlugin;

impl Plugin for OverlayPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ShowSectors(true))
            .add_systems(Update, (toggle, draw_grid, draw_drag_box));
    }
}

/// The smallest sector scale of which at most `max_lines` fit across `width_cm`.
pub fn grid_scale(width_cm: f64, max_lines: f64) -> u8 {
    (0..=galaxy_protocol::MAX_SCALE)
        .find(|&s| sector_size_cm(s) as f64 * max_lines >= width_cm)
        .unwrap_or(galaxy_protocol::MAX_SCALE)
}

fn toggle(actions: Query<&ActionState<Action>>, mut show: ResMut<ShowSectors>) {
    let Ok(actions) = actions.single() else {
        return;
    };
    if actions.just_pressed(&Action::ToggleSectors) {
        show.0 = !show.0;
    }
}

fn draw_grid(
    show: Res<ShowSectors>,
    focus: Res<CameraFocus>,
    window: Query<&Window, With<PrimaryWindow>>,
    proj: Query<&Projection, With<Camera2d>>,
    mut gizmos: Gizmos,
) {
    if !show.0 {
        return;
    }
    let (Ok(w), Ok(Projection::Orthographic(o))) = (window.single(), proj.single()) else {
        return;
    };
    let half_w = f64::from(w.width() * o.scale) / 2.0 * CM_PER_RENDER_UNIT;
    let half_h = f64::from(w.height() * o.scale) / 2.0 * CM_PER_RENDER_UNIT;
    let scale = grid_scale(half_w * 2.0, 12.0);
    let size = sector_size_cm(scale) as f64;
    let colour = Color::srgba(0.35, 0.45, 0.8, 0.35);
    let (fx, fy) = (focus.0.x as f64, focus.0.y as f64);
    let first = |c: f64, half: f64| ((c - half) / size).floor() * size;
    let render = |x: f64, y: f64| to_render((x, y), focus.0);
    let mut x = first(fx, half_w);
    while x <= fx + half_w {
        gizmos.line_2d(render(x, fy - half_h), render(x, fy + half_h), colour);
        x += size;
    }
    let mut y = first(fy, half_h);
    while y <= fy + half_h {
        gizmos.line_2d(render(fx - half_w, y), render(fx + half_w, y), colour);
        y += size;
    }
    // The sector the camera is over.
    if let Some(here) = SectorId::containing(focus.0, scale)
        && let Some(b) = here.bounds()
    {
        let (a, c) = (
            render(b.min.x as f64, b.min.y as f64),
            render(b.max.x as f64, b.max.y as f64),
        );
        gizmos.rect_2d(
            Isometry2d::from_translation((a + c) / 2.0),
            c - a,
            Color::srgba(0.5, 0.7, 1.0, 0.8),
        );
    }
}

fn draw_drag_box(pointer: Res<PointerState>, focus: Res<CameraFocus>, mut gizmos: Gizmos) {
    let (Some((_, from)), Some((_, to))) = (pointer.drag_from, pointer.at) else {
        return;
    };
    let p = |w: WorldPos| to_render((w.x as f64, w.y as f64), focus.0);
    let (a, b) = (p(from), p(to));
    gizmos.rect_2d(
        Isometry2d::from_translation((a + b) / 2.0),
        (b - a).abs(),
        Color::WHITE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_coarsens_with_zoom() {
        // 1 km sectors while 12 of them cover the width.
        assert_eq!(grid_scale(12.0 * 100_000.0, 12.0), 0);
        assert_eq!(grid_scale(5_000.0, 12.0), 0);
        let s = grid_scale(100.0 * 100_000.0, 12.0);
        assert!(sector_size_cm(s) as f64 * 12.0 >= 100.0 * 100_000.0);
        assert!(sector_size_cm(s - 1) as f64 * 12.0 < 100.0 * 100_000.0);
    }
}
