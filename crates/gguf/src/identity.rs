//! The identity of a model file: what [`crate::Hasher`] computes, and how two identities are
//! compared tensor by tensor.
//!
//! # Definitions
//!
//! - `sha256`, `blake3`: of the whole file, byte for byte. `sha256` equals `sha256sum`, the
//!   Hugging Face LFS oid and the Ollama blob name (`sha256-<hex>`).
//! - Tensor digest: BLAKE3 of the tensor's data bytes (`size` bytes at `offset`), so that
//!   `dd`-ing the range out and running `b3sum` gives the same value. Padding between tensors
//!   is covered by the whole-file digests only.
//! - `tensor_root`: a Merkle tree over the tensors in file order, shaped as in RFC 6962
//!   section 2.1 with BLAKE3 in place of SHA-256: a leaf is
//!   `BLAKE3(0x00 || u64le(name length) || name || u32le(ggml type) || u32le(dimension count)
//!   || u64le(each dimension) || tensor digest)`, an inner node `BLAKE3(0x01 || left || right)`,
//!   the split at the largest power of two below the count, and the root of no tensors
//!   `BLAKE3("")`. Names, types and shapes are in the leaves, so two files whose tensor data
//!   match but whose layout claims differ have different roots.
//! - Tokenizer digests: SHA-256 of the GGUF encoding of the metadata array (element type `u32`,
//!   count `u64`, elements, all little-endian; strings as `u64` length + bytes) of
//!   `tokenizer.ggml.tokens` (vocabulary), `tokenizer.ggml.scores` and `tokenizer.ggml.merges`.
//! - Chat template digest: SHA-256 of the UTF-8 bytes of `tokenizer.chat_template`, so that
//!   `sha256sum` over the template text gives the same value.

use std::collections::{BTreeMap, HashMap};

use provenance::digest::{Blake3Digest, Sha256Digest};
use serde::{Deserialize, Serialize};

use crate::encode::encode_array;
use crate::reader::{Gguf, Value};
use crate::types::{GgmlType, file_type_name};

/// Everything [`crate::Hasher`] computes about one file, from one pass over its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// File length in bytes.
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: Sha256Digest,
    /// BLAKE3 of the whole file.
    pub blake3: Blake3Digest,
    /// Merkle root over the tensors (see the module docs).
    pub tensor_root: Blake3Digest,
    /// What the metadata says.
    pub summary: Summary,
    /// One entry per tensor, in file order.
    pub tensors: Vec<TensorDigest>,
}

/// One tensor's place, layout and digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorDigest {
    /// The tensor name.
    pub name: String,
    /// The ggml type.
    #[serde(rename = "type")]
    pub ggml_type: GgmlType,
    /// Dimensions, innermost first (ggml's `ne`, the order gguf-py reports as `shape`).
    pub shape: Vec<u64>,
    /// Absolute offset of the data in the file.
    pub offset: u64,
    /// Data length in bytes.
    pub size: u64,
    /// BLAKE3 of the data.
    pub blake3: Blake3Digest,
}

/// What a file's metadata says about the model, plus digests of its tokenizer and template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    /// GGUF version (2 or 3).
    pub gguf_version: u32,
    /// `general.architecture`, e.g. `llama`, `gemma3`.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// Total number of values over all tensors.
    pub parameter_count: u64,
    /// Number of tensors.
    pub tensor_count: u64,
    /// Number of tensors of each ggml type, by type name.
    pub tensor_types: BTreeMap<String, u64>,
    /// `general.file_type` (llama.cpp's `llama_ftype`).
    pub file_type: Option<u32>,
    /// Its name, e.g. `Q4_K_M` for 15.
    pub file_type_name: Option<String>,
    /// `<architecture>.context_length`.
    pub context_length: Option<u64>,
    /// `tokenizer.ggml.model`, e.g. `llama`, `gpt2`.
    pub tokenizer_model: Option<String>,
    /// Number of entries in `tokenizer.ggml.tokens`.
    pub vocabulary_size: Option<u64>,
    /// Digest of `tokenizer.ggml.tokens`.
    pub vocabulary: Option<Sha256Digest>,
    /// Digest of `tokenizer.ggml.scores`.
    pub scores: Option<Sha256Digest>,
    /// Digest of `tokenizer.ggml.merges`.
    pub merges: Option<Sha256Digest>,
    /// Digest of `tokenizer.chat_template`.
    pub chat_template: Option<Sha256Digest>,
}

