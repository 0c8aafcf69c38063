//! `NetworkConfig`: the design's network settings, from a TOML file with
//! command-line overrides.

use std::path::{Path, PathBuf};

use bevy::prelude::Resource;
use serde::{Deserialize, Serialize};

/// Network settings of a server or client (the design's `NetworkConfig`).
#[derive(Resource, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Address to bind (server) or connect to (client).
    pub server_address: String,
    /// UDP port.
    pub port: u16,
    /// Most clients connected at once.
    pub max_connections: usize,
    /// Side of a scale-0 sector in metres. The protocol fixes it at 1,000;
    /// any other value is refused rather than silently ignored.
    pub sector_size: f32,
    /// The server's tick rate in Hz (its simulation and its replication):
    /// the starting value of the [`crate::TickRate`] resource, which is
    /// what the plugins read. Sectors are sent at their activity's rate
    /// (10 / 20 / 60 Hz) capped by it.
    pub update_rate: f32,
    /// Delta compression against acknowledged baselines; off sends every
    /// changed unit whole (for debugging and comparison).
    pub compression_enabled: bool,
    /// netcode protocol id: clients of another build cannot connect.
    pub protocol_id: u64,
    /// Server private key file for secure netcode tokens (32 bytes). `None`
    /// on a server means an insecure, local-only server.
    pub key_file: Option<PathBuf>,
    /// Commands a client may send per second before it is rate limited.
    pub max_commands_per_second: u32,
    /// Unit ids a client's commands may name per second before further
    /// commands are refused (the rate limit is charged per id: one
    /// command may name thousands). Four times this disconnects.
    pub max_command_units_per_second: u64,
    /// Bytes a client may send per second before it is disconnected.
    pub max_client_bytes_per_second: u64,
    /// Seconds without a packet after which a session is dropped; also how
    /// long a client may leave the updates sent to it unacknowledged.
    pub idle_timeout_secs: u64,
    /// Each client's byte budget for unit updates and combat events, in
    /// kbps (1,000 bits per second of message payload). When more changes
    /// than fit, the priority accumulator chooses (events, removals, then
    /// near, fast-changing, long-waiting units). 0 = no budget.
    pub client_budget_kbps: f64,
    /// Dead reckoning: a unit's replicated track is re-anchored only when
    /// the unit is farther than this many centimetres from it (0: on every
    /// move). Clients never draw a unit farther off than this.
    pub reckoning_threshold_cm: u32,
    /// Threads the server's replication may use: 0 spreads clients and
    /// units over Bevy's compute task pool; 1 keeps it on one thread (for
    /// a machine whose other cores are busy with something else).
    pub server_threads: usize,
    /// A client's link class (`--profile desktop|mobile`), sent to the
    /// server with its view: a mobile client is sent at most 32 kbps at
    /// 10 Hz with a coarser far ring, whatever the server's own budget. On
    /// a server, the least any client gets (`mobile`: every client).
    pub profile: galaxy_protocol::LinkProfile,
    /// Broadcast delay for spectators, in seconds (`--spectator-delay 30s`;
    /// 0 = live): spectators see the game this much later than it is
    /// played, so that nobody watching a tournament can scout for a
    /// player. At most [`crate::MAX_SPECTATOR_DELAY_SECS`]; the server
    /// holds every change of that long. Read when the server plugin is
    /// built, as the tick rate is.
    pub spectator_delay_secs: f64,
    /// Spectators watching the same view (with the same delay and link
    /// profile) share one encoding of their updates (`--no-spectator-sharing` turns
    /// it off, to compare).
    pub share_spectator_updates: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            server_address: "127.0.0.1".into(),
            port: 5000,
            max_connections: 64,
            sector_size: 1000.0,
            update_rate: 20.0,
            compression_enabled: true,
            protocol_id: 0x6761_6c61_7879_0001,
            key_file: None,
            max_commands_per_second: 60,
            max_command_units_per_second: 20_000,
            max_client_bytes_per_second: 64 * 1024,
            idle_timeout_secs: 15,
            client_budget_kbps: 256.0,
            reckoning_threshold_cm: galaxy_protocol::reckoning::DEFAULT_THRESHOLD_CM,
            server_threads: 0,
            profile: galaxy_protocol::LinkProfile::Desktop,
            spectator_delay_secs: 0.0,
            share_spectator_updates: true,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A command-line override was malformed.
    #[error("bad option {flag}: {message}")]
    Flag {
        /// The flag.
        flag: String,
        /// What was wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {field}: {message}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// The command-line flags [`NetworkConfig::apply_args`] understands.
pub const CONFIG_FLAGS: &str = "--server-address ADDR  --port N  --max-connections N  --update-rate HZ  \
--no-compression  --budget-kbps KBPS  --reckoning-cm CM  --key-file PATH  --profile desktop|mobile  \
--spectator-delay SECS[s|ms|m]  --no-spectator-sharing  --config FILE";

impl NetworkConfig {
    /// These settings with `profile`'s preset: for `mobile`, a 32 kbps
    /// budget, updates at 10 Hz at most and a coarser far ring (on a
    /// client: what it asks every server for; on a server: for every
    /// client). The tick rate stays: client and server must agree on it.
    pub fn with_profile(mut self, profile: galaxy_protocol::LinkProfile) -> Self {
        self.profile = profile;
        if profile.max_kbps() > 0 {
            self.client_budget_kbps = f64::from(profile.max_kbps());
        }
        self
    }

    /// Reads a TOML file; missing keys keep their defaults, unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.into(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.into(),
            })
        };
        if self.sector_size != 1000.0 {
            return invalid("sector_size", "the protocol's scale-0 sector is 1000 m");
        }
        if !(1.0..=60.0).contains(&self.update_rate) {
            return invalid("update_rate", "must be between 1 and 60 Hz");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if !(self.client_budget_kbps.is_finite() && self.client_budget_kbps >= 0.0) {
            return invalid("client_budget_kbps", "must be 0 (no budget) or positive");
        }
        let max_delay = crate::MAX_SPECTATOR_DELAY_SECS;
        if !(0.0..=max_delay).contains(&self.spectator_delay_secs) {
            return Err(ConfigError::Invalid {
                field: "spectator_delay_secs",
                message: format!("must be between 0 and {max_delay} seconds"),
            });
        }
        if self.client_budget_kbps > 0.0 && self.client_budget_kbps < 8.0 {
            return invalid(
                "client_budget_kbps",
                "below 8 kbps a client cannot even join",
            );
        }
        Ok(())
    }

    /// Each client's byte budget per tick at `rate` (`None`: no budget).
    pub fn budget_bytes_per_tick(&self, rate: crate::TickRate) -> Option<usize> {
        (self.client_budget_kbps > 0.0).then(|| {
            galaxy_protocol::ByteBudget::from_kbps(self.client_budget_kbps, rate.0).bytes_per_tick()
        })
    }

    /// The tick rate this configuration starts the [`crate::TickRate`] at.
    pub fn tick_rate(&self) -> crate::TickRate {
        crate::TickRate(f64::from(self.update_rate))
    }

    /// Applies command-line overrides (see [`CONFIG_FLAGS`]); `--config FILE`
    /// loads a file first, then the other flags override it. Returns the
    /// arguments it did not recognise, in order, for the caller to handle.
    pub fn apply_args(&mut self, args: &[String]) -> Result<Vec<String>, ConfigError> {
        if let Some(i) = args.iter().position(|a| a == "--config") {
            let path = args
                .get(i + 1)
                .ok_or_else(|| flag_error("--config", "needs a file"))?;
            *self = Self::from_file(Path::new(path))?;
        }
        let mut rest = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| flag_error(flag, "needs a value"))
            };
            match flag.as_str() {
                "--config" => {
                    value()?;
                }
                "--server-address" => self.server_address = value()?,
                "--port" => self.port = parse(flag, &value()?)?,
                "--max-connections" => self.max_connections = parse(flag, &value()?)?,
                "--update-rate" => self.update_rate = parse(flag, &value()?)?,
                "--key-file" => self.key_file = Some(PathBuf::from(value()?)),
                "--no-compression" => self.compression_enabled = false,
                "--no-spectator-sharing" => self.share_spectator_updates = false,
                "--budget-kbps" => self.client_budget_kbps = parse(flag, &value()?)?,
                "--reckoning-cm" => self.reckoning_threshold_cm = parse(flag, &value()?)?,
                "--spectator-delay" => self.spectator_delay_secs = parse_secs(flag, &value()?)?,
                "--profile" => {
                    let name = value()?;
                    let profile =
                        galaxy_protocol::LinkProfile::from_name(&name).ok_or_else(|| {
                            flag_error(flag, &format!("{name:?}: expected desktop or mobile"))
                        })?;
                    *self = std::mem::take(self).with_profile(profile);
                }
                _ => rest.push(flag.clone()),
            }
        }
        self.validate()?;
        Ok(rest)
    }
}

