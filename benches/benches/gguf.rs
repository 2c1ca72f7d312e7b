//! Throughput of the GGUF identity kernels: SHA-256 and BLAKE3 alone (the two halves of the
//! pass), the whole one-pass [`Hasher`] over an in-memory file, and header parsing.
//!
//! `cargo bench -p provenance-benches --bench gguf`. Whole-file numbers against `sha256sum`,
//! `b3sum` and `openssl` come from `scripts/bench-hash.sh`; see `docs/benchmarks.md`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use provenance_gguf::write::{self, GgufBuilder, TensorData};
use provenance_gguf::{GgmlType, Gguf, Hasher};
use sha2::Digest as _;

const SIZES: [usize; 3] = [1 << 16, 1 << 20, 16 << 20];

fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    write::SplitMix64::new(1).fill(&mut buf);
    buf
}

/// A GGUF file of about `len` bytes: the tiny model's metadata and one big Q4_K tensor.
fn model_of_len(len: usize) -> Vec<u8> {
    let mut b = GgufBuilder::new();
    let tiny = Gguf::parse(&write::tiny_llama(&write::TinyLlama::default()).build())
        .expect("the tiny model parses");
    for entry in tiny.metadata {
        b.metadata(&entry.key, entry.value);
    }
    let rows = (len / 144).max(1) as u64;
    b.tensor(
        "blob.weight",
        GgmlType::Q4_K,
        &[256, rows],
        TensorData::Random {
            seed: 2,
            len: rows * 144,
        },
    );
    b.build()
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    for size in SIZES {
        let data = random_bytes(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("sha256", size), &data, |b, data| {
            b.iter(|| sha2::Sha256::digest(data))
        });
        group.bench_with_input(BenchmarkId::new("blake3", size), &data, |b, data| {
            b.iter(|| blake3::hash(data))
        });
    }
    group.finish();
}

fn one_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_pass");
    group.sample_size(20);
    for size in SIZES {
        let file = model_of_len(size);
        group.throughput(Throughput::Bytes(file.len() as u64));
        group.bench_with_input(BenchmarkId::new("hash_bytes", size), &file, |b, file| {
            let hasher = Hasher::new();
            b.iter(|| hasher.hash_bytes(file).expect("the generated model parses"))
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let header = write::tiny_llama(&write::TinyLlama {
        n_words: 200_000,
        ..write::TinyLlama::default()
    })
    .build();
    group.throughput(Throughput::Bytes(header.len() as u64));
    group.bench_function("header_200k_vocab", |b| {
        b.iter(|| Gguf::parse(&header).expect("the generated model parses"))
    });
    group.finish();
}

criterion_group!(benches, kernels, one_pass, parse);
criterion_main!(benches);
