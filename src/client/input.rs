//! Player input as leafwing actions, never raw keys: every action's inputs
//! come from a bindings file (`config/bindings.toml` documents the format
//! and holds the defaults), so players can rebind anything.

use std::collections::BTreeMap;
use std::path::Path;

use bevy::prelude::*;
use leafwing_input_manager::prelude::*;

/// Everything a player can do with keyboard and mouse.
#[derive(Actionlike, PartialEq, Eq, Clone, Copy, Hash, Debug, Reflect)]
pub enum Action {
    /// Click to select a unit, drag to box-select.
    Select,
    /// Held while selecting: add to the selection instead of replacing it.
    AddToSelection,
    /// Move the selection to the pointer (or attack-move when armed).
    Command,
    /// Arms attack-move: the next left click sends it.
    AttackMove,
    /// Stops the selection.
    Stop,
    /// Disarms a pending attack-move.
    Cancel,
    /// Camera pans.
    PanLeft,
    /// Camera pans.
    PanRight,
    /// Camera pans.
    PanUp,
    /// Camera pans.
    PanDown,
    /// Zooms the camera in.
    ZoomIn,
    /// Zooms the camera out.
    ZoomOut,
    /// Shows or hides the sector grid.
    ToggleSectors,
    /// Shows or hides the HUD.
    ToggleHud,
}

impl Action {
    /// Every action with its name in the bindings file.
    pub const ALL: [(Action, &'static str); 14] = [
        (Action::Select, "select"),
        (Action::AddToSelection, "add_to_selection"),
        (Action::Command, "command"),
        (Action::AttackMove, "attack_move"),
        (Action::Stop, "stop"),
        (Action::Cancel, "cancel"),
        (Action::PanLeft, "pan_left"),
        (Action::PanRight, "pan_right"),
        (Action::PanUp, "pan_up"),
        (Action::PanDown, "pan_down"),
        (Action::ZoomIn, "zoom_in"),
        (Action::ZoomOut, "zoom_out"),
        (Action::ToggleSectors, "toggle_sectors"),
        (Action::ToggleHud, "toggle_hud"),
    ];
}

/// The default bindings (the file shipped in `config/`).
pub const DEFAULT_BINDINGS: &str = include_str!("../../config/bindings.toml");

/// One physical input an action can be bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A keyboard key.
    Key(KeyCode),
    /// A mouse button.
    Mouse(MouseButton),
    /// A wheel notch up (`true`) or down.
    Wheel(bool),
}

/// Why a bindings file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindingsError {
    /// The file could not be read.
    #[error("cannot read bindings {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// Not a TOML table of string lists.
    #[error("bindings are not valid TOML (action = [\"Input\", ...]): {0}")]
    Parse(String),
    /// An action name that does not exist (a typo would otherwise be silently ignored).
    #[error("unknown action `{0}` (known: {known})", known = Action::ALL.map(|a| a.1).join(", "))]
    UnknownAction(String),
    /// An input name that does not exist.
    #[error("action `{action}`: unknown input `{input}`")]
    UnknownInput {
        /// The action.
        action: String,
        /// The input name.
        input: String,
    },
}

fn parse_binding(name: &str) -> Option<Binding> {
    Some(match name {
        "MouseLeft" => Binding::Mouse(MouseButton::Left),
        "MouseRight" => Binding::Mouse(MouseButton::Right),
        "MouseMiddle" => Binding::Mouse(MouseButton::Middle),
        "MouseBack" => Binding::Mouse(MouseButton::Back),
        "MouseForward" => Binding::Mouse(MouseButton::Forward),
        "WheelUp" => Binding::Wheel(true),
        "WheelDown" => Binding::Wheel(false),
        key => {
            let value = toml::Value::String(key.to_owned());
            match value.try_into::<KeyCode>() {
                Ok(code) if !matches!(code, KeyCode::Unidentified(_)) => Binding::Key(code),
                _ => return None,
            }
        }
    })
}

/// Every action's bindings (also a resource, for help texts).
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct Bindings(pub BTreeMap<ActionKey, Vec<Binding>>);

/// An [`Action`] usable as an ordered map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActionKey(usize);

impl ActionKey {
    /// The action.
    pub fn action(self) -> Action {
        Action::ALL[self.0].0
    }

    /// The key of `action`.
    pub fn of(action: Action) -> Self {
        Self(Action::ALL.iter().position(|a| a.0 == action).unwrap_or(0))
    }
}

impl Bindings {
    /// Parses a bindings file's text; actions it leaves out keep `base`'s bindings.
    pub fn parse_over(text: &str, base: &Bindings) -> Result<Bindings, BindingsError> {
        let table: BTreeMap<String, Vec<String>> =
            toml::from_str(text).map_err(|e| BindingsError::Parse(e.message().to_owned()))?;
        let mut out = base.clone();
        for (name, inputs) in table {
            let Some(i) = Action::ALL.iter().position(|a| a.1 == name) else {
                return Err(BindingsError::UnknownAction(name));
            };
            let mut list = Vec::with_capacity(inputs.len());
            for input in inputs {
                match parse_binding(&input) {
                    Some(b) => list.push(b),
                    None => {
                        return Err(BindingsError::UnknownInput {
                            action: name,
                            input,
                        });
                    }
                }
            }
            out.0.insert(ActionKey(i), list);
        }
        Ok(out)
    }

