//! Writing results: human text or JSON Lines, and the exit status.
//!
//! With `--json`, every line on stdout is one message `{"type": ..., "data": ...}`; a command
//! that checks things ends with a `summary` message; the messages are documented in `docs/cli.md`.
//! Without `--json`, stdout carries results for people and stderr carries diagnostics, each
//! line starting with `provenance: `.

use std::io::{self, Write};
use std::process::ExitCode;

use serde::Serialize;

// Exit status 0: everything checked held (the default of `Status`).
/// Exit status: finished, and at least one claim failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status: an error (usage, unusable input, I/O, relays unreachable). Errors win.
pub(crate) const EXIT_ERROR: u8 = 2;

/// The text appended to `--help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
EXIT STATUS:
    0  everything that was checked holds
    1  finished, and at least one claim failed (a bad signature, a hash mismatch, ...)
    2  an error: bad usage, unusable input (malformed JSON, a bad nevent), I/O or relay errors
       (errors win over failed claims)";

/// Accumulates the exit status of a run: errors win over failures, failures over success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status(u8);

impl Status {
    pub(crate) fn failed(&mut self) {
        self.0 = self.0.max(EXIT_FAILED);
    }

    pub(crate) fn error(&mut self) {
        self.0 = EXIT_ERROR;
    }

    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self.0)
    }
}

/// How many bytes of short texts [`Out::lines`] gathers into one write; longer texts are
/// written directly.
const LINES_BUFFER: usize = 64 << 10;

/// Where results go.
pub(crate) struct Out {
    json: bool,
    stdout: io::StdoutLock<'static>,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            stdout: io::stdout().lock(),
        }
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Writes one JSON Lines message (only in `--json` mode; a no-op otherwise).
    pub(crate) fn message<T: Serialize>(&mut self, kind: &str, data: &T) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        #[derive(Serialize)]
        struct Envelope<'a, T> {
            #[serde(rename = "type")]
            kind: &'a str,
            data: &'a T,
        }
        serde_json::to_writer(&mut self.stdout, &Envelope { kind, data })?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }

    /// Writes a line for people (only without `--json`).
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        self.stdout.write_all(text.as_bytes())?;
        self.stdout.write_all(b"\n")
    }

    /// Writes texts of whole lines (each ending in a newline) regardless of mode, then
    /// flushes: a large text in one write of its own, small ones gathered.
    pub(crate) fn lines<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
        let mut writer = io::BufWriter::with_capacity(LINES_BUFFER, &mut self.stdout);
        for text in texts {
            writer.write_all(text.as_bytes())?;
        }
        writer.flush()?;
        drop(writer);
        self.stdout.flush()
    }

    /// Writes raw text regardless of mode (the event JSON of `sign`).
    pub(crate) fn raw(&mut self, text: &str) -> io::Result<()> {
        self.stdout.write_all(text.as_bytes())?;
        self.stdout.write_all(b"\n")?;
        self.stdout.flush()
    }
}

/// Prints a diagnostic on stderr. A closed stderr is ignored (`eprintln!` would panic), so a
/// long-running command is never stopped by its own warnings.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(io::stderr(), "provenance: {message}");
}

mod compact;

pub(crate) use self::compact::{push_hex, push_u64, write_json};
