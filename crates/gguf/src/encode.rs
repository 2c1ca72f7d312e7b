//! GGUF's encoding of headers and values (it has no freedom, so a parsed header re-encodes
//! byte for byte). The library uses it to digest metadata arrays; the test writer
//! ([`crate::write`], feature `write`) and the fuzz round trip build files with it.

use crate::reader::{Array, Gguf, MetadataEntry, Value};
use crate::types::GgmlType;

/// Encodes everything before the tensor data of `gguf`: magic, version, counts, metadata,
/// tensor infos and the zero padding up to [`Gguf::data_offset`].
pub fn encode_header(gguf: &Gguf) -> Vec<u8> {
    let tensors = gguf.tensors.iter().map(|t| {
        (
            t.name.as_str(),
            t.dims.as_slice(),
            t.ggml_type,
            t.relative_offset,
        )
    });
    encode_parts(gguf.version, &gguf.metadata, tensors, gguf.alignment)
}

/// The header of a file with these parts, padded to `alignment`.
pub(crate) fn encode_parts<'a>(
    version: u32,
    metadata: &[MetadataEntry],
    tensors: impl ExactSizeIterator<Item = (&'a str, &'a [u64], GgmlType, u64)>,
    alignment: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for entry in metadata {
        encode_string(entry.key.as_bytes(), &mut out);
        encode_value(&entry.value, &mut out);
    }
    for (name, dims, ggml_type, offset) in tensors {
        encode_string(name.as_bytes(), &mut out);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for dim in dims {
            out.extend_from_slice(&dim.to_le_bytes());
        }
        out.extend_from_slice(&ggml_type.0.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    pad_to(&mut out, alignment);
    out
}

/// Appends a value's GGUF encoding: its type tag, then its payload.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
    encode_payload(value, out);
}

fn encode_payload(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(v) => encode_string(v, out),
        Value::Array(v) => encode_array(v, out),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// Appends an array's GGUF encoding: element type tag, `u64` count, elements.
pub fn encode_array(array: &Array, out: &mut Vec<u8>) {
    out.extend_from_slice(&(array.element_type() as u32).to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    macro_rules! each {
        ($values:expr) => {
            for v in $values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        };
    }
    match array {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each!(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => {
            for s in v.iter() {
                encode_string(s, out);
            }
        }
        Array::Array(v) => {
            for inner in v {
                encode_array(inner, out);
            }
        }
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
    }
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    let len = out.len() as u64;
    let padded = len.div_ceil(alignment) * alignment;
    out.resize(padded as usize, 0);
}
