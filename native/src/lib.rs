//! `meshfed_native`: the chunk codec's hot loops and the remote_write request splitter of
//! meshfed's collectors, as a Python extension.
//!
//! Why it exists: a query over a million samples decodes thousands of chunks; in Python each
//! one costs a `zlib` call and numpy passes over small arrays, most of a query's time. Here
//! one call inflates and decodes every chunk with the GIL released, writing straight into
//! the `bytes` objects it returns, which numpy wraps without a copy. `collectors.store.chunks`
//! uses it when it is installed and falls back to its numpy decoder (same results) when not.

mod blocks;
mod codec;
mod encode;
mod identity;
mod labels;
mod pack;
mod remote_write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// Native 8-byte words of `items` as one `bytes` (numpy/array wrap it without parsing).
pub(crate) fn words<'py, T: Copy>(
    py: Python<'py>,
    items: &[T],
    to: fn(T) -> [u8; 8],
) -> Bound<'py, PyBytes> {
    let mut buf = Vec::with_capacity(8 * items.len());
    for &item in items {
        buf.extend_from_slice(&to(item));
    }
    PyBytes::new(py, &buf)
}

/// Decode chunks into (timestamps, value bits, sample counts), each a `bytes` of native
/// 8-byte integers: int64 timestamps, uint64 IEEE-754 bits, int64 counts, in `blobs` order.
/// Raises `ValueError` naming what is wrong with the first corrupt chunk.
#[pyfunction]
fn decode_many<'py>(
    py: Python<'py>,
    blobs: Vec<Bound<'py, PyBytes>>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
)> {
    let views: Vec<&[u8]> = blobs.iter().map(|b| b.as_bytes()).collect();
    let headers = views
        .iter()
        .map(|blob| codec::parse(blob))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PyValueError::new_err)?;
    let total: usize = headers.iter().map(|h| h.n).sum();
    let counts = PyBytes::new_with(py, 8 * headers.len(), |buf| {
        for (out, h) in buf.chunks_exact_mut(8).zip(&headers) {
            out.copy_from_slice(&(h.n as i64).to_ne_bytes());
        }
        Ok(())
    })?;
    let mut failure: Option<String> = None;
    let mut values: Option<Bound<'py, PyBytes>> = None;
    let timestamps = PyBytes::new_with(py, 8 * total, |ts_buf| {
        values = Some(PyBytes::new_with(py, 8 * total, |bit_buf| {
            // Both buffers are fresh objects nobody else can see yet: safe to fill unlocked.
            failure = py.detach(|| decode_into(&headers, ts_buf, bit_buf).err());
            Ok(())
        })?);
        Ok(())
    })?;
    if let Some(msg) = failure {
        return Err(PyValueError::new_err(msg));
    }
    Ok((timestamps, values.expect("set by the closure"), counts))
}

/// A chunk's flags and uncompressed body (timestamp planes, then value planes) for
/// `timestamps` and their big-endian value bytes; `None` where Python's encoder must judge
/// (see `encode::planes`). Python adds the header and deflates the body.
#[pyfunction]
fn chunk_planes<'py>(
    py: Python<'py>,
    timestamps: Vec<i64>,
    value_bytes: &Bound<'py, PyBytes>,
) -> Option<(u8, Bound<'py, PyBytes>)> {
    let (flags, body) = encode::planes(&timestamps, value_bytes.as_bytes())?;
    Some((flags, PyBytes::new(py, &body)))
}

/// (shard, the write script's argument) per call.
type ShardCalls<'py> = Vec<(usize, Bound<'py, PyBytes>)>;

/// The write script's argument per shard call for a batch of distinct series (see
/// `pack::pack`): a list of (shard, bytes), or `None` when a series has several runs
/// (`infos` repeats a series id) or a run's timestamps are not strictly increasing (Python
/// merges, sorts and de-duplicates those). `infos` is the writer's (series id, shard,
/// prefix) per run, read here rather than unzipped into three lists in Python. Raises
/// `ValueError` for columns that do not fit together, `OverflowError` for a timestamp
/// beyond int64.
#[pyfunction]
fn pack_series<'py>(
    py: Python<'py>,
    infos: Vec<(Bound<'py, PyString>, usize, Bound<'py, PyBytes>)>,
    offsets: Vec<usize>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    nshards: usize,
    per_call: usize,
) -> PyResult<Option<ShardCalls<'py>>> {
    let ids: Vec<&str> = infos
        .iter()
        .map(|(id, _, _)| id.to_str())
        .collect::<PyResult<_>>()?;
    if pack::repeats(&ids) {
        return Ok(None);
    }
    let views: Vec<&[u8]> = infos.iter().map(|(_, _, p)| p.as_bytes()).collect();
    let shards: Vec<usize> = infos.iter().map(|(_, shard, _)| *shard).collect();
    let calls = pack::pack(
        &views,
        &shards,
        &offsets,
        &timestamps,
        &values,
        nshards,
        per_call,
    )
    .map_err(PyValueError::new_err)?;
    Ok(calls.map(|calls| {
        calls
            .into_iter()
            .map(|c| (c.shard, PyBytes::new(py, &c.blob)))
            .collect()
    }))
}

