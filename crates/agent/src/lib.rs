//! A model's own Nostr identity: people write to it from any Nostr client with NIP-17
//! private direct messages, and it answers the same way, each answer carrying a reference to
//! the provenance event that signs it.
//!
//! One direct message through an [`Agent`], in order:
//!
//! 1. a live subscription on the agent's DM relays delivers a gift wrap (kind 1059 or 21059)
//!    that `p`-tags the agent's key;
//! 2. a wrap decided about before (kept in the [`inbox`], SQLite) is skipped: a relay that
//!    sends it again, or a restart that receives it again, gets no second answer;
//! 3. [`provenance_dm::gift::unwrap`] opens and checks it (seal, rumor, sender, dates, sizes);
//!    a wrap that fails is dropped with one logged line naming why;
//! 4. the sender is asked of the [`Gate`] (an allow list; payments answer through the same
//!    trait) and of its per-sender rate limit; a refused sender gets a short reply saying why,
//!    or nothing ([`Refusal::Silent`]); nothing is generated for it;
//! 5. the accepted wrap is written to the inbox and put in a bounded queue; when the queue is
//!    full the sender is told the model is busy;
//! 6. a worker asks the [`Model`] with the sender's recent turns ([`conversation`]); the model
//!    answers through the server's signing path, so the answer is signed, stored and published
//!    as every other;
//! 7. the reply, a kind 14 message with the answer, a `nostr:nevent1...` reference to its
//!    provenance event and a `q` tag naming it, is gift-wrapped to the sender, written to the
//!    inbox, then published to the agent's DM relays and the sender's own (kind 10050); a reply
//!    no relay took is published again until one does.
//!
//! At start the agent publishes its DM relay list (kind 10050) and, when configured, a profile
//! (kind 0), and answers the wraps a previous run accepted but did not answer.
//!
//! The text of messages is never logged.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod conversation;
pub mod inbox;
pub mod jobs;
pub mod meter;
pub mod model;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provenance::nostr::nips::nip19::ToBech32;
use provenance::nostr::prelude::{Filter, Kind, SignEvent, Tag, UnsignedEvent};
use provenance::{Event, EventId, Keys, PublicKey, Timestamp};
use provenance_dm::gift::{self, Limits, Unwrapped};
use provenance_relay::{Options, SubscribeOptions, SubscriptionItem};
use tokio::sync::mpsc;

pub use crate::conversation::{ContextLimits, Conversations, RateLimit, Role, Turn};
pub use crate::inbox::{Inbox, InboxError};
pub use crate::meter::{Meter, PayFirst};
pub use crate::model::{Answer, Ask, Model, SignedChat};

/// The oldest gift wrap answered, by its own (randomly backdated, at most two days) date:
/// seven days. Older ones are dropped, which is what lets the inbox forget them.
pub const MAX_WRAP_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Who may write to the model. The allow list of NIP-98 ([`provenance_signer::nip98::Allow`])
/// is one; payment rails answer through the same trait.
pub trait Gate: Send + Sync + 'static {
    /// `Ok` when `sender` may be answered, else the reason told to them.
    fn admit(&self, sender: &PublicKey) -> Result<(), String>;
}

impl Gate for provenance_signer::nip98::Allow {
    fn admit(&self, sender: &PublicKey) -> Result<(), String> {
        if self.allows(sender) {
            Ok(())
        } else {
            Err("this model answers only the keys its operator allowed".to_owned())
        }
    }
}

/// What a refused sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A direct message saying why (the default).
    Reply,
    /// Nothing.
    Silent,
}

/// The profile (kind 0) the agent publishes at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `name`.
    pub name: String,
    /// `about`.
    pub about: String,
}

/// Configures an [`Agent`]; every field states its default in [`Config::new`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The DM relays: read from, announced in the kind 10050 list, and written to.
    pub relays: Vec<String>,
    /// The inbox database.
    pub inbox: PathBuf,
    /// What refused senders get. [`Refusal::Reply`].
    pub refusal: Refusal,
    /// Messages that may wait for the model; more are answered "busy". 32.
    pub queue: usize,
    /// Workers asking the model at once (the server's upstream slots bound them too). 2.
    pub workers: usize,
    /// Messages a minute per sender. 10.
    pub per_minute: u32,
    /// Messages a sender may send at once before the rate applies. 5.
    pub burst: u32,
    /// Conversation memory. [`ContextLimits::default`].
    pub context: ContextLimits,
    /// Gift wrap limits. [`Limits::default`].
    pub limits: Limits,
    /// The profile to publish. None.
    pub profile: Option<Profile>,
    /// Relay limits for subscribing and publishing. [`Options::default`].
    pub relay_options: Options,
    /// Also answer NIP-90 text-generation jobs (kind 5050) addressed to the key, and announce
    /// them (NIP-89). Off.
    pub jobs: bool,
    /// The name of the model served: a job's `model` parameter must name it. Empty.
    pub model_name: String,
    /// Relays only read from (not announced, not written to): the box's own relay at its
    /// loopback address, where friends pointing their clients at the box write. None.
    pub read_also: Vec<String>,
    /// The box's relay's mailbox: replies and job events are also kept there, so a client
    /// that talks to the box alone reads them from it. None.
    pub mailbox: Option<provenance_signer::server::Mailbox>,
    /// The most tokens one answer may take, for what a paying sender's answer reserves.
    /// 512, as [`SignedChat`]'s default.
    pub answer_tokens: u64,
}

