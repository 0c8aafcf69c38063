//! Seeded input mutation for the bounded fuzz runs in the test suites (the
//! decoders here, the simulation's command handling in `galaxy_sim`):
//! deterministic, on stable Rust, with overflow checks on. The coverage-
//! guided targets in `fuzz/` take the same inputs further with `cargo fuzz`.

use crate::link_model::SplitMix64;

/// One to five random edits of `bytes`: bit flips, random bytes, cuts,
/// appended junk, a forged huge bincode length, deleted and inserted bytes.
pub fn mutate(rng: &mut SplitMix64, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let len = bytes.len() as u64;
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                bytes[i] = rng.next_u64() as u8;
            }
            2 => bytes.truncate(rng.below(len + 1) as usize),
            3 => bytes.extend((0..rng.below(16)).map(|_| rng.next_u64() as u8)),
            4 => {
                // A forged huge varint length (0xfd = u64 follows) somewhere.
                let i = rng.below(len + 1) as usize;
                let huge = [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
                bytes.splice(i..i, huge);
            }
            5 if len > 1 => {
                let i = rng.below(len - 1) as usize + 1;
                bytes.remove(i);
            }
            _ => {
                let i = rng.below(len + 1) as usize;
                bytes.insert(i, rng.next_u64() as u8);
            }
        }
    }
    bytes
}

/// `len` random bytes whose first is one of the first `tags` message tags
/// (mostly valid tags, so the bytes reach the message bodies).
pub fn random_message(rng: &mut SplitMix64, len: usize, tags: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    if let Some(first) = bytes.first_mut() {
        *first = rng.below(u64::from(tags)) as u8;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_deterministic_and_changes_things() {
        let input = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
        let a = mutate(&mut SplitMix64::new(3), input.clone());
        let b = mutate(&mut SplitMix64::new(3), input.clone());
        assert_eq!(a, b);
        let changed = (0..100u64)
            .filter(|&s| mutate(&mut SplitMix64::new(s), input.clone()) != input)
            .count();
        assert!(changed > 90, "{changed}");
        let m = random_message(&mut SplitMix64::new(1), 20, 11);
        assert!(m.len() == 20 && m[0] < 11);
    }
}
