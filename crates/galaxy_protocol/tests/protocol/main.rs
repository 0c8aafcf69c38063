//! Integration tests of `galaxy_protocol`: one binary, one module per area.

mod alloc_counter;
mod bad_input;
mod bandwidth_targets;
mod budget;
mod delta_healing;
mod fuzz;
mod hostile;
mod own_snapshot;
mod packing;
mod roundtrip;
mod sectors;
mod shared_stream;
mod strategies;
mod verify;

#[global_allocator]
static ALLOC: alloc_counter::Counting = alloc_counter::Counting;