impl Config {
    /// The defaults, reading and writing on `relays`, with the inbox at `inbox`.
    pub fn new(relays: Vec<String>, inbox: PathBuf) -> Self {
        Self {
            relays,
            inbox,
            refusal: Refusal::Reply,
            queue: 32,
            workers: 2,
            per_minute: 10,
            burst: 5,
            context: ContextLimits::default(),
            limits: Limits::default(),
            profile: None,
            relay_options: Options::default(),
            jobs: false,
            model_name: String::new(),
            read_also: Vec::new(),
            mailbox: None,
            answer_tokens: 512,
        }
    }
}

/// Why an [`Agent`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No DM relay was given.
    #[error("no DM relay: the agent reads and writes direct messages on at least one relay")]
    NoRelays,
    /// The inbox could not be opened.
    #[error(transparent)]
    Inbox(#[from] InboxError),
}

/// The direct-message agent; see the module.
pub struct Agent {
    shared: Arc<Shared>,
}

struct Shared {
    keys: Keys,
    config: Config,
    model: Arc<dyn Model>,
    gate: Arc<dyn Gate>,
    /// Charges senders the gate does not admit for free.
    meter: Option<Arc<dyn Meter>>,
    inbox: Inbox,
    /// The inbox of job requests, when jobs are answered.
    jobs: Option<Inbox>,
    conversations: Mutex<Conversations>,
    rate: Mutex<RateLimit>,
    /// Ids of wraps dropped as unreadable, so that a relay sending one again is not logged
    /// again; bounded.
    dropped: Mutex<Recent>,
    /// The DM relays of recipients (kind 10050), looked up once per run.
    inbox_relays: Mutex<HashMap<PublicKey, Vec<String>>>,
    /// Events dropped before they could be named (oversized, not events): how many since
    /// the last line about them, and when that was.
    junk: Mutex<(u64, Option<Instant>)>,
}

/// What the gate, the rate limit and the meter say of a sender.
enum Admission {
    /// Answer; the reservation to settle, when the sender pays.
    Go(Option<i64>),
    /// Not answered, and why.
    Refused(String),
    /// Not answered until paid, and how to pay.
    Pay(PayFirst),
}

impl Shared {
    /// Admits `who` for one answer to `input_bytes` of question: free when the gate admits
    /// them (within their rate), else paid through the meter, if any. `what` names what is
    /// counted in the rate limit's line ("messages", "requests").
    fn admit(&self, who: &PublicKey, what: &str, input_bytes: u64) -> Admission {
        let over_rate = || {
            self.rate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(who, Instant::now())
                .err()
                .map(|wait| format!("too many {what}; send again in {} s", wait.as_secs().max(1)))
        };
        match (self.gate.admit(who), &self.meter) {
            (Ok(()), _) => over_rate().map_or(Admission::Go(None), Admission::Refused),
            (Err(reason), None) => Admission::Refused(reason),
            (Err(_), Some(meter)) => match over_rate() {
                Some(reason) => Admission::Refused(reason),
                None => match meter.reserve(who, input_bytes, self.config.answer_tokens) {
                    Ok(paid) => Admission::Go(paid),
                    Err(how) => Admission::Pay(how),
                },
            },
        }
    }

    /// Notes an event dropped before it could be named, and logs it: the first at once, then
    /// at most one line a minute with the count, so that a relay sending garbage cannot flood
    /// the log.
    fn junk(&self, what: &str) {
        let mut junk = self
            .junk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        junk.0 += 1;
        let due = junk
            .1
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            log(&format!(
                "dropped {what} ({} such since the last line like this)",
                junk.0
            ));
            *junk = (0, Some(Instant::now()));
        }
    }

    /// The event in `json` (a `what` from a relay) when it is new to `inbox`: `None` for one
    /// over `max` bytes or not an event (counted by [`Shared::junk`]), one decided about
    /// before, or when the inbox cannot say (then nothing is answered: it is left for later).
    fn fresh(&self, inbox: &Inbox, json: &str, max: usize, what: &str) -> Option<Event> {
        if json.len() > max {
            self.junk(&format!("a {what} of {} bytes, over the limit", json.len()));
            return None;
        }
        let Ok(event) = Event::from_json(json) else {
            self.junk("a message that is not a Nostr event");
            return None;
        };
        match inbox.seen(&event.id) {
            Ok(false) => Some(event),
            Ok(true) => None,
            Err(e) => {
                log(&format!("{e}; {what} {} left for later", event.id));
                None
            }
        }
    }

    /// Gives a reservation back whole.
    fn give_back(&self, paid: Option<i64>) {
        if let (Some(meter), Some(id)) = (&self.meter, paid) {
            meter.refund(id);
        }
    }
}

/// A bounded set of recent ids.
struct Recent {
    order: VecDeque<EventId>,
    set: HashSet<EventId>,
}

impl Recent {
    const MAX: usize = 4096;

