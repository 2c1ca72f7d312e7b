//! The GGUF fixtures checked in under `fixtures/gguf/`, generated here so that a test can check
//! the files are up to date (`cargo run -p provenance-gguf --example gguf-gen -- fixtures`
//! rewrites them).
//!
//! `valid/` holds tiny models; `invalid/` holds one file per way of being malformed, named
//! after the [`ParseError`](crate::ParseError) variant it must produce (`count_too_large-array`
//! must fail with `CountTooLarge`).

use crate::reader::{Array, StringArray, Value};
use crate::types::GgmlType;
use crate::write::{GgufBuilder, TensorData, TinyLlama, tiny_llama};

/// One generated file.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Path relative to `fixtures/gguf/`.
    pub path: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
}

/// Every fixture, valid ones first.
pub fn all() -> Vec<Fixture> {
    let mut out = vec![
        fixture(
            "valid/tiny-llama-f16.gguf",
            tiny_llama(&TinyLlama::default()).build(),
        ),
        fixture(
            "valid/tiny-llama-q8_0-v2.gguf",
            tiny_llama(&TinyLlama {
                seed: 2,
                weight_type: GgmlType::Q8_0,
                version: 2,
                alignment: Some(64),
                chat_template: false,
                ..TinyLlama::default()
            })
            .build(),
        ),
        fixture("valid/all-value-types.gguf", all_value_types().build()),
    ];
    out.extend(invalid());
    out
}

fn fixture(path: &'static str, bytes: Vec<u8>) -> Fixture {
    Fixture { path, bytes }
}

/// Metadata of every value type, arrays of every element type, nested and empty arrays, and
/// unusual but valid tensors (no dimensions, no elements, out of name order).
fn all_value_types() -> GgufBuilder {
    let mut b = GgufBuilder::new();
    let strings: StringArray = ["", "a", "\u{2581}hello", "<0x0A>", "日本語"]
        .iter()
        .collect();
    b.metadata_str("general.architecture", "test")
        .metadata("general.alignment", Value::U32(16))
        .metadata("u8", Value::U8(0xfe))
        .metadata("i8", Value::I8(-2))
        .metadata("u16", Value::U16(0xfffe))
        .metadata("i16", Value::I16(-2))
        .metadata("u32", Value::U32(0xffff_fffe))
        .metadata("i32", Value::I32(-2))
        .metadata("f32", Value::F32(-1.5))
        .metadata("bool", Value::Bool(true))
        .metadata_str("string", "")
        .metadata("u64", Value::U64(u64::MAX - 1))
        .metadata("i64", Value::I64(i64::MIN))
        .metadata("f64", Value::F64(f64::MAX))
        .metadata("array.u8", Value::Array(Array::U8(vec![0, 1, 255])))
        .metadata("array.i8", Value::Array(Array::I8(vec![-128, 127])))
        .metadata("array.u16", Value::Array(Array::U16(vec![1, 65535])))
        .metadata("array.i16", Value::Array(Array::I16(vec![-32768, 32767])))
        .metadata("array.u32", Value::Array(Array::U32(vec![7])))
        .metadata("array.i32", Value::Array(Array::I32(vec![-7, 7])))
        .metadata("array.f32", Value::Array(Array::F32(vec![0.5, -0.0])))
        .metadata("array.bool", Value::Array(Array::Bool(vec![true, false])))
        .metadata("array.string", Value::Array(Array::String(strings)))
        .metadata("array.u64", Value::Array(Array::U64(vec![u64::MAX])))
        .metadata("array.i64", Value::Array(Array::I64(vec![i64::MIN, -1])))
        .metadata("array.f64", Value::Array(Array::F64(vec![1e300])))
        .metadata("array.empty", Value::Array(Array::F32(vec![])))
        .metadata(
            "array.nested",
            Value::Array(Array::Array(vec![
                Array::U8(vec![1, 2]),
                Array::String(["x"].iter().collect()),
                Array::Array(vec![Array::I64(vec![3]), Array::Array(vec![])]),
            ])),
        );
    b.tensor("z.last_by_name", GgmlType::F32, &[2, 2], bytes(16, 1))
        .tensor("scalar", GgmlType::F32, &[], bytes(4, 2))
        .tensor("empty", GgmlType::F16, &[0, 3], bytes(0, 3))
        .tensor("a.q8_0", GgmlType::Q8_0, &[64, 2], bytes(136, 4))
        .tensor("a.q4_k", GgmlType::Q4_K, &[256], bytes(144, 5))
        .tensor("a.bf16", GgmlType::BF16, &[3], bytes(6, 6));
    b
}

fn bytes(len: usize, seed: u64) -> TensorData {
    let mut data = vec![0; len];
    super::SplitMix64::new(seed).fill(&mut data);
    TensorData::Bytes(data)
}

/// A minimal valid file whose byte layout the patches below rely on: the tensor count at 8, the
/// metadata count at 16, the key `flag` at 77..81, its type tag at 81 and its bool at 85.
fn minimal() -> GgufBuilder {
    let mut b = GgufBuilder::new();
    b.metadata_str("general.architecture", "llama")
        .metadata("flag", Value::Bool(true))
        .tensor("a", GgmlType::F32, &[4], bytes(16, 1))
        .tensor("b", GgmlType::F32, &[4], bytes(16, 2));
    b
}

