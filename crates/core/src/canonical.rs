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

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::Value;

use crate::json;
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
///
/// The record is written straight from its fields; whatever that writer declines (a number
/// out of range, a kind of value no record holds) is written the longer way, through a
/// [`Value`] and [`value_to_canonical`], which gives the same bytes and names the path of a
/// bad number. The tests hold the two ways to the same output.
pub fn to_canonical_json(record: &Record) -> Result<String, CanonicalError> {
    match direct(record) {
        Some(json) => Ok(json),
        None => value_to_canonical(&serde_json::to_value(record)?),
    }
}

/// `value` in canonical JSON written by [`Direct`], or `None` where it declines.
fn direct<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut out = Vec::with_capacity(512);
    let mut writer = Direct {
        out: &mut out,
        scratch: Vec::with_capacity(512),
        lists: Vec::with_capacity(4),
    };
    value.serialize(&mut writer).ok()?;
    // Only whole UTF-8 strings and ASCII punctuation were written.
    Some(String::from_utf8(out).expect("canonical JSON is UTF-8"))
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
        Value::String(s) => json::write_str(out, s),
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
            // RFC 8785 3.2.3: sort by UTF-16 code units. The map usually iterates in UTF-8
            // byte order, which is the same for ASCII names; but not when a name holds a
            // character above U+FFFF, nor in insertion order, which serde_json's
            // `preserve_order` feature gives (any crate in a build can turn it on).
            let sorted =
                members.iter().all(|(k, _)| k.is_ascii()) && members.is_sorted_by(|a, b| a.0 < b.0);
            if !sorted {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_str(out, key);
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
        write_finite(n.as_f64().filter(|f| f.is_finite())?, out);
        Some(())
    }
}

/// Writes a finite number as ECMAScript's `Number.prototype.toString` does.
fn write_finite(f: f64, out: &mut Vec<u8>) {
    if f == 0.0 {
        // ECMAScript writes both zeros as "0".
        out.push(b'0');
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
    }
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

/// A serde serializer that writes canonical JSON straight from a value's fields, without
/// building a [`Value`]: the members of an object are written as they come and put in order
/// when the object ends. It declines ([`Declined`]) whatever it could not write exactly as
/// [`value_to_canonical`] writes `serde_json::to_value` of the same value: a number outside
/// I-JSON, a non-finite float (which `to_value` turns into `null`), 32-bit floats, 128-bit
/// integers, chars, bytes, enum variants with data, map keys that are not strings and repeated
/// member names. The caller then takes the [`Value`] way.
struct Direct<'a> {
    out: &'a mut Vec<u8>,
    /// Where an object's member values are moved while its members are put in order.
    scratch: Vec<u8>,
    /// Member lists of finished objects, for reuse by the next ones.
    lists: Vec<Vec<Member>>,
}

/// A member of an object being written: its name, and where its value's text lies in the
/// output.
type Member = (Cow<'static, str>, std::ops::Range<usize>);

/// The [`Direct`] writer declined a value; see there.
#[derive(Debug)]
struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value not written directly")
    }
}

impl std::error::Error for Declined {}

impl ser::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self
    }
}

/// Small integers are written as the 64-bit ones they widen to.
macro_rules! widen {
    ($($method:ident($small:ty) => $wide:ident;)*) => {$(
        fn $method(self, v: $small) -> Result<(), Declined> {
            self.$wide(v.into())
        }
    )*};
}

impl<'b, 'a> ser::Serializer for &'b mut Direct<'a> {
    type Ok = ();
    type Error = Declined;
    type SerializeSeq = Array<'b, 'a>;
    type SerializeTuple = Array<'b, 'a>;
    type SerializeTupleStruct = Array<'b, 'a>;
    type SerializeTupleVariant = Impossible<(), Declined>;
    type SerializeMap = Object<'b, 'a>;
    type SerializeStruct = Object<'b, 'a>;
    type SerializeStructVariant = Impossible<(), Declined>;

