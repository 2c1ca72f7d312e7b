//! The client half of the direct-message round trip of scripts/bench-dm.sh: a person writing to
//! the model by NIP-17 direct message and waiting for the answer, one message after another.
//!
//! - `dm-roundtrip allow --count N`: prints the npubs of the senders `run` uses (sender `i` is
//!   `SHA-256("dm roundtrip sender {i}")`), one a line, for `provenance serve --dm-allow`.
//! - `dm-roundtrip run --relay URL --to NPUB --warmup W --messages M --serve-log FILE`: opens a
//!   live subscription (`provenance_relay::subscribe`) to the gift wraps addressed to its
//!   senders on the relay, then sends W + M messages, each by a sender of its own (so each is
//!   the first turn of a conversation and every prompt the model sees is the same), and waits
//!   for each reply before sending the next. A message is the same short question every time,
//!   wrapped by `provenance_dm::gift::wrap` (kind 1059) and published by
//!   `provenance_relay::publish` (a new connection each time, as that function makes). The
//!   round trip is timed from just before the publication to the moment the reply's gift wrap
//!   comes out of the subscription; the reply is then opened, and must be a kind 14 message
//!   that answers the question (`e` tag) and names a provenance event (`q` tag).
//!
//!   Afterwards it reads the agent's per-answer line for each wrap from FILE (the stderr of
//!   `provenance serve`: `gift wrap <id> from <npub> answered: model X ms, replied Y ms after
//!   it arrived, event <id>`) and prints, over the M measured messages, the median, p90 and
//!   largest of: the round trip seen by the client; the publication (connect, `EVENT`, `OK`);
//!   the agent's time from the wrap's arrival to a relay's `OK` for its reply ("replied"); the
//!   model's part of it (the signing path's chat completion, signing included); the agent's
//!   own time (replied minus model: opening, checks, the inbox's SQLite writes, wrapping the
//!   reply, looking up the sender's relay list, publishing); and the relay legs (round trip
//!   minus replied: the client's publication, the relay handing the wrap to the agent, and the
//!   reply reaching the client). Then one JSON object with the same figures. Exits 1 when a
//!   reply is missing or wrong, or a log line is missing.
//!
//! Every wait is bounded (`--timeout` seconds per reply).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use provenance::nostr::nips::nip19::{FromBech32 as _, ToBech32 as _};
use provenance::nostr::prelude::{Filter, Kind};
use provenance::{Event, Keys, PublicKey, SecretKey, Timestamp};
use provenance_dm::gift::{self, WrapKind};
use provenance_relay::{SubscribeOptions, SubscriptionItem};
use sha2::{Digest, Sha256};

/// The question, the same every time.
const QUESTION: &str = "Say hello.";

