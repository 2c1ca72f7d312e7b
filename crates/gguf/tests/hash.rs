//! The one-pass hasher against a slow, obvious reference: whole-file digests over the whole
//! buffer, and per-tensor digests over slices taken from the parsed header.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use provenance::digest::{Blake3Digest, sha256};
use provenance_gguf::write::{self, GgufBuilder, TensorData, TinyLlama};
use provenance_gguf::{GgmlType, Gguf, Hasher, ModelIdentity, identity};

fn reference(file: &[u8]) -> ModelIdentity {
    let gguf = Gguf::parse(file).unwrap();
    let tensors: Vec<_> = gguf
        .tensors
        .iter()
        .map(|t| {
            let data = &file[t.data_offset as usize..(t.data_offset + t.n_bytes) as usize];
            provenance_gguf::TensorDigest {
                name: t.name.clone(),
                ggml_type: t.ggml_type,
                shape: t.dims.clone(),
                offset: t.data_offset,
                size: t.n_bytes,
                blake3: Blake3Digest::from_bytes(*blake3::hash(data).as_bytes()),
            }
        })
        .collect();
    ModelIdentity {
        size: file.len() as u64,
        sha256: sha256(file),
        blake3: Blake3Digest::from_bytes(*blake3::hash(file).as_bytes()),
        tensor_root: identity::tensor_root(&tensors),
        summary: provenance_gguf::Summary::from_gguf(&gguf),
        tensors,
    }
}

#[test]
fn one_pass_equals_reference_for_every_buffer_size() {
    let file = write::tiny_llama(&TinyLlama::default()).build();
    let expected = reference(&file);
    // Boundary-chosen buffer sizes: the minimum, around the header length, around tensor
    // boundaries, and larger than the file.
    let gguf = Gguf::parse(&file).unwrap();
    let mut sizes = vec![4096, 4097, 8191, 65536, 1 << 20];
    sizes.push(gguf.header_len as usize);
    sizes.push(gguf.data_offset as usize + 1);
    sizes.push(gguf.tensors[1].data_offset as usize);
    for size in sizes {
        for buffers in [2, 3, 8] {
            let got = Hasher::new()
                .buffer_size(size)
                .buffers(buffers)
                .hash_bytes(&file)
                .unwrap();
            assert_eq!(got, expected, "buffer size {size}, {buffers} buffers");
        }
        let inline = Hasher::new()
            .buffer_size(size)
            .parallel(false)
            .hash_bytes(&file)
            .unwrap();
        assert_eq!(inline, expected, "buffer size {size}, on one thread");
    }
}

#[test]
fn header_larger_than_first_buffers_still_parses() {
    // A 100k-word vocabulary makes a header of a few megabytes: several parse attempts.
    let file = write::tiny_llama(&TinyLlama {
        n_words: 100_000,
        ..TinyLlama::default()
    })
    .build();
    let gguf = Gguf::parse(&file).unwrap();
    assert!(gguf.header_len > 2 << 20, "{}", gguf.header_len);
    let got = Hasher::new().buffer_size(4096).hash_bytes(&file).unwrap();
    assert_eq!(got, reference(&file));
    assert_eq!(got.summary.vocabulary_size, Some(100_000 + 259));
}

#[test]
fn tensors_out_of_offset_order_are_hashed_in_tensor_order() {
    let file = write::tiny_llama(&TinyLlama::default()).build();
    let mut gguf = Gguf::parse(&file).unwrap();
    gguf.tensors.reverse();
    let mut swapped = write::encode_header(&gguf);
    assert_eq!(swapped.len() as u64, gguf.data_offset);
    swapped.extend_from_slice(&file[gguf.data_offset as usize..]);
    let got = Hasher::new()
        .buffer_size(4096)
        .hash_bytes(&swapped)
        .unwrap();
    assert_eq!(got, reference(&swapped));
    let original = Hasher::new().hash_bytes(&file).unwrap();
    // Same tensors, same data, another order: every tensor digest matches by name, the root
    // does not, and the comparison says which moved.
    assert_ne!(got.tensor_root, original.tensor_root);
    for t in &got.tensors {
        let o = original.tensors.iter().find(|o| o.name == t.name).unwrap();
        assert_eq!(o.blake3, t.blake3);
    }
    assert!(
        original
            .compare(&got)
            .iter()
            .all(|d| matches!(d, provenance_gguf::TensorDifference::Moved { .. }))
    );
}

#[test]
fn zero_size_and_zero_dim_tensors() {
    let mut b = GgufBuilder::new();
    b.tensor(
        "scalar",
        GgmlType::F32,
        &[],
        TensorData::Bytes(vec![1, 2, 3, 4]),
    )
    .tensor("empty", GgmlType::F32, &[0, 7], TensorData::Bytes(vec![]))
    .tensor(
        "after",
        GgmlType::F16,
        &[2],
        TensorData::Bytes(vec![5, 6, 7, 8]),
    );
    let file = b.build();
    let got = Hasher::new().buffer_size(4096).hash_bytes(&file).unwrap();
    assert_eq!(got, reference(&file));
    assert_eq!(
        got.tensors[1].blake3.to_string(),
        blake3::hash(b"").to_hex().as_str()
    );
    // One value in the scalar, none in the empty tensor, two after.
    assert_eq!(got.summary.parameter_count, 3);
}

#[test]
fn file_and_bytes_agree_and_digests_match_sha256sum_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let file = write::tiny_llama(&TinyLlama {
        weight_type: GgmlType::Q8_0,
        ..TinyLlama::default()
    })
    .build();
    std::fs::write(&path, &file).unwrap();
    let from_file = provenance_gguf::digest_file(&path).unwrap();
    assert_eq!(from_file, Hasher::new().hash_bytes(&file).unwrap());
    assert_eq!(from_file.sha256, sha256(&file));
    assert_eq!(from_file.summary.file_type_name.as_deref(), Some("Q8_0"));
    assert_eq!(from_file.summary.architecture.as_deref(), Some("llama"));
    assert_eq!(from_file.summary.context_length, Some(256));
    assert_eq!(
        from_file.summary.chat_template,
        Some(sha256(write::TINY_CHAT_TEMPLATE.as_bytes()))
    );
    assert_eq!(from_file.summary.tensor_types["F32"], 5);
    assert_eq!(from_file.summary.tensor_types["Q8_0"], 16);
}

#[test]
fn invalid_files_fail_without_panicking_at_every_truncation() {
    let file = write::tiny_llama(&TinyLlama::default()).build();
    let gguf = Gguf::parse(&file).unwrap();
    let hasher = {
        let mut h = Hasher::new();
        h.buffer_size(4096);
        h
    };
    let cuts: Vec<usize> = (0..gguf.data_offset as usize + 64)
        .step_by(7)
        .chain([file.len() - 1])
        .collect();
    for cut in cuts {
        assert!(Gguf::parse(&file[..cut]).is_err(), "cut at {cut}");
        assert!(hasher.hash_bytes(&file[..cut]).is_err(), "cut at {cut}");
    }
}
