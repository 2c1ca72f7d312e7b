//! `provenance inspect`: show what an event or a NIP-19 string contains, without judging it.

use std::process::ExitCode;

use anyhow::Result;
use provenance::event::{self, Limits};
use provenance::nip19::{self, Nip19};
use provenance_verify::source::{self, Item, ReadError};
use serde::Serialize;
use serde_json::Value;

use crate::input::{self, Source};
use crate::output::{Out, Status as Exit, warn};

/// Show the contents of events or NIP-19 strings (nothing is verified or fetched)
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Event files (JSON or JSON Lines), directories, "-" for stdin, or nevent/note/npub/nprofile strings
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<String>,
    /// Print JSON Lines instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Shown<'a> {
    input: &'a str,
    event: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<Value>,
}

#[derive(Serialize)]
struct Decoded<'a> {
    input: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pubkey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_kind: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relays: Vec<String>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut out = Out::new(args.json);
    let mut exit = Exit::default();
    let limits = Limits::default();
    for input in &args.inputs {
        let bare = input.strip_prefix("nostr:").unwrap_or(input);
        if ["nevent1", "note1", "npub1", "nprofile1", "naddr1"]
            .iter()
            .any(|p| bare.starts_with(p))
        {
            match nip19::decode_uri(input) {
                Ok(decoded) => show_nip19(&mut out, input, &decoded)?,
                Err(e) => {
                    exit.error();
                    warn(&format!("{input}: {e}"));
                }
            }
            continue;
        }
        let paths = match input::classify(input) {
            Ok(Source::Files(paths)) => paths,
            Ok(Source::Remote { .. }) => {
                exit.error();
                warn(&format!(
                    "{input}: inspect does not fetch; use `provenance verify`"
                ));
                continue;
            }
            Err(message) => {
                exit.error();
                warn(&format!("{}: {message}", input::redact(input)));
                continue;
            }
        };
        for path in paths {
            let result = source::read_events(&path, &limits, &mut |item: Item| {
                let text = match item.text {
                    Ok(text) => text,
                    Err(message) => {
                        exit.error();
                        warn(&format!("{}: {message}", item.origin));
                        return Ok(());
                    }
                };
                match event::parse_event(&text, &limits) {
                    Ok(ev) => show_event(&mut out, &item.origin, &ev),
                    Err(e) => {
                        exit.error();
                        warn(&format!("{}: {e}", item.origin));
                        Ok(())
                    }
                }
            });
            match result {
                Ok(()) => {}
                Err(ReadError::Input(message)) => {
                    exit.error();
                    warn(&message);
                }
                Err(ReadError::Output(e)) => return Err(e.into()),
            }
        }
    }
    Ok(exit.code())
}

fn show_event(out: &mut Out, origin: &str, ev: &provenance::Event) -> std::io::Result<()> {
    let event_value: Value = serde_json::from_str(&ev.as_json()).unwrap_or(Value::Null);
    let record: Option<Value> = serde_json::from_str(&ev.content).ok();
    out.message(
        "event",
        &Shown {
            input: origin,
            event: event_value,
            record: record.clone(),
        },
    )?;
    if out.json() {
        return Ok(());
    }
    out.line(origin)?;
    out.line(&format!("  id          {}", ev.id))?;
    out.line(&format!(
        "  author      {} ({})",
        nip19::encode_npub(&ev.pubkey),
        ev.pubkey
    ))?;
    out.line(&format!("  kind        {}", ev.kind.as_u16()))?;
    out.line(&format!("  created_at  {}", ev.created_at.as_secs()))?;
    for tag in ev.tags.iter() {
        out.line(&format!("  tag         {:?}", tag.as_slice()))?;
    }
    match record {
        Some(record) => {
            let pretty = serde_json::to_string_pretty(&record).unwrap_or_default();
            out.line("  record (content, unverified):")?;
            for line in pretty.lines() {
                out.line(&format!("    {line}"))?;
            }
        }
        None => out.line(&format!("  content     {:?}", ev.content))?,
    }
    Ok(())
}

fn show_nip19(out: &mut Out, input: &str, decoded: &Nip19) -> std::io::Result<()> {
    let shown = match decoded {
        Nip19::Npub(pk) => Decoded {
            input,
            kind: "npub",
            id: None,
            pubkey: Some(pk.to_hex()),
            event_kind: None,
            relays: Vec::new(),
        },
        Nip19::Note(id) => Decoded {
            input,
            kind: "note",
            id: Some(id.to_hex()),
            pubkey: None,
            event_kind: None,
            relays: Vec::new(),
        },
        Nip19::Nevent(n) => Decoded {
            input,
            kind: "nevent",
            id: Some(n.id.to_hex()),
            pubkey: n.author.map(|a| a.to_hex()),
            event_kind: n.kind,
            relays: n.relays.clone(),
        },
        Nip19::Nprofile(p) => Decoded {
            input,
            kind: "nprofile",
            id: None,
            pubkey: Some(p.pubkey.to_hex()),
            event_kind: None,
            relays: p.relays.clone(),
        },
        Nip19::Naddr(a) => Decoded {
            input,
            kind: "naddr",
            id: Some(a.identifier.clone()),
            pubkey: Some(a.author.to_hex()),
            event_kind: Some(a.kind),
            relays: a.relays.clone(),
        },
        // Secret keys are never shown.
        Nip19::Nsec(_) => {
            warn(&format!(
                "{}: a secret key; not shown",
                &input[..input.len().min(10)]
            ));
            return Ok(());
        }
    };
    out.message("nip19", &shown)?;
    if !out.json() {
        out.line(&format!("{input}\n  type    {}", shown.kind))?;
        if let Some(id) = &shown.id {
            out.line(&format!("  id      {id}"))?;
        }
        if let Some(pk) = &shown.pubkey {
            out.line(&format!("  pubkey  {pk}"))?;
        }
        if let Some(k) = shown.event_kind {
            out.line(&format!("  kind    {k}"))?;
        }
        for r in &shown.relays {
            out.line(&format!("  relay   {r}"))?;
        }
    }
    Ok(())
}
