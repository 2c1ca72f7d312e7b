//! The bounds-checked GGUF reader: header, metadata of every value type (nested arrays
//! included), tensor infos, alignment and data offset.
//!
//! The reader trusts nothing it reads. Every count, length and offset is checked against the
//! bytes actually present (and against [`Limits`]) before it is used, a value is only allocated
//! once its bytes have been read, and all offset arithmetic is checked. It parses GGUF versions
//! 2 and 3 in little-endian byte order, the format written by llama.cpp's `gguf-py` and
//! `gguf.cpp`; version 1 (32-bit counts) and big-endian files are refused with a clear error.
//!
//! It reads the header only: tensor data is located (and checked to lie inside the file, aligned
//! and without overlaps) but never loaded. [`crate::Hasher`] streams the data.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use crate::error::{HashError, ParseError};
use crate::types::{GgmlType, ValueType};

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;

/// Limits on what the reader accepts. The defaults admit every published model we know of by
/// a wide margin, and bound the memory a hostile header can make the reader allocate to a
/// small multiple of [`Limits::max_header_bytes`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest header (everything before the tensor data): 64 MiB by default. The header of
    /// Gemma 3 270M, with its 262,144-token vocabulary, is 6.5 MB.
    pub max_header_bytes: u64,
    /// Most metadata entries: 65,536 by default (real files have a few dozen).
    pub max_metadata: u64,
    /// Most tensors: 262,144 by default.
    pub max_tensors: u64,
    /// Longest metadata key or tensor name, in bytes: 65,535 by default.
    pub max_name_len: u64,
    /// Longest string value, in bytes: 16 MiB by default.
    pub max_string_len: u64,
    /// Deepest nesting of arrays inside arrays: 8 by default (a plain array has depth 1).
    pub max_array_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 << 20,
            max_metadata: 1 << 16,
            max_tensors: 1 << 18,
            max_name_len: (1 << 16) - 1,
            max_string_len: 16 << 20,
            max_array_depth: 8,
        }
    }
}

/// A parsed GGUF header.
#[derive(Clone, Debug)]
pub struct Gguf {
    /// The GGUF version (2 or 3).
    pub version: u32,
    /// Metadata entries in file order.
    pub metadata: Vec<MetadataEntry>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// The alignment of tensor data (`general.alignment`, or [`DEFAULT_ALIGNMENT`]).
    pub alignment: u64,
    /// Where the tensor infos end.
    pub header_len: u64,
    /// Where the tensor data section starts: `header_len` rounded up to `alignment`.
    pub data_offset: u64,
    /// The length of the file the header was read from.
    pub file_len: u64,
}

/// One metadata key/value pair.
#[derive(Clone, Debug)]
pub struct MetadataEntry {
    /// The key, e.g. `general.architecture`.
    pub key: String,
    /// The value.
    pub value: Value,
}

