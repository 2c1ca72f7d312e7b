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

/// Serialises any JSON value canonically, after the I-JSON number check.
pub fn value_to_canonical(value: &Value) -> Result<String, CanonicalError> {
    check_numbers(value, &mut String::from("$"))?;
    // serde_jcs sorts keys by UTF-16 code units and formats numbers per RFC 8785.
    Ok(serde_jcs::to_string(value)?)
}

fn check_numbers(value: &Value, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => {
            let ok = if let Some(u) = n.as_u64() {
                u <= MAX_SAFE_INTEGER
            } else if let Some(i) = n.as_i64() {
                i.unsigned_abs() <= MAX_SAFE_INTEGER
            } else {
                n.as_f64().is_some_and(f64::is_finite)
            };
            if ok {
                Ok(())
            } else {
                Err(CanonicalError::NumberOutOfRange { path: path.clone() })
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Model, Output, Sampling};

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
