//! A GGUF writer, for tests, fixtures and benchmarks only.
//!
//! [`GgufBuilder`] writes version 2 or 3 files; [`tiny_llama`] builds a deterministic tiny
//! llama-architecture model from a fixed PRNG (SplitMix64), so tests need no download;
//! [`synthetic`] builds a file of any size with random quantised tensors, for benchmarks.
//! [`fixtures`] is the set of files checked in under `fixtures/gguf/`.
//! [`encode_header`] re-encodes a parsed header byte for byte (GGUF's encoding has no
//! freedom), which the fuzz target uses as a round-trip check.
//!
//! This is not a converter: it writes the bytes it is given and does not check that a model
//! makes sense, beyond what the reader checks.

use std::io::{self, Write};

use crate::encode::encode_parts;
pub use crate::encode::{encode_array, encode_header, encode_value};
use crate::reader::{Array, DEFAULT_ALIGNMENT, MetadataEntry, Value};
use crate::types::GgmlType;

pub mod fixtures;

/// The data of a tensor to write.
#[derive(Clone, Debug)]
pub enum TensorData {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` bytes from SplitMix64 seeded with `seed`, generated while writing (so that a
    /// multi-gigabyte file needs no memory).
    Random {
        /// The PRNG seed.
        seed: u64,
        /// The number of bytes.
        len: u64,
    },
}

impl TensorData {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::Random { len, .. } => *len,
        }
    }
}

/// Builds a GGUF file from metadata and tensors, laid out the way llama.cpp lays them out:
/// tensors in the order given, each aligned.
#[derive(Clone, Debug)]
pub struct GgufBuilder {
    version: u32,
    alignment: u64,
    metadata: Vec<MetadataEntry>,
    tensors: Vec<(String, GgmlType, Vec<u64>, TensorData)>,
}

impl Default for GgufBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufBuilder {
    /// An empty version 3 file with the default alignment of 32.
    pub fn new() -> Self {
        Self {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the GGUF version written (2 or 3; the formats are the same). 3 by default.
    pub fn version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Appends a metadata entry. Setting `general.alignment` to a `u32` also sets the alignment
    /// the builder lays tensors out with.
    pub fn metadata(&mut self, key: &str, value: Value) -> &mut Self {
        if let ("general.alignment", Value::U32(alignment)) = (key, &value) {
            self.alignment = u64::from(*alignment).max(1);
        }
        self.metadata.push(MetadataEntry {
            key: key.to_owned(),
            value,
        });
        self
    }

    /// Appends a string metadata entry.
    pub fn metadata_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata(key, Value::String(value.as_bytes().to_vec()))
    }

    /// Appends a tensor. The data length is not checked against the shape: tests use that to
    /// write malformed files.
    pub fn tensor(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        dims: &[u64],
        data: TensorData,
    ) -> &mut Self {
        self.tensors
            .push((name.to_owned(), ggml_type, dims.to_vec(), data));
        self
    }

    /// The file length [`GgufBuilder::write_to`] will write.
    pub fn len(&self) -> u64 {
        let (header, offsets) = self.header();
        let data_len = self
            .tensors
            .iter()
            .zip(&offsets)
            .map(|((.., data), offset)| offset + data.len())
            .max()
            .unwrap_or(0);
        header.len() as u64 + data_len
    }

    /// Whether the file would hold no tensors and no metadata.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty() && self.metadata.is_empty()
    }

    /// The whole file, in memory.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes the whole file.
    pub fn write_to<W: Write>(&self, mut out: W) -> io::Result<()> {
        let (header, offsets) = self.header();
        out.write_all(&header)?;
        let mut written = 0u64;
        for ((.., data), &offset) in self.tensors.iter().zip(&offsets) {
            write_zeros(&mut out, offset - written)?;
            match data {
                TensorData::Bytes(bytes) => out.write_all(bytes)?,
                TensorData::Random { seed, len } => write_random(&mut out, *seed, *len)?,
            }
            written = offset + data.len();
        }
        Ok(())
    }

    /// The header bytes (padded) and each tensor's offset relative to the data section.
    fn header(&self) -> (Vec<u8>, Vec<u64>) {
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut next = 0u64;
        for (.., data) in &self.tensors {
            offsets.push(next);
            next = (next + data.len()).div_ceil(self.alignment) * self.alignment;
        }
        let tensors =
            self.tensors
                .iter()
                .zip(&offsets)
                .map(|((name, ggml_type, dims, _), &offset)| {
                    (name.as_str(), dims.as_slice(), *ggml_type, offset)
                });
        let out = encode_parts(self.version, &self.metadata, tensors, self.alignment);
        (out, offsets)
    }
}

fn write_zeros<W: Write>(out: &mut W, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let step = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..step])?;
        n -= step as u64;
    }
    Ok(())
}

fn write_random<W: Write>(out: &mut W, seed: u64, len: u64) -> io::Result<()> {
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let step = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..step]);
        out.write_all(&buf[..step])?;
        left -= step as u64;
    }
    Ok(())
}

/// SplitMix64 (Steele, Lea and Flood 2014): a fixed, tiny PRNG, so that generated files are the
/// same on every machine and every version of every dependency.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float uniform in `[-1, 1)`, with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u32 << 23) as f32) - 1.0
    }

    /// Fills `buf` with random bytes (little-endian words).
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// The shape and encoding of a [`tiny_llama`] model.
#[derive(Clone, Debug)]
pub struct TinyLlama {
    /// The PRNG seed for the weights.
    pub seed: u64,
    /// The type of the weight matrices: F32, F16 or Q8_0. Norms are always F32.
    pub weight_type: GgmlType,
    /// Layers.
    pub n_layer: u64,
    /// Embedding width.
    pub n_embd: u64,
    /// Feed-forward width.
    pub n_ff: u64,
    /// Attention heads.
    pub n_head: u64,
    /// Key/value heads.
    pub n_head_kv: u64,
    /// Context length.
    pub n_ctx: u64,
    /// Word tokens beyond the 3 control tokens and 256 byte tokens.
    pub n_words: u64,
    /// GGUF version written.
    pub version: u32,
    /// `general.alignment` to write, if any.
    pub alignment: Option<u32>,
    /// Whether to write a chat template.
    pub chat_template: bool,
}

impl Default for TinyLlama {
    fn default() -> Self {
        Self {
            seed: 1,
            weight_type: GgmlType::F16,
            n_layer: 2,
            n_embd: 32,
            n_ff: 64,
            n_head: 4,
            n_head_kv: 2,
            n_ctx: 256,
            n_words: 64,
            version: 3,
            alignment: None,
            chat_template: true,
        }
    }
}

/// The chat template written by [`tiny_llama`] (Llama 2's, abridged).
pub const TINY_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/// A tiny llama-architecture model with random weights: the tensors, shapes and metadata keys
/// llama.cpp expects, a SentencePiece-style vocabulary (`<unk>`, `<s>`, `</s>`, 256 byte tokens,
/// then made-up words) and weights from [`SplitMix64`]. It writes gibberish; it exists so
/// that tests have a realistic file without a download.
pub fn tiny_llama(config: &TinyLlama) -> GgufBuilder {
    let mut b = GgufBuilder::new();
    llama_metadata(&mut b, config);
    let mut rng = SplitMix64::new(config.seed);
    let n_vocab = 3 + 256 + config.n_words;
    let head_dim = config.n_embd / config.n_head;
    let e = config.n_embd;
    let kv = head_dim * config.n_head_kv;
    let wt = config.weight_type;
    let mut matrix = |b: &mut GgufBuilder, name: &str, dims: &[u64]| {
        let n: u64 = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.next_f32() * 0.05).collect();
        b.tensor(name, wt, dims, TensorData::Bytes(encode_f32s(wt, &values)));
    };
    let norm = |b: &mut GgufBuilder, name: &str| {
        let ones = vec![1.0f32; e as usize];
        b.tensor(
            name,
            GgmlType::F32,
            &[e],
            TensorData::Bytes(encode_f32s(GgmlType::F32, &ones)),
        );
    };
    matrix(&mut b, "token_embd.weight", &[e, n_vocab]);
    for layer in 0..config.n_layer {
        let name = |suffix: &str| format!("blk.{layer}.{suffix}");
        norm(&mut b, &name("attn_norm.weight"));
        matrix(&mut b, &name("attn_q.weight"), &[e, e]);
        matrix(&mut b, &name("attn_k.weight"), &[e, kv]);
        matrix(&mut b, &name("attn_v.weight"), &[e, kv]);
        matrix(&mut b, &name("attn_output.weight"), &[e, e]);
        norm(&mut b, &name("ffn_norm.weight"));
        matrix(&mut b, &name("ffn_gate.weight"), &[e, config.n_ff]);
        matrix(&mut b, &name("ffn_up.weight"), &[e, config.n_ff]);
        matrix(&mut b, &name("ffn_down.weight"), &[config.n_ff, e]);
    }
    norm(&mut b, "output_norm.weight");
    matrix(&mut b, "output.weight", &[e, n_vocab]);
    b
}

/// Appends the metadata of a llama model shaped by `config`: hyperparameters, vocabulary,
/// chat template.
fn llama_metadata(b: &mut GgufBuilder, config: &TinyLlama) {
    b.version(config.version);
    let n_vocab = 3 + 256 + config.n_words;
    let file_type = match config.weight_type {
        GgmlType::F32 => 0,
        GgmlType::Q8_0 => 7,
        GgmlType::Q4_K => 15,
        _ => 1,
    };
    b.metadata_str("general.architecture", "llama")
        .metadata_str("general.name", "tiny-llama")
        .metadata("general.file_type", Value::U32(file_type))
        .metadata("general.quantization_version", Value::U32(2));
    if let Some(alignment) = config.alignment {
        b.metadata("general.alignment", Value::U32(alignment));
    }
    let head_dim = config.n_embd / config.n_head;
    b.metadata("llama.context_length", Value::U32(config.n_ctx as u32))
        .metadata("llama.embedding_length", Value::U32(config.n_embd as u32))
        .metadata("llama.block_count", Value::U32(config.n_layer as u32))
        .metadata("llama.feed_forward_length", Value::U32(config.n_ff as u32))
        .metadata("llama.rope.dimension_count", Value::U32(head_dim as u32))
        .metadata(
            "llama.attention.head_count",
            Value::U32(config.n_head as u32),
        )
        .metadata(
            "llama.attention.head_count_kv",
            Value::U32(config.n_head_kv as u32),
        )
        .metadata("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
        .metadata("llama.rope.freq_base", Value::F32(10000.0))
        .metadata("llama.vocab_size", Value::U32(n_vocab as u32));

    let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
    let mut types = vec![2i32, 3, 3];
    for byte in 0..=255u8 {
        tokens.push(format!("<0x{byte:02X}>"));
        types.push(6);
    }
    let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo"];
    for i in 0..config.n_words {
        let mut word = String::from("\u{2581}");
        let mut n = i + 1;
        while n > 0 {
            word.push_str(syllables[(n % 8) as usize]);
            n /= 8;
        }
        tokens.push(word);
        types.push(1);
    }
    let scores: Vec<f32> = (0..n_vocab).map(|i| -(i as f32)).collect();
    b.metadata_str("tokenizer.ggml.model", "llama")
        .metadata(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String(tokens.iter().collect())),
        )
        .metadata("tokenizer.ggml.scores", Value::Array(Array::F32(scores)))
        .metadata("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
        .metadata("tokenizer.ggml.bos_token_id", Value::U32(1))
        .metadata("tokenizer.ggml.eos_token_id", Value::U32(2))
        .metadata("tokenizer.ggml.unknown_token_id", Value::U32(0))
        .metadata("tokenizer.ggml.add_bos_token", Value::Bool(true));
    if config.chat_template {
        b.metadata_str("tokenizer.chat_template", TINY_CHAT_TEMPLATE);
    }
}

/// A llama-shaped file of about `target_len` bytes whose big tensors are Q4_K with random bytes
/// (not a loadable model: random scales can be NaN). For benchmarks: the tensor layout and
/// count look like a real 4-bit model's, and generation needs no memory.
pub fn synthetic(target_len: u64, seed: u64) -> GgufBuilder {
    const N_EMBD: u64 = 4096;
    const N_FF: u64 = 14336;
    const N_VOCAB: u64 = 32000;
    let q4k = |n: u64| n / 256 * 144;
    let per_layer =
        2 * q4k(N_EMBD * N_EMBD) + 2 * q4k(N_EMBD * 1024) + 3 * q4k(N_EMBD * N_FF) + 2 * 4 * N_EMBD;
    let fixed = 2 * q4k(N_EMBD * N_VOCAB) + 4 * N_EMBD;
    let n_layer = (target_len.saturating_sub(fixed) / per_layer).max(1);
    let cfg = TinyLlama {
        n_layer,
        n_embd: N_EMBD,
        n_ff: N_FF,
        n_head: 32,
        n_head_kv: 8,
        n_ctx: 8192,
        n_words: 0,
        weight_type: GgmlType::Q4_K,
        ..TinyLlama::default()
    };
    let mut b = GgufBuilder::new();
    llama_metadata(&mut b, &cfg);
    let mut seeds = SplitMix64::new(seed);
    let mut random = |b: &mut GgufBuilder, name: &str, ggml_type: GgmlType, dims: &[u64]| {
        let n: u64 = dims.iter().product();
        let len = if ggml_type == GgmlType::Q4_K {
            q4k(n)
        } else {
            4 * n
        };
        b.tensor(
            name,
            ggml_type,
            dims,
            TensorData::Random {
                seed: seeds.next_u64(),
                len,
            },
        );
    };
    let (e, kv) = (N_EMBD, 1024);
    random(&mut b, "token_embd.weight", GgmlType::Q4_K, &[e, N_VOCAB]);
    for layer in 0..n_layer {
        let name = |suffix: &str| format!("blk.{layer}.{suffix}");
        random(&mut b, &name("attn_norm.weight"), GgmlType::F32, &[e]);
        random(&mut b, &name("attn_q.weight"), GgmlType::Q4_K, &[e, e]);
        random(&mut b, &name("attn_k.weight"), GgmlType::Q4_K, &[e, kv]);
        random(&mut b, &name("attn_v.weight"), GgmlType::Q4_K, &[e, kv]);
        random(&mut b, &name("attn_output.weight"), GgmlType::Q4_K, &[e, e]);
        random(&mut b, &name("ffn_norm.weight"), GgmlType::F32, &[e]);
        random(&mut b, &name("ffn_gate.weight"), GgmlType::Q4_K, &[e, N_FF]);
        random(&mut b, &name("ffn_up.weight"), GgmlType::Q4_K, &[e, N_FF]);
        random(&mut b, &name("ffn_down.weight"), GgmlType::Q4_K, &[N_FF, e]);
    }
    random(&mut b, "output_norm.weight", GgmlType::F32, &[e]);
    random(&mut b, "output.weight", GgmlType::Q4_K, &[e, N_VOCAB]);
    b
}

/// Encodes f32 values as F32, F16 or Q8_0 (anything else is written as F16).
pub fn encode_f32s(ggml_type: GgmlType, values: &[f32]) -> Vec<u8> {
    match ggml_type {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::Q8_0 => {
            let mut out = Vec::with_capacity(values.len() / 32 * 34);
            for block in values.chunks(32) {
                let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
                out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
            }
            out
        }
        _ => values
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
    }
}

/// IEEE 754 binary32 to binary16, rounding to nearest even (as ggml's `GGML_FP32_TO_FP16`).
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity or NaN (keep NaNs quiet and non-zero).
        return sign | 0x7c00 | if mant != 0 { 0x0200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: shift the mantissa (with its implicit bit) into place and round.
        let m = mant | 0x0080_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rounded = (m + half - 1 + ((m >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    let rounded = mant + 0x0fff + ((mant >> 13) & 1);
    // A carry out of the mantissa bumps the exponent, which is what rounding up should do.
    let combined = ((e as u32) << 10) + (rounded >> 13);
    if combined >= 0x7c00 {
        return sign | 0x7c00;
    }
    sign | combined as u16
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_values() {
        assert_eq!(f32_to_f16(0.0), 0x0000);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(f32::NAN) & 0x7c00, 0x7c00);
        assert_ne!(f32_to_f16(f32::NAN) & 0x03ff, 0);
        // Smallest subnormal, and ties to even at 1 + 2^-11.
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(0.1), 0x2e66);
    }

    #[test]
    fn splitmix_is_the_published_sequence() {
        // First outputs for seed 0, as in the reference implementation.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn builder_length_matches_output() {
        let b = tiny_llama(&TinyLlama::default());
        assert_eq!(b.len(), b.build().len() as u64);
        let mut random = GgufBuilder::new();
        random
            .tensor(
                "a",
                GgmlType::F32,
                &[3],
                TensorData::Random { seed: 1, len: 12 },
            )
            .tensor(
                "b",
                GgmlType::Q8_0,
                &[64],
                TensorData::Random { seed: 2, len: 68 },
            );
        let mut counter = Counter(0);
        random.write_to(&mut counter).unwrap();
        assert_eq!(random.len(), counter.0);
        // The synthetic benchmark model lands within one layer of the requested size.
        let s = synthetic(4 << 30, 7);
        assert!(s.len().abs_diff(4 << 30) < 200 << 20, "{}", s.len());
        let header = s.header().0;
        let gguf = crate::reader::parse_prefix(&header, s.len(), &Default::default()).unwrap();
        assert_eq!(gguf.get_u64("general.file_type"), Some(15));
    }

    struct Counter(u64);

    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
