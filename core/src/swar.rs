//! Finding the first of a few bytes eight bytes to a step ("SIMD within a register"): the JSON
//! reader looks for the bytes that end a string, the query scanner for `&`, `=`, `%` and `+`. A
//! byte-by-byte loop took five to ten instructions per byte of those hot inputs
//! (bench/ANALYSIS.md).

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Lane `i` of the result has its high bit set where byte `i` of `word` (from the least
/// significant end) is below `n` (`n <= 0x80`). Subtracting borrows only out of a lane that
/// matched, so a lane can be set falsely only above a true match: the lowest set lane is exact,
/// which is all [`first_match`] reads.
pub(crate) fn lanes_below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// [`lanes_below`] for the lanes equal to `byte`.
pub(crate) fn lanes_equal(word: u64, byte: u8) -> u64 {
    lanes_below(word ^ (ONES * u64::from(byte)), 1)
}

/// The index of the first byte of `bytes` whose lane `lanes` marks (with [`lanes_below`] and
/// [`lanes_equal`]); `padding` must be a byte `lanes` does not mark, put after a short tail.
pub(crate) fn first_match(bytes: &[u8], padding: u8, lanes: impl Fn(u64) -> u64) -> Option<usize> {
    let lane = |chunk: [u8; 8]| {
        let marked = lanes(u64::from_le_bytes(chunk));
        (marked != 0).then(|| marked.trailing_zeros() as usize / 8)
    };
    let mut chunks = bytes.chunks_exact(8);
    for (index, chunk) in chunks.by_ref().enumerate() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        if let Some(at) = lane(word) {
            return Some(index * 8 + at);
        }
    }
    let tail = chunks.remainder();
    let mut word = [padding; 8];
    word[..tail.len()].copy_from_slice(tail);
    lane(word).map(|at| bytes.len() - tail.len() + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn first_match_finds_the_first_marked_byte(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'&'), Just(0u8), Just(0x7fu8), Just(0x80u8), any::<u8>()],
                0..40,
            ),
            byte in 0u8..0xff,
            below in 1u8..=0x80,
        ) {
            // 0xff is neither `byte` nor below `below`: a valid padding.
            let found = first_match(&bytes, 0xff, |word| {
                lanes_equal(word, byte) | lanes_below(word, below)
            });
            let expected = bytes.iter().position(|&b| b == byte || b < below);
            prop_assert_eq!(found, expected);
        }
    }
}
