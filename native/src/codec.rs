//! The read side of meshfed's chunk codec (layout version 1), in plain Rust: no Python here,
//! so `cargo test` exercises it alone. The layout is documented in
//! `collectors/store/chunks.py`, whose numpy decoder is the reference this one must match bit
//! for bit: timestamps and integer values use wrapping 64-bit sums (as numpy's `cumsum`
//! does), XOR values are never converted, so NaN payloads survive.

use libdeflater::{DecompressionError, Decompressor};

pub const VERSION: u8 = 1;
const FLAG_WIDE: u8 = 1;
const FLAG_INTEGERS: u8 = 2;
/// DEFLATE cannot expand input more than 1032:1; a header claiming more samples than that
/// allows is corrupt, and this bound keeps a bad header from making us allocate gigabytes.
const MAX_DEFLATE_RATIO: usize = 1032;

/// A chunk's header, parsed; `body` is still compressed.
pub struct Header<'a> {
    pub n: usize,
    flags: u8,
    t0: i64,
    body: &'a [u8],
}

impl Header<'_> {
    fn width(&self) -> usize {
        if self.flags & FLAG_WIDE != 0 { 8 } else { 4 }
    }

    /// Inflated body length: timestamp planes then value planes.
    fn body_len(&self) -> usize {
        self.width() * (self.n - 1) + 8 * self.n
    }
}

fn read_varint(buf: &[u8], mut pos: usize) -> Result<(u64, usize), String> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        if pos >= buf.len() || shift > 63 {
            return Err("truncated varint in chunk header".into());
        }
        let byte = buf[pos];
        pos += 1;
        value |= u64::from(byte & 0x7F).checked_shl(shift).unwrap_or(0);
        if byte < 0x80 {
            return Ok((value, pos));
        }
        shift += 7;
    }
}

fn unzigzag(lane: u64) -> i64 {
    ((lane >> 1) ^ 0u64.wrapping_sub(lane & 1)) as i64
}

/// Version, flags, sample count and first timestamp of one chunk.
pub fn parse(blob: &[u8]) -> Result<Header<'_>, String> {
    if blob.len() < 4 || blob[0] != VERSION {
        return Err("not a version-1 chunk".into());
    }
    let flags = blob[1];
    let (n, pos) = read_varint(blob, 2)?;
    let (zt0, pos) = read_varint(blob, pos)?;
    if n == 0 {
        return Err("empty chunk".into());
    }
    let body = &blob[pos..];
    let limit = (body.len() * MAX_DEFLATE_RATIO + 64) / 8;
    if n > limit as u64 {
        return Err("chunk body length does not match its sample count".into());
    }
    Ok(Header {
        n: n as usize,
        flags,
        t0: unzigzag(zt0),
        body,
    })
}

/// Reusable state for decoding many chunks: the inflater and scratch buffers.
pub struct Decoder {
    inflater: Decompressor,
    body: Vec<u8>,
    lanes: Vec<u64>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            inflater: Decompressor::new(),
            body: Vec::new(),
            lanes: Vec::new(),
        }
    }
}

impl Decoder {
    /// Decode one chunk into `ts` and `bits` (both exactly `header.n` long).
    pub fn decode(
        &mut self,
        h: &Header<'_>,
        ts: &mut [i64],
        bits: &mut [u64],
    ) -> Result<(), String> {
        let want = h.body_len();
        // one spare byte: a body that inflates to more than `want` does not fit, and says so
        self.body.resize(want + 1, 0);
        let got = match self.inflater.deflate_decompress(h.body, &mut self.body) {
            Ok(got) => got,
            Err(DecompressionError::InsufficientSpace) => usize::MAX,
            Err(DecompressionError::BadData) => {
                return Err("corrupt chunk body: invalid DEFLATE data".into());
            }
        };
        if got != want {
            return Err("chunk body length does not match its sample count".into());
        }
        let (n, width) = (h.n, h.width());
        let (ts_planes, value_planes) = self.body[..want].split_at(width * (n - 1));
        ts[0] = h.t0;
        if n > 1 {
            merge_lanes(ts_planes, width, n - 1, &mut self.lanes);
            let (mut t, mut delta) = (h.t0, 0i64);
            for (out, &lane) in ts[1..].iter_mut().zip(&self.lanes) {
                delta = delta.wrapping_add(unzigzag(lane));
                t = t.wrapping_add(delta);
                *out = t;
            }
        }
        merge_lanes(value_planes, 8, n, &mut self.lanes);
        if h.flags & FLAG_INTEGERS != 0 {
            let mut acc = 0i64;
            for (out, &lane) in bits.iter_mut().zip(&self.lanes) {
                acc = acc.wrapping_add(unzigzag(lane));
                *out = (acc as f64).to_bits();
            }
        } else {
            let mut acc = 0u64;
            for (out, &lane) in bits.iter_mut().zip(&self.lanes) {
                acc ^= lane;
                *out = acc;
            }
        }
        Ok(())
    }
}

/// `width` byte planes of `count` big-endian lanes -> the lanes. Plane by plane, so each
/// pass is a straight loop the compiler vectorizes.
fn merge_lanes(planes: &[u8], width: usize, count: usize, lanes: &mut Vec<u64>) {
    lanes.clear();
    lanes.resize(count, 0);
    for plane in planes.chunks_exact(count).take(width) {
        for (lane, &byte) in lanes.iter_mut().zip(plane) {
            *lane = (*lane << 8) | u64::from(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_headers() {
        for (blob, msg) in [
            (&b""[..], "not a version-1 chunk"),
            (&b"\x02\x00\x01\x00"[..], "not a version-1 chunk"),
            (&b"\x01\x00\xff"[..], "not a version-1 chunk"),
            (&b"\x01\x00\xff\xff"[..], "truncated varint in chunk header"),
            (&b"\x01\x00\x00\x00"[..], "empty chunk"),
        ] {
            assert_eq!(parse(blob).err().as_deref(), Some(msg));
        }
    }

    #[test]
    fn refuses_absurd_sample_counts() {
        let blob = b"\x01\x00\xff\xff\xff\xff\x0f\x00\x03\x00";
        assert!(parse(blob).is_err());
    }
}