    fn serialize_bool(self, v: bool) -> Result<(), Declined> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    widen! {
        serialize_i8(i8) => serialize_i64;
        serialize_i16(i16) => serialize_i64;
        serialize_i32(i32) => serialize_i64;
        serialize_u8(u8) => serialize_u64;
        serialize_u16(u16) => serialize_u64;
        serialize_u32(u32) => serialize_u64;
    }

    fn serialize_i64(self, v: i64) -> Result<(), Declined> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(Declined);
        }
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Declined> {
        if v > MAX_SAFE_INTEGER {
            return Err(Declined);
        }
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }

    fn serialize_f32(self, _: f32) -> Result<(), Declined> {
        Err(Declined)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Declined> {
        if !v.is_finite() {
            return Err(Declined);
        }
        write_finite(v, self.out);
        Ok(())
    }

    fn serialize_char(self, _: char) -> Result<(), Declined> {
        Err(Declined)
    }

    fn serialize_str(self, v: &str) -> Result<(), Declined> {
        json::write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Declined> {
        Err(Declined)
    }

    fn serialize_none(self) -> Result<(), Declined> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Declined> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Declined> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Declined> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Declined> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Declined> {
        Err(Declined)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'b, 'a>, Declined> {
        self.out.push(b'[');
        Ok(Array {
            w: self,
            first: true,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Array<'b, 'a>, Declined> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Array<'b, 'a>, Declined> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Declined> {
        Err(Declined)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Object<'b, 'a>, Declined> {
        let members = self
            .lists
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(len.unwrap_or(8)));
        Ok(Object {
            start: self.out.len(),
            w: self,
            members,
            key: None,
        })
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Object<'b, 'a>, Declined> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Declined> {
        Err(Declined)
    }

    fn collect_str<T: ?Sized + fmt::Display>(self, value: &T) -> Result<(), Declined> {
        // Written in place (digests, as hex); escaped afterwards only if it needs it.
        struct Raw<'v>(&'v mut Vec<u8>);
        impl fmt::Write for Raw<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0.extend_from_slice(s.as_bytes());
                Ok(())
            }
        }
        let start = self.out.len() + 1;
        self.out.push(b'"');
        fmt::write(&mut Raw(self.out), format_args!("{value}")).map_err(|_| Declined)?;
        if !json::needs_escape(&self.out[start..]) {
            self.out.push(b'"');
        } else {
            let raw = self.out.split_off(start - 1);
            // `raw` is a quote followed by whole UTF-8 strings.
            let text = std::str::from_utf8(&raw[1..]).map_err(|_| Declined)?;
            json::write_str(self.out, text);
        }
        Ok(())
    }
}

/// An array being written by [`Direct`].
struct Array<'b, 'a> {
    w: &'b mut Direct<'a>,
    first: bool,
}

impl Array<'_, '_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Declined> {
        if !std::mem::take(&mut self.first) {
            self.w.out.push(b',');
        }
        value.serialize(&mut *self.w)
    }

    fn close(self) -> Result<(), Declined> {
        self.w.out.push(b']');
        Ok(())
    }
}

/// serde's three array-like traits, all writing an [`Array`].
macro_rules! array_impls {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Array<'_, '_> {
            type Ok = ();
            type Error = Declined;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Declined> {
                self.element(value)
            }

            fn end(self) -> Result<(), Declined> {
                self.close()
            }
        }
    )*};
}

array_impls!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// An object being written by [`Direct`]: member values go to the output as they come (from
/// `start` on), and [`Object::close`] rewrites that stretch with the names, in order.
struct Object<'b, 'a> {
    w: &'b mut Direct<'a>,
    start: usize,
    members: Vec<Member>,
    /// The name given by `serialize_key`, waiting for its value.
    key: Option<String>,
}