    fn insert(&mut self, id: EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::MAX {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// One accepted message or job waiting for the model.
enum Work {
    /// A direct message, and when its wrap arrived.
    Message(Unwrapped, Instant, Option<i64>),
    /// A job, and its reservation when the customer pays.
    Job(jobs::Request, Option<i64>),
}

/// Writes one line to stderr; a closed stderr must not stop the agent.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "provenance dm: {line}");
}

fn npub(key: &PublicKey) -> String {
    key.to_bech32().unwrap_or_else(|_| key.to_hex())
}

impl Agent {
    /// An agent answering as `keys`, asking `model`, admitting senders through `gate`.
    pub fn new(
        keys: Keys,
        model: Arc<dyn Model>,
        gate: Arc<dyn Gate>,
        config: Config,
    ) -> Result<Self, AgentError> {
        if config.relays.is_empty() {
            return Err(AgentError::NoRelays);
        }
        let inbox = Inbox::open(&config.inbox)?;
        let jobs = if config.jobs {
            Some(Inbox::open_jobs(&config.inbox)?)
        } else {
            None
        };
        let rate = RateLimit::new(config.per_minute, config.burst, config.context.senders);
        let conversations = Conversations::new(config.context);
        Ok(Self {
            shared: Arc::new(Shared {
                keys,
                model,
                gate,
                meter: None,
                inbox,
                jobs,
                conversations: Mutex::new(conversations),
                rate: Mutex::new(rate),
                dropped: Mutex::new(Recent {
                    order: VecDeque::new(),
                    set: HashSet::new(),
                }),
                inbox_relays: Mutex::new(HashMap::new()),
                junk: Mutex::new((0, None)),
                config,
            }),
        })
    }

    /// The agent of a signing server: answers through its signing path (chat completions of
    /// at most `max_tokens`), reads the server's own relay besides `config.relays` and keeps
    /// its replies there, charges through `meter` when given, and publishes a profile named
    /// `name` saying that answers are signed. `config`'s model name, answer tokens, relays read
    /// and mailbox are set from the server.
    pub fn beside(
        server: &provenance_signer::server::Server,
        keys: Keys,
        gate: Arc<dyn Gate>,
        meter: Option<Arc<dyn Meter>>,
        mut config: Config,
        name: &str,
        max_tokens: u32,
    ) -> Result<Self, AgentError> {
        let model = &server.signer().model().name;
        config.model_name.clone_from(model);
        config.answer_tokens = u64::from(max_tokens);
        // Friends may point their clients at the box itself: the agent reads its relay too,
        // and keeps its replies there.
        config.read_also = vec![server.local_relay_url()];
        config.mailbox = server.mailbox();
        config.profile = Some(Profile {
            name: name.to_owned(),
            about: format!(
                "{model} on {}. Every answer is signed: it names its provenance event (nevent), which `provenance verify` checks.",
                server.engine().runtime.engine
            ),
        });
        let chat = SignedChat::new(server.local_client()).max_tokens(max_tokens);
        let agent = Self::new(keys, Arc::new(chat), gate, config)?;
        Ok(match meter {
            Some(meter) => agent.with_meter(meter),
            None => agent,
        })
    }

    /// Lets senders the gate does not admit pay for their answers through `meter`: they are
    /// told how to pay, top up by sending a Cashu token as a message, and are charged per
    /// answer. Call before [`Agent::run`].
    pub fn with_meter(mut self, meter: Arc<dyn Meter>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.meter = Some(meter);
        }
        self
    }

    /// The inbox, for counting what was handled.
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// Runs until `shutdown`: announces, answers what a previous run left queued, then reads
    /// the DM relays. Relays that drop, flood or send garbage are reconnected with backoff;
    /// nothing a relay sends stops the agent.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let shared = self.shared;
        let config = &shared.config;
        tokio::spawn(announce(shared.clone()));
        let (tx, rx) = mpsc::channel::<Work>(config.queue.max(1));
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..config.workers.max(1) {
            tasks.spawn(worker(shared.clone(), rx.clone()));
        }
        tasks.spawn(republish(shared.clone()));
        // Wraps and jobs accepted before a restart: answered first, waiting for room in the
        // queue.
        let mut left = Vec::new();
        match shared.inbox.queued() {
            Ok(wraps) => left.extend(wraps.iter().filter_map(|json| reopen(&shared, json))),
            Err(e) => log(&format!("{e}; messages accepted before the restart wait")),
        }
        if let Some(inbox) = &shared.jobs {
            match inbox.queued() {
                Ok(requests) => {
                    left.extend(requests.iter().filter_map(|json| reopen_job(&shared, json)));
                }
                Err(e) => log(&format!("{e}; jobs accepted before the restart wait")),
            }
        }
        for work in left {
            if tx.send(work).await.is_err() {
                break;
            }
        }
        let reader = read(shared.clone(), tx.clone());
        let job_reader = read_jobs(shared.clone(), tx);
        tokio::select! {
            () = async { tokio::join!(reader, job_reader); } => {}
            () = shutdown => {}
        }
        tasks.abort_all();
    }
}

/// The relays read from: the DM relays and [`Config::read_also`].
fn reading(config: &Config) -> Vec<String> {
    let mut relays = config.relays.clone();
    for r in &config.read_also {
        if !relays.contains(r) {
            relays.push(r.clone());
        }
    }
    relays
}

/// Opens a wrap stored as queued again (after a restart); it passed every check when it was
/// accepted, and passes them again.
fn reopen(shared: &Shared, json: &str) -> Option<Work> {
    let event = Event::from_json(json).ok()?;
    match gift::unwrap_with(
        &shared.keys,
        &event,
        Timestamp::now(),
        &shared.config.limits,
    ) {
        Ok(opened) => Some(Work::Message(opened, Instant::now(), None)),
        Err(e) => {
            log(&format!("a queued message no longer opens ({e}); dropped"));
            None
        }
    }
}

