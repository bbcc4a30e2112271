//! Writing rows as newline-delimited JSON the way a BigQuery load reads them: one object per
//! line, a NULL left out, NUMERIC and BIGNUMERIC as strings (exact), BYTES in base64,
//! dates and times as BigQuery spells them, JSON inline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use baton_core::imports::{ImportColumn, Scalar};

/// What a value that cannot be loaded says: the column is added by the caller.
pub type Refusal = String;

/// One row being written: `{"a":1,"b":"x"}`.
#[derive(Debug)]
pub struct Rows {
    /// `"name":` of each column, escaped once.
    keys: Vec<Vec<u8>>,
    /// Whether the current row has a field written yet.
    open: bool,
}

impl Rows {
    pub fn new(columns: &[ImportColumn]) -> Self {
        let keys = columns
            .iter()
            .map(|c| {
                let mut key = Vec::with_capacity(c.name.len() + 3);
                string(&mut key, c.name.as_bytes());
                key.push(b':');
                key
            })
            .collect();
        Self { keys, open: false }
    }

    pub fn begin(&mut self, out: &mut Vec<u8>) {
        out.push(b'{');
        self.open = false;
    }

    /// Starts column `i`'s value; whether the row had a field before, for `retract`.
    pub fn key(&mut self, out: &mut Vec<u8>, i: usize) -> bool {
        let before = self.open;
        if before {
            out.push(b',');
        }
        self.open = true;
        out.extend_from_slice(&self.keys[i]);
        before
    }

    /// Forgets a key taken back from the output (a value that is NULL after all).
    pub fn retract(&mut self, before: bool) {
        self.open = before;
    }

    pub fn end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"}\n");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A JSON string of UTF-8 text (anything else is replaced, as BigQuery would refuse it).
pub fn string(out: &mut Vec<u8>, text: &[u8]) {
    match std::str::from_utf8(text) {
        Ok(_) => escaped(out, text),
        Err(_) => escaped(out, String::from_utf8_lossy(text).as_bytes()),
    }
}

fn escaped(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// Bytes as a base64 JSON string.
pub fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'"');
    let at = out.len();
    out.resize(at + data.len().div_ceil(3) * 4, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[at..])
        .expect("the buffer has room for the encoding");
    out.truncate(at + written);
    out.push(b'"');
}

/// `\x0102…` (PostgreSQL's hex form of bytea) as base64.
pub fn hex_bytes(out: &mut Vec<u8>, text: &[u8]) -> Result<(), Refusal> {
    let digits = text
        .strip_prefix(b"\\x")
        .ok_or("a bytea value not in hex form (set bytea_output = hex)")?;
    let decoded = hex::decode(digits).map_err(|e| format!("a bytea value does not read: {e}"))?;
    bytes(out, &decoded);
    Ok(())
}

/// A value written as the number or literal its text already is (an integer, a float).
pub fn raw(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
}

/// A value whose text is written as a JSON string with nothing to escape (a date, a time,
/// a decimal).
pub fn quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// A float: NaN and the infinities are strings to BigQuery.
pub fn float(out: &mut Vec<u8>, text: &[u8]) {
    match text {
        b"NaN" | b"nan" => out.extend_from_slice(b"\"NaN\""),
        b"Infinity" | b"inf" => out.extend_from_slice(b"\"Infinity\""),
        b"-Infinity" | b"-inf" => out.extend_from_slice(b"\"-Infinity\""),
        _ => out.extend_from_slice(text),
    }
}

