//! ChaCha8 exactly as `rand_chacha::ChaCha8Rng` computes it, four blocks at a time in 4-lane
//! vectors: the browser's generator.
//!
//! rand_chacha's vector code has x86 back ends only; in wasm it ran as scalar code, and its block
//! function took as long as the draws it served (the REINFORCE world: 197 of the 700 samples of a
//! traced world build, against 2 % natively). Here lane i of each of the sixteen state vectors is
//! word j of block `counter + i`, so a double round is eight quarter-rounds of plain vector adds,
//! xors and rotations (simd128 in the browser; arrays natively, where this type only runs in tests
//! and rand_chacha's AVX2 code is the generator).
//!
//! The stream is rand_chacha's, word for word: the key is its seed, the 64-bit block counter and
//! the 64-bit stream id fill the last row, blocks come four at a time (a 64-word buffer), and
//! `rand_core`'s `BlockRng` hands out the words in the same order (u64 as two words, low first,
//! across buffer boundaries too). A test compares long mixed sequences of draws with rand_chacha's.

use rand::rand_core::block::{BlockRng, Generator};
use rand::rand_core::TryRng;
use std::convert::Infallible;

/// "expand 32-byte k".
const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// ChaCha8: four double rounds.
const DOUBLE_ROUNDS: usize = 4;

/// ChaCha8's block function over a key, a block counter and a stream id.
#[derive(Clone)]
pub struct ChaCha8Core {
    key: [u32; 8],
    counter: u64,
    stream: u64,
}

impl Generator for ChaCha8Core {
    type Output = [u32; 64];

    #[inline]
    fn generate(&mut self, output: &mut [u32; 64]) {
        four_blocks(&self.key, self.counter, self.stream, output);
        self.counter = self.counter.wrapping_add(4);
    }
}

/// The generator: ChaCha8 words through `BlockRng`'s buffer, as `rand_chacha::ChaCha8Rng`.
#[derive(Clone)]
pub struct ChaCha8 {
    words: BlockRng<ChaCha8Core>,
}

impl std::fmt::Debug for ChaCha8 {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("ChaCha8 {}")
    }
}

impl ChaCha8 {
    /// The stream `stream` of the 32-byte key `seed` (rand_chacha's `from_seed` + `set_stream`).
    pub fn new(seed: [u8; 32], stream: u64) -> ChaCha8 {
        let key = std::array::from_fn(|i| u32::from_le_bytes([seed[4 * i], seed[4 * i + 1], seed[4 * i + 2], seed[4 * i + 3]]));
        ChaCha8 { words: BlockRng::new(ChaCha8Core { key, counter: 0, stream }) }
    }
}

impl TryRng for ChaCha8 {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.words.next_word())
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.words.next_u64_from_u32())
    }

    #[inline]
    fn try_fill_bytes(&mut self, bytes: &mut [u8]) -> Result<(), Infallible> {
        self.words.fill_bytes(bytes);
        Ok(())
    }
}

/// Blocks `counter` … `counter + 3`, each 16 words in order, one after the other.
#[inline(never)]
fn four_blocks(key: &[u32; 8], counter: u64, stream: u64, out: &mut [u32; 64]) {
    let counters: [u64; 4] = std::array::from_fn(|i| counter.wrapping_add(i as u64));
    // Rows: the constants, the key (two rows), then counter (low, high) and stream (low, high).
    let initial: [Lanes; 16] = std::array::from_fn(|j| match j {
        0..4 => Lanes::splat(CONSTANTS[j]),
        4..12 => Lanes::splat(key[j - 4]),
        12 => Lanes::from_array(counters.map(|c| c as u32)),
        13 => Lanes::from_array(counters.map(|c| (c >> 32) as u32)),
        14 => Lanes::splat(stream as u32),
        _ => Lanes::splat((stream >> 32) as u32),
    });
    let mut x = initial;
    for _ in 0..DOUBLE_ROUNDS {
        quarter_round(&mut x, 0, 4, 8, 12);
        quarter_round(&mut x, 1, 5, 9, 13);
        quarter_round(&mut x, 2, 6, 10, 14);
        quarter_round(&mut x, 3, 7, 11, 15);
        quarter_round(&mut x, 0, 5, 10, 15);
        quarter_round(&mut x, 1, 6, 11, 12);
        quarter_round(&mut x, 2, 7, 8, 13);
        quarter_round(&mut x, 3, 4, 9, 14);
    }
    for (word, start) in x.iter_mut().zip(initial) {
        *word = word.add(start);
    }
    // Words j … j + 3 of the four blocks, transposed into four runs of one block's words.
    for j in (0..16).step_by(4) {
        let blocks = Lanes::transpose([x[j], x[j + 1], x[j + 2], x[j + 3]]);
        for (block, words) in blocks.into_iter().enumerate() {
            words.store(&mut out[16 * block + j..16 * block + j + 4]);
        }
    }
}

#[inline(always)]
fn quarter_round(x: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].add(x[b]);
    x[d] = x[d].xor(x[a]).rotate_left::<16>();
    x[c] = x[c].add(x[d]);
    x[b] = x[b].xor(x[c]).rotate_left::<12>();
    x[a] = x[a].add(x[b]);
    x[d] = x[d].xor(x[a]).rotate_left::<8>();
    x[c] = x[c].add(x[d]);
    x[b] = x[b].xor(x[c]).rotate_left::<7>();
}

