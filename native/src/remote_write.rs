//! The common layout of a Prometheus remote_write 1.0 `WriteRequest`, read in one pass.
//!
//! Why: per series, Python pays for byte reads, dictionary look-ups and list appends that
//! dominate the receiver's decoding cost. Here the whole request is split into series,
//! grouped by the raw bytes of their label block (the key Python caches validated labels
//! by), and the samples are read into flat columns. Anything outside the layout every
//! Prometheus writes (labels, then samples of `value` then `timestamp`, one-byte lengths
//! inside a series; top-level fields other than timeseries and metadata; truncation)
//! gives `None` and Python decodes that body its own way, with the same errors as before.

use foldhash::HashMap;
use foldhash::HashMapExt;

const TIMESERIES_TAG: u8 = 0x0A; // WriteRequest.timeseries: field 1, length-delimited
const METADATA_TAG: u8 = 0x1A; // WriteRequest.metadata: field 3, length-delimited
const LABELS_TAG: u8 = 0x0A; // TimeSeries.labels: field 1, length-delimited
const SAMPLES_TAG: u8 = 0x12; // TimeSeries.samples: field 2, length-delimited
const VALUE_TAG: u8 = 0x09; // Sample.value: field 1, fixed64
const TIMESTAMP_TAG: u8 = 0x10; // Sample.timestamp: field 2, varint

/// One request in columns. Runs are per distinct label block, in order of the first
/// series of that block that has samples; `blocks` holds every distinct block (also
/// those of series without samples, which Python must still validate) in order of
/// first appearance.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed<'a> {
    pub blocks: Vec<&'a [u8]>,
    pub run_block: Vec<u32>,
    pub offsets: Vec<i64>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    pub series: usize,
    pub has_metadata: bool,
}

/// A uvarint at `*pos` (at most 10 bytes, no overflow), advancing `*pos`.
pub(crate) fn uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut result: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        result |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(result);
        }
    }
    None
}

/// A signed int64 from exactly one varint filling `raw`.
fn exact_varint(raw: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let v = uvarint(raw, &mut pos)?;
    (pos == raw.len()).then_some(v as i64)
}

/// Split `data` (uncompressed `WriteRequest` protobuf) or `None` for the slow path.
///
/// Samples are read straight into the output columns in series order, with each series'
/// span; only a request that repeats a label block (rare: Prometheus sends a series once
/// per request) is regrouped so that a block's samples form one run. No allocation per
/// series: at 2,000 one-sample series per request, the per-series vectors and their
/// regrouping were most of this function's time.
pub fn parse(data: &[u8]) -> Option<Parsed<'_>> {
    let mut out = Parsed::default();
    let guess = data.len() / 64; // series, roughly: sized once instead of grown by doubling
    let mut block_index: HashMap<&[u8], u32> = HashMap::with_capacity(guess);
    let mut spans: Vec<(u32, usize, usize)> = Vec::with_capacity(guess); // block, samples
    out.blocks.reserve(guess);
    out.timestamps.reserve(guess);
    out.values.reserve(guess);
    let mut repeated = false;
    let mut pos = 0usize;
    while pos < data.len() {
        let tag = data[pos];
        pos += 1;
        let len = usize::try_from(uvarint(data, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|&e| e <= data.len())?;
        match tag {
            TIMESERIES_TAG => {
                let start = out.timestamps.len();
                let block = series(&data[pos..end], &mut out.timestamps, &mut out.values)?;
                out.series += 1;
                let next = u32::try_from(out.blocks.len()).ok()?;
                let idx = *block_index.entry(block).or_insert_with(|| {
                    out.blocks.push(block);
                    next
                });
                repeated |= idx != next;
                if out.timestamps.len() > start {
                    spans.push((idx, start, out.timestamps.len()));
                }
            }
            METADATA_TAG => out.has_metadata = true,
            _ => return None,
        }
        pos = end;
    }
    out.offsets.push(0);
    if !repeated {
        for &(idx, _, end) in &spans {
            out.run_block.push(idx);
            out.offsets.push(end as i64);
        }
        return Some(out);
    }
    // A block in several series: its samples, in series order, become one run, placed
    // where the first of those series (with samples) was.
    let mut by_block: Vec<Vec<(usize, usize)>> = vec![Vec::new(); out.blocks.len()];
    for &(idx, start, end) in &spans {
        if by_block[idx as usize].is_empty() {
            out.run_block.push(idx);
        }
        by_block[idx as usize].push((start, end));
    }
    let (timestamps, values) = (
        std::mem::take(&mut out.timestamps),
        std::mem::take(&mut out.values),
    );
    for &idx in &out.run_block {
        for &(start, end) in &by_block[idx as usize] {
            out.timestamps.extend_from_slice(&timestamps[start..end]);
            out.values.extend_from_slice(&values[start..end]);
        }
        out.offsets.push(out.timestamps.len() as i64);
    }
    Some(out)
}

