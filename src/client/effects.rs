//! What `CombatEvent`s look like: an expanding ring where it happened
//! (small and orange for a kill, cyan for a captured resource, large and
//! red for a destroyed base, wide and yellow for a massive battle) and a
//! line in the event feed the HUD shows.

use std::collections::VecDeque;

use bevy::prelude::*;
use galaxy_net::{ReceivedEvents, SmoothingSet};
use galaxy_protocol::{CombatEvent, CombatEventType};

use super::camera::{CameraFocus, to_render};
use super::render::Vanished;
use super::units::DrawnUnits;

/// One effect being shown.
#[derive(Clone, Copy, Debug)]
struct Effect {
    at: (f64, f64),
    kind: CombatEventType,
    started: f64,
}

#[derive(Resource, Default)]
struct Effects(VecDeque<Effect>);

/// The latest combat events as text, newest last.
#[derive(Resource, Default)]
pub struct EventFeed {
    /// `(local time, line)`.
    pub lines: VecDeque<(f64, String)>,
    /// Events received in all.
    pub total: u64,
}

const FEED_LINES: usize = 50;
/// Most effects drawn at once (a huge battle must not flood the renderer).
const MAX_EFFECTS: usize = 512;

/// Combat effects and the event feed.
pub struct EffectsPlugin;

impl Plugin for EffectsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Effects>()
            .init_resource::<EventFeed>()
            .add_systems(
                Update,
                (take_events, draw_effects).chain().after(SmoothingSet),
            );
    }
}

/// Seconds an effect lasts, its final radius (render units) and colour.
fn style(kind: CombatEventType) -> (f64, f32, Color) {
    match kind {
        CombatEventType::UnitDestroyed => (0.6, 60.0, Color::srgb(1.0, 0.6, 0.1)),
        CombatEventType::ResourceCapture => (1.5, 200.0, Color::srgb(0.3, 0.9, 1.0)),
        CombatEventType::BaseDestroyed => (2.5, 500.0, Color::srgb(1.0, 0.15, 0.1)),
        CombatEventType::MassiveBattle => (2.0, 400.0, Color::srgb(1.0, 0.9, 0.2)),
    }
}

/// The feed's text for an event.
pub fn describe(e: &CombatEvent) -> String {
    let first = e.participants.first().copied().unwrap_or_default();
    let others = e.participants.len().saturating_sub(1);
    let s = e.sector_id;
    match e.event_type {
        CombatEventType::UnitDestroyed => format!("unit {first} destroyed in ({}, {})", s.x, s.y),
        CombatEventType::ResourceCapture => {
            format!(
                "resource {first} captured by {others} units in ({}, {})",
                s.x, s.y
            )
        }
        CombatEventType::BaseDestroyed => {
            format!(
                "BASE {first} DESTROYED by {others} units in ({}, {})",
                s.x, s.y
            )
        }
        CombatEventType::MassiveBattle => format!(
            "massive battle: {} units in ({}, {})",
            e.participants.len(),
            s.x,
            s.y
        ),
    }
}

fn take_events(
    time: Res<Time<Real>>,
    mut received: ResMut<ReceivedEvents>,
    drawn: DrawnUnits,
    vanished: Res<Vanished>,
    mut effects: ResMut<Effects>,
    mut feed: ResMut<EventFeed>,
) {
    let now = time.elapsed_secs_f64();
    for e in received.events.drain(..) {
        feed.total += 1;
        feed.lines.push_back((now, describe(&e)));
        if feed.lines.len() > FEED_LINES {
            feed.lines.pop_front();
        }
        // Where: the first participant as drawn (or where it vanished), else the sector's centre.
        let at = e.participants.first().and_then(|&id| {
            drawn
                .get(id)
                .map(|d| d.position)
                .or_else(|| vanished.position(id))
        });
        let at = at.or_else(|| {
            e.sector_id.bounds().map(|b| {
                (
                    (b.min.x as f64 + b.max.x as f64) / 2.0,
                    (b.min.y as f64 + b.max.y as f64) / 2.0,
                )
            })
        });
        if let Some(at) = at {
            if effects.0.len() == MAX_EFFECTS {
                effects.0.pop_front();
            }
            effects.0.push_back(Effect {
                at,
                kind: e.event_type,
                started: now,
            });
        }
    }
}

fn draw_effects(
    time: Res<Time<Real>>,
    focus: Res<CameraFocus>,
    mut effects: ResMut<Effects>,
    mut gizmos: Gizmos,
) {
    let now = time.elapsed_secs_f64();
    effects.0.retain(|e| now - e.started < style(e.kind).0);
    for e in &effects.0 {
        let (secs, radius, colour) = style(e.kind);
        let k = ((now - e.started) / secs) as f32;
        let at = to_render(e.at, focus.0);
        gizmos.circle_2d(
            Isometry2d::from_translation(at),
            8.0 + radius * k,
            colour.with_alpha(1.0 - k),
        );
        if e.kind == CombatEventType::UnitDestroyed {
            gizmos.circle_2d(
                Isometry2d::from_translation(at),
                4.0 + radius * 0.5 * k,
                Color::srgb(1.0, 0.95, 0.6).with_alpha(1.0 - k),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::SectorId;

    #[test]
    fn feed_lines_name_what_happened() {
        let e = CombatEvent {
            sector_id: SectorId::new(2, -1, 0),
            event_type: CombatEventType::BaseDestroyed,
            participants: vec![42, 1, 2, 3],
            timestamp: 7,
        };
        assert_eq!(describe(&e), "BASE 42 DESTROYED by 3 units in (2, -1)");
    }
}
