//! Selecting units and ordering them about: click or box select, right
//! click to move, attack-move, stop. Orders leave as `BatchCommand`s (many
//! units per command) and the player's units start moving at once,
//! predicted by `galaxy_net`'s smoothing until the server confirms.

use std::collections::BTreeSet;

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::input::EguiWantsInput;
use galaxy_net::{LocalPlayer, OutgoingCommands, Smoothing, SmoothingSet, TickRate};
use galaxy_protocol::{CompressedCommand, PlayerId, QuantizedUnit, UnitId, UnitIdList, WorldPos};
use galaxy_sim::is_structure;
use leafwing_input_manager::prelude::ActionState;

use super::camera::{CameraFocus, cursor_world};
use super::input::Action;
use super::units::{DrawnUnit, DrawnUnits, kind_stats};

/// Units the player has selected.
#[derive(Resource, Default, Debug)]
pub struct Selection(pub BTreeSet<UnitId>);

/// Pointer state between press and release of `Select`, and the armed attack-move.
#[derive(Resource, Default, Debug)]
pub struct PointerState {
    /// Where a drag started (screen pixels, world position).
    pub drag_from: Option<(Vec2, WorldPos)>,
    /// Where the pointer is now (screen pixels, world position).
    pub at: Option<(Vec2, WorldPos)>,
    /// The next `Select` press sends an attack-move.
    pub attack_move_armed: bool,
}

/// Units per command: keeps each command (and its message) small.
const UNITS_PER_COMMAND: usize = 1024;

/// Pixels the pointer may wander before a click becomes a box.
const CLICK_SLOP_PX: f32 = 6.0;

/// Selection and orders.
pub struct OrdersPlugin;

impl Plugin for OrdersPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Selection>()
            .init_resource::<PointerState>()
            .add_systems(
                Update,
                (track_pointer, select, give_orders, forget_dead)
                    .chain()
                    .before(SmoothingSet),
            );
    }
}

/// Commands for `ids`, split so each names at most `UNITS_PER_COMMAND` units.
pub fn commands_for(
    ids: &[UnitId],
    make: impl Fn(UnitIdList) -> CompressedCommand,
) -> Vec<CompressedCommand> {
    ids.chunks(UNITS_PER_COMMAND)
        .filter_map(|chunk| UnitIdList::from_ids(chunk.iter().copied()).ok())
        .map(make)
        .collect()
}

fn world_xy(p: WorldPos) -> (f64, f64) {
    (p.x as f64, p.y as f64)
}

/// Whether a drawn unit is one of `player`'s own orderable units (not a structure).
fn own_unit(player: PlayerId, d: &DrawnUnit) -> bool {
    d.state.owner() == player && !is_structure(d.state.kind())
}

/// The player's own orderable units drawn inside the box spanned by `a` and `b`.
pub fn units_in_box<'a>(
    drawn: impl Iterator<Item = (UnitId, DrawnUnit)> + 'a,
    player: PlayerId,
    a: WorldPos,
    b: WorldPos,
) -> Vec<UnitId> {
    let (a, b) = (world_xy(a), world_xy(b));
    let (x0, x1) = (a.0.min(b.0), a.0.max(b.0));
    let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
    drawn
        .filter(|(_, d)| own_unit(player, d))
        .filter(|(_, d)| {
            let (x, y) = d.position;
            (x0..=x1).contains(&x) && (y0..=y1).contains(&y)
        })
        .map(|(id, _)| id)
        .collect()
}

/// The player's own unit drawn nearest to `at`, if within `radius_cm`.
pub fn unit_at<'a>(
    drawn: impl Iterator<Item = (UnitId, DrawnUnit)> + 'a,
    player: PlayerId,
    at: WorldPos,
    radius_cm: f64,
) -> Option<UnitId> {
    let at = world_xy(at);
    drawn
        .filter(|(_, d)| own_unit(player, d))
        .map(|(id, d)| (id, (d.position.0 - at.0).hypot(d.position.1 - at.1)))
        .filter(|(_, dist)| *dist <= radius_cm)
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(id, _)| id)
}

