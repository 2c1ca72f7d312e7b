//! Chunked batch verification on every core.
//!
//! Events from files are read in chunks (at most [`CHUNK_EVENTS`] events or [`CHUNK_BYTES`]
//! bytes) by a reader thread; each chunk is parsed and verified on all cores in batches whose
//! signatures are checked together ([`Verifier::verify_many`]), and each batch's items go to a
//! [`Report`] of their own, in input order; the reports reach the [`Sink`] in input order, so
//! memory stays flat in the batch size and the output never depends on scheduling. Without
//! labels, the pool verifies a chunk while the caller's thread writes the one before it.

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

use provenance::Event;
use provenance::event::{self, Limits, Verification, Verifier};
use rayon::prelude::*;

use crate::evidence::Evidence;
use crate::report::{Report, Sink};
use crate::source::{self, Item, ReadError};
use crate::trust::TrustList;

/// Most events verified together (one parallel step).
pub const CHUNK_EVENTS: usize = 4096;

/// Most bytes of event text held in one chunk.
pub const CHUNK_BYTES: usize = 16 << 20;

/// How a [`Pipeline`] runs. Everything is off or empty by default.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Size limits of the event parser.
    pub limits: Limits,
    /// Relays to query (for labels and [`Pipeline::check_query`]).
    pub relays: Vec<String>,
    /// How relays are asked.
    pub relay_options: provenance_relay::Options,
    /// Collect NIP-32 audit labels about each event from [`Options::relays`].
    pub labels: bool,
    /// Labellers whose labels are asserted claims (the others' are unknown).
    pub labellers: Option<TrustList>,
}

/// Verifies events with evidence and reports them through a [`Report`]: build one per run.
pub struct Pipeline {
    pub(crate) evidence: Evidence,
    pub(crate) options: Options,
    /// Verifiers (with their key caches) lent to the threads of each parallel step.
    verifiers: Mutex<Vec<Verifier>>,
}

/// An item after parsing and verification, before labels and reporting.
pub(crate) enum Checked {
    Event {
        origin: String,
        event: Box<Event>,
        verification: Box<Verification>,
    },
    Error {
        origin: String,
        message: String,
    },
}

/// A verifier on loan from [`Pipeline::verifiers`], returned when dropped.
pub(crate) struct Lent<'a>(pub(crate) Verifier, &'a Mutex<Vec<Verifier>>);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.1.lock() {
            pool.push(std::mem::take(&mut self.0));
        }
    }
}

impl Pipeline {
    /// A pipeline checking every event against `evidence`.
    pub fn new(evidence: Evidence, options: Options) -> Self {
        Self {
            evidence,
            options,
            verifiers: Mutex::new(Vec::new()),
        }
    }