fn flag_error(flag: &str, message: &str) -> ConfigError {
    ConfigError::Flag {
        flag: flag.into(),
        message: message.into(),
    }
}

fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e: T::Err| flag_error(flag, &format!("{v:?}: {e}")))
}

/// Seconds from `30`, `30s`, `500ms` or `2m`.
fn parse_secs(flag: &str, v: &str) -> Result<f64, ConfigError> {
    let (number, unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let secs: f64 = parse(flag, number)?;
    Ok(secs * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn toml_with_defaults_and_overrides() {
        let dir = std::env::temp_dir().join(format!("galaxy-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.toml");
        std::fs::write(
            &file,
            "port = 6000\nupdate_rate = 10.0\nmax_connections = 8\n",
        )
        .unwrap();
        let mut c = NetworkConfig::default();
        let rest = c
            .apply_args(&args(&format!(
                "--config {} --port 7000 --no-compression --bots 3",
                file.display()
            )))
            .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.update_rate, 10.0);
        assert_eq!(c.max_connections, 8);
        assert!(!c.compression_enabled);
        assert_eq!(c.server_address, "127.0.0.1");
        assert_eq!(rest, args("--bots 3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(
            NetworkConfig::from_toml("port = \"x\""),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            NetworkConfig::from_toml("prot = 1"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            NetworkConfig::from_toml("sector_size = 5.0"),
            Err(ConfigError::Invalid {
                field: "sector_size",
                ..
            })
        ));
        let mut c = NetworkConfig::default();
        assert!(matches!(
            c.apply_args(&args("--port 99999")),
            Err(ConfigError::Flag { .. })
        ));
        assert!(matches!(
            c.apply_args(&args("--port")),
            Err(ConfigError::Flag { .. })
        ));
        assert!(matches!(
            c.apply_args(&args("--update-rate 0")),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            NetworkConfig::from_file(Path::new("/nonexistent/x.toml")),
            Err(ConfigError::Io { .. })
        ));
        for bad in ["--budget-kbps -1", "--budget-kbps NaN", "--budget-kbps 2"] {
            assert!(
                matches!(
                    NetworkConfig::default().apply_args(&args(bad)),
                    Err(ConfigError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn budget_and_reckoning_settings() {
        let mut c = NetworkConfig::default();
        assert_eq!(
            c.budget_bytes_per_tick(c.tick_rate()),
            Some(1600),
            "256 kbps at 20 Hz"
        );
        c.apply_args(&args("--budget-kbps 0 --reckoning-cm 2"))
            .unwrap();
        assert_eq!(c.budget_bytes_per_tick(c.tick_rate()), None);
        assert_eq!(c.reckoning_threshold_cm, 2);
        let c = NetworkConfig::from_toml("client_budget_kbps = 512.0\nupdate_rate = 10.0").unwrap();
        assert_eq!(c.budget_bytes_per_tick(c.tick_rate()), Some(6400));
    }

    #[test]
    fn the_spectator_delay_takes_units_and_is_bounded() {
        for (arg, secs) in [("30s", 30.0), ("30", 30.0), ("500ms", 0.5), ("2m", 120.0)] {
            let mut c = NetworkConfig::default();
            c.apply_args(&args(&format!("--spectator-delay {arg}")))
                .unwrap();
            assert_eq!(c.spectator_delay_secs, secs, "{arg}");
        }
        assert_eq!(
            NetworkConfig::default().spectator_delay_secs,
            0.0,
            "live by default"
        );
        for bad in ["-1s", "1h", "NaN", "601s"] {
            assert!(
                NetworkConfig::default()
                    .apply_args(&args(&format!("--spectator-delay {bad}")))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(NetworkConfig::from_toml("spectator_delay_secs = 30.0").is_ok());
        let mut c = NetworkConfig::default();
        assert!(c.share_spectator_updates);
        c.apply_args(&args("--no-spectator-sharing")).unwrap();
        assert!(!c.share_spectator_updates);
    }

    #[test]
    fn the_mobile_profile_is_a_preset_and_a_typo_is_an_error() {
        use galaxy_protocol::LinkProfile;
        let mut c = NetworkConfig::default();
        c.apply_args(&args("--profile mobile")).unwrap();
        assert_eq!(c.profile, LinkProfile::Mobile);
        assert_eq!(c.client_budget_kbps, 32.0);
        assert_eq!(c.update_rate, 20.0, "the tick rate is shared; it stays");
        // A later flag overrides the preset's budget.
        let mut c = NetworkConfig::default();
        c.apply_args(&args("--profile mobile --budget-kbps 24"))
            .unwrap();
        assert_eq!(c.client_budget_kbps, 24.0);
        let c = NetworkConfig::from_toml("profile = \"mobile\"").unwrap();
        assert_eq!(c.profile, LinkProfile::Mobile);
        assert!(matches!(
            NetworkConfig::default().apply_args(&args("--profile tablet")),
            Err(ConfigError::Flag { .. })
        ));
        assert_eq!(
            LinkProfile::Desktop.stricter(LinkProfile::Mobile),
            LinkProfile::Mobile
        );
    }
}
