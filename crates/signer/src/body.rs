//! The response body wrapper: hashes every data frame as it goes out and signs at end of
//! stream.
//!
//! A streamed answer is passed on frame by frame, unchanged and without delay; each data
//! frame is hashed and fed to the stream parser. When the upstream body ends (it returns no
//! more frames, or says [`Body::is_end_stream`]), the record is built and signed here and
//! committed to the store ([`crate::store::Store::submit`]: on this thread when the store is
//! idle, else by its writer thread), and only then does this body end, so a client never
//! sees the end of a response whose event is not stored. In inline mode one more message
//! follows: an SSE event `provenance` or an NDJSON line `{"provenance": ...}`, outside the
//! bytes the record's `response.sha256` covers.
//!
//! When the upstream body fails mid-stream, the event is signed with `output.truncated`
//! over exactly the bytes already passed on, then the error is passed on (the client sees the
//! connection break), but only once the server has written out what it holds: a server
//! drops its unwritten buffer on a body error, and the client would miss bytes the event
//! covers ([`crate::delivery`]). When the client goes away first, nothing is signed: the
//! bytes handed out may never have reached it, unless the answer was served already: the
//! engine's last message ([`Generation::last`]) had been passed on and the connection flushed
//! after it, so every byte handed out is on the socket. Clients stop reading at that message
//! (the official `openai` Python client closes right after `data: [DONE]`), before the
//! upstream's end and the chunked terminator; such an answer is signed over exactly the bytes
//! passed on.
//!
//! A stream is read for the record up to the signer's response cap
//! ([`crate::SignerBuilder::max_response_bytes`]): past it, the parser and everything it held
//! (text, reasoning, tool calls, token ids) are dropped, the rest of the answer is passed on
//! unchanged and unread, and nothing is signed ([`NoEvent::OverCap`]), so one answer holds at
//! most the cap whatever its length.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use provenance::Timestamp;
use provenance::clock::FixedClock;
use provenance::commitment::Salt;
use provenance::digest::{Sha256Digest, Sha256Hasher};

use crate::Signer;
use crate::adapter::stream::{Framing, Item, Kind};
use crate::adapter::{Generation, RequestInfo};
use crate::delivery::Delivery;
use crate::metrics::Metrics;
use crate::record::{self, Exchange, Fixed};
use crate::store::{RequestId, StoreError};

/// The error type of [`SigningBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body from [`crate::SigningService`].
pub struct SigningBody<B> {
    state: State<B>,
}

enum State<B> {
    Passthrough(Pin<Box<B>>),
    Full(Full<Bytes>),
    Streaming(Box<Streaming<B>>),
}

struct Streaming<B> {
    inner: Pin<Box<B>>,
    pending: Arc<Pending>,
    hasher: Option<Sha256Hasher>,
    bytes: u64,
    framing: Framing,
    generation: Generation,
    /// The response cap: past this many bytes the answer is no longer read.
    cap: u64,
    /// The answer went past `cap`: nothing is held and nothing will be signed.
    over_cap: bool,
    /// Once the engine's last message has been passed on: the connection's flush count when
    /// the latest data frame was handed to the server. A later flush means every byte passed
    /// on is on the socket ([`crate::delivery`]).
    served_at: Option<u64>,
    phase: Phase,
}

enum Phase {
    /// Passing frames on.
    Streaming,
    /// Signing and storing; then send `tail` (trailers, or the upstream error).
    Signing {
        task: Finishing,
        tail: Option<Result<Frame<Bytes>, BoxError>>,
    },
    /// The inline message, then the tail.
    Tail(Vec<Result<Frame<Bytes>, BoxError>>),
    /// An error to pass on once the bytes before it are written out.
    Breaking {
        error: Option<BoxError>,
        wait: Wait,
    },
    Done,
}

/// What the error of a broken answer waits for ([`crate::delivery`]).
enum Wait {
    /// A flush of the connection after this many (with a [`Delivery`]).
    Flush(Delivery, u64),
    /// One yield to the server (without), not yet made.
    Yield,
    /// The yield made.
    Yielded,
}