/// A decimal, exact, as a string.
pub fn decimal(out: &mut Vec<u8>, text: &[u8]) -> Result<(), Refusal> {
    if text
        .iter()
        .any(|b| !(b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')))
    {
        return Err(format!(
            "the value `{}` is not a number BigQuery holds (NUMERIC has no NaN or infinity)",
            String::from_utf8_lossy(text)
        ));
    }
    quoted(out, text);
    Ok(())
}

/// JSON text inline, on one line (whitespace between tokens may hold newlines; inside
/// strings they are escaped already).
pub fn json(out: &mut Vec<u8>, text: &[u8]) -> Result<(), Refusal> {
    if text.is_empty() {
        return Err("an empty JSON value".into());
    }
    out.extend(text.iter().map(|&b| match b {
        b'\n' | b'\r' => b' ',
        other => other,
    }));
    Ok(())
}

/// A JSON array (PostgreSQL's `to_json` of an array) as a REPEATED field of `element`:
/// BigQuery holds neither NULL elements nor arrays of arrays.
pub fn array(out: &mut Vec<u8>, text: &[u8], element: Scalar) -> Result<(), Refusal> {
    let text = std::str::from_utf8(text).map_err(|_| "an array that is not UTF-8".to_string())?;
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)
        .map_err(|_| "a value that is not a one-dimensional array".to_string())?;
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let item = item.get();
        match item.as_bytes()[0] {
            b'n' => {
                return Err("an array with a NULL element, which BigQuery cannot hold: \
                            remove them in the import's SELECT (`array_remove(c, NULL) AS c`)"
                    .into());
            }
            b'[' => {
                return Err(
                    "a multidimensional array, which BigQuery cannot hold: select \
                            it as JSON (`to_json(c) AS c`)"
                        .into(),
                );
            }
            _ => {}
        }
        match element {
            Scalar::Numeric | Scalar::Bignumeric => {
                if item.starts_with('"') {
                    return Err(format!("the element {item} is not a number BigQuery holds"));
                }
                quoted(out, item.as_bytes());
            }
            Scalar::Bytes => {
                let text: String = serde_json::from_str(item)
                    .map_err(|_| "a bytea element that is not a string".to_string())?;
                hex_bytes(out, text.as_bytes())?;
            }
            _ => raw(out, item.as_bytes()),
        }
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_what_json_needs_and_keep_unicode() {
        let s = with(|o| string(o, "a\"b\\c\nd\te\u{1}é😀".as_bytes()));
        assert_eq!(s, r#""a\"b\\c\nd\te\u0001é😀""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\u{1}é😀");
    }

    #[test]
    fn bytes_floats_and_decimals_are_spelled_for_bigquery() {
        assert_eq!(with(|o| bytes(o, &[0, 1, 2, 255])), r#""AAEC/w==""#);
        assert_eq!(with(|o| hex_bytes(o, b"\\x0001ff").unwrap()), r#""AAH/""#);
        assert_eq!(with(|o| hex_bytes(o, b"\\x").unwrap()), r#""""#);
        assert_eq!(with(|o| float(o, b"NaN")), r#""NaN""#);
        assert_eq!(with(|o| float(o, b"-Infinity")), r#""-Infinity""#);
        assert_eq!(with(|o| float(o, b"1.5e-300")), "1.5e-300");
        assert_eq!(with(|o| decimal(o, b"-12.50").unwrap()), r#""-12.50""#);
        let mut out = Vec::new();
        assert!(decimal(&mut out, b"NaN").unwrap_err().contains("NaN"));
    }

    #[test]
    fn arrays_keep_their_elements_and_refuse_nulls_and_nesting() {
        let ints = with(|o| array(o, b"[1,2,3]", Scalar::Int64).unwrap());
        assert_eq!(ints, "[1,2,3]");
        let numerics = with(|o| array(o, b"[1.10, 2]", Scalar::Numeric).unwrap());
        assert_eq!(numerics, r#"["1.10","2"]"#);
        let blobs = with(|o| array(o, br#"["\\x00ff"]"#, Scalar::Bytes).unwrap());
        assert_eq!(blobs, r#"["AP8="]"#);
        assert_eq!(with(|o| array(o, b"[]", Scalar::String).unwrap()), "[]");
        let mut out = Vec::new();
        assert!(
            array(&mut out, b"[1,null]", Scalar::Int64)
                .unwrap_err()
                .contains("NULL")
        );
        assert!(
            array(&mut out, b"[[1],[2]]", Scalar::Int64)
                .unwrap_err()
                .contains("multidimensional")
        );
    }

    #[test]
    fn a_row_leaves_nulls_out() {
        let columns: Vec<ImportColumn> = ["id", "name"]
            .iter()
            .map(|n| ImportColumn {
                name: n.to_string(),
                source_type: "text".into(),
                bigquery_type: Scalar::String,
                repeated: false,
            })
            .collect();
        let mut rows = Rows::new(&columns);
        let mut out = Vec::new();
        rows.begin(&mut out);
        rows.key(&mut out, 1);
        string(&mut out, b"x");
        rows.end(&mut out);
        rows.begin(&mut out);
        rows.key(&mut out, 0);
        raw(&mut out, b"1");
        rows.key(&mut out, 1);
        string(&mut out, b"y");
        rows.end(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"name\":\"x\"}\n{\"id\":1,\"name\":\"y\"}\n"
        );
    }
}
