//! Where rendered batches go, in input order: stdout and stderr, the progress bar, the
//! summary and the exit status. The CLI's [`Sink`].

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use provenance::verdict::{Code, Status};
use provenance_verify::Sink;
use serde::Serialize;

use super::render::{Buffers, Rendered};
use crate::output::{Out, Status as Exit, warn};

#[derive(Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) events: u64,
    verified: u64,
    failed: u64,
    errors: u64,
    codes: BTreeMap<&'static str, u64>,
}

/// Writes outcomes in order and counts them.
pub(crate) struct Writer<'a> {
    out: Out,
    exit: Exit,
    pub(crate) summary: Summary,
    /// How often each code was reported, by its place in [`Code::ALL`] (put in
    /// `summary.codes` at the end: a map by name is slow to count into).
    code_counts: Vec<u64>,
    progress: Option<indicatif::ProgressBar>,
    show_progress: bool,
    buffers: &'a Buffers,
    /// `--quiet`: the summary is printed even for one event (it is the only sign that the
    /// event held).
    pub(crate) quiet: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(json: bool, show_progress: bool, buffers: &'a Buffers) -> Self {
        Self {
            out: Out::new(json),
            exit: Exit::default(),
            summary: Summary::default(),
            code_counts: vec![0; Code::ALL.len()],
            progress: None,
            show_progress,
            buffers,
            quiet: false,
        }
    }

    fn start_progress(&mut self, total: u64) {
        if self.progress.is_some() {
            return;
        }
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        // The template is a constant known to parse.
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bar:30} {msg} ({elapsed})",
        ) {
            bar.set_style(style);
        }
        self.progress = Some(bar);
    }

    /// Writes outcomes in order: stderr's lines in one write, then stdout's as they are (one
    /// write per batch of lines, small outcomes gathered into larger writes).
    fn emit_all(&mut self, outcomes: &[Rendered], bytes: u64) -> io::Result<()> {
        let mut stderr = String::new();
        for o in outcomes {
            self.summary.events += o.verified + o.failed;
            self.summary.verified += o.verified;
            self.summary.failed += o.failed;
            self.summary.errors += o.errors;
            if o.failed > 0 {
                self.exit.failed();
            }
            if o.errors > 0 {
                self.exit.error();
            }
            for code in &o.codes {
                // Every code is in `Code::ALL`.
                if let Some(i) = Code::ALL.iter().position(|c| c == code) {
                    self.code_counts[i] += 1;
                }
            }
            stderr.push_str(&o.stderr);
        }
        let write_stderr = |text: &str| {
            if !text.is_empty() {
                let _ = io::stderr().lock().write_all(text.as_bytes());
            }
        };
        match &self.progress {
            Some(bar) => {
                bar.suspend(|| write_stderr(&stderr));
                bar.inc(bytes);
                let s = &self.summary;
                bar.set_message(format!(
                    "{} verified, {} failed, {} errors",
                    s.verified, s.failed, s.errors
                ));
            }
            None => write_stderr(&stderr),
        }
        let stdout = outcomes.iter().map(|o| o.stdout.as_str());
        match &self.progress {
            Some(bar) => bar.suspend(|| self.out.lines(stdout))?,
            None => self.out.lines(stdout)?,
        }
        Ok(())
    }

    /// Writes the summary and gives the exit status.
    pub(crate) fn finish(mut self) -> Result<ExitCode> {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        for (code, &n) in Code::ALL.iter().zip(&self.code_counts) {
            if n > 0 {
                self.summary.codes.insert(code.as_str(), n);
            }
        }
        self.out.message("summary", &self.summary)?;
        let s = &self.summary;
        let items = s.events + s.errors;
        if !self.out.json() && (items > 1 || (self.quiet && items > 0)) {
            self.out.line(&format!(
                "{} event{}: {} verified, {} failed, {} error{}",
                s.events,
                if s.events == 1 { "" } else { "s" },
                s.verified,
                s.failed,
                s.errors,
                if s.errors == 1 { "" } else { "s" },
            ))?;
            if s.events > 1 {
                let failing: Vec<String> = s
                    .codes
                    .iter()
                    .filter(|(code, _)| {
                        Code::ALL
                            .iter()
                            .any(|c| c.as_str() == **code && c.status() == Status::Failed)
                    })
                    .map(|(code, n)| format!("{code} x{n}"))
                    .collect();
                if !failing.is_empty() {
                    self.out
                        .line(&format!("failed claims: {}", failing.join(", ")))?;
                }
            }
        }
        if self.summary.events == 0 && self.summary.errors == 0 {
            warn("no events found in the input");
            self.exit.error();
        }
        Ok(self.exit.code())
    }
}

impl Sink for Writer<'_> {
    type Report = Rendered;

    fn write(&mut self, reports: Vec<Rendered>, input_bytes: u64) -> io::Result<()> {
        let written = self.emit_all(&reports, input_bytes);
        self.buffers.recycle(reports);
        written
    }

    fn warning(&mut self, message: &str) {
        warn(message);
    }

    fn large_input(&mut self, total_bytes: u64) {
        if self.show_progress {
            self.start_progress(total_bytes);
        }
    }
}

impl Writer<'_> {
    /// Writes one report on its own (an input that names nothing to verify).
    pub(crate) fn write_one(&mut self, report: Rendered) -> io::Result<()> {
        self.write(vec![report], 0)
    }
}