/// Chunks per thread below which another thread costs more than it saves.
const MIN_CHUNKS_PER_THREAD: usize = 512;
/// At most this many threads: a query should not take every core of a busy server.
const MAX_THREADS: usize = 4;

/// Decode every chunk into the two output buffers, split over a few threads (each one a
/// contiguous run of chunks and so of output). The error reported is the first corrupt
/// chunk's in `headers` order, as a single thread would find it.
fn decode_into(
    headers: &[codec::Header<'_>],
    ts_buf: &mut [u8],
    bit_buf: &mut [u8],
) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .min(MAX_THREADS)
        .min(headers.len() / MIN_CHUNKS_PER_THREAD)
        .max(1);
    if threads == 1 {
        return decode_run(headers, ts_buf, bit_buf);
    }
    let total: usize = headers.iter().map(|h| h.n).sum();
    let mut runs: Vec<(&[codec::Header<'_>], &mut [u8], &mut [u8])> = Vec::new();
    let (mut rest, mut ts_rest, mut bit_rest) = (headers, ts_buf, bit_buf);
    for t in (1..=threads).rev() {
        // about an equal share of the remaining samples for each remaining thread
        let share = (total - runs.iter().map(|r| r.1.len() / 8).sum::<usize>()).div_ceil(t);
        let (mut count, mut samples) = (0usize, 0usize);
        while count < rest.len() && (samples < share || t == 1) {
            samples += rest[count].n;
            count += 1;
        }
        let (run, next) = rest.split_at(count);
        let (ts_run, ts_next) = std::mem::take(&mut ts_rest).split_at_mut(8 * samples);
        let (bit_run, bit_next) = std::mem::take(&mut bit_rest).split_at_mut(8 * samples);
        runs.push((run, ts_run, bit_run));
        (rest, ts_rest, bit_rest) = (next, ts_next, bit_next);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(run, ts, bits)| scope.spawn(move || decode_run(run, ts, bits)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a decoding thread panicked"))
    })
}

fn decode_run(
    headers: &[codec::Header<'_>],
    ts_buf: &mut [u8],
    bit_buf: &mut [u8],
) -> Result<(), String> {
    let mut decoder = codec::Decoder::default();
    let (mut ts, mut bits) = (Vec::new(), Vec::new());
    let mut at = 0usize;
    for h in headers {
        ts.resize(h.n, 0i64);
        bits.resize(h.n, 0u64);
        decoder.decode(h, &mut ts, &mut bits)?;
        let span = at..at + 8 * h.n;
        for (out, t) in ts_buf[span.clone()].chunks_exact_mut(8).zip(&ts) {
            out.copy_from_slice(&t.to_ne_bytes());
        }
        for (out, b) in bit_buf[span].chunks_exact_mut(8).zip(&bits) {
            out.copy_from_slice(&b.to_ne_bytes());
        }
        at += 8 * h.n;
    }
    Ok(())
}

/// (series id, shard, entry prefix) of the series `name{labels}` (`identity`); `None` where
/// Python's `series_key` must decide (escapes, invalid names, strings that are not UTF-8).
#[pyfunction]
fn series_entry<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyDict>,
    shards: u64,
    tenant_label: &str,
) -> PyResult<Option<(String, u64, Bound<'py, PyBytes>)>> {
    if shards == 0 {
        return Err(PyValueError::new_err("shards must be > 0"));
    }
    let Ok(name) = name
        .cast::<PyString>()
        .map_err(PyErr::from)
        .and_then(|s| s.to_str())
    else {
        return Ok(None);
    };
    let mut owned: Vec<(Bound<'py, PyString>, Bound<'py, PyString>)> =
        Vec::with_capacity(labels.len());
    for (key, value) in labels.iter() {
        match (key.cast_into::<PyString>(), value.cast_into::<PyString>()) {
            (Ok(k), Ok(v)) => owned.push((k, v)),
            _ => return Ok(None),
        }
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(owned.len());
    let mut tenant = "";
    for (k, v) in &owned {
        let (Ok(key), Ok(value)) = (k.to_str(), v.to_str()) else {
            return Ok(None);
        };
        if key == tenant_label {
            tenant = value;
        }
        pairs.push((key, value));
    }
    let Some(canonical) = identity::canonical_json(name, &pairs) else {
        return Ok(None);
    };
    let number = identity::series_number(&canonical);
    let id = number.to_string();
    let prefix = identity::entry_prefix(&id, tenant, &canonical);
    Ok(Some((id, number % shards, PyBytes::new(py, &prefix))))
}

#[pymodule]
fn meshfed_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_many, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_planes, m)?)?;
    m.add_function(wrap_pyfunction!(pack_series, m)?)?;
    m.add_function(wrap_pyfunction!(series_entry, m)?)?;
    m.add_class::<blocks::LabelBlocks>()?;
    Ok(())
}