/// One `TimeSeries`: its label block (its samples appended to `ts` and `vs`), or `None`
/// outside the common layout.
fn series<'a>(b: &'a [u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Option<&'a [u8]> {
    let end = b.len();
    let mut pos = 0usize;
    while pos < end && b[pos] == LABELS_TAG {
        if pos + 1 >= end || b[pos + 1] & 0x80 != 0 {
            return None;
        }
        pos += 2 + usize::from(b[pos + 1]);
    }
    if pos > end {
        return None;
    }
    let block = &b[..pos];
    while pos < end {
        if b[pos] != SAMPLES_TAG || pos + 1 >= end || b[pos + 1] & 0x80 != 0 {
            return None;
        }
        let mut p = pos + 2;
        let stop = p + usize::from(b[pos + 1]);
        if stop > end {
            return None;
        }
        let mut value = 0.0;
        if p < stop && b[p] == VALUE_TAG {
            if p + 9 > stop {
                return None;
            }
            value = f64::from_le_bytes(b[p + 1..p + 9].try_into().ok()?);
            p += 9;
        }
        let mut stamp = 0;
        if p < stop {
            if b[p] != TIMESTAMP_TAG {
                return None;
            }
            stamp = exact_varint(&b[p + 1..stop])?;
        }
        ts.push(stamp);
        vs.push(value);
        pos = stop;
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> Vec<u8> {
        let mut inner = vec![0x0A, name.len() as u8];
        inner.extend(name.as_bytes());
        inner.extend([0x12, value.len() as u8]);
        inner.extend(value.as_bytes());
        let mut out = vec![LABELS_TAG, inner.len() as u8];
        out.extend(inner);
        out
    }

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn sample(value: f64, ts: i64) -> Vec<u8> {
        let mut inner = vec![VALUE_TAG];
        inner.extend(value.to_le_bytes());
        inner.push(TIMESTAMP_TAG);
        inner.extend(varint(ts as u64));
        let mut out = vec![SAMPLES_TAG, inner.len() as u8];
        out.extend(inner);
        out
    }

    fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend(varint(body.len() as u64));
        out.extend(body);
        out
    }

    #[test]
    fn groups_repeated_series_and_keeps_order() {
        let a = label("__name__", "up");
        let b = label("__name__", "down");
        let mut req = Vec::new();
        for (lab, v, t) in [(&a, 1.0, 10), (&b, f64::NAN, -5), (&a, 2.0, i64::MAX)] {
            let mut s = lab.clone();
            s.extend(sample(v, t));
            req.extend(wrap(TIMESERIES_TAG, &s));
        }
        req.extend(wrap(TIMESERIES_TAG, &label("__name__", "empty")));
        req.extend(wrap(METADATA_TAG, b""));
        let p = parse(&req).expect("common layout");
        assert_eq!(p.series, 4);
        assert_eq!(p.blocks.len(), 3);
        assert_eq!(p.run_block, vec![0, 1]);
        assert_eq!(p.offsets, vec![0, 2, 3]);
        assert_eq!(p.timestamps, vec![10, i64::MAX, -5]);
        assert_eq!(p.values[..2], [1.0, 2.0]);
        assert!(p.values[2].is_nan());
        assert!(p.has_metadata);
    }

    #[test]
    fn slow_path_for_other_layouts_and_truncation() {
        let mut s = label("__name__", "up");
        s.extend(sample(1.0, 1));
        let good = wrap(TIMESERIES_TAG, &s);
        assert!(parse(&good).is_some());
        assert!(parse(&good[..good.len() - 1]).is_none(), "truncated");
        let mut exemplar = s.clone();
        exemplar.extend([0x1A, 0x00]);
        assert!(
            parse(&wrap(TIMESERIES_TAG, &exemplar)).is_none(),
            "exemplar"
        );
        let mut late_labels = sample(1.0, 1);
        late_labels.extend(label("__name__", "up"));
        assert!(
            parse(&wrap(TIMESERIES_TAG, &late_labels)).is_none(),
            "labels after samples"
        );
        assert!(parse(&wrap(0x22, b"")).is_none(), "unknown top-level field");
        assert_eq!(parse(b"").map(|p| p.series), Some(0));
    }
}
