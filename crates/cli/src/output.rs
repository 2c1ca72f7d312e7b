//! Writing results: human text or JSON Lines, and the exit status.
//!
//! With `--json`, every line on stdout is one message `{"type": ..., "data": ...}`; a command
//! that checks things ends with a `summary` message. The schema is `schemas/cli-output.json`.
//! Without `--json`, stdout carries results for people and stderr carries diagnostics, each
//! line starting with `provenance: `.

use std::io::{self, Write};
use std::process::ExitCode;

use provenance::json;
use serde::Serialize;

// Exit status 0: everything checked held (the default of `Status`).
/// Exit status: finished, and at least one claim failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status: an error (usage, unusable input, I/O, relays unreachable). Errors win.
pub(crate) const EXIT_ERROR: u8 = 2;

/// The text appended to `--help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
EXIT STATUS:
    0  everything that was checked holds
    1  finished, and at least one claim failed (a bad signature, a hash mismatch, ...)
    2  an error: bad usage, unusable input (malformed JSON, a bad nevent), I/O or relay errors
       (errors win over failed claims)";

/// Accumulates the exit status of a run: errors win over failures, failures over success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status(u8);

impl Status {
    pub(crate) fn failed(&mut self) {
        self.0 = self.0.max(EXIT_FAILED);
    }

    pub(crate) fn error(&mut self) {
        self.0 = EXIT_ERROR;
    }

    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self.0)
    }
}

/// How many bytes of short texts [`Out::lines`] gathers into one write; longer texts are
/// written directly.
const LINES_BUFFER: usize = 64 << 10;

/// Where results go.
pub(crate) struct Out {
    json: bool,
    stdout: io::StdoutLock<'static>,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            stdout: io::stdout().lock(),
        }
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Writes one JSON Lines message (only in `--json` mode; a no-op otherwise).
    pub(crate) fn message<T: Serialize>(&mut self, kind: &str, data: &T) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        #[derive(Serialize)]
        struct Envelope<'a, T> {
            #[serde(rename = "type")]
            kind: &'a str,
            data: &'a T,
        }
        serde_json::to_writer(&mut self.stdout, &Envelope { kind, data })?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Writes a line for people (only without `--json`).
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        self.stdout.write_all(text.as_bytes())?;
        self.stdout.write_all(b"\n")
    }

    /// Writes texts of whole lines (each ending in a newline) regardless of mode, then
    /// flushes: a large text in one write of its own, small ones gathered.
    pub(crate) fn lines<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let mut writer = io::BufWriter::with_capacity(LINES_BUFFER, &mut self.stdout);
        for text in texts {
            writer.write_all(text.as_bytes())?;
        }
        writer.flush()?;
        drop(writer);
        self.stdout.flush()
    }

    /// Writes raw text regardless of mode (the event JSON of `sign`).
    pub(crate) fn raw(&mut self, text: &str) -> io::Result<()> {
        self.stdout.write_all(text.as_bytes())?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }
}

/// Prints a diagnostic on stderr. A closed stderr is ignored (`eprintln!` would panic), so a
/// long-running command is never stopped by its own warnings.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(io::stderr(), "provenance: {message}");
}

/// Appends `value` as compact JSON to `out`: the bytes `serde_json::to_writer` writes, faster.
///
/// `--json` verdicts are mostly strings that need no escaping (hex ids, digests, claim
/// details), and serde_json looks each byte up in its escape table; [`Compact`] escapes with
/// [`provenance::json`], which checks eight bytes at a time and copies a plain string whole.
/// Anything it does not write itself (byte strings, 128-bit integers, maps with non-string
/// keys, serde_json's private raw-value and number tokens) makes it give up, and serde_json
/// writes the whole value instead, so the output is always serde_json's.
pub(crate) fn write_json<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    let start = out.len();
    if value.serialize(Compact(out)).is_ok() {
        return;
    }
    out.truncate(start);
    // Only values that serialise are written (strings, numbers, maps with string keys).
    let text = serde_json::to_string(value).expect("JSON messages serialise");
    out.push_str(&text);
}

/// The compact JSON writer of [`write_json`].
struct Compact<'a>(&'a mut String);

/// Why [`Compact`] gave up: the value needs serde_json itself.
#[derive(Debug)]
struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Unsupported {}

impl serde::ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