impl<B> SigningBody<B> {
    pub(crate) fn passthrough(inner: B) -> Self {
        Self {
            state: State::Passthrough(Box::pin(inner)),
        }
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        Self {
            state: State::Full(Full::new(bytes)),
        }
    }

    pub(crate) fn streaming(inner: B, pending: Pending) -> Self {
        let framing = Framing::new(pending.info.api.framing());
        let cap = pending.signer.max_response_bytes as u64;
        Self {
            state: State::Streaming(Box::new(Streaming {
                inner: Box::pin(inner),
                pending: Arc::new(pending),
                hasher: Some(Sha256Hasher::new()),
                bytes: 0,
                framing,
                generation: Generation::default(),
                cap,
                over_cap: false,
                served_at: None,
                phase: Phase::Streaming,
            })),
        }
    }
}

impl<B> Body for SigningBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().state {
            State::Passthrough(inner) => inner
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
            State::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|never| match never {}))),
            State::Streaming(streaming) => streaming.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Passthrough(inner) => inner.is_end_stream(),
            State::Full(full) => full.is_end_stream(),
            State::Streaming(streaming) => matches!(streaming.phase, Phase::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Passthrough(inner) => inner.size_hint(),
            State::Full(full) => full.size_hint(),
            State::Streaming(_) => SizeHint::default(),
        }
    }
}

impl<B> Streaming<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match &mut self.phase {
                Phase::Streaming => {
                    if self.inner.is_end_stream() {
                        self.start_signing(false, None);
                        continue;
                    }
                    match ready!(self.inner.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                self.observe(data);
                                return Poll::Ready(Some(Ok(frame)));
                            }
                            // Trailers end the body: sign first.
                            self.start_signing(false, Some(Ok(frame)));
                        }
                        Some(Err(e)) => self.start_signing(true, Some(Err(e.into()))),
                        None => self.start_signing(false, None),
                    }
                }
                Phase::Signing { task, tail } => {
                    let outcome = ready!(Pin::new(task).poll(cx));
                    let tail = tail.take();
                    let mut frames = Vec::new();
                    match outcome {
                        Ok(inline) => {
                            if let Some(inline) = inline {
                                frames.push(Ok(Frame::data(self.inline_message(&inline))));
                            }
                            frames.extend(tail);
                        }
                        // Not stored: the end of the response is never released.
                        Err(reason) => frames.push(Err(reason.into())),
                    }
                    frames.reverse();
                    self.phase = Phase::Tail(frames);
                }
                Phase::Tail(frames) => match frames.pop() {
                    Some(Err(error)) => {
                        let wait = match &self.pending.delivery {
                            Some(delivery) => Wait::Flush(delivery.clone(), delivery.flushes()),
                            None => Wait::Yield,
                        };
                        self.phase = Phase::Breaking {
                            error: Some(error),
                            wait,
                        };
                    }
                    Some(frame) => return Poll::Ready(Some(frame)),
                    None => self.phase = Phase::Done,
                },
                Phase::Breaking { error, wait } => {
                    match wait {
                        Wait::Flush(delivery, since) => {
                            ready!(delivery.poll_flushed_since(*since, cx));
                        }
                        // Pending lets the server flush before it polls the body again.
                        Wait::Yield => {
                            *wait = Wait::Yielded;
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        Wait::Yielded => {}
                    }
                    let error = error.take();
                    self.phase = Phase::Done;
                    if let Some(error) = error {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Phase::Done => return Poll::Ready(None),
            }
        }
    }

    fn observe(&mut self, data: &Bytes) {
        self.bytes += data.len() as u64;
        if self.over_cap {
            return;
        }
        if self.bytes > self.cap {
            self.pass_over_cap();
            return;
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(data);
        }
        let api = self.pending.info.api;
        let generation = &mut self.generation;
        self.framing
            .feed(data, &mut |item: Item| generation.apply_item(api, &item));
        if self.generation.last
            && let Some(delivery) = &self.pending.delivery
        {
            self.served_at = Some(delivery.flushes());
        }
    }
}

