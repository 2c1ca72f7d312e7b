//! RFC 8785 canonical JSON for records.
//!
//! The record is the `content` of a signed event, so its bytes must be reproducible: the
//! JSON Canonicalization Scheme (RFC 8785) sorts object members by UTF-16 code units, writes
//! numbers the way ECMAScript does, and escapes strings minimally. A record is accepted only
//! when its content is byte-for-byte the canonical form of what it parses to, so two
//! serialisations of one record cannot both verify.
//!
//! Before serialising, numbers are checked against I-JSON (RFC 7493): integers must lie in
//! +-(2^53 - 1) and numbers must be finite, because a JavaScript verifier would otherwise
//! read another value than the one that was signed.

use serde_json::Value;

use crate::record::Record;

/// The largest integer a JSON number may carry and still mean the same in JavaScript.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value could not be written as canonical JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number is outside the I-JSON range or not finite.
    #[error("number at {path} is outside the I-JSON range (at most 2^53 - 1 in magnitude)")]
    NumberOutOfRange {
        /// JSON path of the number, e.g. `$.sampling.seed`.
        path: String,
    },
    /// The value could not be serialised (a non-finite float, for instance).
    #[error("cannot serialise as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Serialises `record` as RFC 8785 canonical JSON.
pub fn to_canonical_json(record: &Record) -> Result<String, CanonicalError> {
    value_to_canonical(&serde_json::to_value(record)?)
}

/// Serialises any JSON value canonically, checking I-JSON numbers on the way.
///
/// Members are sorted by their names' UTF-16 code units, numbers are written as ECMAScript's
/// `Number.prototype.toString` writes them, and strings are escaped as `JSON.stringify` does
/// (the two-character escapes, `\u00xx` in lowercase hex for other controls, nothing else).
/// The `serde_jcs` crate serves as the reference implementation in the tests.
pub fn value_to_canonical(value: &Value) -> Result<String, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    let mut path = Vec::new();
    write(value, &mut out, &mut path)?;
    // Only whole UTF-8 strings and ASCII punctuation were written.
    Ok(String::from_utf8(out).expect("canonical JSON is UTF-8"))
}

/// One step of the path to the value being written, for error messages.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn write<'a>(
    value: &'a Value,
    out: &mut Vec<u8>,
    path: &mut Vec<Step<'a>>,
) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            write_number(n, out).ok_or_else(|| CanonicalError::NumberOutOfRange {
                path: render_path(path),
            })?
        }
        Value::String(s) => write_string(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                path.push(Step::Index(i));
                write(item, out, path)?;
                path.pop();
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 3.2.3: sort by UTF-16 code units. The map iterates in UTF-8 byte order,
            // which differs only when a name holds a character above U+FFFF.
            if members.iter().any(|(k, _)| !k.is_ascii()) {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out)?;
                out.push(b':');
                path.push(Step::Key(key));
                write(item, out, path)?;
                path.pop();
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes an I-JSON number as ECMAScript does; `None` if it is out of range or not finite.
fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Option<()> {
    if let Some(u) = n.as_u64() {
        (u <= MAX_SAFE_INTEGER)
            .then(|| out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()))
    } else if let Some(i) = n.as_i64() {
        (i.unsigned_abs() <= MAX_SAFE_INTEGER)
            .then(|| out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()))
    } else {
        let f = n.as_f64().filter(|f| f.is_finite())?;
        if f == 0.0 {
            // ECMAScript writes both zeros as "0".
            out.push(b'0');
        } else {
            out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
        Some(())
    }
}

/// Writes a JSON string with `JSON.stringify`'s escaping, which serde_json shares.
fn write_string(s: &str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    serde_json::to_writer(&mut *out, s)?;
    Ok(())
}