/// A metadata value.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // One variant per GGUF value type, named after it.
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// A string's bytes. GGUF strings should be UTF-8, but llama.cpp does not check, so neither
    /// does the reader: [`Value::as_str`] does.
    String(Vec<u8>),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: all elements share one type.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // One variant per GGUF value type, named after it.
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(StringArray),
    /// Nested arrays; each carries its own element type.
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// An array of strings, stored in one buffer (a vocabulary has hundreds of thousands).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringArray {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// A tensor info: where a tensor's data is and how it is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (ggml's `ne`), at most 4.
    pub dims: Vec<u64>,
    /// The ggml type.
    pub ggml_type: GgmlType,
    /// The data offset as stored in the file, relative to [`Gguf::data_offset`].
    pub relative_offset: u64,
    /// The absolute offset of the data in the file.
    pub data_offset: u64,
    /// Number of values (the product of `dims`).
    pub n_elements: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl Gguf {
    /// Parses a whole GGUF file held in memory, with default [`Limits`].
    pub fn parse(file: &[u8]) -> Result<Self, ParseError> {
        Self::parse_with(file, &Limits::default())
    }

    /// Parses a whole GGUF file held in memory.
    pub fn parse_with(file: &[u8], limits: &Limits) -> Result<Self, ParseError> {
        match parse_prefix(file, file.len() as u64, limits) {
            Ok(gguf) => Ok(gguf),
            Err(Stop::Error(error)) => Err(error),
            // The whole file is there, so the parser never runs out of prefix.
            Err(Stop::NeedMore) => Err(ParseError::Truncated {
                offset: file.len() as u64,
                needed: 1,
                file_len: file.len() as u64,
            }),
        }
    }

    /// Reads and parses the header of the GGUF file at `path`, without reading tensor data.
    pub fn open(path: &Path) -> Result<Self, HashError> {
        let io_error = |source| HashError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = crate::hash::open_regular(path).map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        let limits = Limits::default();
        let mut prefix = Vec::new();
        let mut want = 1 << 20;
        loop {
            let target = want.min(file_len);
            let have = prefix.len() as u64;
            (&mut file)
                .take(target - have)
                .read_to_end(&mut prefix)
                .map_err(io_error)?;
            let complete = prefix.len() as u64 == file_len;
            match parse_prefix(&prefix, file_len, &limits) {
                Ok(gguf) => return Ok(gguf),
                Err(Stop::Error(source)) => {
                    return Err(HashError::Parse {
                        path: path.to_owned(),
                        source,
                    });
                }
                Err(Stop::NeedMore) if complete || prefix.len() as u64 == have => {
                    return Err(HashError::Changed {
                        path: path.to_owned(),
                    });
                }
                Err(Stop::NeedMore) => want = want.saturating_mul(2),
            }
        }
    }

    /// The value of the metadata key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.value)
    }

    /// The string value of `key`, if it is a UTF-8 string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The value of `key` as an unsigned integer, if it is a non-negative integer.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|tensor| tensor.name == name)
    }
}

