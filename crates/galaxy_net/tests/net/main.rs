//! End-to-end tests over real UDP on 127.0.0.1: a server app and client
//! apps, each a real Bevy `App` with the plugin, pumped in one thread.

mod events;
mod example;
mod harness;
mod redirect;
mod replication;
mod security;
mod spectators;
mod verify;