fn render_path(path: &[Step<'_>]) -> String {
    let mut s = String::from("$");
    for step in path {
        match step {
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::{Model, Output, Sampling};

    /// The reference: serde_jcs (after our own I-JSON check, which it does not make).
    fn reference(v: &Value) -> String {
        serde_jcs::to_string(v).unwrap()
    }

    #[test]
    fn equals_the_reference_implementation_on_edge_cases() {
        let floats = [
            0.1,
            0.5,
            1.5,
            -1.5,
            123.456,
            1e-7,
            1.5e-7,
            1e20,
            1e21,
            1.5e21,
            1e-6,
            5e-324,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            2.220446049250313e-16,
            0.3,
            1.0 / 3.0,
            9007199254740991.0,
            9007199254740993.0,
            4.35,
            100.0,
            -0.0,
            0.0,
        ];
        for f in floats {
            let v = json!({ "f": f, "a": [f, -f] });
            assert_eq!(value_to_canonical(&v).unwrap(), reference(&v), "{f:e}");
        }
        let strings = [
            "",
            "plain",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "\"quote\" \\ back/slash",
            "\u{8}\u{c}\n\r\t",
            "\u{2028}\u{2029}",
            "caf\u{e9} \u{1f600} \u{10ffff}",
            "</script>",
            "\u{fffd}\u{feff}",
        ];
        for text in strings {
            let v = json!({ text: text, "k": [text] });
            assert_eq!(value_to_canonical(&v).unwrap(), reference(&v), "{text:?}");
        }
        // Names ordered by UTF-16 code units: U+1F600 (a surrogate pair, 0xD83D...) sorts
        // before U+FFFD, although its UTF-8 bytes sort after.
        let v = json!({
            "\u{fffd}": 1, "\u{1f600}": 2, "a": 3, "B": 4, "\u{e9}": 5, "aa": 6, "": 7, "\u{ff}": 8
        });
        let ours = value_to_canonical(&v).unwrap();
        assert_eq!(ours, reference(&v));
        assert!(
            ours.find("\u{1f600}").unwrap() < ours.find("\u{fffd}").unwrap(),
            "{ours}"
        );
        let nested =
            json!({"z": {"y": [null, true, false, {"b": 1, "a": [[], {}]}]}, "i": -42, "u": 42});
        assert_eq!(value_to_canonical(&nested).unwrap(), reference(&nested));
    }

    #[test]
    fn equals_the_reference_implementation_on_generated_values() {
        // A fixed xorshift generator: reproducible, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let bits = next();
            let f = f64::from_bits(bits);
            let f = if f.is_finite() {
                f
            } else {
                (bits >> 11) as f64 / 1e3
            };
            let int = (next() % (2 * MAX_SAFE_INTEGER)) as i64 - MAX_SAFE_INTEGER as i64;
            let key: String = (0..(next() % 4))
                .filter_map(|_| char::from_u32((next() % 0x1_0000) as u32))
                .collect();
            let v = json!({ "f": f, "i": int, key.clone(): [f, int, key] });
            assert_eq!(value_to_canonical(&v).unwrap(), reference(&v), "{v}");
        }
    }

    #[test]
    fn keys_are_sorted_and_whitespace_free() {
        let r = Record::new(Output::from_text("hi"), Model::named("m"));
        let s = to_canonical_json(&r).unwrap();
        let h = crate::digest::sha256(b"hi");
        assert_eq!(
            s,
            format!(
                r#"{{"model":{{"name":"m"}},"output":{{"bytes":2,"mime":"text/plain; charset=utf-8","normalized":{{"rule":"nfc-ws-v1","sha256":"{h}"}},"sha256":"{h}"}},"v":1}}"#
            )
        );
    }

    #[test]
    fn numbers_follow_ecmascript() {
        let v: Value = serde_json::json!({"b": 1.0, "a": 1e21, "c": 0.1, "d": -0.0});
        assert_eq!(
            value_to_canonical(&v).unwrap(),
            r#"{"a":1e+21,"b":1,"c":0.1,"d":0}"#
        );
    }

    #[test]
    fn unsafe_integers_are_refused() {
        let mut r = Record::new(Output::from_text("hi"), Model::named("m"));
        r.sampling = Some(Sampling {
            seed: Some(1 << 53),
            ..Sampling::default()
        });
        let err = to_canonical_json(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "number at $.sampling.seed is outside the I-JSON range (at most 2^53 - 1 in magnitude)"
        );
        r.sampling = Some(Sampling {
            seed: Some(MAX_SAFE_INTEGER),
            ..Sampling::default()
        });
        assert!(to_canonical_json(&r).is_ok());
    }
}