/// Appends `bytes` as lowercase hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Appends the decimal digits of `n`.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // A digit, below 10.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Names of serde_json's private tokens ("$serde_json::private::RawValue", ...): values it
/// writes specially, left to it.
fn private_to_serde_json(name: &str) -> bool {
    name.starts_with('$')
}

impl<'a> serde::Serializer for Compact<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Seq<'a>;
    type SerializeStruct = Seq<'a>;
    type SerializeStructVariant = Seq<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        if v < 0 {
            self.0.push('-');
        }
        push_u64(self.0, v.unsigned_abs());
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        push_u64(self.0, v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        // serde_json's own float formatting (and `null` for non-finite values).
        self.0
            .push_str(&serde_json::to_string(&v).map_err(|_| Unsupported)?);
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.0
            .push_str(&serde_json::to_string(&v).map_err(|_| Unsupported)?);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        json::push_str(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        json::push_str(self.0, v);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.0.push_str("null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if private_to_serde_json(name) {
            return Err(Unsupported);
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.0.push('{');
        json::push_str(self.0, variant);
        self.0.push(':');
        value.serialize(Compact(&mut *self.0))?;
        self.0.push('}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Unsupported> {
        self.0.push('[');
        Ok(Seq::new(self.0, "]"))
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unsupported> {
        self.0.push('{');
        json::push_str(self.0, variant);
        self.0.push_str(":[");
        Ok(Seq::new(self.0, "]}"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Seq<'a>, Unsupported> {
        self.0.push('{');
        Ok(Seq::new(self.0, "}"))
    }

    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Seq<'a>, Unsupported> {
        if private_to_serde_json(name) {
            return Err(Unsupported);
        }
        self.serialize_map(None)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unsupported> {
        self.0.push('{');
        json::push_str(self.0, variant);
        self.0.push_str(":{");
        Ok(Seq::new(self.0, "}}"))
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        /// Escapes what `Display` writes as it comes, as serde_json does.
        struct Escaping<'b>(&'b mut String);
        impl std::fmt::Write for Escaping<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                json::push_str_contents(self.0, s);
                Ok(())
            }
        }
        use std::fmt::Write as _;
        self.0.push('"');
        write!(Escaping(&mut *self.0), "{value}").map_err(|_| Unsupported)?;
        self.0.push('"');
        Ok(())
    }
}

/// An array, object or variant being written: its closing text, and whether an element came.
struct Seq<'a> {
    out: &'a mut String,
    close: &'static str,
    first: bool,
}

impl<'a> Seq<'a> {
    fn new(out: &'a mut String, close: &'static str) -> Self {
        Self {
            out,
            close,
            first: true,
        }
    }

    fn comma(&mut self) {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(Compact(&mut *self.out))
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Unsupported> {
        self.comma();
        json::push_str(self.out, key);
        self.out.push(':');
        value.serialize(Compact(&mut *self.out))
    }

    fn end(self) -> Result<(), Unsupported> {
        self.out.push_str(self.close);
        Ok(())
    }
}

/// The element-by-element compounds: arrays, tuples, tuple structs and tuple variants.
macro_rules! elements {
    ($($compound:ident :: $method:ident),*) => {$(
        impl serde::ser::$compound for Seq<'_> {
            type Ok = ();
            type Error = Unsupported;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.element(value)
            }

            fn end(self) -> Result<(), Unsupported> {
                Seq::end(self)
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl serde::ser::SerializeMap for Seq<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.comma();
        key.serialize(MapKey(&mut *self.out))?;
        self.out.push(':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(Compact(&mut *self.out))
    }

    fn end(self) -> Result<(), Unsupported> {
        Seq::end(self)
    }
}

/// The field-by-field compounds: structs and struct variants.
macro_rules! fields {
    ($($compound:ident),*) => {$(
        impl serde::ser::$compound for Seq<'_> {
            type Ok = ();
            type Error = Unsupported;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Unsupported> {
                Seq::end(self)
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map key: strings only; any other key is left to serde_json (which quotes numbers).
struct MapKey<'a>(&'a mut String);

impl serde::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = serde::ser::Impossible<(), Unsupported>;
    type SerializeTuple = serde::ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = serde::ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = serde::ser::Impossible<(), Unsupported>;
    type SerializeMap = serde::ser::Impossible<(), Unsupported>;
    type SerializeStruct = serde::ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = serde::ser::Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        json::push_str(self.0, v);
        Ok(())
    }

    fn serialize_bool(self, _: bool) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i8(self, _: i8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i16(self, _: i16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i32(self, _: i32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i64(self, _: i64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u8(self, _: u8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u16(self, _: u16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u32(self, _: u32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u64(self, _: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_char(self, _: char) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// [`write_json`] against serde_json itself.
    fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
        let mut ours = String::from("prefix ");
        write_json(&mut ours, value);
        let theirs = format!("prefix {}", serde_json::to_string(value).unwrap());
        assert_eq!(ours, theirs);
    }

    #[test]
    fn every_string_is_escaped_as_serde_json_escapes_it() {
        // Every ASCII byte and a few multi-byte characters, at every offset in an eight-byte
        // word, alone and between plain text.
        let mut specials: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        specials.extend(["é", "😀", "\u{2028}", "\u{7f}", "\u{80}", "\u{ff}"].map(String::from));
        for special in &specials {
            for pad in 0..17 {
                let plain = "a".repeat(pad);
                same_as_serde_json(&format!("{plain}{special}"));
                same_as_serde_json(&format!("{special}{plain}"));
                same_as_serde_json(&format!("{plain}{special}{plain}{special}x"));
            }
        }
        let all: String = (0u8..128).map(char::from).collect();
        same_as_serde_json(&all);
        same_as_serde_json("");
        same_as_serde_json(&'\n');
        same_as_serde_json(&'"');
    }

    #[test]
    fn every_kind_of_value_is_written_as_serde_json_writes_it() {
        #[derive(Serialize)]
        enum Variant {
            Unit,
            Newtype(u8),
            Tuple(u8, &'static str),
            Struct { a: i32 },
        }
        #[derive(Serialize)]
        struct Unit;
        #[derive(Serialize)]
        struct Newtype(&'static str);
        #[derive(Serialize)]
        struct Everything {
            #[serde(rename = "type")]
            kind: &'static str,
            yes: bool,
            no: bool,
            small: i8,
            negative: i64,
            min: i64,
            max: u64,
            zero: u32,
            float: f64,
            third: f32,
            infinite: f64,
            none: Option<u8>,
            some: Option<&'static str>,
            unit: (),
            unit_struct: Unit,
            newtype: Newtype,
            empty: Vec<u8>,
            seq: Vec<Option<u16>>,
            tuple: (u8, char, &'static str),
            map: BTreeMap<String, serde_json::Value>,
            empty_map: BTreeMap<String, u8>,
            variants: Vec<Variant>,
            display: std::net::Ipv4Addr,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
        }
        same_as_serde_json(&Everything {
            kind: "verdict",
            yes: true,
            no: false,
            small: -7,
            negative: -1234567890123,
            min: i64::MIN,
            max: u64::MAX,
            zero: 0,
            float: 0.8,
            third: 1.0 / 3.0,
            infinite: f64::INFINITY,
            none: None,
            some: Some("tab\there"),
            unit: (),
            unit_struct: Unit,
            newtype: Newtype("new\"type"),
            empty: vec![],
            seq: vec![Some(1), None, Some(65535)],
            tuple: (1, '\u{1}', "x"),
            map: serde_json::from_str(
                r#"{"a\nb":1,"c":[true,null,1.5,-2,"s"],"d":{"e":{}},"f":18446744073709551615}"#,
            )
            .unwrap(),
            empty_map: BTreeMap::new(),
            variants: vec![
                Variant::Unit,
                Variant::Newtype(3),
                Variant::Tuple(4, "five"),
                Variant::Struct { a: -6 },
            ],
            display: std::net::Ipv4Addr::new(127, 0, 0, 1),
            skipped: None,
        });
    }

    #[test]
    fn what_the_compact_writer_leaves_alone_is_written_by_serde_json() {
        // Byte strings, 128-bit integers, non-string map keys, raw JSON values.
        same_as_serde_json(&serde_bytes_like(b"\x00\x01"));
        same_as_serde_json(&(u128::MAX, i128::MIN));
        same_as_serde_json(&BTreeMap::from([(1u8, "one"), (2, "two")]));
        same_as_serde_json(&BTreeMap::from([(true, 1u8)]));
        let raw = serde_json::value::RawValue::from_string("{ \"spaced\" : 1 }".into()).unwrap();
        same_as_serde_json(&vec![raw]);
        same_as_serde_json(&serde_json::json!({"a": [1, {"b": null}]}));
    }

    /// A value serialised with `serialize_bytes`.
    fn serde_bytes_like(bytes: &'static [u8]) -> impl Serialize {
        struct Bytes(&'static [u8]);
        impl Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }
}
