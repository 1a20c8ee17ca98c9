//! `LabelBlocks`: the remote_write decoder's cache of validated label blocks, on the native
//! side.
//!
//! Why: with the request split natively (`remote_write::parse`), what Python still paid per
//! series was a `bytes` object for each label block and a dictionary look-up by those
//! bytes, about half of the decoding cost. Blocks that Python has validated are kept here
//! with the series object Python made of them. A request whose blocks are all known comes
//! back as its list of series objects directly, and only requests that carry a new block
//! still hand Python their blocks (it validates them and calls `learn`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::remote_write::{self, Parsed};

/// A split request: (series objects per run, or `None` when a block is unknown; the
/// distinct blocks when one is unknown, else empty; run block indexes, offsets, timestamps,
/// values as native 8-byte words; series count; has metadata).
type Split<'py> = (
    Option<Bound<'py, PyList>>,
    Vec<Bound<'py, PyBytes>>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    usize,
    bool,
);

/// Validated label blocks and their series objects, at most `max` (cleared when full).
#[pyclass(frozen, module = "meshfed_native")]
pub struct LabelBlocks {
    known: Mutex<HashMap<Vec<u8>, Py<PyAny>>>,
    max: usize,
}

#[pymethods]
impl LabelBlocks {
    #[new]
    fn new(max: usize) -> Self {
        Self {
            known: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Split uncompressed `WriteRequest` bytes (GIL released while parsing); `None` when
    /// the body is outside the common layout.
    fn split<'py>(&self, py: Python<'py>, data: &Bound<'py, PyBytes>) -> Option<Split<'py>> {
        let view: &[u8] = data.as_bytes();
        let parsed = py.detach(|| remote_write::parse(view))?;
        let refs = self.refs(py, &parsed);
        let blocks = match refs {
            Some(_) => Vec::new(),
            None => parsed.blocks.iter().map(|b| PyBytes::new(py, b)).collect(),
        };
        let runs: Vec<i64> = parsed.run_block.iter().map(|&i| i64::from(i)).collect();
        Some((
            refs,
            blocks,
            crate::words(py, &runs, i64::to_ne_bytes),
            crate::words(py, &parsed.offsets, i64::to_ne_bytes),
            crate::words(py, &parsed.timestamps, i64::to_ne_bytes),
            crate::words(py, &parsed.values, f64::to_ne_bytes),
            parsed.series,
            parsed.has_metadata,
        ))
    }

    /// Remember `series` as what the validated `block` means.
    fn learn(&self, block: &Bound<'_, PyBytes>, series: Py<PyAny>) {
        if self.max == 0 {
            return;
        }
        let mut known = self.known.lock().expect("only taken with the GIL held");
        if known.len() >= self.max {
            known.clear();
        }
        known.insert(block.as_bytes().to_vec(), series);
    }

    /// The series object of a validated `block`, if it is known.
    fn get(&self, py: Python<'_>, block: &Bound<'_, PyBytes>) -> Option<Py<PyAny>> {
        let known = self.known.lock().expect("only taken with the GIL held");
        known
            .get(block.as_bytes())
            .map(|series| series.clone_ref(py))
    }

    fn __len__(&self) -> usize {
        self.known
            .lock()
            .expect("only taken with the GIL held")
            .len()
    }
}

impl LabelBlocks {
    /// The series object of every run, when every distinct block is known (Python must
    /// validate the others, also those of series without samples) and no object serves
    /// two runs (Python orders such samples itself).
    fn refs<'py>(&self, py: Python<'py>, parsed: &Parsed<'_>) -> Option<Bound<'py, PyList>> {
        let known = self.known.lock().expect("only taken with the GIL held");
        let by_block: Vec<&Py<PyAny>> = parsed
            .blocks
            .iter()
            .map(|b| known.get(*b))
            .collect::<Option<_>>()?;
        let mut seen = HashSet::with_capacity(parsed.run_block.len());
        let mut out = Vec::with_capacity(parsed.run_block.len());
        for &i in &parsed.run_block {
            let series = by_block[i as usize];
            if !seen.insert(series.as_ptr()) {
                return None;
            }
            out.push(series.bind(py));
        }
        PyList::new(py, out).ok()
    }
}
