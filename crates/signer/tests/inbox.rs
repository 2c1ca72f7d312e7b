//! The box's relay takes events addressed to its key, through the real server and the
//! project's relay client: gift wraps are published with `provenance_relay::publish` and read
//! back with `provenance_relay::subscribe`, authenticated (NIP-42) as the box's key or not.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use provenance::nostr::prelude::{
    Event, EventBuilder, Filter, FinalizeEvent, Kind, PublicKey, Tag, Timestamp,
};
use provenance::{Keys, Model};
use provenance_relay::{
    Options, PublishAck, RelayError, SubscribeOptions, SubscriptionItem, publish, subscribe,
};
use provenance_signer::server::Server;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and how to stop it.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    done: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
}

/// The signing server with `keys` and the store in `dir`, in front of an upstream that is not
/// there (the relay does not need one).
async fn start(dir: &Path, keys: &Keys) -> Running {
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", nowhere.local_addr().unwrap());
    drop(nowhere);
    let server = Server::builder(
        keys.clone(),
        Model::named("tiny"),
        upstream.parse().unwrap(),
        dir.join("events.sqlite"),
    )
    .listen("127.0.0.1:0".parse().unwrap())
    .bind()
    .await
    .unwrap();
    let url = format!("ws://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running { url, stop, done }
}

/// An event of `kind` from a fresh key, `p`-tagging `to`.
fn addressed(kind: u16, to: &PublicKey, content: &str) -> Event {
    EventBuilder::new(Kind::from_u16(kind), content)
        .tag(Tag::public_key(*to))
        .finalize(&Keys::generate())
        .unwrap()
}

async fn send(url: &str, event: &Event) -> PublishAck {
    let report = publish(&[url.to_owned()], event, &Options::default()).await;
    report.into_iter().next().unwrap().outcome.unwrap()
}

/// What a subscription to `filter` on `url` (authenticated as `auth`) yields within `wait`:
/// the ids of the events, whether `EOSE` came, and the notices.
async fn read(
    url: &str,
    filter: Filter,
    auth: Option<&Keys>,
    wait: Duration,
) -> (Vec<String>, bool, Vec<String>) {
    let options = SubscribeOptions {
        auth: auth.cloned(),
        ..SubscribeOptions::default()
    };
    let mut subscription = subscribe(&[url.to_owned()], filter, options);
    let (mut ids, mut eose, mut notices) = (Vec::new(), false, Vec::new());
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, subscription.next()).await {
        match item {
            SubscriptionItem::Event(raw) => {
                let event: serde_json::Value = serde_json::from_str(&raw.json).unwrap();
                ids.push(event["id"].as_str().unwrap().to_owned());
            }
            SubscriptionItem::Eose { .. } => eose = true,
            SubscriptionItem::Notice { message, .. } => notices.push(message),
            SubscriptionItem::Down { error, .. } => {
                assert!(matches!(error, RelayError::Closed { .. }), "{error}");
            }
        }
    }
    (ids, eose, notices)
}

fn wraps(to: &PublicKey) -> Filter {
    Filter::new()
        .kinds([Kind::from_u16(1059), Kind::from_u16(21059)])
        .pubkey(*to)
}

