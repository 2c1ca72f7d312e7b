//! The text and `--json` rendering of verdicts: the CLI's [`Report`].
//!
//! Each batch of events is rendered into one string on the thread that verified it (the
//! pipeline makes one [`Rendered`] per batch), so writing it out is one copy, and no line is
//! allocated, copied or freed on its own.

use std::sync::Mutex;

use provenance::event::Verification;
use provenance::verdict::{Claim, Code};
use provenance::{Event, json, nip19};
use provenance_verify::Report;
use serde::Serialize;

use crate::output::{push_hex, push_u64, write_json};

/// Most output buffers kept for reuse (two chunks' worth of batches on a few threads).
const MAX_BUFFERS: usize = 64;

/// How verdicts are rendered.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Style {
    /// JSON Lines instead of text.
    pub(crate) json: bool,
    /// Only what did not verify.
    pub(crate) quiet: bool,
}

/// What a batch of items came to, rendered and ready to write.
#[derive(Default)]
pub(crate) struct Rendered {
    style: Style,
    /// Events that held.
    pub(crate) verified: u64,
    /// Events that did not hold.
    pub(crate) failed: u64,
    /// Items that were not events.
    pub(crate) errors: u64,
    /// Every claim's code, for the summary.
    pub(crate) codes: Vec<Code>,
    /// Lines for stdout, each with its newline (empty when nothing is printed).
    pub(crate) stdout: String,
    /// Lines for stderr (idem).
    pub(crate) stderr: String,
    /// Items still to be rendered, to size `stdout` once for a batch.
    items_left: usize,
}

/// Output buffers of batches already written, for the next batches: a fresh multi-megabyte
/// buffer per batch costs page faults.
#[derive(Default)]
pub(crate) struct Buffers(Mutex<Vec<String>>);

impl Buffers {
    fn take(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    /// Keeps the buffers of written batches.
    pub(crate) fn recycle(&self, batches: Vec<Rendered>) {
        if let Ok(mut pool) = self.0.lock() {
            for batch in batches {
                let mut buffer = batch.stdout;
                if buffer.capacity() > 0 && pool.len() < MAX_BUFFERS {
                    buffer.clear();
                    pool.push(buffer);
                }
            }
        }
    }
}

impl Rendered {
    /// The report of a batch of `items`, writing into a recycled buffer.
    pub(crate) fn new(style: Style, items: usize, buffers: &Buffers) -> Self {
        Self {
            style,
            stdout: buffers.take(),
            items_left: items,
            ..Self::default()
        }
    }
}

impl Report for Rendered {
    fn verdict(&mut self, origin: &str, ev: &Event, v: &Verification) {
        let Style { json, quiet } = self.style;
        let holds = v.holds();
        self.codes.extend(v.claims().iter().map(|c| c.code));
        if holds {
            self.verified += 1;
        } else {
            self.failed += 1;
        }
        // The first line of a batch makes room for all of them (a failure at a time with
        // --quiet).
        let lines = std::mem::take(&mut self.items_left).max(1);
        if quiet && holds {
            return;
        }
        let out = &mut self.stdout;
        if json {
            verdict_json(out, origin, ev, v, if quiet { 1 } else { lines });
        } else {
            let model = v
                .record()
                .map(|r| format!("  model {:?}", r.model.name))
                .unwrap_or_default();
            let mut lines = vec![format!(
                "{:<7} {origin}\n        id {}  by {}{model}",
                if holds { "OK" } else { "FAILED" },
                ev.id,
                nip19::encode_npub(&ev.pubkey),
            )];
            for claim in v.claims() {
                lines.push(format!(
                    "        {:<9} {:<31} {}",
                    claim.status.as_str(),
                    claim.code.as_str(),
                    claim.detail
                ));
            }
            out.push_str(&lines.join("\n"));
        }
        out.push('\n');
    }

    fn error(&mut self, origin: &str, message: &str) {
        #[derive(Serialize)]
        struct ItemError<'a> {
            input: &'a str,
            message: &'a str,
        }
        self.errors += 1;
        if self.style.json {
            let line = envelope(
                "error",
                &ItemError {
                    input: origin,
                    message,
                },
                128 + origin.len() + message.len(),
            );
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        } else {
            let stderr = &mut self.stderr;
            stderr.push_str("provenance: ");
            stderr.push_str(origin);
            stderr.push_str(": ");
            stderr.push_str(message);
            stderr.push('\n');
        }
    }
}