/// Four u32 lanes: simd128 in the browser.
#[cfg(target_arch = "wasm32")]
#[derive(Clone, Copy)]
struct Lanes(core::arch::wasm32::v128);

#[cfg(target_arch = "wasm32")]
impl Lanes {
    #[inline(always)]
    fn splat(v: u32) -> Lanes {
        Lanes(core::arch::wasm32::u32x4_splat(v))
    }

    #[inline(always)]
    fn from_array(v: [u32; 4]) -> Lanes {
        Lanes(core::arch::wasm32::u32x4(v[0], v[1], v[2], v[3]))
    }

    #[inline(always)]
    fn add(self, other: Lanes) -> Lanes {
        Lanes(core::arch::wasm32::i32x4_add(self.0, other.0))
    }

    #[inline(always)]
    fn xor(self, other: Lanes) -> Lanes {
        Lanes(core::arch::wasm32::v128_xor(self.0, other.0))
    }

    #[inline(always)]
    fn rotate_left<const N: u32>(self) -> Lanes {
        use core::arch::wasm32::*;
        Lanes(v128_or(i32x4_shl(self.0, N), u32x4_shr(self.0, 32 - N)))
    }

    /// Rows a, b, c, d → columns: lane i of the result k is lane k of row i.
    #[inline(always)]
    fn transpose([a, b, c, d]: [Lanes; 4]) -> [Lanes; 4] {
        use core::arch::wasm32::*;
        let (ab_low, cd_low) = (i32x4_shuffle::<0, 4, 1, 5>(a.0, b.0), i32x4_shuffle::<0, 4, 1, 5>(c.0, d.0));
        let (ab_high, cd_high) = (i32x4_shuffle::<2, 6, 3, 7>(a.0, b.0), i32x4_shuffle::<2, 6, 3, 7>(c.0, d.0));
        [
            Lanes(i32x4_shuffle::<0, 1, 4, 5>(ab_low, cd_low)),
            Lanes(i32x4_shuffle::<2, 3, 6, 7>(ab_low, cd_low)),
            Lanes(i32x4_shuffle::<0, 1, 4, 5>(ab_high, cd_high)),
            Lanes(i32x4_shuffle::<2, 3, 6, 7>(ab_high, cd_high)),
        ]
    }

    #[inline(always)]
    fn store(self, out: &mut [u32]) {
        use core::arch::wasm32::*;
        let words = [
            u32x4_extract_lane::<0>(self.0),
            u32x4_extract_lane::<1>(self.0),
            u32x4_extract_lane::<2>(self.0),
            u32x4_extract_lane::<3>(self.0),
        ];
        out.copy_from_slice(&words);
    }
}

/// Four u32 lanes: plain arrays natively (tests only: natively rand_chacha's AVX2 code runs).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
struct Lanes([u32; 4]);

#[cfg(not(target_arch = "wasm32"))]
impl Lanes {
    fn splat(v: u32) -> Lanes {
        Lanes([v; 4])
    }

    fn from_array(v: [u32; 4]) -> Lanes {
        Lanes(v)
    }

    fn add(self, other: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| self.0[i].wrapping_add(other.0[i])))
    }

    fn xor(self, other: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }

    fn rotate_left<const N: u32>(self) -> Lanes {
        Lanes(self.0.map(|v| v.rotate_left(N)))
    }

    fn transpose(rows: [Lanes; 4]) -> [Lanes; 4] {
        std::array::from_fn(|k| Lanes(std::array::from_fn(|i| rows[i].0[k])))
    }

    fn store(self, out: &mut [u32]) {
        out.copy_from_slice(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The same draws, in the same mixed order, as rand_chacha's generator: words, u64s that
    /// straddle the 64-word buffer, f64s, ranges and bytes, for several seeds and streams.
    #[test]
    fn every_draw_is_rand_chachas() {
        for (seed, stream) in [(0u64, 0u64), (1, 3), (7, (9u64 << 32) | 2), (u64::MAX, u64::MAX), (12345, 1 << 63)] {
            let mut reference = ChaCha8Rng::seed_from_u64(seed);
            reference.set_stream(stream);
            let mut ours = ChaCha8::new(reference.get_seed(), stream);
            for step in 0..20_000u32 {
                match step % 7 {
                    0 | 4 => assert_eq!(ours.random::<u32>(), reference.random::<u32>(), "u32 at {step}"),
                    1 | 5 => assert_eq!(ours.random::<u64>(), reference.random::<u64>(), "u64 at {step}"),
                    2 => assert_eq!(ours.random::<f64>().to_bits(), reference.random::<f64>().to_bits(), "f64 at {step}"),
                    3 => assert_eq!(ours.random_range(0..1000 + step), reference.random_range(0..1000 + step), "range at {step}"),
                    _ => {
                        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
                        ours.fill_bytes(&mut a);
                        reference.fill_bytes(&mut b);
                        assert_eq!(a, b, "bytes at {step}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_block_counter_carries_into_its_high_word() {
        // Blocks u32::MAX - 1 … u32::MAX + 2: the low word wraps inside one call.
        let mut reference = ChaCha8Rng::seed_from_u64(5);
        reference.set_stream(11);
        reference.set_word_pos(16 * (u32::MAX as u128 - 1));
        let mut ours = ChaCha8::new(reference.get_seed(), 11);
        ours.words.core.counter = u32::MAX as u64 - 1;
        for i in 0..200 {
            assert_eq!(ours.random::<u32>(), reference.random::<u32>(), "word {i}");
        }
    }
}