/// The [`ValueType`] of a [`Value`] or [`Array`]: both have one variant per type, same names.
macro_rules! variant_type {
    ($value:expr) => {
        match $value {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    };
}

impl Value {
    /// The GGUF type of this value.
    pub fn value_type(&self) -> ValueType {
        variant_type!(self)
    }

    /// The string, if this is a string value holding UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The value as `u64`, if it is an integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

impl Array {
    /// The type of the elements.
    pub fn element_type(&self) -> ValueType {
        variant_type!(self)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StringArray {
    /// An empty array.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a string.
    pub fn push(&mut self, s: &[u8]) {
        self.bytes.extend_from_slice(s);
        self.ends.push(self.bytes.len());
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The string at `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.bytes.get(start..end)
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|index| self.get(index).unwrap_or_default())
    }
}

impl<S: AsRef<[u8]>> FromIterator<S> for StringArray {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut array = Self::new();
        for s in iter {
            array.push(s.as_ref());
        }
        array
    }
}

/// Why [`parse_prefix`] stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The header continues past the prefix: call again with more bytes.
    NeedMore,
    /// The file is malformed.
    Error(ParseError),
}

impl From<ParseError> for Stop {
    fn from(error: ParseError) -> Self {
        Self::Error(error)
    }
}

/// Parses the header from `prefix`, the first bytes of a file of `file_len` bytes.
///
/// Returns [`Stop::NeedMore`] only when the header runs past `prefix` and `prefix` is shorter
/// than both the file and the header limit; callers double the prefix and try again.
pub(crate) fn parse_prefix(prefix: &[u8], file_len: u64, limits: &Limits) -> Result<Gguf, Stop> {
    let mut cursor = Cursor {
        buf: prefix,
        pos: 0,
        file_len,
        limits,
    };
    let magic = cursor.take(4)?;
    if magic != b"GGUF" {
        return Err(ParseError::BadMagic {
            found: magic.to_vec(),
        }
        .into());
    }
    let version = cursor.u32()?;
    if version != 2 && version != 3 {
        if version & 0xFFFF == 0 && version.swap_bytes() <= 3 {
            return Err(ParseError::BigEndian.into());
        }
        return Err(ParseError::UnsupportedVersion { version }.into());
    }
    let tensor_offset = cursor.offset();
    let tensor_count = cursor.u64()?;
    let metadata_offset = cursor.offset();
    let metadata_count = cursor.u64()?;
    cursor.check_limit("tensor", tensor_count, limits.max_tensors)?;
    cursor.check_limit("metadata", metadata_count, limits.max_metadata)?;
    // A tensor info is at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes, and a
    // metadata entry at least 8 (key) + 4 (type) + 1 (value).
    cursor.check_count("tensor", tensor_count, 24, tensor_offset)?;
    cursor.check_count("metadata", metadata_count, 13, metadata_offset)?;

    let mut metadata = Vec::new();
    let mut keys = HashSet::new();
    for _ in 0..metadata_count {
        let key = cursor.name("metadata key")?;
        let value = cursor.value(0)?;
        if !keys.insert(key.clone()) {
            return Err(ParseError::DuplicateKey { key }.into());
        }
        metadata.push(MetadataEntry { key, value });
    }

    let mut tensors = Vec::new();
    let mut names = HashSet::new();
    for _ in 0..tensor_count {
        let tensor = cursor.tensor_info()?;
        if !names.insert(tensor.name.clone()) {
            return Err(ParseError::DuplicateTensor { name: tensor.name }.into());
        }
        tensors.push(tensor);
    }
    let header_len = cursor.offset();

    let alignment = match metadata.iter().find(|e| e.key == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetadataEntry {
            value: Value::U32(alignment),
            ..
        }) => {
            if !alignment.is_power_of_two() {
                return Err(ParseError::BadAlignment {
                    alignment: *alignment,
                }
                .into());
            }
            u64::from(*alignment)
        }
        Some(entry) => {
            return Err(ParseError::BadAlignmentType {
                found: value_type_name(entry.value.value_type()),
            }
            .into());
        }
    };
    // `alignment` is a power of two no larger than 2^31, so this cannot overflow unless
    // `header_len` is within 2^31 of u64::MAX, which the header limit rules out.
    let data_offset = header_len.div_ceil(alignment) * alignment;
    locate_tensors(&mut tensors, data_offset, alignment, file_len)?;
    Ok(Gguf {
        version,
        metadata,
        tensors,
        alignment,
        header_len,
        data_offset,
        file_len,
    })
}

/// Sets each tensor's absolute offset and checks that tensors are aligned, inside the file and
/// do not overlap.
fn locate_tensors(
    tensors: &mut [TensorInfo],
    data_offset: u64,
    alignment: u64,
    file_len: u64,
) -> Result<(), ParseError> {
    for tensor in tensors.iter_mut() {
        if tensor.relative_offset % alignment != 0 {
            return Err(ParseError::MisalignedTensor {
                tensor: tensor.name.clone(),
                offset: tensor.relative_offset,
                alignment,
            });
        }
        let start = data_offset.checked_add(tensor.relative_offset);
        let end = start.and_then(|start| start.checked_add(tensor.n_bytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_len => tensor.data_offset = start,
            _ => {
                return Err(ParseError::TensorOutOfBounds {
                    tensor: tensor.name.clone(),
                    start: data_offset.saturating_add(tensor.relative_offset),
                    end: data_offset
                        .saturating_add(tensor.relative_offset)
                        .saturating_add(tensor.n_bytes),
                    file_len,
                });
            }
        }
    }
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].data_offset, tensors[i].n_bytes));
    for pair in order.windows(2) {
        let (first, second) = (&tensors[pair[0]], &tensors[pair[1]]);
        // Empty tensors occupy no bytes and overlap nothing.
        if first.n_bytes > 0
            && second.n_bytes > 0
            && second.data_offset < first.data_offset + first.n_bytes
        {
            return Err(ParseError::OverlappingTensors {
                first: first.name.clone(),
                second: second.name.clone(),
            });
        }
    }
    Ok(())
}

pub(crate) fn value_type_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::U8 => "u8",
        ValueType::I8 => "i8",
        ValueType::U16 => "u16",
        ValueType::I16 => "i16",
        ValueType::U32 => "u32",
        ValueType::I32 => "i32",
        ValueType::F32 => "f32",
        ValueType::Bool => "bool",
        ValueType::String => "string",
        ValueType::Array => "array",
        ValueType::U64 => "u64",
        ValueType::I64 => "i64",
        ValueType::F64 => "f64",
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file_len: u64,
    limits: &'a Limits,
}

macro_rules! read_array {
    ($cursor:ident, $count:ident, $ty:ty, $variant:ident) => {{
        const SIZE: usize = std::mem::size_of::<$ty>();
        // `check_count` has bounded `count * SIZE` by the header size, and `take` checks that
        // the bytes are present before anything is allocated.
        let bytes = $cursor.take($count * SIZE as u64)?;
        Array::$variant(
            bytes
                .chunks_exact(SIZE)
                .map(|chunk| {
                    let mut raw = [0u8; SIZE];
                    raw.copy_from_slice(chunk);
                    <$ty>::from_le_bytes(raw)
                })
                .collect(),
        )
    }};
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The most bytes the header can still span from here.
    fn available(&self) -> u64 {
        self.file_len
            .min(self.limits.max_header_bytes)
            .saturating_sub(self.offset())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Stop> {
        let start = self.offset();
        let end = start.saturating_add(n);
        if end > self.file_len {
            return Err(ParseError::Truncated {
                offset: start,
                needed: n,
                file_len: self.file_len,
            }
            .into());
        }
        if end > self.limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge {
                limit: self.limits.max_header_bytes,
            }
            .into());
        }
        if end > self.buf.len() as u64 {
            return Err(Stop::NeedMore);
        }
        // `end <= buf.len()`, so both conversions and the slice are in range.
        let bytes = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Stop> {
        self.array().map(u64::from_le_bytes)
    }

    fn check_limit(&self, what: &'static str, count: u64, limit: u64) -> Result<(), Stop> {
        if count > limit {
            return Err(ParseError::LimitExceeded { what, count, limit }.into());
        }
        Ok(())
    }

    /// Checks that `count` items of at least `min_each` bytes fit in what is left.
    fn check_count(
        &self,
        what: &'static str,
        count: u64,
        min_each: u64,
        offset: u64,
    ) -> Result<(), Stop> {
        let needed = count.saturating_mul(min_each);
        let available = self.available();
        if needed > available {
            return Err(ParseError::CountTooLarge {
                what,
                count,
                offset,
                needed,
                available,
            }
            .into());
        }
        Ok(())
    }

    /// A length-prefixed string of at most `limit` bytes.
    fn string(&mut self, limit: u64) -> Result<&'a [u8], Stop> {
        let offset = self.offset();
        let len = self.u64()?;
        if len > limit {
            return Err(ParseError::StringTooLong { offset, len, limit }.into());
        }
        self.take(len)
    }

    /// A key or tensor name: a string under the name limit, UTF-8.
    fn name(&mut self, what: &'static str) -> Result<String, Stop> {
        let offset = self.offset();
        let bytes = self.string(self.limits.max_name_len)?;
        match std::str::from_utf8(bytes) {
            Ok(name) => Ok(name.to_owned()),
            Err(_) => Err(ParseError::InvalidUtf8 { what, offset }.into()),
        }
    }

    fn value_type(&mut self) -> Result<ValueType, Stop> {
        let offset = self.offset();
        let type_id = self.u32()?;
        ValueType::from_id(type_id)
            .ok_or_else(|| ParseError::UnknownValueType { offset, type_id }.into())
    }

    fn bool(&mut self) -> Result<bool, Stop> {
        let offset = self.offset();
        match self.array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(ParseError::InvalidBool { offset, value }.into()),
        }
    }

    /// A type tag and the value after it; `depth` is the number of arrays around it.
    fn value(&mut self, depth: u32) -> Result<Value, Stop> {
        Ok(match self.value_type()? {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array()?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array()?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array()?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array()?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array()?)),
            ValueType::Bool => Value::Bool(self.bool()?),
            ValueType::String => Value::String(self.string(self.limits.max_string_len)?.to_vec()),
            ValueType::Array => Value::Array(self.array_body(depth + 1)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array()?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
        })
    }

    /// An array's element type, count and elements; `depth` counts this array.
    fn array_body(&mut self, depth: u32) -> Result<Array, Stop> {
        let offset = self.offset();
        if depth > self.limits.max_array_depth {
            return Err(ParseError::NestingTooDeep {
                offset,
                limit: self.limits.max_array_depth,
            }
            .into());
        }
        let element_type = self.value_type()?;
        let count_offset = self.offset();
        let count = self.u64()?;
        self.check_count(
            "array element",
            count,
            element_type.min_encoded_len(),
            count_offset,
        )?;
        Ok(match element_type {
            ValueType::U8 => read_array!(self, count, u8, U8),
            ValueType::I8 => read_array!(self, count, i8, I8),
            ValueType::U16 => read_array!(self, count, u16, U16),
            ValueType::I16 => read_array!(self, count, i16, I16),
            ValueType::U32 => read_array!(self, count, u32, U32),
            ValueType::I32 => read_array!(self, count, i32, I32),
            ValueType::F32 => read_array!(self, count, f32, F32),
            ValueType::U64 => read_array!(self, count, u64, U64),
            ValueType::I64 => read_array!(self, count, i64, I64),
            ValueType::F64 => read_array!(self, count, f64, F64),
            ValueType::Bool => {
                let mut values = Vec::new();
                for _ in 0..count {
                    values.push(self.bool()?);
                }
                Array::Bool(values)
            }
            ValueType::String => {
                let mut strings = StringArray::new();
                for _ in 0..count {
                    let s = self.string(self.limits.max_string_len)?;
                    strings.push(s);
                }
                Array::String(strings)
            }
            ValueType::Array => {
                let mut arrays = Vec::new();
                for _ in 0..count {
                    arrays.push(self.array_body(depth + 1)?);
                }
                Array::Array(arrays)
            }
        })
    }

    fn tensor_info(&mut self) -> Result<TensorInfo, Stop> {
        let name = self.name("tensor name")?;
        let n_dims = self.u32()?;
        if n_dims > MAX_DIMS {
            return Err(ParseError::TooManyDims {
                tensor: name,
                n_dims,
            }
            .into());
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let type_id = self.u32()?;
        let relative_offset = self.u64()?;
        let ggml_type = GgmlType(type_id);
        let Some(block) = ggml_type.block() else {
            return Err(ParseError::UnknownTensorType {
                tensor: name,
                type_id,
            }
            .into());
        };
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % block.elements != 0 {
            return Err(ParseError::UnalignedRow {
                tensor: name,
                ne0,
                ggml_type,
                block: block.elements,
            }
            .into());
        }
        // ggml counts elements and bytes in int64_t; refuse anything it could not represent.
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64);
        let n_bytes = n_elements
            .and_then(|n| (n / block.elements).checked_mul(block.bytes))
            .filter(|&n| n <= i64::MAX as u64);
        let (Some(n_elements), Some(n_bytes)) = (n_elements, n_bytes) else {
            return Err(ParseError::ShapeOverflow { tensor: name, dims }.into());
        };
        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            relative_offset,
            data_offset: 0,
            n_elements,
            n_bytes,
        })
    }
}
