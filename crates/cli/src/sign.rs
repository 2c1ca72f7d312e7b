//! `provenance sign`: sign a record for output bytes, offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use provenance::clock::SystemClock;
use provenance::commitment::{FORMAT_TEXT, PromptCommitment, Salt};
use provenance::record::Output;
use provenance::template::Template;
use provenance::{event, nip19};
use serde::Serialize;
use serde_json::Value;

use crate::keyfile;
use crate::output::Out;

/// Largest output or prompt file signed (64 MiB).
const MAX_INPUT_BYTES: u64 = 64 << 20;
/// Largest record template read (1 MiB).
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Sign the provenance of output bytes: a record template + the output -> a signed event
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The output bytes to sign for ("-" for stdin)
    #[arg(long = "output-file", value_name = "FILE")]
    output_file: PathBuf,
    /// Record template: a JSON record without `output` (model, runtime, sampling, ...);
    /// `output` is computed from the output bytes
    #[arg(long, value_name = "FILE", required_unless_present = "model_name")]
    record: Option<PathBuf>,
    /// Model name, for signing without a record template
    #[arg(long, value_name = "NAME", conflicts_with = "record")]
    model_name: Option<String>,
    /// MIME type of the output
    #[arg(long, default_value = provenance::record::TEXT_PLAIN_UTF8)]
    mime: String,
    /// Publish the output text inside the record (off by default: only hashes are published)
    #[arg(long)]
    include_text: bool,
    /// Leave `output.fingerprints` out (written for UTF-8 text by default: they let a copied
    /// paragraph be looked up, and reveal which runs of words the text holds to whoever can
    /// guess them)
    #[arg(long)]
    no_fingerprints: bool,
    /// Commit to this prompt (its bytes as given) with a fresh salt; the salt is printed
    #[arg(long, value_name = "FILE")]
    prompt: Option<PathBuf>,
    /// Signing key file [default: $XDG_CONFIG_HOME/provenance/key.nsec]
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Relay URLs to name in the printed nevent
    #[arg(long = "relay-hint", value_name = "URL")]
    relay_hints: Vec<String>,
    /// Print JSON Lines instead of the bare event
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Signed<'a> {
    event: &'a Value,
    nevent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_salt: Option<String>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let key_path = match &args.key {
        Some(p) => p.clone(),
        None => keyfile::default_path()?,
    };
    let keys = keyfile::load(&key_path)?;
    let output = read_capped(&args.output_file, MAX_INPUT_BYTES)?;
    let template = match (&args.record, &args.model_name) {
        (Some(path), _) => template(path)?,
        (None, Some(name)) => Template::for_model(name),
        (None, None) => bail!("pass --record FILE or --model-name NAME"),
    };
    let mut out_desc = Output::from_bytes(&output, &args.mime);
    if args.include_text {
        let text = std::str::from_utf8(&output).with_context(|| {
            format!(
                "--include-text: {} is not UTF-8 text",
                args.output_file.display()
            )
        })?;
        out_desc = out_desc.with_text(text);
    }
    // Fingerprints of a text output, as for its normalised hash.
    if !args.no_fingerprints
        && out_desc.normalized.is_some()
        && let Ok(text) = std::str::from_utf8(&output)
    {
        out_desc = out_desc.with_fingerprints(text);
    }
    let (salt, commitment) = match &args.prompt {
        Some(path) => {
            let prompt = read_capped(path, MAX_INPUT_BYTES)?;
            let salt = Salt::random();
            let commitment = PromptCommitment::commit(FORMAT_TEXT, &prompt, &salt);
            (Some(salt), Some(commitment))
        }
        None => (None, None),
    };
    let record = template
        .fill(&out_desc, commitment.as_ref())
        .map_err(|e| match &args.record {
            Some(p) => anyhow::anyhow!("record template {} {e}", p.display()),
            None => anyhow::anyhow!("cannot build the record: {e}"),
        })?;
    let signed = event::sign(&record, &keys, &SystemClock)?;
    let nevent = nip19::Nevent {
        id: signed.id,
        relays: args.relay_hints.clone(),
        author: Some(signed.pubkey),
        kind: Some(u32::from(event::KIND)),
    }
    .encode()?;
    let event_value: Value = serde_json::from_str(&signed.as_json())?;
    let mut out = Out::new(args.json);
    if out.json() {
        out.message(
            "signed",
            &Signed {
                event: &event_value,
                nevent: &nevent,
                prompt_salt: salt.as_ref().map(Salt::to_string),
            },
        )?;
    } else {
        out.raw(&signed.as_json())?;
        crate::output::warn(&format!("signed {nevent}"));
        if let Some(salt) = &salt {
            crate::output::warn(&format!(
                "prompt salt {salt} (keep it: with the prompt it proves the commitment)"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a record template: a JSON object without `output` ([`Template`]).
fn template(path: &Path) -> Result<Template> {
    let bytes = read_capped(path, MAX_RECORD_BYTES)?;
    Template::parse(&bytes).map_err(|e| anyhow::anyhow!("record template {} {e}", path.display()))
}

/// Reads a file (or stdin for "-") of at most `cap` bytes.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    Ok(provenance_verify::source::read_capped(path, cap)?)
}
