//! # galaxy_net
//!
//! The Bevy side of Galaxy RTS networking. Work in progress: this crate
//! currently holds the pieces that do not need a running app (the UDP link
//! conditioner and the configuration); the server and client plugins follow.

pub mod conditioner;
pub mod config;

pub use conditioner::{Faults, LinkConditioner, LinkFaults};
pub use config::{ConfigError, NetworkConfig};