fn track_pointer(
    window: Query<&Window, With<PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform), With<Camera2d>>,
    focus: Res<CameraFocus>,
    mut pointer: ResMut<PointerState>,
) {
    pointer.at = None;
    let (Ok(window), Ok((camera, transform))) = (window.single(), camera.single()) else {
        return;
    };
    let Some(screen) = window.cursor_position() else {
        return;
    };
    pointer.at = cursor_world(camera, transform, focus.0, screen).map(|w| (screen, w));
}

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn select(
    actions: Query<&ActionState<Action>>,
    egui: Option<Res<EguiWantsInput>>,
    mut pointer: ResMut<PointerState>,
    mut selection: ResMut<Selection>,
    drawn: DrawnUnits,
    player: Res<LocalPlayer>,
    projection: Query<&Projection, With<Camera2d>>,
    mut outgoing: ResMut<OutgoingCommands>,
) {
    let Ok(actions) = actions.single() else {
        return;
    };
    let over_ui = egui.is_some_and(|e| e.wants_pointer_input() || e.is_pointer_over_area());
    if actions.just_pressed(&Action::Select) && !over_ui {
        let Some((_, at)) = pointer.at else { return };
        if pointer.attack_move_armed {
            pointer.attack_move_armed = false;
            let ids: Vec<UnitId> = selection.0.iter().copied().collect();
            outgoing
                .0
                .extend(commands_for(&ids, |units| CompressedCommand::AttackMove {
                    units,
                    to: at,
                }));
            // Not predicted: an attack-moving unit may stop to fight.
            return;
        }
        pointer.drag_from = pointer.at;
    }
    if !actions.just_released(&Action::Select) {
        return;
    }
    let (Some((from_px, from)), Some((to_px, to))) = (pointer.drag_from.take(), pointer.at) else {
        return;
    };
    let adding = actions.pressed(&Action::AddToSelection);
    if !adding {
        selection.0.clear();
    }
    if from_px.distance(to_px) < CLICK_SLOP_PX {
        // A click: the unit under the pointer, within ~12 px at this zoom.
        let scale = projection.single().map_or(1.0, |p| match p {
            Projection::Orthographic(o) => o.scale,
            _ => 1.0,
        });
        let radius = f64::from(12.0 * scale) * super::camera::CM_PER_RENDER_UNIT;
        if let Some(id) = unit_at(drawn.iter(), player.0, to, radius)
            && !selection.0.remove(&id)
        {
            selection.0.insert(id);
        }
    } else {
        selection
            .0
            .extend(units_in_box(drawn.iter(), player.0, from, to));
    }
}

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn give_orders(
    actions: Query<&ActionState<Action>>,
    egui: Option<Res<EguiWantsInput>>,
    mut pointer: ResMut<PointerState>,
    selection: Res<Selection>,
    mut smoothing: ResMut<Smoothing<QuantizedUnit>>,
    drawn: DrawnUnits,
    rate: Res<TickRate>,
    time: Res<Time<Real>>,
    mut outgoing: ResMut<OutgoingCommands>,
) {
    let Ok(actions) = actions.single() else {
        return;
    };
    let over_ui = egui.is_some_and(|e| e.wants_pointer_input() || e.is_pointer_over_area());
    if actions.just_pressed(&Action::Cancel) {
        pointer.attack_move_armed = false;
    }
    if selection.0.is_empty() {
        pointer.attack_move_armed = false;
        return;
    }
    let ids: Vec<UnitId> = selection.0.iter().copied().collect();
    if actions.just_pressed(&Action::AttackMove) {
        pointer.attack_move_armed = true;
    }
    if actions.just_pressed(&Action::Stop) {
        outgoing
            .0
            .extend(commands_for(&ids, |units| CompressedCommand::Stop {
                units,
            }));
        smoothing.cancel_prediction(&ids);
    }
    if actions.just_pressed(&Action::Command) && !over_ui {
        let Some((_, to)) = pointer.at else { return };
        pointer.attack_move_armed = false;
        outgoing
            .0
            .extend(commands_for(&ids, |units| CompressedCommand::Move {
                units,
                to,
            }));
        // Each unit walks at its kind's speed.
        let speeds: Vec<(UnitId, f64)> = ids
            .iter()
            .filter_map(|&id| drawn.get(id).map(|d| (id, d.state.kind())))
            .map(|(id, kind)| (id, kind_stats(kind, &rate).speed_cm_per_tick as f64))
            .collect();
        smoothing.predict_move(&speeds, to, time.elapsed_secs_f64());
    }
}

/// Dead or vanished units leave the selection.
fn forget_dead(drawn: DrawnUnits, mut selection: ResMut<Selection>) {
    selection.0.retain(|id| drawn.get(*id).is_some());
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::{UnitSample, UnitState, Velocity, quantize};
    use galaxy_sim::KIND_BASE;

    fn drawn(owner: PlayerId, kind: u8, x: f64, y: f64) -> DrawnUnit {
        DrawnUnit {
            position: (x, y),
            state: quantize(&UnitSample {
                owner,
                kind,
                position: WorldPos::new(x as i64, y as i64),
                velocity: Velocity::ZERO,
                health: 10.0,
                state: UnitState::IDLE,
                target: None,
            }),
            predicted: false,
        }
    }

    fn world() -> Vec<(UnitId, DrawnUnit)> {
        vec![
            (1, drawn(7, 0, 0.0, 0.0)),
            (2, drawn(7, 1, 500.0, 500.0)),
            (3, drawn(8, 0, 100.0, 100.0)),       // an enemy
            (4, drawn(7, KIND_BASE, 50.0, 50.0)), // our base: not orderable
            (5, drawn(7, 2, -900.0, 0.0)),
        ]
    }

    #[test]
    fn box_selects_own_units_inside_in_any_drag_direction() {
        let mut got = units_in_box(
            world().into_iter(),
            7,
            WorldPos::new(600, 600),
            WorldPos::new(-10, -10),
        );
        got.sort();
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn click_picks_the_nearest_own_unit_within_reach() {
        let w = || world().into_iter();
        assert_eq!(unit_at(w(), 7, WorldPos::new(80, 80), 200.0), Some(1));
        assert_eq!(unit_at(w(), 7, WorldPos::new(450, 450), 200.0), Some(2));
        assert_eq!(unit_at(w(), 7, WorldPos::new(3_000, 0), 200.0), None);
        assert_eq!(unit_at(w(), 8, WorldPos::new(80, 80), 200.0), Some(3));
    }

    #[test]
    fn many_units_become_a_few_batch_commands_naming_each_once() {
        let ids: Vec<UnitId> = (0..2_500).map(|i| i * 3).collect();
        let to = WorldPos::new(1, 2);
        let cmds = commands_for(&ids, |units| CompressedCommand::Move { units, to });
        assert_eq!(cmds.len(), 3);
        let named: Vec<UnitId> = cmds.iter().flat_map(|c| c.units().iter()).collect();
        assert_eq!(named, ids);
    }
}