    /// The shipped defaults.
    pub fn defaults() -> Bindings {
        let empty = Bindings(BTreeMap::new());
        Self::parse_over(DEFAULT_BINDINGS, &empty).expect("config/bindings.toml is valid")
    }

    /// Defaults overridden by the file at `path`.
    pub fn load(path: &Path) -> Result<Bindings, BindingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| BindingsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse_over(&text, &Self::defaults())
    }

    /// The bindings of `action`.
    pub fn of(&self, action: Action) -> &[Binding] {
        self.0
            .get(&ActionKey::of(action))
            .map_or(&[], Vec::as_slice)
    }

    /// A short label of the first input bound to `action` ("A", "Right click", ...).
    pub fn label(&self, action: Action) -> String {
        match self.of(action).first() {
            None => "unbound".into(),
            Some(Binding::Key(k)) => {
                let name = format!("{k:?}");
                let short = name
                    .strip_prefix("Key")
                    .or_else(|| name.strip_prefix("Digit"))
                    .unwrap_or(&name);
                short.to_owned()
            }
            Some(Binding::Mouse(m)) => format!("{m:?} click"),
            Some(Binding::Wheel(true)) => "wheel up".into(),
            Some(Binding::Wheel(false)) => "wheel down".into(),
        }
    }

    /// The leafwing input map.
    pub fn input_map(&self) -> InputMap<Action> {
        let mut map = InputMap::default();
        for (key, list) in &self.0 {
            for b in list {
                match *b {
                    Binding::Key(k) => map.insert(key.action(), k),
                    Binding::Mouse(m) => map.insert(key.action(), m),
                    Binding::Wheel(true) => map.insert(key.action(), MouseScrollDirection::UP),
                    Binding::Wheel(false) => map.insert(key.action(), MouseScrollDirection::DOWN),
                };
            }
        }
        map
    }
}

/// Adds leafwing's input manager and the player's input map.
pub struct InputPlugin {
    /// The bindings to use.
    pub bindings: Bindings,
}

impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        let map = self.bindings.input_map();
        app.insert_resource(self.bindings.clone())
            .add_plugins(InputManagerPlugin::<Action>::default())
            .add_systems(Startup, move |mut commands: Commands| {
                commands.spawn((map.clone(), ActionState::<Action>::default()));
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_binds_every_action() {
        let d = Bindings::defaults();
        for (action, name) in Action::ALL {
            assert!(!d.of(action).is_empty(), "{name} has no binding");
        }
        assert_eq!(d.of(Action::Stop), &[Binding::Key(KeyCode::KeyS)]);
        assert_eq!(
            d.of(Action::ZoomIn),
            &[Binding::Wheel(true), Binding::Key(KeyCode::KeyE)]
        );
        assert_eq!(d.label(Action::AttackMove), "A");
        assert_eq!(d.label(Action::Command), "Right click");
        assert_eq!(d.label(Action::ToggleHud), "F1");
    }

    #[test]
    fn a_file_rebinds_some_actions_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("galaxy-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bindings.toml");
        std::fs::write(
            &path,
            "stop = [\"KeyX\", \"MouseMiddle\"]\ntoggle_hud = [\"F2\"]\n",
        )
        .unwrap();
        let b = Bindings::load(&path).unwrap();
        assert_eq!(
            b.of(Action::Stop),
            &[
                Binding::Key(KeyCode::KeyX),
                Binding::Mouse(MouseButton::Middle)
            ]
        );
        assert_eq!(b.of(Action::ToggleHud), &[Binding::Key(KeyCode::F2)]);
        assert_eq!(b.of(Action::Select), &[Binding::Mouse(MouseButton::Left)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mistakes_are_named() {
        let d = Bindings::defaults();
        assert_eq!(
            Bindings::parse_over("stpo = [\"KeyS\"]", &d),
            Err(BindingsError::UnknownAction("stpo".into()))
        );
        assert_eq!(
            Bindings::parse_over("stop = [\"KeyÜ\"]", &d),
            Err(BindingsError::UnknownInput {
                action: "stop".into(),
                input: "KeyÜ".into()
            })
        );
        assert!(matches!(
            Bindings::parse_over("stop = \"KeyS\"", &d),
            Err(BindingsError::Parse(_))
        ));
        assert!(matches!(
            Bindings::load(Path::new("/nonexistent/bindings.toml")),
            Err(BindingsError::Io { .. })
        ));
    }

    /// The loaded map really drives leafwing: pressing the rebound key
    /// fires the action, and the old key no longer does.
    #[test]
    fn rebound_keys_fire_actions_through_leafwing() {
        let b = Bindings::parse_over("stop = [\"KeyX\"]", &Bindings::defaults()).unwrap();
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, bevy::input::InputPlugin))
            .add_plugins(InputPlugin { bindings: b });
        app.update();
        KeyCode::KeyS.press(app.world_mut());
        app.update();
        let state = |app: &mut App| {
            app.world_mut()
                .query::<&ActionState<Action>>()
                .single(app.world())
                .expect("one player entity")
                .clone()
        };
        assert!(!state(&mut app).pressed(&Action::Stop));
        KeyCode::KeyX.press(app.world_mut());
        app.update();
        assert!(state(&mut app).just_pressed(&Action::Stop));
        KeyCode::KeyA.press(app.world_mut());
        app.update();
        assert!(state(&mut app).pressed(&Action::AttackMove));
    }
}
