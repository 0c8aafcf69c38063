//! # galaxy_rts
//!
//! Galaxy RTS, the game: one user of `galaxy_net`. Its simulation
//! (`galaxy_sim`) runs on the server in [`sim::SimPlugin`] and writes its
//! units into entities, which `galaxy_net` replicates by sector; the
//! dedicated server ([`server`]) adds bots, a status line and, with
//! `--cluster`, membership of a cluster of servers (`galaxy_cluster`); the
//! client (`client`, feature `client`) draws the replicated entities.

pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod cluster_status;
pub mod server;
pub mod sim;
