//! A new series' identity on the write path: its canonical labels JSON, id, shard and the
//! constant prefix of its entry in the write argument, in one native call.
//!
//! Why: while 10,000 series were created, `fast_series_key` and the entry prefix
//! (`collectors/store/metrics_write.py`, `SampleWriter._learn`) cost ~9 us per series in
//! Python (sorting, joining, a dataclass, three `struct` packs). The reference is
//! `series_key` (`collectors/store/metrics_model.py`): the same bytes and id. Labels that
//! JSON would escape (quote, backslash, control characters) or that Python refuses (no
//! name, an empty or NUL label name) return `None`, and Python takes them.

use blake2::Blake2bVar;
use blake2::digest::{Update, VariableOutput};

/// The canonical JSON (`["__name__","m","a","1",...]`, sorted by label name, empty values
/// dropped) of `name` and `labels`, or `None` where Python decides.
pub fn canonical_json(name: &str, labels: &[(&str, &str)]) -> Option<Vec<u8>> {
    if name.is_empty() || needs_escape(name) {
        return None;
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    for &(key, value) in labels {
        if key.is_empty() || key.contains('\0') {
            return None;
        }
        if !value.is_empty() && key != "__name__" {
            if needs_escape(key) || needs_escape(value) {
                return None;
            }
            pairs.push((key, value));
        }
    }
    pairs.push(("__name__", name));
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0)); // keys are unique: they come from a dict
    let mut out = Vec::with_capacity(
        4 + pairs
            .iter()
            .map(|p| p.0.len() + p.1.len() + 6)
            .sum::<usize>(),
    );
    out.push(b'[');
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        for (j, piece) in [key, value].iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(piece.as_bytes());
            out.push(b'"');
        }
    }
    out.push(b']');
    Some(out)
}

/// What `json.dumps(ensure_ascii=False)` escapes: `"`, `\` and U+0000..U+001F.
fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The series id: a 63-bit blake2b (8-byte digest, big-endian, shifted right once).
pub fn series_number(canonical: &[u8]) -> u64 {
    let mut hasher = Blake2bVar::new(8).expect("8 is a valid blake2b digest size");
    hasher.update(canonical);
    let mut digest = [0u8; 8];
    hasher
        .finalize_variable(&mut digest)
        .expect("the buffer has the digest's size");
    u64::from_be_bytes(digest) >> 1
}

/// The entry prefix: `>H` id length, id, `>I` tenant length, tenant, `>I` labels length,
/// labels (see `WRITE_LUA`).
pub fn entry_prefix(id: &str, tenant: &str, canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + id.len() + tenant.len() + canonical.len());
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&(tenant.len() as u32).to_be_bytes());
    out.extend_from_slice(tenant.as_bytes());
    out.extend_from_slice(&(canonical.len() as u32).to_be_bytes());
    out.extend_from_slice(canonical);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_and_drops_empty_values() {
        let got = canonical_json("m", &[("job", "a"), ("env", ""), ("az", "x")]).unwrap();
        assert_eq!(got, br#"["__name__","m","az","x","job","a"]"#);
    }

    #[test]
    fn escapes_and_invalid_names_are_left_to_python() {
        assert!(canonical_json("m", &[("job", "a\"b")]).is_none());
        assert!(canonical_json("m", &[("job", "a\nb")]).is_none());
        assert!(canonical_json("", &[]).is_none());
        assert!(canonical_json("m", &[("", "v")]).is_none());
    }
}