#[derive(Parser)]
#[command(about = "Direct-message round trips to `provenance serve --dm-relay`")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Print the npubs of the first COUNT senders, one a line.
    Allow {
        #[arg(long)]
        count: usize,
    },
    /// Send the messages and time the round trips.
    Run {
        /// The relay the model reads and answers on.
        #[arg(long)]
        relay: String,
        /// The model's key (npub or hex).
        #[arg(long)]
        to: String,
        /// Messages sent first and not counted (the agent's subscription, connections and the
        /// model's prompt cache warm up).
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Messages measured.
        #[arg(long, default_value_t = 50)]
        messages: usize,
        /// The stderr of `provenance serve`, for the agent's per-answer lines.
        #[arg(long)]
        serve_log: PathBuf,
        /// Seconds to wait for each reply.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

fn sender(i: usize) -> Keys {
    let secret: [u8; 32] = Sha256::digest(format!("dm roundtrip sender {i}")).into();
    Keys::new(SecretKey::from_slice(&secret).expect("a hash is a valid key"))
}

/// One message's timings, milliseconds.
#[derive(Default, Clone)]
struct Trip {
    wrap_id: String,
    round_trip: f64,
    publish: f64,
    answer: String,
}

fn main() {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Allow { count } => {
            for i in 0..count {
                println!("{}", sender(i).public_key().to_bech32().expect("npub"));
            }
        }
        Mode::Run {
            relay,
            to,
            warmup,
            messages,
            serve_log,
            timeout,
        } => {
            let to = PublicKey::from_bech32(&to)
                .or_else(|_| PublicKey::from_hex(&to))
                .unwrap_or_else(|_| fail(&format!("--to {to}: not an npub or hex key")));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let trips = runtime.block_on(run(
                &relay,
                &to,
                warmup + messages,
                Duration::from_secs(timeout),
            ));
            report(&trips[warmup..], &serve_log);
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("dm-roundtrip: {message}");
    std::process::exit(1);
}

async fn run(relay: &str, to: &PublicKey, count: usize, timeout: Duration) -> Vec<Trip> {
    let senders: Vec<Keys> = (0..count).map(sender).collect();
    let filter = Filter::new()
        .kind(Kind::from_u16(1059))
        .pubkeys(senders.iter().map(Keys::public_key));
    let mut subscription =
        provenance_relay::subscribe(&[relay.to_owned()], filter, SubscribeOptions::default());
    // Live from here on.
    let deadline = Instant::now() + timeout;
    loop {
        let item = tokio::time::timeout_at(deadline.into(), subscription.next()).await;
        match item {
            Ok(Some(SubscriptionItem::Eose { .. })) => break,
            Ok(Some(SubscriptionItem::Down { error, .. })) => eprintln!("relay down: {error}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => fail("the relay sent no EOSE"),
        }
    }
    let mut trips = Vec::with_capacity(count);
    for (i, keys) in senders.iter().enumerate() {
        let rumor = gift::message(&keys.public_key(), to, QUESTION, Timestamp::now());
        let rumor_id = rumor.id.expect("message() sets the id").to_hex();
        let wrap = gift::wrap(keys, to, rumor, WrapKind::Stored, Timestamp::now())
            .unwrap_or_else(|e| fail(&format!("cannot wrap: {e}")));
        let start = Instant::now();
        let reports =
            provenance_relay::publish(&[relay.to_owned()], &wrap, &Default::default()).await;
        let publish = start.elapsed();
        match &reports[0].outcome {
            Ok(ack) if ack.accepted => {}
            other => fail(&format!("message {i} not published: {other:?}")),
        }
        let deadline = start + timeout;
        let (reply, received) = loop {
            let item = tokio::time::timeout_at(deadline.into(), subscription.next()).await;
            let raw = match item {
                Ok(Some(SubscriptionItem::Event(raw))) => raw,
                Ok(Some(SubscriptionItem::Down { error, .. })) => {
                    eprintln!("relay down: {error}");
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => fail(&format!(
                    "no reply to message {i} (wrap {}) within {timeout:?}",
                    wrap.id
                )),
            };
            let received = start.elapsed();
            let event = Event::from_json(&raw.json)
                .unwrap_or_else(|e| fail(&format!("the relay sent a bad event: {e}")));
            let for_this = event.tags.public_keys().any(|p| p == keys.public_key());
            if for_this {
                break (event, received);
            }
            // A wrap for an earlier sender: sent again after a reconnection.
        };
        let opened = gift::unwrap(keys, &reply, Timestamp::now())
            .unwrap_or_else(|e| fail(&format!("the reply to message {i} does not open: {e}")));
        if opened.sender != *to || opened.rumor.kind != Kind::from_u16(14) {
            fail(&format!(
                "the reply to message {i} is not a message from the model"
            ));
        }
        let tag = |name: &str| {
            opened
                .rumor
                .tags
                .iter()
                .find(|t| t.as_slice().first().map(String::as_str) == Some(name))
                .and_then(|t| t.as_slice().get(1).cloned())
        };
        if tag("e").as_deref() != Some(rumor_id.as_str()) || tag("q").is_none() {
            fail(&format!(
                "the reply to message {i} does not answer it or names no event: {:?}",
                opened.rumor.tags
            ));
        }
        let content = &opened.rumor.content;
        let Some((answer, _)) = content.rsplit_once("\n\nnostr:") else {
            fail(&format!(
                "the reply to message {i} names no event: {content:?}"
            ));
        };
        trips.push(Trip {
            wrap_id: wrap.id.to_hex(),
            round_trip: received.as_secs_f64() * 1e3,
            publish: publish.as_secs_f64() * 1e3,
            answer: answer.to_owned(),
        });
    }
    subscription.close().await;
    trips
}

/// The agent's `(model ms, replied ms)` for `wrap_id` in the log text.
fn agent_line(log: &str, wrap_id: &str) -> Option<(f64, f64)> {
    let prefix = format!("gift wrap {wrap_id} from ");
    let line = log
        .lines()
        .find(|l| l.contains(&prefix) && l.contains(" answered: model "))?;
    let (_, rest) = line.split_once(" answered: model ")?;
    let (model, rest) = rest.split_once(" ms, replied ")?;
    let (replied, _) = rest.split_once(" ms after it arrived")?;
    Some((model.parse().ok()?, replied.parse().ok()?))
}

fn report(trips: &[Trip], serve_log: &Path) {
    // The agent logs an answer once its reply was taken by a relay, which can be just after
    // the client received it: a few seconds at most.
    let deadline = Instant::now() + Duration::from_secs(10);
    let agent: Vec<(f64, f64)> = loop {
        let log = std::fs::read_to_string(serve_log).unwrap_or_default();
        let found: Option<Vec<_>> = trips.iter().map(|t| agent_line(&log, &t.wrap_id)).collect();
        if let Some(found) = found {
            break found;
        }
        if Instant::now() > deadline {
            fail("the agent did not log an answer line for every measured message");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let column = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { (0..trips.len()).map(f).collect() };
    let round_trip = column(&|i| trips[i].round_trip);
    let publish = column(&|i| trips[i].publish);
    let model = column(&|i| agent[i].0);
    let replied = column(&|i| agent[i].1);
    let own = column(&|i| agent[i].1 - agent[i].0);
    let legs = column(&|i| trips[i].round_trip - agent[i].1);
    let mut answers: Vec<&str> = trips.iter().map(|t| t.answer.as_str()).collect();
    answers.sort_unstable();
    answers.dedup();
    println!(
        "{} messages measured, one at a time; {} distinct answer(s), the first {:?}",
        trips.len(),
        answers.len(),
        trips.first().map_or("", |t| t.answer.as_str())
    );
    println!("{:<44} {:>9} {:>9} {:>9}", "ms", "median", "p90", "largest");
    let rows: [(&str, &str, &[f64]); 6] = [
        (
            "round_trip",
            "client round trip (publish to reply)",
            &round_trip,
        ),
        (
            "publish",
            "  client publication (connect, EVENT, OK)",
            &publish,
        ),
        (
            "replied",
            "agent: arrival to a relay's OK for reply",
            &replied,
        ),
        ("model", "  model part (chat completion, signing)", &model),
        ("agent_own", "  agent's own (replied - model)", &own),
        ("relay_legs", "relay legs (round trip - replied)", &legs),
    ];
    let mut json = serde_json::Map::new();
    json.insert("messages".into(), trips.len().into());
    json.insert("distinct_answers".into(), answers.len().into());
    for (key, label, values) in rows {
        let (median, p90, largest) = stats(values);
        println!("{label:<44} {median:>9.1} {p90:>9.1} {largest:>9.1}");
        json.insert(
            key.into(),
            serde_json::json!({"median": round(median), "p90": round(p90), "max": round(largest)}),
        );
    }
    println!("{}", serde_json::Value::Object(json));
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Median, 90th percentile (nearest rank) and largest.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    (median, sorted[rank - 1], sorted[n - 1])
}