impl Summary {
    /// Reads the summary from a parsed header.
    pub fn from_gguf(gguf: &Gguf) -> Self {
        let architecture = gguf.get_str("general.architecture").map(str::to_owned);
        let context_length = architecture
            .as_deref()
            .and_then(|arch| gguf.get_u64(&format!("{arch}.context_length")));
        let mut tensor_types = BTreeMap::new();
        let mut parameter_count = 0u64;
        for tensor in &gguf.tensors {
            *tensor_types
                .entry(tensor.ggml_type.to_string())
                .or_insert(0) += 1;
            parameter_count = parameter_count.saturating_add(tensor.n_elements);
        }
        let file_type = gguf
            .get_u64("general.file_type")
            .and_then(|t| u32::try_from(t).ok());
        let array_digest = |key: &str| match gguf.get(key) {
            Some(Value::Array(array)) => {
                let mut encoded = Vec::new();
                encode_array(array, &mut encoded);
                Some(provenance::digest::sha256(&encoded))
            }
            _ => None,
        };
        let vocabulary_size = match gguf.get("tokenizer.ggml.tokens") {
            Some(Value::Array(array)) => Some(array.len() as u64),
            _ => None,
        };
        let chat_template = match gguf.get("tokenizer.chat_template") {
            Some(Value::String(bytes)) => Some(provenance::digest::sha256(bytes)),
            _ => None,
        };
        Self {
            gguf_version: gguf.version,
            name: gguf.get_str("general.name").map(str::to_owned),
            architecture,
            parameter_count,
            tensor_count: gguf.tensors.len() as u64,
            tensor_types,
            file_type,
            file_type_name: file_type.and_then(file_type_name).map(str::to_owned),
            context_length,
            tokenizer_model: gguf.get_str("tokenizer.ggml.model").map(str::to_owned),
            vocabulary_size,
            vocabulary: array_digest("tokenizer.ggml.tokens"),
            scores: array_digest("tokenizer.ggml.scores"),
            merges: array_digest("tokenizer.ggml.merges"),
            chat_template,
        }
    }
}

/// How one tensor differs between two files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TensorDifference {
    /// The tensor is in the second file only.
    Added {
        /// The tensor in the second file.
        second: TensorDigest,
    },
    /// Type, shape or data differ.
    Changed {
        /// The tensor in the first file.
        first: TensorDigest,
        /// The tensor in the second file.
        second: TensorDigest,
    },
    /// Same type, shape and data, at another position in the tensor order.
    Moved {
        /// The tensor name.
        name: String,
        /// Its index in the first file.
        first_index: usize,
        /// Its index in the second file.
        second_index: usize,
    },
    /// The tensor is in the first file only.
    Removed {
        /// The tensor in the first file.
        first: TensorDigest,
    },
}

impl TensorDifference {
    /// The name of the tensor concerned.
    pub fn name(&self) -> &str {
        match self {
            Self::Added { second } => &second.name,
            Self::Changed { first, .. } | Self::Removed { first } => &first.name,
            Self::Moved { name, .. } => name,
        }
    }
}

impl ModelIdentity {
    /// The tensors that differ between `self` (first) and `other` (second), matched by name:
    /// first-file order, then tensors only in the second file. Empty exactly when the two
    /// tensor roots are equal (barring a BLAKE3 collision).
    pub fn compare(&self, other: &ModelIdentity) -> Vec<TensorDifference> {
        let index: HashMap<&str, usize> = other
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let mut seen = vec![false; other.tensors.len()];
        let mut out = Vec::new();
        for (i, first) in self.tensors.iter().enumerate() {
            let Some(&j) = index.get(first.name.as_str()) else {
                out.push(TensorDifference::Removed {
                    first: first.clone(),
                });
                continue;
            };
            seen[j] = true;
            let second = &other.tensors[j];
            if first.ggml_type != second.ggml_type
                || first.shape != second.shape
                || first.blake3 != second.blake3
            {
                out.push(TensorDifference::Changed {
                    first: first.clone(),
                    second: second.clone(),
                });
            } else if i != j {
                out.push(TensorDifference::Moved {
                    name: first.name.clone(),
                    first_index: i,
                    second_index: j,
                });
            }
        }
        for (j, second) in other.tensors.iter().enumerate() {
            if !seen[j] {
                out.push(TensorDifference::Added {
                    second: second.clone(),
                });
            }
        }
        out
    }
}