/// Publishes the DM relay list (kind 10050) and the profile, retrying until a relay takes
/// each (with backoff, at most an hour).
async fn announce(shared: Arc<Shared>) {
    let config = &shared.config;
    let mut events = Vec::new();
    let tags: Vec<Tag> = config
        .relays
        .iter()
        .filter_map(|r| Tag::parse(["relay", r.as_str()]).ok())
        .collect();
    let now = Timestamp::now();
    let list = UnsignedEvent::new(
        shared.keys.public_key(),
        now,
        Kind::from_u16(10050),
        tags,
        "",
    );
    match shared.keys.sign_event(list) {
        Ok(e) => events.push(e),
        Err(e) => log(&format!("cannot sign the DM relay list: {e}")),
    }
    if let Some(profile) = &config.profile {
        let content = serde_json::json!({
            "name": profile.name,
            "about": profile.about,
            "bot": true,
        })
        .to_string();
        let metadata =
            UnsignedEvent::new(shared.keys.public_key(), now, Kind::Metadata, [], content);
        match shared.keys.sign_event(metadata) {
            Ok(e) => events.push(e),
            Err(e) => log(&format!("cannot sign the profile: {e}")),
        }
    }
    if config.jobs {
        let (name, about) = config.profile.as_ref().map_or_else(
            || (config.model_name.clone(), String::new()),
            |p| (p.name.clone(), p.about.clone()),
        );
        match jobs::announcement(&shared.keys, &name, &about, now) {
            Ok(e) => events.push(e),
            Err(e) => log(&format!("cannot sign the NIP-89 announcement: {e}")),
        }
    }
    for event in events {
        let mut wait = Duration::from_secs(1);
        loop {
            if published(&config.relays, &event, &config.relay_options).await {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(3600));
        }
    }
}

/// Publishes `event` to `relays`; whether at least one took it.
async fn published(relays: &[String], event: &Event, options: &Options) -> bool {
    provenance_relay::publish(relays, event, options)
        .await
        .iter()
        .any(|r| r.outcome.as_ref().is_ok_and(|ack| ack.accepted))
}

/// Publishes a reply or job event to `relays` and keeps it in the box's mailbox, if any;
/// whether any of them took it.
async fn deliver(shared: &Shared, relays: &[String], event: &Event) -> bool {
    let kept = match &shared.config.mailbox {
        Some(mailbox) => match mailbox.deliver(event).await {
            Ok(()) => true,
            Err(e) => {
                log(&format!("the box's relay did not keep {}: {e}", event.id));
                false
            }
        },
        None => false,
    };
    let sent = published(relays, event, &shared.config.relay_options).await;
    kept || sent
}

/// Reads gift wraps from the DM relays until the subscription ends (it does not, unless the
/// runtime shuts down).
async fn read(shared: Arc<Shared>, queue: mpsc::Sender<Work>) {
    let config = &shared.config;
    let since = Timestamp::now()
        .as_secs()
        .saturating_sub(MAX_WRAP_AGE.as_secs());
    let filter = Filter::new()
        .kinds([
            Kind::from_u16(gift::GIFT_WRAP_KIND),
            Kind::from_u16(gift::EPHEMERAL_GIFT_WRAP_KIND),
        ])
        .pubkey(shared.keys.public_key())
        .since(Timestamp::from_secs(since));
    // Inbox relays (NIP-17) and the box's own relay give gift wraps only to their
    // addressee, after NIP-42 AUTH: the agent answers challenges with its key.
    let options = SubscribeOptions {
        relay: config.relay_options.clone(),
        auth: Some(shared.keys.clone()),
        ..SubscribeOptions::default()
    };
    let mut subscription = provenance_relay::subscribe(&reading(config), filter, options);
    while let Some(item) = subscription.next().await {
        match item {
            SubscriptionItem::Event(raw) => receive(&shared, &raw.json, &queue).await,
            SubscriptionItem::Down {
                relay,
                error,
                retry_in,
            } => log(&format!(
                "{relay}: {error}; reconnecting in {} ms",
                retry_in.as_millis()
            )),
            SubscriptionItem::Notice { relay, message } => {
                log(&format!("{relay} says: {message}"));
            }
            _ => {}
        }
    }
}

