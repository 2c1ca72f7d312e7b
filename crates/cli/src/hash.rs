//! `provenance hash`: the identity of a GGUF model (whole-file SHA-256 and BLAKE3, per-tensor
//! digests and their root, a summary of the metadata), and a tensor-by-tensor comparison.
//!
//! JSON Lines messages: `model` (one per file: where it came from, whether the cache answered,
//! the store check, the identity without its tensor list), `tensor` (one per tensor, with the
//! index of its model), `tensor_difference` (with `--compare`), and a final `summary`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provenance::digest::Sha256Digest;
use provenance_gguf::resolve::{self, Resolved, StoreDirs};
use provenance_gguf::{Cache, Hasher, ModelIdentity, Summary, TensorDifference, TensorDigest};
use serde::Serialize;

use crate::output::{Out, Status, warn};

/// Identify a GGUF model: SHA-256 (= Hugging Face LFS oid = Ollama blob name), BLAKE3 and
/// per-tensor digests in one pass; compare two tensor by tensor
#[derive(clap::Args, Debug)]
pub(crate) struct HashArgs {
    /// The model: a path, ollama:NAME[:TAG] (from $OLLAMA_MODELS or ~/.ollama/models), or
    /// hf:OWNER/REPO[@REVISION]/FILE (from the Hugging Face cache)
    #[arg(value_name = "MODEL")]
    model: String,
    /// Compare with another model, tensor by tensor; exit status 1 if any tensor differs
    #[arg(long, value_name = "MODEL")]
    compare: Option<String>,
    /// Print every tensor (name, type, shape, offset, size, BLAKE3)
    #[arg(long)]
    tensors: bool,
    /// Hash the file even if the cache has an entry for it, and store nothing
    #[arg(long)]
    no_cache: bool,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ModelMessage<'a> {
    index: usize,
    input: &'a str,
    path: String,
    from_cache: bool,
    /// The SHA-256 the store names the file by (Ollama blob, Hugging Face LFS blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    store_sha256: Option<Sha256Digest>,
    /// Whether the computed SHA-256 equals `store_sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    store_match: Option<bool>,
    size: u64,
    sha256: Sha256Digest,
    blake3: provenance::digest::Blake3Digest,
    tensor_root: provenance::digest::Blake3Digest,
    summary: &'a Summary,
}

#[derive(Serialize)]
struct TensorMessage<'a> {
    model: usize,
    index: usize,
    #[serde(flatten)]
    tensor: &'a TensorDigest,
}

#[derive(Serialize)]
struct SummaryMessage {
    models: usize,
    /// `--compare` only: whether the two files are byte-identical.
    #[serde(skip_serializing_if = "Option::is_none")]
    identical: Option<bool>,
    /// `--compare` only: how many tensors differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    differing_tensors: Option<usize>,
    /// Files whose SHA-256 differs from the name their store gives them.
    store_mismatches: usize,
    ok: bool,
}

struct Hashed {
    input: String,
    resolved: Resolved,
    identity: ModelIdentity,
    from_cache: bool,
}

pub(crate) fn run(args: HashArgs) -> Result<ExitCode> {
    let mut out = Out::new(args.json);
    let dirs = StoreDirs::from_env();
    let cache = if args.no_cache {
        None
    } else {
        let dir = Cache::default_dir();
        if dir.is_none() {
            warn("no cache directory (set XDG_CACHE_HOME or HOME); hashing without a cache");
        }
        dir.map(Cache::new)
    };
    let mut inputs = vec![args.model.as_str()];
    inputs.extend(args.compare.as_deref());
    let mut hashed = Vec::new();
    for input in inputs {
        hashed.push(hash_one(input, &dirs, cache.as_ref(), args.json)?);
    }

    let mut status = Status::default();
    let mut store_mismatches = 0;
    for (index, h) in hashed.iter().enumerate() {
        let store_match = h.resolved.expected_sha256.map(|e| e == h.identity.sha256);
        if store_match == Some(false) {
            store_mismatches += 1;
            status.failed();
        }
        print_model(&mut out, index, h, store_match, args.tensors)?;
    }

    let mut differing = None;
    let mut identical = None;
    if let [first, second] = hashed.as_slice() {
        let diff = first.identity.compare(&second.identity);
        identical = Some(first.identity.sha256 == second.identity.sha256);
        differing = Some(diff.len());
        if !diff.is_empty() {
            status.failed();
        }
        print_comparison(&mut out, first, second, &diff)?;
    }
    let ok = status == Status::default();
    out.message(
        "summary",
        &SummaryMessage {
            models: hashed.len(),
            identical,
            differing_tensors: differing,
            store_mismatches,
            ok,
        },
    )?;
    Ok(status.code())
}

fn hash_one(input: &str, dirs: &StoreDirs, cache: Option<&Cache>, json: bool) -> Result<Hashed> {
    let resolved = resolve::resolve(input, dirs)?;
    let path = resolved.path.clone();
    let size = std::fs::metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut bar = Progress::new(input, size, json);
    let progress = |done, total| bar.update(done, total);
    let (identity, from_cache) = match cache {
        Some(cache) => {
            let digested = cache.digest_file_with_progress(&path, progress)?;
            (digested.identity, digested.from_cache)
        }
        None => (
            Hasher::new().hash_file_with_progress(&path, progress)?,
            false,
        ),
    };
    bar.finish();
    Ok(Hashed {
        input: input.to_owned(),
        resolved,
        identity,
        from_cache,
    })
}

