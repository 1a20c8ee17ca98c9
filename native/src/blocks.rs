//! `LabelBlocks`: the remote_write decoder's cache of validated label blocks, on the native
//! side.
//!
//! Why: with the request split natively (`remote_write::parse`), what Python still paid per
//! series was a `bytes` object for each label block and a dictionary look-up by those
//! bytes, about half of the decoding cost. Blocks that Python has validated are kept here
//! with the series object Python made of them. A request whose blocks are all known comes
//! back as its list of series objects directly. A new block that is plainly valid
//! (`labels`) is validated and learnt here, its series object made by the factory Python
//! gave; only requests with a block that is not still hand Python their blocks (it
//! validates them, raising the sender's error, and calls `learn`).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::labels;
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
/// `factory(name, labels)` makes the series object of a block validated here (`labels`).
#[pyclass(frozen, module = "meshfed_native")]
pub struct LabelBlocks {
    known: Mutex<HashMap<Vec<u8>, Py<PyAny>>>,
    max: usize,
    factory: Py<PyAny>,
}

#[pymethods]
impl LabelBlocks {
    #[new]
    fn new(max: usize, factory: Py<PyAny>) -> Self {
        Self {
            known: Mutex::new(HashMap::new()),
            max,
            factory,
        }
    }

    /// Split uncompressed `WriteRequest` bytes (GIL released while parsing); `None` when
    /// the body is outside the common layout.
    fn split<'py>(&self, py: Python<'py>, data: &Bound<'py, PyBytes>) -> Option<Split<'py>> {
        let view: &[u8] = data.as_bytes();
        let parsed = py.detach(|| remote_write::parse(view))?;
        let mut refs = self.refs(py, &parsed);
        if refs.is_none() && self.learn_plain(py, &parsed.blocks) {
            refs = self.refs(py, &parsed);
        }
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
    /// Learns every unknown block of a request that is plainly valid (`labels`), with its
    /// series object from `factory`; whether all were (else Python validates the rest, and
    /// raises for the invalid ones). Nothing is learnt when caching is off (`max` 0).
    fn learn_plain(&self, py: Python<'_>, blocks: &[&[u8]]) -> bool {
        if self.max == 0 {
            return false;
        }
        let mut all = true;
        for block in blocks {
            if self
                .known
                .lock()
                .expect("only taken with the GIL held")
                .contains_key(*block)
            {
                continue;
            }
            let Some((name, pairs)) = labels::plain_labels(block) else {
                all = false;
                continue;
            };
            let labels = PyDict::new(py);
            let made = pairs
                .iter()
                .try_for_each(|(k, v)| labels.set_item(k, v))
                .and_then(|()| self.factory.call1(py, (name, labels)));
            let Ok(series) = made else {
                return false;
            };
            let mut known = self.known.lock().expect("only taken with the GIL held");
            if known.len() >= self.max {
                known.clear();
            }
            known.insert(block.to_vec(), series);
        }
        all
    }

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