/// One gift wrap from a relay: decide about it.
async fn receive(shared: &Arc<Shared>, json: &str, queue: &mpsc::Sender<Work>) {
    let arrived = Instant::now();
    let config = &shared.config;
    let max = config.limits.max_wrap_content.saturating_add(64 * 1024);
    let Some(event) = shared.fresh(&shared.inbox, json, max, "gift wrap") else {
        return;
    };
    let now = Timestamp::now();
    let too_old = now.as_secs().saturating_sub(MAX_WRAP_AGE.as_secs());
    let opened = if event.created_at.as_secs() < too_old {
        Err("dated more than seven days ago".to_owned())
    } else {
        gift::unwrap_with(&shared.keys, &event, now, &config.limits).map_err(|e| e.to_string())
    };
    let opened = match opened {
        Ok(opened) => opened,
        Err(reason) => {
            let fresh = shared
                .dropped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(event.id);
            if fresh {
                log(&format!("gift wrap {} dropped: {reason}", event.id));
            }
            return;
        }
    };
    if opened.rumor.kind != Kind::from_u16(gift::CHAT_MESSAGE_KIND) {
        log(&format!(
            "gift wrap {} from {} dropped: a kind {} message, not a chat message (14)",
            event.id,
            npub(&opened.sender),
            opened.rumor.kind.as_u16()
        ));
        let _ = shared.dropped.lock().map(|mut d| d.insert(event.id));
        return;
    }
    let sender = opened.sender;
    let date = event.created_at.as_secs();
    // A token sent by someone the gate does not admit for free tops up their balance.
    let text = opened.rumor.content.trim();
    if let Some(meter) = &shared.meter
        && (text.starts_with("cashuA") || text.starts_with("cashuB"))
        && shared.gate.admit(&sender).is_err()
    {
        top_up(shared, meter.as_ref(), &event.id, &opened, date, text).await;
        return;
    }
    let paid = match shared.admit(&sender, "messages", text.len() as u64) {
        Admission::Go(paid) => paid,
        Admission::Refused(reason) => {
            refuse(shared, &event.id, &opened, date, &reason).await;
            return;
        }
        Admission::Pay(first) => {
            let mut how = first.how;
            if let Some(invoice) = invoice(shared, &sender, first.short_msat).await {
                how = format!(
                    "{how}; or pay this Lightning invoice, which credits your balance: lightning:{invoice}"
                );
            }
            refuse(shared, &event.id, &opened, date, &how).await;
            return;
        }
    };
    // From here on a reservation not handed to a worker is given back.
    let give_back = |paid| shared.give_back(paid);
    // Room in the queue first: a message is written as accepted only when a worker will
    // take it.
    let permit = match queue.try_reserve() {
        Ok(permit) => permit,
        Err(mpsc::error::TrySendError::Full(())) => {
            give_back(paid);
            refuse(
                shared,
                &event.id,
                &opened,
                date,
                "the model is busy; write again later",
            )
            .await;
            return;
        }
        Err(mpsc::error::TrySendError::Closed(())) => {
            give_back(paid);
            return;
        }
    };
    match shared.inbox.queue(&event.id, &sender, date, json) {
        Ok(true) => {}
        Ok(false) => {
            give_back(paid);
            return;
        }
        Err(e) => {
            give_back(paid);
            log(&format!("{e}; gift wrap {} left for later", event.id));
            return;
        }
    }
    log(&format!(
        "gift wrap {} from {} queued",
        event.id,
        npub(&sender)
    ));
    permit.send(Work::Message(opened, arrived, paid));
}

/// A Cashu token sent as a message: credited to the sender's balance, and the sender told.
/// Nothing is generated; the wrap is recorded as handled (a relay sending it again is not
/// credited again: the wallet knows the token's proofs).
async fn top_up(
    shared: &Arc<Shared>,
    meter: &dyn Meter,
    wrap_id: &EventId,
    opened: &Unwrapped,
    date: u64,
    token: &str,
) {
    let said = match meter.top_up(&opened.sender, token).await {
        Ok((credited, balance)) => {
            log(&format!(
                "gift wrap {wrap_id} from {}: a Cashu token credited, {credited} msat",
                npub(&opened.sender)
            ));
            format!(
                "Credited {} sat. Your balance is {} sat.",
                credited / 1000,
                balance / 1000
            )
        }
        Err(e) => {
            log(&format!(
                "gift wrap {wrap_id} from {}: a Cashu token not taken: {e}",
                npub(&opened.sender)
            ));
            format!("The token was not taken: {e}")
        }
    };
    match shared.inbox.refuse(wrap_id, &opened.sender, date, "top-up") {
        Ok(true) => answer_with(shared, opened, &said, None, true).await,
        Ok(false) => {}
        Err(e) => log(&format!("{e}; the reply to top-up {wrap_id} is not sent")),
    }
}

/// Records a refusal and, unless silent, tells the sender.
async fn refuse(
    shared: &Arc<Shared>,
    wrap_id: &EventId,
    opened: &Unwrapped,
    date: u64,
    reason: &str,
) {
    match shared.inbox.refuse(wrap_id, &opened.sender, date, reason) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            log(&format!("{e}; gift wrap {wrap_id} left for later"));
            return;
        }
    }
    log(&format!(
        "gift wrap {wrap_id} from {} refused: {reason}",
        npub(&opened.sender)
    ));
    if shared.config.refusal == Refusal::Reply {
        answer_with(
            shared,
            opened,
            &format!("Not answered: {reason}."),
            None,
            true,
        )
        .await;
    }
}

/// Asks the model for queued messages and jobs, one at a time per worker.
async fn worker(shared: Arc<Shared>, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Work>>>) {
    loop {
        let work = { queue.lock().await.recv().await };
        match work {
            None => return,
            Some(Work::Message(opened, arrived, paid)) => {
                message(&shared, opened, arrived, paid).await;
            }
            Some(Work::Job(request, paid)) => job(&shared, request, paid).await,
        }
    }
}

/// Answers one direct message.
async fn message(shared: &Arc<Shared>, opened: Unwrapped, arrived: Instant, paid: Option<i64>) {
    let sender = opened.sender;
    let question = opened.rumor.content.clone();
    let turns = shared
        .conversations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .prompt(&sender, &question);
    let started = Instant::now();
    let sampling = serde_json::Map::new();
    let ask = Ask {
        turns: &turns,
        max_tokens: None,
        sampling: &sampling,
    };
    match shared.model.answer(ask).await {
        Ok(answer) => {
            if let (Some(meter), Some(id)) = (&shared.meter, paid) {
                meter.settle(id, answer.usage);
            }
            let model = started.elapsed();
            shared
                .conversations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(&sender, &question, &answer.text);
            answer_with(shared, &opened, &answer.text, Some(&answer), false).await;
            // The two figures of the round trip that happen here: the model's part (the
            // signing path included) and the whole, from the wrap's arrival to a relay's OK
            // for the reply.
            log(&format!(
                "gift wrap {} from {} answered: model {:.1} ms, replied {:.1} ms after it arrived, event {}",
                opened.wrap_id,
                npub(&sender),
                model.as_secs_f64() * 1e3,
                arrived.elapsed().as_secs_f64() * 1e3,
                answer.event_id
            ));
        }
        Err(reason) => {
            if let (Some(meter), Some(id)) = (&shared.meter, paid) {
                meter.refund(id);
            }
            log(&format!(
                "gift wrap {} from {}: the model failed: {reason}",
                opened.wrap_id,
                npub(&sender)
            ));
            answer_with(
                shared,
                &opened,
                &format!("The model could not answer: {reason}"),
                None,
                false,
            )
            .await;
        }
    }
}