impl<B> Streaming<B> {
    /// The answer went past the cap: drops what it held and says, once, that it passes
    /// unsigned. The id is failed at the end ([`Streaming::start_signing`], or the drop).
    fn pass_over_cap(&mut self) {
        self.over_cap = true;
        self.generation = Generation::default();
        self.framing = Framing::new(self.pending.info.api.framing());
        self.hasher = None;
        Metrics::bump(&self.pending.signer.metrics().unsigned);
        use std::io::Write;
        // Not eprintln!: a closed stderr must not fail the answer.
        let _ = writeln!(
            std::io::stderr(),
            "provenance: answer {}: the stream went past the response cap of {} bytes (--max-response-bytes); it is passed on unsigned",
            self.pending.id,
            self.cap
        );
    }

    /// Marks the id of an answer that went past the cap as unsigned, with why.
    fn fail_over_cap(&self) {
        self.pending
            .signer
            .registry
            .fail(self.pending.id, NoEvent::OverCap(self.cap).to_string());
    }

    fn start_signing(&mut self, broke: bool, tail: Option<Result<Frame<Bytes>, BoxError>>) {
        if self.over_cap {
            self.fail_over_cap();
            // No event, so no inline message: the tail (trailers, an error) as it came.
            self.phase = Phase::Tail(tail.into_iter().collect());
            return;
        }
        let api = self.pending.info.api;
        let generation = &mut self.generation;
        self.framing
            .finish(&mut |item: Item| generation.apply_item(api, &item));
        let generation = std::mem::take(&mut self.generation);
        // Truncated: the upstream broke, or ended without saying the answer was complete.
        let truncated = broke || !generation.complete;
        let digest = self
            .hasher
            .take()
            .map_or_else(|| Sha256Hasher::new().finalize(), Sha256Hasher::finalize);
        let task = self
            .pending
            .finish(&generation, digest, self.bytes, truncated);
        self.phase = Phase::Signing { task, tail };
    }

    /// Whether every byte passed on, the engine's last message among them, is known to be on
    /// the socket: a flush completed after the latest frame was handed over. Without a
    /// [`Delivery`] (HTTP/2, or a server that does not count flushes) this is never known.
    fn served(&self) -> bool {
        match (&self.pending.delivery, self.served_at) {
            (Some(delivery), Some(at)) => {
                self.generation.last && self.generation.unreadable == 0 && delivery.flushes() > at
            }
            _ => false,
        }
    }

    /// Signs the served answer without waiting for the upstream's end: over the bytes passed
    /// on, the messages already read (no partial message is completed).
    fn sign_served(&mut self) {
        let generation = std::mem::take(&mut self.generation);
        let digest = self
            .hasher
            .take()
            .map_or_else(|| Sha256Hasher::new().finalize(), Sha256Hasher::finalize);
        let truncated = !generation.complete;
        drop(
            self.pending
                .finish(&generation, digest, self.bytes, truncated),
        );
    }

    fn inline_message(&self, inline: &str) -> Bytes {
        match self.pending.info.api.framing() {
            Kind::Sse => Bytes::from(format!("event: provenance\ndata: {inline}\n\n")),
            Kind::Ndjson => Bytes::from(format!("{{\"provenance\":{inline}}}\n")),
        }
    }
}

impl<B> Drop for Streaming<B> {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Streaming) {
            if self.over_cap {
                self.fail_over_cap();
                return;
            }
            if self.served() {
                // The client read the last message and closed before the response ended
                // (the chunked terminator, the upstream's end): the answer was served. The
                // store's completion marks the id, so the future can be dropped.
                self.sign_served();
                return;
            }
            Metrics::bump(&self.pending.signer.metrics().abandoned);
            self.pending
                .signer
                .registry
                .fail(self.pending.id, NoEvent::ClientGone.to_string());
        }
    }
}