fn patched(offset: usize, patch: &[u8]) -> Vec<u8> {
    let mut file = minimal().build();
    file[offset..offset + patch.len()].copy_from_slice(patch);
    file
}

/// `minimal` with tensor `b` at another relative offset (its offset field is the file's last
/// header field before the padding).
fn b_at(relative_offset: u64) -> Vec<u8> {
    let file = minimal().build();
    // `minimal` is a valid file by construction, which the fixtures test checks.
    let mut gguf = crate::Gguf::parse(&file).unwrap_or_else(|e| panic!("minimal fixture: {e}"));
    gguf.tensors[1].relative_offset = relative_offset;
    let mut out = super::encode_header(&gguf);
    out.extend_from_slice(&file[gguf.data_offset as usize..]);
    out
}

fn with(edit: impl FnOnce(&mut GgufBuilder)) -> Vec<u8> {
    let mut b = minimal();
    edit(&mut b);
    b.build()
}

fn nested(depth: usize) -> Array {
    if depth == 1 {
        Array::U8(vec![1])
    } else {
        Array::Array(vec![nested(depth - 1)])
    }
}

fn invalid() -> Vec<Fixture> {
    let mut truncated_data = minimal().build();
    truncated_data.truncate(truncated_data.len() - 8);
    let mut truncated_header = minimal().build();
    truncated_header.truncate(100);
    vec![
        fixture(
            "invalid/bad_alignment.gguf",
            with(|b| {
                b.metadata("general.alignment", Value::U32(3));
            }),
        ),
        fixture(
            "invalid/bad_alignment_type.gguf",
            with(|b| {
                b.metadata("general.alignment", Value::U64(32));
            }),
        ),
        fixture("invalid/bad_magic.gguf", patched(0, b"GGML")),
        fixture("invalid/big_endian.gguf", patched(4, &3u32.to_be_bytes())),
        fixture(
            "invalid/count_too_large-array.gguf",
            with(|b| {
                b.metadata("array", Value::Array(Array::U32(vec![1, 2, 3])));
            })
            .into_iter()
            .enumerate()
            .map(|(i, byte)| {
                // The count of the array, which is the last metadata entry: after key (8 + 5)
                // and tags (4 + 4), at 86 + 13 + 8 = 107.
                if (107..115).contains(&i) {
                    (1u64 << 40).to_le_bytes()[i - 107]
                } else {
                    byte
                }
            })
            .collect(),
        ),
        fixture(
            "invalid/count_too_large-tensors.gguf",
            patched(8, &100_000u64.to_le_bytes()),
        ),
        fixture(
            "invalid/duplicate_key.gguf",
            with(|b| {
                b.metadata("flag", Value::Bool(false));
            }),
        ),
        fixture(
            "invalid/duplicate_tensor.gguf",
            with(|b| {
                b.tensor("a", GgmlType::F32, &[1], bytes(4, 3));
            }),
        ),
        fixture("invalid/invalid_bool.gguf", patched(85, &[2])),
        fixture("invalid/invalid_utf8.gguf", patched(77, &[0xff, 0xfe])),
        fixture(
            "invalid/limit_exceeded-tensors.gguf",
            patched(8, &u64::MAX.to_le_bytes()),
        ),
        fixture("invalid/misaligned_tensor.gguf", b_at(33)),
        fixture(
            "invalid/nesting_too_deep.gguf",
            with(|b| {
                b.metadata("deep", Value::Array(nested(9)));
            }),
        ),
        fixture("invalid/overlapping_tensors.gguf", b_at(0)),
        fixture(
            "invalid/shape_overflow.gguf",
            with(|b| {
                b.tensor(
                    "huge",
                    GgmlType::F32,
                    &[1 << 32, 1 << 32, 1 << 32],
                    TensorData::Bytes(vec![]),
                );
            }),
        ),
        fixture(
            "invalid/string_too_long.gguf",
            patched(69, &(1u64 << 40).to_le_bytes()),
        ),
        fixture("invalid/tensor_out_of_bounds-offset.gguf", b_at(1 << 40)),
        fixture(
            "invalid/tensor_out_of_bounds-truncated.gguf",
            truncated_data,
        ),
        fixture(
            "invalid/too_many_dims.gguf",
            with(|b| {
                b.tensor("c", GgmlType::F32, &[1, 1, 1, 1, 1], bytes(4, 3));
            }),
        ),
        fixture("invalid/truncated.gguf", truncated_header),
        fixture(
            "invalid/unaligned_row.gguf",
            with(|b| {
                b.tensor("c", GgmlType::Q8_0, &[31], bytes(34, 3));
            }),
        ),
        fixture(
            "invalid/unknown_tensor_type.gguf",
            with(|b| {
                b.tensor("c", GgmlType(4), &[1], bytes(4, 3));
            }),
        ),
        fixture(
            "invalid/unknown_value_type.gguf",
            patched(81, &13u32.to_le_bytes()),
        ),
        fixture(
            "invalid/unsupported_version.gguf",
            patched(4, &1u32.to_le_bytes()),
        ),
    ]
}