/// The reply to `opened`: a kind 14 message to its sender, answering the rumor (`e`), quoting
/// the provenance event (`q`) and naming it in the text, in a gift wrap of the same kind as
/// the one it answers.
pub fn reply(
    keys: &Keys,
    opened: &Unwrapped,
    text: &str,
    answer: Option<&Answer>,
    now: Timestamp,
) -> Result<Event, gift::WrapError> {
    let mut tags = vec![Tag::public_key(opened.sender)];
    if let Some(id) = opened.rumor.id {
        tags.extend(Tag::parse(["e", id.to_hex().as_str()]).ok());
    }
    let mut content = text.to_owned();
    if let Some(answer) = answer {
        tags.extend(Tag::parse(["q", answer.event_id.to_hex().as_str()]).ok());
        content.push_str("\n\nnostr:");
        content.push_str(&answer.nevent);
    }
    let mut rumor = UnsignedEvent::new(
        keys.public_key(),
        now,
        Kind::from_u16(gift::CHAT_MESSAGE_KIND),
        tags,
        content,
    );
    rumor.ensure_id();
    gift::wrap(keys, &opened.sender, rumor, opened.wrap_kind, now)
}

/// Makes the reply, keeps it in the inbox, publishes it.
async fn answer_with(
    shared: &Arc<Shared>,
    opened: &Unwrapped,
    text: &str,
    answer: Option<&Answer>,
    refusal: bool,
) {
    let wrapped = match reply(&shared.keys, opened, text, answer, Timestamp::now()) {
        Ok(w) => w,
        Err(e) => {
            log(&format!("cannot wrap the reply to {}: {e}", opened.wrap_id));
            return;
        }
    };
    let json = wrapped.as_json();
    let kept = if refusal {
        shared.inbox.refusal_reply(&opened.wrap_id, &json)
    } else {
        shared.inbox.answer(&opened.wrap_id, &json)
    };
    if let Err(e) = kept {
        log(&format!(
            "{e}; the reply to {} is sent without being kept",
            opened.wrap_id
        ));
    }
    send(shared, &opened.wrap_id.to_hex(), &opened.sender, &wrapped).await;
}

/// Publishes a reply to the agent's DM relays and the recipient's; marks it published when
/// one took it.
async fn send(shared: &Arc<Shared>, wrap_id: &str, recipient: &PublicKey, reply: &Event) {
    let relays = relays_of(shared, recipient).await;
    if deliver(shared, &relays, reply).await {
        if let Err(e) = shared.inbox.published(wrap_id) {
            log(&format!("{e}"));
        }
    } else {
        log(&format!(
            "no relay took the reply to {wrap_id}; it is sent again later"
        ));
    }
}

/// The agent's DM relays, then up to four of the recipient's own (its kind 10050 list, looked
/// up on the agent's relays once per run).
async fn relays_of(shared: &Arc<Shared>, recipient: &PublicKey) -> Vec<String> {
    let config = &shared.config;
    let known = shared
        .inbox_relays
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(recipient)
        .cloned();
    let theirs = match known {
        Some(list) => list,
        None => {
            let filter = Filter::new()
                .kind(Kind::from_u16(10050))
                .author(*recipient)
                .limit(1);
            let options = Options {
                eose_timeout: Duration::from_secs(3),
                max_events_per_relay: 4,
                ..config.relay_options.clone()
            };
            let found = provenance_relay::fetch(&config.relays, &filter, &options).await;
            let list: Vec<String> = found
                .events
                .iter()
                .filter_map(|raw| Event::from_json(&raw.json).ok())
                .filter(|e| e.pubkey == *recipient && e.verify().is_ok())
                .max_by_key(|e| e.created_at)
                .map(|e| {
                    e.tags
                        .iter()
                        .map(|t| t.as_slice())
                        .filter(|t| t.len() >= 2 && t[0] == "relay")
                        .map(|t| t[1].clone())
                        .filter(|r| r.starts_with("ws://") || r.starts_with("wss://"))
                        .take(4)
                        .collect()
                })
                .unwrap_or_default();
            let mut cache = shared
                .inbox_relays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= config.context.senders {
                cache.clear();
            }
            cache.insert(*recipient, list.clone());
            list
        }
    };
    let mut relays = config.relays.clone();
    for r in theirs {
        if !relays.contains(&r) {
            relays.push(r);
        }
    }
    relays
}