const WAIT: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn a_gift_wrap_to_the_box_is_kept_and_read_only_by_its_addressee_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let box_keys = Keys::generate();
    let me = box_keys.public_key();
    let server = start(dir.path(), &box_keys).await;
    let url = server.url.clone();

    let wrap = addressed(1059, &me, "sealed");
    let ack = send(&url, &wrap).await;
    assert!(ack.accepted && ack.message.is_empty(), "{ack:?}");
    let ack = send(&url, &wrap).await;
    assert!(
        ack.accepted && ack.message.starts_with("duplicate:"),
        "{ack:?}"
    );

    // As the box's key: received (after the relay asked for authentication).
    let (ids, eose, _) = read(&url, wraps(&me), Some(&box_keys), WAIT).await;
    assert_eq!(ids, [wrap.id.to_hex()]);
    assert!(eose);
    // Unauthenticated, or as another key: not received, and told why.
    let (ids, _, notices) = read(&url, wraps(&me), None, WAIT).await;
    assert!(ids.is_empty(), "{ids:?}");
    assert!(
        notices.iter().any(|n| n.starts_with("auth-required:")),
        "{notices:?}"
    );
    // Authenticated as another key, asking for the box's wraps: answered, with none of them.
    let stranger = Keys::generate();
    let (ids, eose, _) = read(&url, wraps(&me), Some(&stranger), WAIT).await;
    assert!(ids.is_empty() && eose, "{ids:?}");
    // A REQ for everything: the rest, without the wrap.
    let (ids, eose, _) = read(&url, Filter::new(), None, WAIT).await;
    assert!(eose && !ids.contains(&wrap.id.to_hex()), "{ids:?}");

    // Refused: a wrap to another key, a bad signature, one too large, a kind not taken.
    let other = Keys::generate().public_key();
    let ack = send(&url, &addressed(1059, &other, "not ours")).await;
    assert!(
        !ack.accepted && ack.message.starts_with("blocked:"),
        "{ack:?}"
    );
    let mut forged = addressed(1059, &me, "forged");
    forged.sig = addressed(1059, &me, "else").sig;
    let ack = send(&url, &forged).await;
    assert!(
        !ack.accepted && ack.message.starts_with("invalid:"),
        "{ack:?}"
    );
    let big = addressed(1059, &me, &"x".repeat(270 * 1024));
    let ack = send(&url, &big).await;
    assert!(
        !ack.accepted && ack.message.starts_with("invalid: event too large"),
        "{ack:?}"
    );
    let note = EventBuilder::new(Kind::TextNote, "hello")
        .finalize(&Keys::generate())
        .unwrap();
    let ack = send(&url, &note).await;
    assert!(
        !ack.accepted && ack.message.starts_with("blocked:"),
        "{ack:?}"
    );
    // Larger than other messages may be, under the cap for addressed events: taken.
    let long = addressed(1059, &me, &"x".repeat(200 * 1024));
    assert!(send(&url, &long).await.accepted);

    // After a restart, the stored wraps are still served.
    server.stop().await;
    let server = start(dir.path(), &box_keys).await;
    let (mut ids, eose, _) = read(&server.url, wraps(&me), Some(&box_keys), WAIT).await;
    ids.sort();
    let mut expected = vec![wrap.id.to_hex(), long.id.to_hex()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(eose);
    server.stop().await;
}

#[tokio::test]
async fn an_ephemeral_wrap_is_delivered_live_not_stored_and_a_job_request_is_public() {
    let dir = tempfile::tempdir().unwrap();
    let box_keys = Keys::generate();
    let me = box_keys.public_key();
    let server = start(dir.path(), &box_keys).await;
    let url = server.url.clone();

    let options = SubscribeOptions {
        auth: Some(box_keys.clone()),
        ..SubscribeOptions::default()
    };
    let filter = Filter::new().kind(Kind::from_u16(21059)).pubkey(me);
    let mut live = subscribe(std::slice::from_ref(&url), filter.clone(), options);
    loop {
        let item = tokio::time::timeout(WAIT, live.next())
            .await
            .unwrap()
            .unwrap();
        match item {
            SubscriptionItem::Eose { .. } => break,
            SubscriptionItem::Event(raw) => panic!("nothing stored yet: {}", raw.json),
            _ => {}
        }
    }
    let ephemeral = addressed(21059, &me, "now or never");
    assert!(send(&url, &ephemeral).await.accepted);
    let item = tokio::time::timeout(WAIT, live.next())
        .await
        .unwrap()
        .unwrap();
    let SubscriptionItem::Event(raw) = item else {
        panic!("{item:?}");
    };
    assert!(raw.json.contains(&ephemeral.id.to_hex()));
    // Not stored: a later REQ does not return it.
    let (ids, eose, _) = read(&url, filter, Some(&box_keys), WAIT).await;
    assert!(eose && ids.is_empty(), "{ids:?}");

    // A job request to the box: taken and readable by anyone, unauthenticated.
    let job = addressed(5050, &me, "");
    let ack = send(&url, &job).await;
    assert!(ack.accepted, "{ack:?}");
    let jobs = Filter::new().kind(Kind::from_u16(5050)).pubkey(me);
    let (ids, eose, _) = read(&url, jobs, None, WAIT).await;
    assert!(eose);
    assert_eq!(ids, [job.id.to_hex()]);
    server.stop().await;
}

/// An event dated more than 10 minutes ahead of the relay's clock is refused (`invalid:`).
#[tokio::test]
async fn a_job_request_dated_in_the_future_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let box_keys = Keys::generate();
    let me = box_keys.public_key();
    let server = start(dir.path(), &box_keys).await;
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 3600);
    let job = EventBuilder::new(Kind::from_u16(5050), "")
        .tag(Tag::public_key(me))
        .custom_created_at(later)
        .finalize(&Keys::generate())
        .unwrap();
    let ack = send(&server.url, &job).await;
    assert!(!ack.accepted && ack.message.contains("future"), "{ack:?}");
    server.stop().await;
}
