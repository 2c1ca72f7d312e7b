//! The compact JSON writer behind `--json`: serde_json's bytes, with strings escaped by
//! [`provenance::json`].

use provenance::json;
use serde::Serialize;

use self::map_key::MapKey;

mod map_key;

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

#[cfg(test)]
mod tests;