/// Publishes again the replies no relay took, every few seconds with backoff.
async fn republish(shared: Arc<Shared>) {
    let mut wait = Duration::from_secs(2);
    loop {
        tokio::time::sleep(wait).await;
        let pending = match shared.inbox.unpublished() {
            Ok(p) => p,
            Err(e) => {
                log(&format!("{e}"));
                continue;
            }
        };
        let any = !pending.is_empty();
        for row in pending {
            let (Ok(event), Ok(recipient)) = (
                Event::from_json(&row.reply),
                PublicKey::from_hex(&row.recipient),
            ) else {
                continue;
            };
            send(&shared, &row.wrap_id, &recipient, &event).await;
        }
        let mut any = any;
        if let Some(inbox) = &shared.jobs {
            match inbox.unpublished() {
                Ok(pending) => {
                    any |= !pending.is_empty();
                    for row in pending {
                        if let Ok(event) = Event::from_json(&row.reply) {
                            send_job_event(&shared, inbox, &row.wrap_id, &[], &event).await;
                        }
                    }
                }
                Err(e) => log(&format!("{e}")),
            }
            let horizon = Timestamp::now()
                .as_secs()
                .saturating_sub(MAX_JOB_AGE.as_secs() + 24 * 60 * 60);
            let _ = inbox.prune(horizon);
        }
        // Prune what no relay can make the agent answer again.
        let horizon = Timestamp::now()
            .as_secs()
            .saturating_sub(MAX_WRAP_AGE.as_secs() + 24 * 60 * 60);
        let _ = shared.inbox.prune(horizon);
        wait = if any {
            (wait * 2).min(Duration::from_secs(300))
        } else {
            Duration::from_secs(2)
        };
    }
}

/// How old a job request may be and still be answered: an hour. Relays keep requests; older
/// ones are left unanswered (the customer has moved on), which also bounds the job inbox.
pub const MAX_JOB_AGE: Duration = Duration::from_secs(60 * 60);

/// The relay hint of events about a job: the first DM relay.
fn relay_hint(shared: &Shared) -> &str {
    shared.config.relays.first().map_or("", String::as_str)
}

/// Reopens a job request stored as queued (after a restart).
fn reopen_job(shared: &Shared, json: &str) -> Option<Work> {
    let event = Event::from_json(json).ok()?;
    match jobs::read(
        &shared.keys,
        &event,
        &shared.config.model_name,
        event.created_at,
    ) {
        Ok(request) => Some(Work::Job(request, None)),
        Err(e) => {
            log(&format!("a queued job no longer reads ({e}); dropped"));
            None
        }
    }
}

/// Reads NIP-90 job requests addressed to the key, when jobs are answered.
async fn read_jobs(shared: Arc<Shared>, queue: mpsc::Sender<Work>) {
    if shared.jobs.is_none() {
        return;
    }
    let config = &shared.config;
    let since = Timestamp::now()
        .as_secs()
        .saturating_sub(MAX_JOB_AGE.as_secs());
    let filter = Filter::new()
        .kind(Kind::from_u16(jobs::REQUEST_KIND))
        .pubkey(shared.keys.public_key())
        .since(Timestamp::from_secs(since));
    // Inbox relays (NIP-17) and the box's own relay give gift wraps only to their
    // addressee, after NIP-42 AUTH: the agent answers challenges with its key.
    let options = SubscribeOptions {
        relay: config.relay_options.clone(),
        auth: Some(shared.keys.clone()),
        ..SubscribeOptions::default()
    };
    let mut subscription = provenance_relay::subscribe(&reading(config), filter, options);
    while let Some(item) = subscription.next().await {
        if let SubscriptionItem::Event(raw) = item {
            receive_job(&shared, &raw.json, &queue).await;
        }
        // Relay errors and notices are logged by the direct-message reader, which reads the
        // same relays.
    }
}

/// One job request from a relay: decide about it.
async fn receive_job(shared: &Arc<Shared>, json: &str, queue: &mpsc::Sender<Work>) {
    let Some(inbox) = &shared.jobs else { return };
    let max = jobs::MAX_PROMPT_BYTES * 2 + 64 * 1024;
    let Some(event) = shared.fresh(inbox, json, max, "job request") else {
        return;
    };
    let now = Timestamp::now();
    let date = event.created_at.as_secs();
    if date + MAX_JOB_AGE.as_secs() < now.as_secs() {
        return;
    }
    let request = match jobs::read(&shared.keys, &event, &shared.config.model_name, now) {
        Ok(request) => request,
        Err(jobs::JobError::Refused(reason)) => {
            refuse_job(shared, inbox, &event, &reason).await;
            return;
        }
        Err(e) => {
            let fresh = shared
                .dropped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(event.id);
            if fresh {
                log(&format!("job {} dropped: {e}", event.id));
            }
            return;
        }
    };
    let customer = request.customer;
    let paid = match shared.admit(&customer, "requests", request.prompt.len() as u64) {
        Admission::Go(paid) => paid,
        Admission::Refused(reason) => {
            refuse_job(shared, inbox, &event, &reason).await;
            return;
        }
        Admission::Pay(first) => {
            let invoice = invoice(shared, &customer, first.short_msat).await;
            payment_required(shared, inbox, &event, &first, invoice.as_deref()).await;
            return;
        }
    };
    let give_back = |paid| shared.give_back(paid);
    let Ok(permit) = queue.try_reserve() else {
        give_back(paid);
        refuse_job(shared, inbox, &event, "the model is busy; send again later").await;
        return;
    };
    match inbox.queue(&event.id, &customer, date, json) {
        Ok(true) => {}
        Ok(false) => {
            give_back(paid);
            return;
        }
        Err(e) => {
            give_back(paid);
            log(&format!("{e}; job {} left for later", event.id));
            return;
        }
    }
    log(&format!("job {} from {} queued", event.id, npub(&customer)));
    match jobs::feedback(
        &shared.keys,
        &event,
        relay_hint(shared),
        "processing",
        None,
        now,
    ) {
        Ok(feedback) => {
            let relays = job_relays(shared, &request.relays);
            let shared = shared.clone();
            // Feedback is a courtesy: published without holding the queue, never retried.
            tokio::spawn(async move {
                deliver(&shared, &relays, &feedback).await;
            });
        }
        Err(e) => log(&format!("cannot sign feedback for job {}: {e}", event.id)),
    }
    permit.send(Work::Job(request, paid));
}

