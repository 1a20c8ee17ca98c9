//! A remote_write label block's labels, validated natively when they are plainly valid.
//!
//! Why: while 10,000 series were created, validating each new block in Python
//! (`_label_pairs` and `_series_labels` in
//! `collectors/receivers/prometheus/protocol/remote_write.py`) cost ~8 us per series. This
//! accepts exactly the blocks those accept without an error: `Label` messages (name field
//! 1, then value field 2, each optional) with UTF-8 strings, names strictly increasing,
//! label names `[a-zA-Z_][a-zA-Z0-9_]*`, a non-empty `__name__` matching
//! `[a-zA-Z_:][a-zA-Z0-9_:]*`; empty values are dropped. Anything else returns `None` and
//! Python decides (it raises the error the sender gets, or reads another field layout).

use crate::remote_write::uvarint;

const FIELD_1: u8 = 0x0A;
const FIELD_2: u8 = 0x12;

/// (metric name, labels without `__name__` and without empty values, in block order).
pub type Labels<'a> = (&'a str, Vec<(&'a str, &'a str)>);

pub fn plain_labels(block: &[u8]) -> Option<Labels<'_>> {
    let mut pos = 0;
    let mut name: Option<&str> = None;
    let mut labels = Vec::new();
    let mut previous: Option<&str> = None;
    while pos < block.len() {
        let label = field(block, &mut pos, FIELD_1)?;
        let mut at = 0;
        let mut pieces = [&b""[..]; 2];
        for (piece, tag) in pieces.iter_mut().zip([FIELD_1, FIELD_2]) {
            if label.get(at) == Some(&tag) {
                *piece = field(label, &mut at, tag)?;
            }
        }
        if at != label.len() {
            return None;
        }
        let key = std::str::from_utf8(pieces[0]).ok()?;
        let value = std::str::from_utf8(pieces[1]).ok()?;
        if previous.is_some_and(|p| key <= p) {
            return None; // unsorted or duplicate: Python says which
        }
        previous = Some(key);
        if key == "__name__" {
            name = Some(value);
        } else if !is_name(key, false) {
            return None;
        } else if !value.is_empty() {
            labels.push((key, value));
        }
    }
    let name = name.filter(|n| is_name(n, true))?;
    Some((name, labels))
}

/// The bytes of the length-delimited field `tag` at `*pos`, advancing `*pos`.
fn field<'a>(b: &'a [u8], pos: &mut usize, tag: u8) -> Option<&'a [u8]> {
    if *b.get(*pos)? != tag {
        return None;
    }
    *pos += 1;
    let len = usize::try_from(uvarint(b, pos)?).ok()?;
    let end = pos.checked_add(len).filter(|&e| e <= b.len())?;
    let out = &b[*pos..end];
    *pos = end;
    Some(out)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, with `:` allowed too for a metric name.
fn is_name(s: &str, metric: bool) -> bool {
    let ok = |c: u8, first: bool| {
        c.is_ascii_alphabetic()
            || c == b'_'
            || (metric && c == b':')
            || (!first && c.is_ascii_digit())
    };
    let b = s.as_bytes();
    !b.is_empty() && ok(b[0], true) && b[1..].iter().all(|&c| ok(c, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> Vec<u8> {
        let mut inner = vec![FIELD_1, name.len() as u8];
        inner.extend(name.as_bytes());
        inner.extend([FIELD_2, value.len() as u8]);
        inner.extend(value.as_bytes());
        let mut out = vec![FIELD_1, inner.len() as u8];
        out.extend(inner);
        out
    }

    #[test]
    fn valid_block() {
        let block = [label("__name__", "up"), label("env", ""), label("job", "a")].concat();
        assert_eq!(plain_labels(&block), Some(("up", vec![("job", "a")])));
    }

    #[test]
    fn python_decides_invalid_blocks() {
        for block in [
            [label("job", "a"), label("__name__", "up")].concat(), // unsorted
            [
                label("__name__", "up"),
                label("job", "a"),
                label("job", "b"),
            ]
            .concat(),
            [label("__name__", "1up")].concat(),
            [label("__name__", "up"), label("a-b", "x")].concat(),
            [label("job", "a")].concat(), // no name
            [label("__name__", "")].concat(),
            vec![FIELD_1, 5, FIELD_1, 1],
        ] {
            assert_eq!(plain_labels(&block), None, "{block:?}");
        }
    }
}
