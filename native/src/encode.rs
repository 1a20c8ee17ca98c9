//! The write side of meshfed's chunk codec (layout version 1): a chunk's flags and its
//! uncompressed body (timestamp planes, then value planes). Python builds the header and
//! deflates the body with the same `zlib` call as its own encoder, so a chunk's bytes do not
//! depend on which encoder ran: compaction rewrites a block idempotently (same bytes, same
//! ZSET member) even where some collectors have this module and others do not.
//!
//! The reference is `_chunk_planes` in `collectors/store/chunks.py`; every step here mirrors
//! it, including the integer test (exact integers below 2**53, not -0.0) and XOR of raw bits
//! (values are never converted, so NaN payloads survive).

const FLAG_WIDE: u8 = 1;
const FLAG_INTEGERS: u8 = 2;
const INT_EXACT: f64 = 9_007_199_254_740_992.0; // 2**53

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Byte `k` of every big-endian lane of `width` bytes, for k = 0..width, appended to `out`.
fn push_planes(lanes: &[u64], width: usize, out: &mut Vec<u8>) {
    for k in 0..width {
        let shift = 8 * (width - 1 - k);
        out.extend(lanes.iter().map(|lane| (lane >> shift) as u8));
    }
}

/// The values as exact integers, when every one is an integer strictly inside ±2**53 and
/// none is -0.0 (whose integer would come back as +0.0 bits).
fn integer_values(bits: &[u64]) -> Option<Vec<i64>> {
    bits.iter()
        .map(|&b| {
            let v = f64::from_bits(b);
            let exact = v.is_finite() && v.fract() == 0.0 && v.abs() < INT_EXACT;
            (exact && b != (-0.0f64).to_bits()).then_some(v as i64)
        })
        .collect()
}

/// Flags and body of a chunk of `timestamps` (ms) and their big-endian IEEE-754 value bytes
/// (`8 * n` of them). `None` where the Python encoder must decide: no samples, a length
/// mismatch, or a delta-of-delta beyond 64 bits.
pub fn planes(timestamps: &[i64], value_bytes: &[u8]) -> Option<(u8, Vec<u8>)> {
    let n = timestamps.len();
    if n == 0 || value_bytes.len() != 8 * n {
        return None;
    }
    let mut dods = Vec::with_capacity(n - 1);
    let mut previous: i128 = 0;
    for pair in timestamps.windows(2) {
        let delta = i128::from(pair[1]) - i128::from(pair[0]);
        dods.push(zigzag(i64::try_from(delta - previous).ok()?));
        previous = delta;
    }
    let mut flags = 0u8;
    let width = if dods.iter().any(|&d| d > u64::from(u32::MAX)) {
        flags |= FLAG_WIDE;
        8
    } else {
        4
    };
    let bits: Vec<u64> = value_bytes
        .chunks_exact(8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("chunks of 8")))
        .collect();
    let mut value_lanes = Vec::with_capacity(n);
    if let Some(ints) = integer_values(&bits) {
        flags |= FLAG_INTEGERS;
        let mut last = 0i64;
        for v in ints {
            value_lanes.push(zigzag(v - last)); // |v - last| < 2**54: no overflow
            last = v;
        }
    } else {
        let mut last = 0u64;
        for b in bits {
            value_lanes.push(b ^ last);
            last = b;
        }
    }
    let mut body = Vec::with_capacity(width * (n - 1) + 8 * n);
    push_planes(&dods, width, &mut body);
    push_planes(&value_lanes, 8, &mut body);
    Some((flags, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn integer_counter_uses_four_byte_lanes() {
        let (flags, body) = planes(&[1000, 2000, 3000], &be(&[1.0, 2.0, 4.0])).unwrap();
        assert_eq!(flags, FLAG_INTEGERS);
        // dods 1000, 0 (zigzag 2000 = 0x7D0, 0) in 4 planes, then values' zigzag deltas 2, 2, 4
        assert_eq!(body.len(), 4 * 2 + 8 * 3);
        assert_eq!(&body[..8], &[0, 0, 0, 0, 0x07, 0, 0xD0, 0]);
        assert_eq!(&body[8 + 7 * 3..], &[2, 2, 4]);
    }

    #[test]
    fn negative_zero_and_nan_are_not_integers() {
        assert_eq!(planes(&[1, 2], &be(&[1.0, -0.0])).unwrap().0, 0);
        assert_eq!(planes(&[1, 2], &be(&[1.0, f64::NAN])).unwrap().0, 0);
        assert_eq!(planes(&[1, 2], &be(&[1.0, INT_EXACT])).unwrap().0, 0);
    }

    #[test]
    fn refuses_what_python_must_judge() {
        assert!(planes(&[], &[]).is_none());
        assert!(planes(&[1], &[0; 7]).is_none());
        assert!(planes(&[i64::MIN, i64::MAX, i64::MIN], &[0; 24]).is_none());
    }
}