/// The agent's relays, then the ones the request asked for.
fn job_relays(shared: &Shared, asked: &[String]) -> Vec<String> {
    let mut relays = shared.config.relays.clone();
    for r in asked {
        if !relays.contains(r) {
            relays.push(r.clone());
        }
    }
    relays
}

/// A Lightning invoice for at least `msat` that credits `who`, when the meter has a rail.
async fn invoice(shared: &Shared, who: &PublicKey, msat: u64) -> Option<String> {
    match &shared.meter {
        Some(meter) if msat > 0 => meter.invoice(who, msat).await,
        _ => None,
    }
}

/// A job whose customer must pay first: `payment-required` feedback saying how (NIP-90),
/// with an `amount` tag (what the balance lacks, and the invoice that credits it when there
/// is one), sent even when refusals are silent (the customer asked, and can pay); recorded
/// as refused, so that the same request is not asked for payment twice.
async fn payment_required(
    shared: &Arc<Shared>,
    inbox: &Inbox,
    event: &Event,
    first: &PayFirst,
    invoice: Option<&str>,
) {
    let amount = (first.short_msat > 0).then_some((first.short_msat, invoice));
    decline_job(shared, inbox, event, &first.how, "payment-required", amount).await;
}

/// Records a refused job and, unless silent, publishes `error` feedback saying why.
async fn refuse_job(shared: &Arc<Shared>, inbox: &Inbox, event: &Event, reason: &str) {
    decline_job(shared, inbox, event, reason, "error", None).await;
}

/// Records a job that gets no result, and publishes feedback of `status` with `reason`
/// (`error` feedback only when refusals are not silent).
async fn decline_job(
    shared: &Arc<Shared>,
    inbox: &Inbox,
    event: &Event,
    reason: &str,
    status: &str,
    amount: Option<(u64, Option<&str>)>,
) {
    match inbox.refuse(&event.id, &event.pubkey, event.created_at.as_secs(), reason) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            log(&format!("{e}; job {} left for later", event.id));
            return;
        }
    }
    log(&format!(
        "job {} from {} not done ({status}): {reason}",
        event.id,
        npub(&event.pubkey)
    ));
    if status == "error" && shared.config.refusal == Refusal::Silent {
        return;
    }
    match jobs::feedback_with_amount(
        &shared.keys,
        event,
        relay_hint(shared),
        status,
        Some(reason),
        amount,
        Timestamp::now(),
    ) {
        Ok(feedback) => {
            if let Err(e) = inbox.refusal_reply(&event.id, &feedback.as_json()) {
                log(&format!("{e}"));
            }
            send_job_event(shared, inbox, &event.id.to_hex(), &[], &feedback).await;
        }
        Err(e) => log(&format!("cannot sign feedback for job {}: {e}", event.id)),
    }
}

/// Does one job: asks the model, publishes the result (or `error` feedback).
async fn job(shared: &Arc<Shared>, request: jobs::Request, paid: Option<i64>) {
    let Some(inbox) = &shared.jobs else { return };
    let turns = [Turn {
        role: Role::User,
        text: request.prompt.clone(),
    }];
    let ask = Ask {
        turns: &turns,
        max_tokens: request.params.max_tokens,
        sampling: &request.params.sampling,
    };
    let started = Instant::now();
    let hint = relay_hint(shared).to_owned();
    let now = Timestamp::now();
    let made = match shared.model.answer(ask).await {
        Ok(answer) => {
            if let (Some(meter), Some(id)) = (&shared.meter, paid) {
                meter.settle(id, answer.usage);
            }
            log(&format!(
                "job {} from {} done in {} ms, event {}",
                request.event.id,
                npub(&request.customer),
                started.elapsed().as_millis(),
                answer.event_id
            ));
            jobs::result(
                &shared.keys,
                &request,
                &hint,
                &answer.text,
                &answer.event,
                now,
            )
        }
        Err(reason) => {
            if let (Some(meter), Some(id)) = (&shared.meter, paid) {
                meter.refund(id);
            }
            log(&format!(
                "job {} from {}: the model failed: {reason}",
                request.event.id,
                npub(&request.customer)
            ));
            jobs::feedback(
                &shared.keys,
                &request.event,
                &hint,
                "error",
                Some(&format!("the model could not answer: {reason}")),
                now,
            )
        }
    };
    let event = match made {
        Ok(e) => e,
        Err(e) => {
            log(&format!(
                "cannot sign the result of job {}: {e}",
                request.event.id
            ));
            return;
        }
    };
    if let Err(e) = inbox.answer(&request.event.id, &event.as_json()) {
        log(&format!(
            "{e}; the result of job {} is sent without being kept",
            request.event.id
        ));
    }
    send_job_event(
        shared,
        inbox,
        &request.event.id.to_hex(),
        &request.relays,
        &event,
    )
    .await;
}

/// Publishes a job's result or feedback; marks it published when a relay took it.
async fn send_job_event(
    shared: &Arc<Shared>,
    inbox: &Inbox,
    job_id: &str,
    asked: &[String],
    event: &Event,
) {
    let relays = job_relays(shared, asked);
    if deliver(shared, &relays, event).await {
        if let Err(e) = inbox.published(job_id) {
            log(&format!("{e}"));
        }
    } else {
        log(&format!(
            "no relay took the answer to job {job_id}; it is sent again later"
        ));
    }
}