    /// The evidence every record is checked against.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// The options it runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Verifies files (or stdin, `-`) in chunks: a reader thread splits them into items while
    /// the previous chunk is verified on all cores. `new_report(n)` makes the report of a batch
    /// of `n` items; it is called on the pool's threads. A file that cannot be read is one
    /// error item, and the run goes on. `runtime` runs the label queries.
    ///
    /// # Errors
    ///
    /// Only the sink's: a failed write stops the run.
    pub fn verify_files<S: Sink>(
        &self,
        runtime: &tokio::runtime::Runtime,
        sink: &mut S,
        new_report: &(dyn Fn(usize) -> S::Report + Sync),
        paths: Vec<PathBuf>,
    ) -> io::Result<()> {
        enum Message {
            Items(Vec<Item>, u64),
            InputError(String, String),
        }
        let total: u64 = paths
            .iter()
            .filter(|p| p.as_os_str() != "-")
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let (tx, rx) = mpsc::sync_channel::<Message>(2);
        let limits = self.options.limits;
        std::thread::scope(|scope| -> io::Result<()> {
            scope.spawn(move || {
                for path in paths {
                    let mut items = Vec::new();
                    let mut bytes = 0usize;
                    let mut each = |item: Item| -> io::Result<()> {
                        bytes += item.text.as_ref().map_or(0, String::len) + 1;
                        items.push(item);
                        if items.len() >= CHUNK_EVENTS || bytes >= CHUNK_BYTES {
                            let chunk = std::mem::take(&mut items);
                            tx.send(Message::Items(chunk, std::mem::take(&mut bytes) as u64))
                                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                        }
                        Ok(())
                    };
                    let result = source::read_events(&path, &limits, &mut each);
                    let sent = match result {
                        Ok(()) => tx.send(Message::Items(items, bytes as u64)),
                        Err(ReadError::Input(message)) => {
                            tx.send(Message::Items(items, bytes as u64)).and_then(|()| {
                                tx.send(Message::InputError(path.display().to_string(), message))
                            })
                        }
                        // Only a closed channel stops the callback: the consumer has gone.
                        Err(ReadError::Output(_)) => return,
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
            if self.options.labels {
                for message in rx {
                    match message {
                        Message::Items(items, bytes) => {
                            if items.len() >= CHUNK_EVENTS {
                                sink.large_input(total);
                            }
                            let reports =
                                runtime.block_on(self.verify_chunk(items, sink, new_report));
                            sink.write(reports, bytes)?;
                        }
                        Message::InputError(origin, message) => {
                            sink.write(vec![error_report(new_report, &origin, &message)], 0)?
                        }
                    }
                }
                return Ok(());
            }
            // Without labels, a chunk is verified on the pool while this thread writes out the
            // one before it, so the pool does not wait for the writing.
            rayon::in_place_scope(|pool| -> io::Result<()> {
                type Pending<R> = Option<(mpsc::Receiver<Vec<R>>, u64)>;
                let write = |sink: &mut S, writing: Pending<S::Report>| match writing {
                    // The job always sends, unless it panicked (then the panic is raised
                    // again when the scope ends).
                    Some((reports, bytes)) => match reports.recv() {
                        Ok(reports) => sink.write(reports, bytes),
                        Err(_) => Ok(()),
                    },
                    None => Ok(()),
                };
                let mut writing: Pending<S::Report> = None;
                for message in rx {
                    match message {
                        Message::Items(items, bytes) => {
                            if items.len() >= CHUNK_EVENTS {
                                sink.large_input(total);
                            }
                            let (done, reports) = mpsc::sync_channel(1);
                            pool.spawn(move |_| {
                                let _ = done.send(self.verify_batches(items, new_report));
                            });
                            write(sink, writing.replace((reports, bytes)))?;
                        }
                        Message::InputError(origin, message) => {
                            write(sink, writing.take())?;
                            sink.write(vec![error_report(new_report, &origin, &message)], 0)?
                        }
                    }
                }
                write(sink, writing.take())
            })
        })
    }

    /// Parses, verifies (on all cores) and, when the options ask for them, collects labels
    /// for a chunk of items; returns one report per batch, in input order. Relay failures of
    /// the label queries go to `sink` as warnings.
    pub async fn verify_chunk<S: Sink>(
        &self,
        items: Vec<Item>,
        sink: &mut S,
        new_report: &(dyn Fn(usize) -> S::Report + Sync),
    ) -> Vec<S::Report> {
        if !self.options.labels {
            return self.verify_batches(items, new_report);
        }
        let checked = self.verify_items(items);
        let labels = self.fetch_labels(&checked, sink).await;
        self.report_checked(checked, Some(&labels), new_report)
    }

    /// Parses and verifies items on all cores (with the evidence, without labels). Items go to
    /// the threads in batches whose signatures are checked together; each batch gets its own
    /// `new_report(batch length)`, which is handed each item in input order.
    pub fn verify_batches<R: Report>(
        &self,
        items: Vec<Item>,
        new_report: &(dyn Fn(usize) -> R + Sync),
    ) -> Vec<R> {
        self.verify_in_batches(items, new_report, |report, origin, checked| match checked {
            Ok((event, verification)) => report.verdict(&origin, &event, &verification),
            Err(message) => report.error(&origin, &message),
        })
    }

    /// Parses and verifies items on all cores (with the evidence), in input order.
    pub(crate) fn verify_items(&self, items: Vec<Item>) -> Vec<Checked> {
        self.verify_in_batches(items, &Vec::with_capacity, |done, origin, checked| {
            done.push(match checked {
                Ok((event, verification)) => Checked::Event {
                    origin,
                    event: Box::new(event),
                    verification: Box::new(verification),
                },
                Err(message) => Checked::Error { origin, message },
            });
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// Reports items already verified, adding the claims of the labels found about each, in
    /// batches on all cores.
    pub(crate) fn report_checked<R: Report>(
        &self,
        checked: Vec<Checked>,
        labels: Option<&crate::labels::Found>,
        new_report: &(dyn Fn(usize) -> R + Sync),
    ) -> Vec<R> {
        let batch = event::verify_batch_size(checked.len(), rayon::current_num_threads());
        checked
            .into_par_iter()
            .chunks(batch)
            .map(|batch| {
                let mut verifier = self.lend_verifier();
                let mut report = new_report(batch.len());
                for item in batch {
                    match item {
                        Checked::Event {
                            origin,
                            event,
                            mut verification,
                        } => {
                            if let Some(labels) = labels {
                                let found = labels.get(&event.id).map_or(&[][..], Vec::as_slice);
                                self.add_labels(&mut verifier.0, &event, found, &mut verification);
                            }
                            report.verdict(&origin, &event, &verification);
                        }
                        Checked::Error { origin, message } => report.error(&origin, &message),
                    }
                }
                report
            })
            .collect()
    }

    /// The batching behind [`Pipeline::verify_batches`]: each batch gets a `start(batch
    /// length)` to which `add` hands each result, in input order.
    fn verify_in_batches<A: Send>(
        &self,
        items: Vec<Item>,
        start: &(dyn Fn(usize) -> A + Sync),
        add: impl Fn(&mut A, String, Result<(Event, Verification), String>) + Sync,
    ) -> Vec<A> {
        let items_len = items.len();
        items
            .into_par_iter()
            .chunks(event::verify_batch_size(
                items_len,
                rayon::current_num_threads(),
            ))
            .map(|batch| {
                let parsed: Vec<(String, Result<Event, String>, event::Expect)> = batch
                    .into_iter()
                    .map(|item| (item.origin, self.parse(item.text), item.expect))
                    .collect();
                let events: Vec<(&Event, &event::Expect)> = parsed
                    .iter()
                    .filter_map(|(_, event, expect)| Some((event.as_ref().ok()?, expect)))
                    .collect();
                let mut verifications = self.lend_verifier().0.verify_many(&events).into_iter();
                let mut done = start(parsed.len());
                for (origin, event, _) in parsed {
                    let checked = event.and_then(|event| {
                        // One verification per parsed event, in order.
                        let mut verification = verifications
                            .next()
                            .ok_or("internal error: an event was not verified")?;
                        self.evidence.check(&mut verification);
                        Ok((event, verification))
                    });
                    add(&mut done, origin, checked);
                }
                done
            })
            .collect()
    }

    /// An item's text as an event, or the message saying why it is not one.
    fn parse(&self, text: Result<String, String>) -> Result<Event, String> {
        let text = text?;
        event::parse_event(&text, &self.options.limits).map_err(|e| e.to_string())
    }

    /// A verifier for one thread of a parallel step, returned to the pool when dropped, so
    /// that the parsed-key caches live for the whole run.
    pub(crate) fn lend_verifier(&self) -> Lent<'_> {
        let verifier = self
            .verifiers
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        Lent(verifier, &self.verifiers)
    }

    /// Verifies one event with the evidence.
    pub(crate) fn verify_one(
        &self,
        verifier: &mut Verifier,
        event: &Event,
        expect: &event::Expect,
    ) -> Verification {
        let mut verification = verifier.verify_expected(event, expect);
        self.evidence.check(&mut verification);
        verification
    }
}

/// A report of one error item.
pub fn error_report<R: Report>(
    new_report: &(dyn Fn(usize) -> R + Sync),
    origin: &str,
    message: &str,
) -> R {
    let mut report = new_report(1);
    report.error(origin, message);
    report
}