/// One exchange whose answer is on its way: everything needed to sign it at the end.
pub(crate) struct Pending {
    pub(crate) signer: Arc<Signer>,
    pub(crate) id: RequestId,
    pub(crate) info: RequestInfo,
    pub(crate) request_sha256: Sha256Digest,
    pub(crate) salt: Salt,
    pub(crate) caller: Option<provenance::PublicKey>,
    /// What was paid, stated by a payment layer.
    pub(crate) payment: Option<provenance::record::Payment>,
    pub(crate) start_ms: u64,
    pub(crate) streamed: bool,
    /// The signer's time on the request before it was forwarded.
    pub(crate) request_work: Duration,
    /// The connection's flushes, when the server counts them.
    pub(crate) delivery: Option<Delivery>,
}

/// Why no event exists for an answer. Its text is what `GET /provenance/<id>` answers with
/// `410`.
#[derive(Debug, thiserror::Error)]
pub enum NoEvent {
    /// Messages of the answer could not be read, so its text is not known.
    #[error("{0} message(s) of the answer could not be read; nothing was signed")]
    Unreadable(u64),
    /// The record could not be signed.
    #[error("signing failed: {0}")]
    Signing(#[source] provenance::event::SignError),
    /// The store refused the event.
    #[error("the event could not be stored: {0}")]
    Store(#[source] StoreError),
    /// The client went away before the answer ended (the bytes handed out may never have
    /// reached it).
    #[error("the client went away before the response ended; nothing was signed")]
    ClientGone,
    /// The store stopped before it said how the write went.
    #[error("the event store stopped")]
    StoreStopped,
    /// A streamed answer went past the response cap (bytes), so it was passed on unread.
    #[error(
        "the streamed answer went past the signer's response cap of {0} bytes (--max-response-bytes); it was passed on unsigned"
    )]
    OverCap(u64),
}

/// The signing and storing of one event: resolves to the inline message (in inline mode)
/// once the event is stored, or to why no event exists.
pub(crate) type Finishing = Pin<Box<dyn Future<Output = Result<Option<String>, NoEvent>> + Send>>;