fn print_model(
    out: &mut Out,
    index: usize,
    h: &Hashed,
    store_match: Option<bool>,
    tensors: bool,
) -> Result<()> {
    let id = &h.identity;
    let s = &id.summary;
    out.message(
        "model",
        &ModelMessage {
            index,
            input: &h.input,
            path: h.resolved.path.display().to_string(),
            from_cache: h.from_cache,
            store_sha256: h.resolved.expected_sha256,
            store_match,
            size: id.size,
            sha256: id.sha256,
            blake3: id.blake3,
            tensor_root: id.tensor_root,
            summary: s,
        },
    )?;
    for (i, tensor) in id.tensors.iter().enumerate() {
        out.message(
            "tensor",
            &TensorMessage {
                model: index,
                index: i,
                tensor,
            },
        )?;
    }
    if out.json() {
        return Ok(());
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let digest = |d: Option<Sha256Digest>| or_dash(d.map(|d| d.to_string()));
    let types: Vec<String> = s
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect();
    let mut lines = vec![
        ("model", format!("{}{}", h.input, cached_note(h))),
        ("path", h.resolved.path.display().to_string()),
        ("size", format!("{} bytes", id.size)),
        ("sha256", id.sha256.to_string()),
        ("blake3", id.blake3.to_string()),
        ("tensor root", id.tensor_root.to_string()),
        ("architecture", or_dash(s.architecture.clone())),
        ("name", or_dash(s.name.clone())),
        ("parameters", s.parameter_count.to_string()),
        (
            "file type",
            or_dash(s.file_type.map(|t| match &s.file_type_name {
                Some(name) => format!("{name} ({t})"),
                None => t.to_string(),
            })),
        ),
        (
            "tensors",
            format!("{} ({})", s.tensor_count, types.join(", ")),
        ),
        ("context", or_dash(s.context_length.map(|c| c.to_string()))),
        (
            "tokenizer",
            format!(
                "{}, {} tokens",
                or_dash(s.tokenizer_model.clone()),
                or_dash(s.vocabulary_size.map(|n| n.to_string()))
            ),
        ),
        ("vocabulary", digest(s.vocabulary)),
        ("scores", digest(s.scores)),
        ("merges", digest(s.merges)),
        ("chat template", digest(s.chat_template)),
    ];
    if let Some(expected) = h.resolved.expected_sha256 {
        let verdict = if store_match == Some(true) {
            "matches the store's name for the file".to_owned()
        } else {
            format!("MISMATCH: the store names the file sha256 {expected}")
        };
        lines.push(("store", verdict));
    }
    for (key, value) in lines {
        out.line(&format!("{key:<14}{value}"))?;
    }
    if tensors {
        for t in &id.tensors {
            out.line(&tensor_line(t))?;
        }
    }
    out.line("")?;
    Ok(())
}

fn cached_note(h: &Hashed) -> &'static str {
    if h.from_cache { " (cached)" } else { "" }
}

fn tensor_line(t: &TensorDigest) -> String {
    format!(
        "  {} {} {:?} offset {} size {} blake3 {}",
        t.name, t.ggml_type, t.shape, t.offset, t.size, t.blake3
    )
}

fn print_comparison(
    out: &mut Out,
    first: &Hashed,
    second: &Hashed,
    diff: &[TensorDifference],
) -> Result<()> {
    for d in diff {
        out.message("tensor_difference", d)?;
    }
    if out.json() {
        return Ok(());
    }
    if first.identity.sha256 == second.identity.sha256 {
        out.line("identical: the two files have the same SHA-256")?;
        return Ok(());
    }
    if diff.is_empty() {
        out.line("same tensors (names, types, shapes, data); the files differ only in metadata or padding")?;
        return Ok(());
    }
    out.line(&format!(
        "{} of {} / {} tensors differ:",
        diff.len(),
        first.identity.tensors.len(),
        second.identity.tensors.len()
    ))?;
    for d in diff {
        let text = match d {
            TensorDifference::Added { second } => format!("added    {}", tensor_line(second)),
            TensorDifference::Removed { first } => format!("removed  {}", tensor_line(first)),
            TensorDifference::Changed { first, second } => format!(
                "changed  {}: {} {:?} blake3 {} -> {} {:?} blake3 {}",
                first.name,
                first.ggml_type,
                first.shape,
                first.blake3,
                second.ggml_type,
                second.shape,
                second.blake3
            ),
            TensorDifference::Moved {
                name,
                first_index,
                second_index,
            } => format!("moved    {name}: position {first_index} -> {second_index}"),
            _ => format!("differs  {}", d.name()),
        };
        out.line(&text)?;
    }
    Ok(())
}

/// A progress line on stderr, only for big files, only when stderr is a terminal and the output
/// is not JSON.
struct Progress {
    label: String,
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// Files smaller than this hash in well under a second: no bar.
    const MIN_SIZE: u64 = 256 << 20;

    fn new(input: &str, size: u64, json: bool) -> Self {
        Self {
            label: PathBuf::from(input)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| input.to_owned()),
            enabled: !json && size >= Self::MIN_SIZE && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now - last < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.started).as_secs_f64().max(1e-3);
        let percent = done as f64 * 100.0 / total.max(1) as f64;
        eprint!(
            "\rprovenance: hashing {} {percent:5.1}% {:.2}/{:.2} GB {:.2} GB/s\x1b[K",
            self.label,
            done as f64 / 1e9,
            total as f64 / 1e9,
            done as f64 / secs / 1e9
        );
    }

    fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}
