//! What a replay or a scored check found, for people (one verdict line, then details) and as
//! the audit label a replaying party publishes.

use provenance::label::Label;
use provenance::{EventId, PublicKey};

use crate::score::ScoreReport;
use crate::{Divergence, Outcome, Report, Token};

/// A token: its id, its text and its log-probability when known.
pub fn token(t: &Token) -> String {
    let mut s = format!("{}", t.id);
    if let Some(text) = &t.text {
        s.push_str(&format!(" {text:?}"));
    }
    if let Some(lp) = t.logprob {
        s.push_str(&format!(" (logprob {lp:.4})"));
    }
    s
}

/// The verdict line (`what MATCH: matched` or `what DIVERGED: reason`, then `engine`) and, for
/// a divergence, the recorded token, the other one (named `other`) and the top alternatives.
fn verdict(
    out: &mut String,
    what: &str,
    outcome: &Outcome,
    matched: &str,
    other: &str,
    engine: &str,
) {
    match outcome {
        Outcome::Match => out.push_str(&format!("{what} MATCH: {matched}{engine}\n")),
        Outcome::Diverged(d) => {
            out.push_str(&format!("{what} DIVERGED: {}{engine}\n", d.reason));
            divergence(out, d, other);
        }
    }
}

fn divergence(out: &mut String, d: &Divergence, other: &str) {
    if let Some(r) = &d.recorded {
        out.push_str(&format!("  recorded: {}\n", token(r)));
    }
    if let Some(p) = &d.replayed {
        out.push_str(&format!("  {other}: {}\n", token(p)));
    }
    if !d.alternatives.is_empty() {
        let top: Vec<String> = d.alternatives.iter().map(token).collect();
        out.push_str(&format!("  top there: {}\n", top.join(", ")));
    }
}

fn positions<'a>(positions: impl Iterator<Item = &'a u64>) -> String {
    positions
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report of a full replay of event `id`.
pub fn render(id: EventId, report: &Report) -> String {
    let mut out = String::new();
    let engine = if report.engine.other_engine {
        " on ANOTHER engine than recorded (--allow-other-engine)"
    } else {
        " on the recorded engine binary"
    };
    let matched = format!("{} output tokens identical", report.replayed_tokens);
    verdict(
        &mut out,
        "replay",
        &report.outcome,
        &matched,
        "replayed",
        engine,
    );
    out.push_str(&format!("  event: {}\n", id.to_hex()));
    if let Some(sha) = &report.engine.binary_sha256 {
        out.push_str(&format!("  engine sha256: {sha}\n"));
    }
    out.push_str(&format!(
        "  tokens: prompt {}, recorded {}, replayed {}\n",
        report.prompt_tokens, report.recorded_tokens, report.replayed_tokens
    ));
    out.push_str(&format!(
        "  time: engine start {} ms, generation {} ms\n",
        report.startup_ms, report.generation_ms
    ));
    out
}

/// The report of a scored (teacher-forced) check of event `id`.
pub fn render_score(id: EventId, report: &ScoreReport) -> String {
    let mut out = String::new();
    let engine = if report.tool.other_engine {
        " with a scoring program NOT of the recorded engine's build (--allow-other-engine)"
    } else {
        " with the recorded engine's build"
    };
    let matched = format!(
        "the sampler picks the recorded token at all {} positions",
        report.recorded_tokens
    );
    verdict(
        &mut out,
        "score",
        &report.outcome,
        &matched,
        "picked",
        engine,
    );
    if !report.near_ties.is_empty() {
        out.push_str(&format!(
            "  near ties tolerated: {} (positions {})\n",
            report.near_ties.len(),
            positions(report.near_ties.iter().map(|t| &t.position))
        ));
    }
    if !report.fallbacks.is_empty() {
        let changed: Vec<&u64> = report
            .fallbacks
            .iter()
            .filter(|f| f.batch_picked != f.picked)
            .map(|f| &f.position)
            .collect();
        let which = if report.mode == "batched" {
            format!(
                " ({})",
                positions(report.fallbacks.iter().map(|f| &f.position))
            )
        } else {
            " (all)".to_owned()
        };
        let changed = if changed.is_empty() {
            String::new()
        } else {
            format!(
                "; the batched pass alone picked another token at {}",
                positions(changed.into_iter())
            )
        };
        out.push_str(&format!(
            "  decided by one-token decoding: {} positions{which}{changed}\n",
            report.fallbacks.len()
        ));
    }
    out.push_str(&format!("  event: {}\n", id.to_hex()));
    out.push_str(&format!(
        "  llama-score sha256: {}\n",
        report.tool.binary_sha256
    ));
    out.push_str(&format!(
        "  tokens: prompt {}, recorded {}, agreeing {}\n",
        report.prompt_tokens, report.recorded_tokens, report.agreeing
    ));
    let t = &report.timings;
    out.push_str(&format!(
        "  time: load {:.0} ms, prompt {:.0} ms, output pass {:.0} ms, one-token fallback {:.0} ms \
         ({} tokens), sampling {:.0} ms\n",
        t.load_ms, t.prompt_ms, t.decode_ms, t.fallback_ms, t.one_token_decodes, t.sample_ms
    ));
    out
}

/// The audit label of a finished replay: `replay.match` or `replay.mismatch` about event
/// `id` by `author`, its content naming the engine binary that replayed it and what was
/// found.
pub fn replay_label(id: EventId, author: PublicKey, relays: &[String], report: &Report) -> Label {
    let (value, found) = match &report.outcome {
        Outcome::Match => (
            "replay.match",
            format!("{} output token ids identical", report.replayed_tokens),
        ),
        Outcome::Diverged(d) => ("replay.mismatch", format!("diverged: {}", d.reason)),
    };
    let engine = match &report.engine.binary_sha256 {
        Some(sha) => format!("llama-server binary sha256 {sha}"),
        None => format!("a running llama-server ({})", report.engine.args.join(" ")),
    };
    let other = if report.engine.other_engine {
        ", not the recorded engine binary"
    } else {
        ", the recorded engine binary"
    };
    Label {
        target: id,
        target_author: Some(author),
        relay_hint: relays.first().cloned(),
        values: vec![value.to_owned()],
        detail: format!("replayed on {engine}{other}: {found}"),
    }
}
