//! A small deterministic pseudo-random generator (xorshift64*) for the
//! property tests here and in the actor crates: seeded, so a failure
//! repeats, and free of dependencies.

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// [`Self::below`], signed, for arithmetic below zero.
    pub fn int(&mut self, n: u64) -> i64 {
        self.below(n) as i64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
