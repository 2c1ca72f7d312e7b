//! Errors: [`ParseError`] for a malformed GGUF file, [`HashError`] for hashing one (I/O, a file
//! that changed while it was read, or a parse error).

use std::io;
use std::path::PathBuf;

/// Why a file is not a well-formed GGUF file.
///
/// Offsets are byte offsets from the start of the file. Every count, length and offset read from
/// a file is checked against the bytes that are really there before anything is allocated, so a
/// hostile file ends here rather than in a panic or a huge allocation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The alignment in `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {alignment}, expected a non-zero power of two")]
    BadAlignment {
        /// The value found.
        alignment: u32,
    },
    /// `general.alignment` is not a `u32`.
    #[error("general.alignment has type {found}, expected u32")]
    BadAlignmentType {
        /// The type found.
        found: &'static str,
    },
    /// The file does not start with the magic `GGUF`.
    #[error("not a GGUF file: expected magic \"GGUF\", found {found:02x?}")]
    BadMagic {
        /// The first four bytes (fewer if the file is shorter).
        found: Vec<u8>,
    },
    /// A big-endian GGUF file (its version reads byte-swapped).
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    /// A count read from the file cannot fit in the bytes that follow it.
    #[error(
        "{what} count {count} at offset {offset} needs at least {needed} bytes, only {available} remain"
    )]
    CountTooLarge {
        /// What is counted (`tensor`, `metadata`, `array element`).
        what: &'static str,
        /// The count read.
        count: u64,
        /// Offset of the count.
        offset: u64,
        /// The fewest bytes that many items occupy (saturating).
        needed: u64,
        /// Bytes left in the header (capped by [`Limits::max_header_bytes`](crate::Limits)).
        available: u64,
    },
    /// A metadata key appears twice.
    #[error("duplicate metadata key {key:?}")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// Two tensors have the same name.
    #[error("duplicate tensor name {name:?}")]
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// The header (metadata and tensor infos) is larger than the configured limit.
    #[error("GGUF header is larger than the limit of {limit} bytes")]
    HeaderTooLarge {
        /// The limit, [`Limits::max_header_bytes`](crate::Limits).
        limit: u64,
    },
    /// A boolean value that is neither 0 nor 1.
    #[error("boolean at offset {offset} is {value}, expected 0 or 1")]
    InvalidBool {
        /// Offset of the byte.
        offset: u64,
        /// The byte.
        value: u8,
    },
    /// A key or tensor name that is not UTF-8.
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// `metadata key` or `tensor name`.
        what: &'static str,
        /// Offset of its first byte.
        offset: u64,
    },
    /// A count above a configured limit (tensors, metadata entries).
    #[error("{what} count {count} is above the limit of {limit}")]
    LimitExceeded {
        /// What is counted.
        what: &'static str,
        /// The count read.
        count: u64,
        /// The limit (see [`Limits`](crate::Limits)).
        limit: u64,
    },
    /// A tensor's data is not aligned to the file's alignment.
    #[error(
        "tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        /// The tensor name.
        tensor: String,
        /// Its offset relative to the start of the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// Arrays nested deeper than the configured limit.
    #[error("arrays nested deeper than {limit} levels at offset {offset}")]
    NestingTooDeep {
        /// Offset of the array that is one level too deep.
        offset: u64,
        /// The limit, [`Limits::max_array_depth`](crate::Limits).
        limit: u32,
    },
    /// Two tensors' data ranges overlap.
    #[error("tensors {first:?} and {second:?} overlap")]
    OverlappingTensors {
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside it.
        second: String,
    },
    /// A tensor's element count or byte size overflows 64 bits.
    #[error("tensor {tensor:?} shape {dims:?} overflows")]
    ShapeOverflow {
        /// The tensor name.
        tensor: String,
        /// Its dimensions.
        dims: Vec<u64>,
    },
    /// A string is longer than the configured limit.
    #[error("string at offset {offset} is {len} bytes, the limit is {limit}")]
    StringTooLong {
        /// Offset of its length prefix.
        offset: u64,
        /// The length read.
        len: u64,
        /// The limit, [`Limits::max_string_len`](crate::Limits) or the name limit.
        limit: u64,
    },
    /// A tensor's data runs past the end of the file.
    #[error(
        "tensor {tensor:?} data [{start}, {end}) runs past the end of the file ({file_len} bytes)"
    )]
    TensorOutOfBounds {
        /// The tensor name.
        tensor: String,
        /// Absolute start offset (saturating).
        start: u64,
        /// Absolute end offset (saturating).
        end: u64,
        /// The file length.
        file_len: u64,
    },
    /// A tensor with more dimensions than ggml supports (4).
    #[error("tensor {tensor:?} has {n_dims} dimensions, at most 4 are supported")]
    TooManyDims {
        /// The tensor name.
        tensor: String,
        /// The dimension count read.
        n_dims: u32,
    },
    /// The file ends inside the header.
    #[error("file is truncated: {needed} bytes needed at offset {offset}, the file has {file_len}")]
    Truncated {
        /// Where the missing bytes start.
        offset: u64,
        /// How many bytes were needed there.
        needed: u64,
        /// The file length.
        file_len: u64,
    },
    /// A tensor type this crate does not know, so its size cannot be computed.
    #[error("tensor {tensor:?} has unknown ggml type {type_id}")]
    UnknownTensorType {
        /// The tensor name.
        tensor: String,
        /// The type id read.
        type_id: u32,
    },
    /// A metadata value type tag outside the spec.
    #[error("unknown metadata value type {type_id} at offset {offset}")]
    UnknownValueType {
        /// Offset of the tag.
        offset: u64,
        /// The tag read.
        type_id: u32,
    },
    /// A GGUF version other than 2 or 3.
    #[error("GGUF version {version} is not supported, expected 2 or 3")]
    UnsupportedVersion {
        /// The version read.
        version: u32,
    },
    /// A tensor whose first dimension is not a multiple of its type's block size.
    #[error(
        "tensor {tensor:?} first dimension {ne0} is not a multiple of the {ggml_type} block size {block}"
    )]
    UnalignedRow {
        /// The tensor name.
        tensor: String,
        /// Its first dimension.
        ne0: u64,
        /// Its type.
        ggml_type: crate::GgmlType,
        /// Values per block of that type.
        block: u64,
    },
}

/// Why hashing a file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The file changed while it was being read (its length or modification time moved), so
    /// the digests describe no single state of it.
    #[error("{} changed while it was being hashed", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// Reading the file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not well-formed GGUF.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ParseError,
    },
}
