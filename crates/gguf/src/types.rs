//! The GGUF and ggml type tables: metadata value types, tensor types with their block sizes, and
//! the `general.file_type` names.
//!
//! The ids, block sizes and byte sizes follow llama.cpp's `gguf-py/gguf/constants.py`
//! (`GGMLQuantizationType`, `GGML_QUANT_SIZES`, `GGUFValueType`, `LlamaFileType`). A tensor of a
//! type that is not in the table cannot be sized, so the reader refuses it rather than guess.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of a ggml tensor (`ggml_type`), as stored in a GGUF tensor info.
///
/// A newtype over the numeric id rather than an enum, so that a file naming a type this crate
/// does not know still has a printable, comparable type; [`GgmlType::block`] is `None` for such
/// types and the reader rejects them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GgmlType(pub u32);

/// The size of one block of a tensor type: `elements` values stored in `bytes` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSize {
    /// Values per block (1 for plain types such as F32, 32 or 256 for quantised ones).
    pub elements: u64,
    /// Bytes per block.
    pub bytes: u64,
}

/// (id, name, values per block, bytes per block), from gguf-py's `GGML_QUANT_SIZES`.
const GGML_TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    /// 32-bit floats.
    pub const F32: Self = Self(0);
    /// 16-bit IEEE floats.
    pub const F16: Self = Self(1);
    /// 8-bit blocks of 32 with an f16 scale.
    pub const Q8_0: Self = Self(8);
    /// 4-bit k-quant, super-blocks of 256.
    pub const Q4_K: Self = Self(12);
    /// 6-bit k-quant, super-blocks of 256.
    pub const Q6_K: Self = Self(14);
    /// bfloat16.
    pub const BF16: Self = Self(30);

    fn entry(self) -> Option<&'static (u32, &'static str, u64, u64)> {
        GGML_TYPES.iter().find(|entry| entry.0 == self.0)
    }

    /// The name llama.cpp uses (`Q4_K`, `F32`, ...), or `None` for an unknown id.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|entry| entry.1)
    }

    /// The block size, or `None` for an unknown id.
    pub fn block(self) -> Option<BlockSize> {
        self.entry()
            .map(|&(_, _, elements, bytes)| BlockSize { elements, bytes })
    }

    /// The type with this llama.cpp name, if known.
    pub fn from_name(name: &str) -> Option<Self> {
        GGML_TYPES
            .iter()
            .find(|entry| entry.1 == name)
            .map(|entry| Self(entry.0))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "type{}", self.0),
        }
    }
}

impl Serialize for GgmlType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GgmlType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if let Some(known) = Self::from_name(&name) {
            return Ok(known);
        }
        name.strip_prefix("type")
            .and_then(|id| id.parse().ok())
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ggml type {name:?}")))
    }
}

/// The type tag of a GGUF metadata value (`gguf_type`). The numbering is fixed by the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `u8`
    U8 = 0,
    /// `i8`
    I8 = 1,
    /// `u16`
    U16 = 2,
    /// `i16`
    I16 = 3,
    /// `u32`
    U32 = 4,
    /// `i32`
    I32 = 5,
    /// `f32`
    F32 = 6,
    /// One byte, 0 or 1.
    Bool = 7,
    /// A `u64` length and that many UTF-8 bytes.
    String = 8,
    /// A `u32` element type, a `u64` count and the elements.
    Array = 9,
    /// `u64`
    U64 = 10,
    /// `i64`
    I64 = 11,
    /// `f64`
    F64 = 12,
}

impl ValueType {
    /// The type with this tag, if the tag is defined.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// The fewest bytes one value of this type occupies in a file (used to bound counts).
    pub(crate) fn min_encoded_len(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// The name of a `general.file_type` value (llama.cpp's `llama_ftype`), e.g. `Q4_K_M` for 15.
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ids_print() {
        for &(id, name, _, _) in GGML_TYPES {
            assert_eq!(GgmlType::from_name(name), Some(GgmlType(id)));
            assert_eq!(GgmlType(id).to_string(), name);
        }
        assert_eq!(GgmlType(4).to_string(), "type4");
        assert_eq!(GgmlType(4).block(), None);
        let json = serde_json::to_string(&GgmlType(4)).unwrap();
        assert_eq!(
            serde_json::from_str::<GgmlType>(&json).unwrap(),
            GgmlType(4)
        );
        let json = serde_json::to_string(&GgmlType::Q4_K).unwrap();
        assert_eq!(json, "\"Q4_K\"");
        assert_eq!(
            serde_json::from_str::<GgmlType>(&json).unwrap(),
            GgmlType::Q4_K
        );
    }

    #[test]
    fn value_type_ids_round_trip() {
        for id in 0..13 {
            assert_eq!(ValueType::from_id(id).map(|t| t as u32), Some(id));
        }
        assert_eq!(ValueType::from_id(13), None);
    }
}