/// Appends a `verdict` message, `{"type":"verdict","data":{...}}` without the newline: the
/// bytes serde_json writes for a [`provenance_verify::Verdict`] with its input, written
/// directly. Claim codes and statuses are fixed ASCII names and ids hex, so only the input,
/// the details and the record go through the JSON string escaper. `out` makes room for
/// `lines` lines like this one first.
pub(crate) fn verdict_json(
    out: &mut String,
    origin: &str,
    ev: &Event,
    v: &Verification,
    lines: usize,
) {
    // Room for the line as the generated events make it: the fixed fields, the claims, and
    // about a kilobyte of record.
    let claims = v.claims();
    let line = 512
        + origin.len()
        + claims.iter().map(|c| c.detail.len() + 64).sum::<usize>()
        + if v.record().is_some() { 1024 } else { 0 };
    out.reserve(line.saturating_mul(lines));
    out.push_str(r#"{"type":"verdict","data":{"input":"#);
    json::push_str(out, origin);
    out.push_str(r#","id":""#);
    push_hex(out, ev.id.as_bytes());
    out.push_str(r#"","author":""#);
    push_hex(out, ev.pubkey.as_bytes());
    out.push_str(r#"","kind":"#);
    push_u64(out, ev.kind.as_u16().into());
    out.push_str(if v.holds() {
        r#","holds":true,"claims":["#
    } else {
        r#","holds":false,"claims":["#
    });
    for (i, claim) in claims.iter().enumerate() {
        // Every field, so that a new one cannot be left out unnoticed.
        let Claim {
            code,
            status,
            detail,
        } = claim;
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"code":""#);
        out.push_str(code.as_str());
        out.push_str(r#"","status":""#);
        out.push_str(status.as_str());
        out.push_str(r#"","detail":"#);
        json::push_str(out, detail);
        out.push('}');
    }
    out.push(']');
    if let Some(record) = v.record() {
        out.push_str(r#","record":"#);
        write_json(out, record);
    }
    out.push_str("}}");
}

/// One JSON Lines message, `{"type": kind, "data": data}`, without the newline, in a string
/// of at least `capacity` bytes.
fn envelope<T: Serialize>(kind: &str, data: &T, capacity: usize) -> String {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    let mut out = String::with_capacity(capacity);
    write_json(&mut out, &Envelope { kind, data });
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use provenance::event::{self, Expect, Limits, Verifier};
    use provenance_verify::Verdict;

    use super::*;

    /// `verdict_json` against serde_json writing the shared [`Verdict`] (the type the C ABI
    /// and the lookup server report): on every event fixture (with its output evidence when
    /// it has one, and a claim and an input that need escapes) and on generated events.
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }

    #[test]
    fn verdict_lines_are_the_bytes_serde_json_writes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events");
        let mut cases: Vec<(Event, Option<Vec<u8>>)> = Vec::new();
        for dir in ["valid", "invalid"] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            for path in paths {
                let fixture: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let ev = event::parse_event(&fixture["event"].to_string(), &Limits::default());
                let output = fixture["evidence"]["output"]
                    .as_str()
                    .map(|o| o.as_bytes().to_vec());
                cases.push((ev.unwrap(), output));
            }
        }
        let generator = provenance_fixtures::generate::EventGenerator::new();
        cases.extend((0..50).map(|i| (generator.event(i), None)));
        assert!(cases.len() > 70);
        let mut verifier = Verifier::default();
        for (n, (ev, output)) in cases.iter().enumerate() {
            let mut v = verifier.verify_expected(ev, &Expect::default());
            if let (Some(output), Some(verified)) = (output, v.verified()) {
                let claim = verified.check_output(output);
                v.add_evidence(claim);
            }
            if n % 3 == 0 {
                v.add_claim(Claim::new(
                    Code::LabelUntrusted,
                    "tab\t, \"quotes\", back\\slash, nul \u{0}, del \u{7f}, \u{2028} 😀",
                ));
            }
            let origin = format!("dir \"{n}\"\n/events.jsonl:{n}");
            let reference = serde_json::to_string(&Envelope {
                kind: "verdict",
                data: &Verdict::new(ev, &v).with_input(origin.clone()),
            })
            .unwrap();
            let mut ours = String::from("the line before\n");
            verdict_json(&mut ours, &origin, ev, &v, 1);
            assert_eq!(ours, format!("the line before\n{reference}"), "case {n}");
        }
    }

    #[test]
    fn claim_codes_and_statuses_need_no_json_escape() {
        // `verdict_json` copies them without escaping.
        for code in Code::ALL {
            for name in [code.as_str(), code.status().as_str()] {
                assert_eq!(serde_json::to_string(name).unwrap(), format!("\"{name}\""));
            }
        }
    }
}