impl Object<'_, '_> {
    fn member<T: ?Sized + Serialize>(
        &mut self,
        name: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Declined> {
        let from = self.w.out.len();
        value.serialize(&mut *self.w)?;
        self.members.push((name, from..self.w.out.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), Declined> {
        // The order `value_to_canonical` writes: a map's (UTF-8 byte) order, then UTF-16 code
        // units when a name is not ASCII. A name given twice would be one member in a map.
        self.members
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if self.members.windows(2).any(|p| p[0].0 == p[1].0) {
            return Err(Declined);
        }
        if self.members.iter().any(|(name, _)| !name.is_ascii()) {
            self.members
                .sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        }
        let mut values = std::mem::take(&mut self.w.scratch);
        values.clear();
        values.extend_from_slice(&self.w.out[self.start..]);
        let out = &mut *self.w.out;
        out.truncate(self.start);
        out.reserve(values.len() + 8 * self.members.len() + 2);
        out.push(b'{');
        for (i, (name, range)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, name);
            out.push(b':');
            out.extend_from_slice(&values[range.start - self.start..range.end - self.start]);
        }
        out.push(b'}');
        self.w.scratch = values;
        self.members.clear();
        self.w.lists.push(self.members);
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Declined> {
        // Map keys that are strings are taken; others are declined.
        match serde_json::to_value(key) {
            Ok(Value::String(name)) => {
                self.key = Some(name);
                Ok(())
            }
            _ => Err(Declined),
        }
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Declined> {
        let name = self.key.take().ok_or(Declined)?;
        self.member(Cow::Owned(name), value)
    }

    fn end(self) -> Result<(), Declined> {
        self.close()
    }
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Declined> {
        self.member(Cow::Borrowed(key), value)
    }

    fn end(self) -> Result<(), Declined> {
        self.close()
    }
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

    /// `v` canonical by way of the value, after checking that the direct writer agrees.
    fn both(v: &Value) -> String {
        let by_value = value_to_canonical(v).unwrap();
        assert_eq!(direct(v).as_deref(), Some(by_value.as_str()), "{v}");
        by_value
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
            assert_eq!(both(&v), reference(&v), "{f:e}");
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
            assert_eq!(both(&v), reference(&v), "{text:?}");
        }
        // Names ordered by UTF-16 code units: U+1F600 (a surrogate pair, 0xD83D...) sorts
        // before U+FFFD, although its UTF-8 bytes sort after.
        let v = json!({
            "\u{fffd}": 1, "\u{1f600}": 2, "a": 3, "B": 4, "\u{e9}": 5, "aa": 6, "": 7, "\u{ff}": 8
        });
        let ours = both(&v);
        assert_eq!(ours, reference(&v));
        assert!(
            ours.find("\u{1f600}").unwrap() < ours.find("\u{fffd}").unwrap(),
            "{ours}"
        );
        let nested =
            json!({"z": {"y": [null, true, false, {"b": 1, "a": [[], {}]}]}, "i": -42, "u": 42});
        assert_eq!(both(&nested), reference(&nested));
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
            assert_eq!(both(&v), reference(&v), "{v}");
        }
    }

    /// Every field of a record filled, with names and strings that need care.
    fn full_record() -> Record {
        let mut r = Record::new(
            Output::from_text("caf\u{e9}\n\"quoted\" \u{1f600}")
                .with_text("caf\u{e9}\n\"quoted\" \u{1f600}")
                .with_fingerprints("one two three four five six seven eight nine ten"),
            Model {
                sha256: Some(crate::digest::sha256(b"weights")),
                blake3: Some("11".repeat(32).parse().unwrap()),
                tensor_root: Some("22".repeat(32).parse().unwrap()),
                bytes: Some(1 << 40),
                architecture: Some("llama".into()),
                quantization: Some("Q4_K_M".into()),
                parameters: Some(270_000_000),
                tokenizer_sha256: Some(crate::digest::sha256(b"tokenizer")),
                chat_template_sha256: Some(crate::digest::sha256(b"template")),
                ..Model::named("gemma3:270m \u{0}\u{1f}\\")
            },
        );
        r.output.finish_reason = Some("stop".into());
        r.output.tokens = Some(12);
        r.output.truncated = true;
        r.prompt = Some(crate::record::PromptCommitment {
            scheme: "sha256-salted-v1".into(),
            format: "openai.messages".into(),
            commitment: crate::digest::sha256(b"prompt"),
            tokens: Some(7),
        });
        r.runtime = Some(crate::record::Runtime {
            engine: "llama.cpp".into(),
            version: Some("b4000".into()),
            binary_sha256: Some(crate::digest::sha256(b"binary")),
            params: serde_json::from_value(json!({
                "threads": 8, "flash_attn": false, "ratio": 0.1, "neg": -42, "none": null,
                "\u{fffd}": "replacement", "\u{1f600}": "astral", "nested": {"b": [1.5e21, [], {}], "a": "x"}
            }))
            .unwrap(),
        });
        r.sampling = Some(Sampling {
            seed: Some(MAX_SAFE_INTEGER),
            temperature: Some(0.7),
            top_k: Some(40),
            top_p: Some(0.95),
            min_p: Some(0.0),
            repeat_penalty: Some(1.1),
            presence_penalty: Some(-0.0),
            frequency_penalty: Some(1e-7),
            max_tokens: Some(256),
            samplers: vec!["top_k".into(), "temperature".into()],
            extra: serde_json::from_value(json!({"mirostat": 0, "z": "\u{7f}"})).unwrap(),
        });
        r.request = Some(crate::record::Request {
            api: "openai.chat".into(),
            sha256: Some(crate::digest::sha256(b"request")),
            caller: Some("ab".repeat(32)),
        });
        r.response = Some(crate::record::Response {
            sha256: crate::digest::sha256(b"response"),
            bytes: 1234,
            streamed: true,
        });
        r.time = Some(crate::record::Times {
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_000_500,
        });
        r.attestations = vec![crate::record::AttestationRef {
            kind: "sev-snp".into(),
            sha256: crate::digest::sha256(b"report"),
            uri: Some("https://example.com/r?a=1&b=\"2\"".into()),
        }];
        r
    }

    #[test]
    fn records_are_written_directly_as_by_way_of_a_value() {
        let minimal = Record::new(
            Output::from_bytes(b"\xff", "application/octet-stream"),
            Model::named("m"),
        );
        for r in [full_record(), minimal] {
            let by_value = value_to_canonical(&serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(direct(&r).as_deref(), Some(by_value.as_str()));
            assert_eq!(to_canonical_json(&r).unwrap(), by_value);
            assert_eq!(by_value, reference(&serde_json::to_value(&r).unwrap()));
        }
    }

    #[test]
    fn what_the_direct_writer_declines_goes_by_way_of_a_value() {
        // A non-finite float becomes `null` in a value; the direct writer leaves it to that way.
        let mut r = full_record();
        r.sampling.as_mut().unwrap().temperature = Some(f64::NAN);
        assert_eq!(direct(&r), None);
        let by_value = value_to_canonical(&serde_json::to_value(&r).unwrap()).unwrap();
        assert!(by_value.contains(r#""temperature":null"#), "{by_value}");
        assert_eq!(to_canonical_json(&r).unwrap(), by_value);
        // Numbers out of range are declined (and refused with their path, below).
        for v in [
            json!(1u64 << 53),
            json!(-(1i64 << 53)),
            json!([1, {"a": 1u64 << 60}]),
        ] {
            assert_eq!(direct(&v), None, "{v}");
        }
        for v in [json!((1u64 << 53) - 1), json!(-((1i64 << 53) - 1))] {
            both(&v);
        }
        // Map keys that are not strings, repeated names, data-carrying variants.
        let ints: std::collections::BTreeMap<u8, u8> = [(1, 2)].into();
        assert_eq!(direct(&ints), None);
        assert_eq!(direct(&[('c', 1.5f32)]), None);
        assert_eq!(direct(&Some(Err::<(), u8>(1))), None);
        assert_eq!(
            direct(&(Some(1u8), (), "t")).as_deref(),
            Some(r#"[1,null,"t"]"#)
        );
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