impl Pending {
    /// Builds and signs the event here (no thread hand-off: it is a few tens of microseconds
    /// of work), and hands it to the store. The returned future resolves once the event is
    /// stored. The id is marked done or failed, and the `on_stored` hook called, by the
    /// store's completion, so this happens even if the future is dropped (the client went
    /// away while the event was being committed).
    pub(crate) fn finish(
        &self,
        generation: &Generation,
        response_sha256: Sha256Digest,
        response_bytes: u64,
        truncated: bool,
    ) -> Finishing {
        let upstream_done = Instant::now();
        let request_work = self.request_work;
        let signer = self.signer.clone();
        let signed = self.sign(generation, response_sha256, response_bytes, truncated);
        let (event, inline) = match signed {
            Ok(signed) => signed,
            Err(reason) => {
                Metrics::bump(&signer.metrics().failed);
                signer.registry.fail(self.id, reason.to_string());
                return Box::pin(std::future::ready(Err(reason)));
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = self.id;
        let store = signer.store.clone();
        let submitted = Instant::now();
        store.submit(
            id,
            event,
            Box::new(move |event, outcome| {
                let metrics = signer.metrics();
                let outcome = match outcome {
                    Ok(()) => {
                        metrics.store_commit.observe(submitted.elapsed());
                        metrics
                            .added
                            .observe(request_work + upstream_done.elapsed());
                        Metrics::bump(&metrics.signed);
                        if truncated {
                            Metrics::bump(&metrics.truncated);
                        }
                        signer.registry.done(id);
                        if let Some(hook) = &signer.on_stored {
                            hook(event);
                        }
                        Ok(inline)
                    }
                    Err(e) => {
                        Metrics::bump(&metrics.failed);
                        let reason = NoEvent::Store(e);
                        signer.registry.fail(id, reason.to_string());
                        Err(reason)
                    }
                };
                // The response may have been dropped; the event is stored all the same.
                let _ = tx.send(outcome);
            }),
        );
        Box::pin(async move { rx.await.unwrap_or(Err(NoEvent::StoreStopped)) })
    }

    /// The signed event, and the inline message in inline mode.
    fn sign(
        &self,
        generation: &Generation,
        response_sha256: Sha256Digest,
        response_bytes: u64,
        truncated: bool,
    ) -> Result<(provenance::Event, Option<String>), NoEvent> {
        let signer = &self.signer;
        if generation.unreadable > 0 {
            return Err(NoEvent::Unreadable(generation.unreadable));
        }
        let engine = signer.engine_state();
        let fixed = Fixed {
            model: &signer.model,
            runtime: engine.runtime.as_ref(),
            sampling_defaults: &engine.sampling_defaults,
            include_text: signer.include_text,
            fingerprints: signer.fingerprints,
            attestations: &signer.attestations,
        };
        let exchange = Exchange {
            request: &self.info,
            request_sha256: self.request_sha256,
            salt: &self.salt,
            caller: if signer.record_caller {
                self.caller.map(|k| k.to_hex())
            } else {
                None
            },
            payment: self.payment.clone(),
            start_ms: self.start_ms,
            end_ms: signer.clock.now_ms(),
            generation,
            response_sha256,
            response_bytes,
            streamed: self.streamed,
            truncated,
        };
        let record = record::build(&fixed, &exchange);
        let created_at = FixedClock(Timestamp::from_secs(exchange.end_ms / 1000));
        let event = provenance::event::sign(&record, &signer.keys, &created_at)
            .map_err(NoEvent::Signing)?;
        if !signer.inline {
            return Ok((event, None));
        }
        let inline = format!(
            r#"{{"request_id":"{}","prompt_salt":"{}","event":{}}}"#,
            self.id,
            self.salt,
            event.as_json()
        );
        Ok((event, Some(inline)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use provenance::nostr::prelude::{Event, Filter};
    use provenance::{Keys, Model};

    use super::*;
    use crate::adapter::{Api, parse_request};
    use crate::store::{Done, Lookup, Store, StoreError};

    /// A store that completes writes only when told to.
    #[derive(Default)]
    struct Deferred(Mutex<Vec<(Event, Done)>>);

    impl Store for Deferred {
        fn put(&self, _: RequestId, _: &Event) -> Result<(), StoreError> {
            unreachable!("the signer submits")
        }
        fn submit(&self, _: RequestId, event: Event, done: Done) {
            self.0.lock().unwrap().push((event, done));
        }
        fn get(&self, _: RequestId) -> Result<Option<String>, StoreError> {
            Ok(None)
        }
        fn query(&self, _: &Filter, _: usize) -> Result<Vec<Event>, StoreError> {
            Ok(Vec::new())
        }
    }

    /// The client going away while its event is being committed does not leave the request
    /// "in progress": the store's completion marks it and calls the hook.
    #[test]
    fn an_event_committed_after_its_response_was_dropped_is_still_accounted_for() {
        let store = Arc::new(Deferred::default());
        let stored = Arc::new(AtomicUsize::new(0));
        let counter = stored.clone();
        let signer = Arc::new(
            Signer::builder(Keys::generate(), Model::named("m"))
                .on_stored(Arc::new(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                }))
                .build(store.clone()),
        );
        let id = RequestId::generate();
        signer.registry.start(id);
        let pending = Pending {
            signer: signer.clone(),
            id,
            info: parse_request(Api::LlamaCompletion, br#"{"prompt":"p"}"#).unwrap(),
            request_sha256: provenance::digest::sha256(b"{}"),
            salt: Salt::random(),
            caller: None,
            payment: None,
            start_ms: 0,
            streamed: true,
            request_work: Duration::ZERO,
            delivery: None,
        };
        let generation = Generation {
            text: "x".into(),
            complete: true,
            ..Generation::default()
        };
        let finishing = pending.finish(&generation, Sha256Hasher::new().finalize(), 0, false);
        assert_eq!(signer.lookup(id).unwrap(), Lookup::InProgress);
        drop(finishing);
        let (event, done) = store.0.lock().unwrap().pop().unwrap();
        done(&event, Ok(()));
        assert_eq!(stored.load(Ordering::SeqCst), 1);
        assert_eq!(
            signer.lookup(id).unwrap(),
            Lookup::Unknown,
            "no longer in progress"
        );
    }
}