/// The Merkle root over `tensors` (see the module docs).
pub fn tensor_root(tensors: &[TensorDigest]) -> Blake3Digest {
    let leaves: Vec<[u8; 32]> = tensors.iter().map(leaf_hash).collect();
    Blake3Digest::from_bytes(merkle(&leaves))
}

fn leaf_hash(tensor: &TensorDigest) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(&(tensor.name.len() as u64).to_le_bytes());
    h.update(tensor.name.as_bytes());
    h.update(&tensor.ggml_type.0.to_le_bytes());
    h.update(&(tensor.shape.len() as u32).to_le_bytes());
    for dim in &tensor.shape {
        h.update(&dim.to_le_bytes());
    }
    h.update(tensor.blake3.as_bytes());
    *h.finalize().as_bytes()
}

fn merkle(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => *blake3::hash(b"").as_bytes(),
        [leaf] => *leaf,
        _ => {
            // The largest power of two strictly below the count (RFC 6962 section 2.1).
            let k = 1usize << (leaves.len() - 1).ilog2();
            let mut h = blake3::Hasher::new();
            h.update(&[0x01]);
            h.update(&merkle(&leaves[..k]));
            h.update(&merkle(&leaves[k..]));
            *h.finalize().as_bytes()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    fn digest(name: &str, byte: u8) -> TensorDigest {
        TensorDigest {
            name: name.to_owned(),
            ggml_type: GgmlType::F32,
            shape: vec![1],
            offset: 0,
            size: 4,
            blake3: Blake3Digest::from_bytes(*blake3::hash(&[byte; 4]).as_bytes()),
        }
    }

    #[test]
    fn merkle_split_is_the_largest_power_of_two_below_the_count() {
        let leaves: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
        let node = |l: [u8; 32], r: [u8; 32]| {
            let mut h = blake3::Hasher::new();
            h.update(&[1]).update(&l).update(&r);
            *h.finalize().as_bytes()
        };
        let l = &leaves;
        let expected = node(node(node(l[0], l[1]), node(l[2], l[3])), l[4]);
        assert_eq!(merkle(&leaves), expected);
        assert_eq!(merkle(&leaves[..3]), node(node(l[0], l[1]), l[2]));
        assert_eq!(merkle(&leaves[..2]), node(l[0], l[1]));
        assert_eq!(merkle(&[]), *blake3::hash(b"").as_bytes());
    }

    #[test]
    fn root_binds_names_shapes_and_order() {
        let a = vec![digest("a", 1), digest("b", 2)];
        let root = tensor_root(&a);
        let mut renamed = a.clone();
        renamed[0].name = "c".into();
        let mut reshaped = a.clone();
        reshaped[0].shape = vec![1, 1];
        let swapped = vec![a[1].clone(), a[0].clone()];
        for other in [renamed, reshaped, swapped] {
            assert_ne!(tensor_root(&other), root);
        }
    }

    #[test]
    fn compare_lists_each_kind_of_difference() {
        let first = identity(vec![digest("a", 1), digest("b", 2), digest("c", 3)]);
        let second = identity(vec![digest("b", 2), digest("a", 9), digest("d", 4)]);
        let diff = first.compare(&second);
        let kinds: Vec<(&str, &str)> = diff
            .iter()
            .map(|d| {
                let kind = match d {
                    TensorDifference::Added { .. } => "added",
                    TensorDifference::Changed { .. } => "changed",
                    TensorDifference::Moved { .. } => "moved",
                    TensorDifference::Removed { .. } => "removed",
                };
                (d.name(), kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("a", "changed"),
                ("b", "moved"),
                ("c", "removed"),
                ("d", "added")
            ]
        );
        assert!(first.compare(&first).is_empty());
    }

    fn identity(tensors: Vec<TensorDigest>) -> ModelIdentity {
        ModelIdentity {
            size: 0,
            sha256: provenance::digest::sha256(b""),
            blake3: Blake3Digest::from_bytes([0; 32]),
            tensor_root: tensor_root(&tensors),
            summary: Summary::default(),
            tensors,
        }
    }
}
