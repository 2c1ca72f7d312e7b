//! `provenance serve --dm-relay`: the model answers NIP-17 direct messages, end to end on real
//! parts: a real `llama-server` with the tiny generated GGUF behind the signer, a real
//! independent relay (nostr-rs-relay), and nostr-tools (tests/differential/dm-oracle.mjs) as
//! the person writing to the model: it makes the gift wraps sent and opens the replies, so our
//! code is on one end only. The answer's provenance event is then checked by
//! `provenance verify`, fetched from the relays the reply names.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provenance::nostr::event::FinalizeEvent as _;
use provenance::nostr::nips::nip19::ToBech32;
use provenance::nostr::prelude::{Filter, Kind};
use provenance::{Event, Keys};
use provenance_relay::testing::NostrRsRelay;
use serde_json::{Value, json};
use serve_common::{Serve, llama, model, runtime, serve_command};

fn oracle(request: &Value) -> Value {
    provenance_harness::dm_oracle(request)
}

/// A gift wrap from `sender` to `recipient` made by nostr-tools.
fn wrap_by_nostr_tools(sender: &Keys, recipient: &Keys, message: &str) -> Event {
    let answer = oracle(&json!({"wrap": [{
        "sender_secret": sender.secret_key().to_secret_hex(),
        "recipient": recipient.public_key().to_hex(),
        "message": message,
        "kind": 1059,
    }]}));
    Event::from_json(answer["wrap"][0].as_str().unwrap()).unwrap()
}

/// The rumor nostr-tools finds in `wrap` for `recipient`.
fn open_by_nostr_tools(recipient: &Keys, wrap: &Event) -> Value {
    let answer = oracle(&json!({"unwrap": [{
        "recipient_secret": recipient.secret_key().to_secret_hex(),
        "event": serde_json::from_str::<Value>(&wrap.as_json()).unwrap(),
    }]}));
    let opened = &answer["unwrap"][0];
    assert_eq!(opened["wrap_valid"], true, "{opened}");
    opened["rumor"].clone()
}

/// `provenance serve` with direct messages on, its stderr collected.
struct Box {
    _serve: Serve,
    keys: Keys,
    log: Arc<Mutex<Vec<String>>>,
}

/// Waits (60 s at most) until serve has logged a line containing `text`.
fn wait_log(log: &Mutex<Vec<String>>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.lock().unwrap().iter().any(|l| l.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in 60 s: {:#?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(dir: &Path, upstream: &str, relay: &str, allow: &[&Keys], keys: &Keys) -> Box {
    start_with(dir, upstream, relay, allow, keys, &[])
}

fn start_with(
    dir: &Path,
    upstream: &str,
    relay: &str,
    allow: &[&Keys],
    keys: &Keys,
    extra: &[&str],
) -> Box {
    let allow_file = dir.join("allow.txt");
    let list: Vec<String> = allow
        .iter()
        .map(|k| k.public_key().to_bech32().unwrap())
        .collect();
    std::fs::write(&allow_file, list.join("\n")).unwrap();
    let mut command = serve_command(
        dir,
        upstream,
        &model(),
        &[
            "--dm-relay",
            relay,
            "--relay",
            relay,
            "--dm-allow",
            allow_file.to_str().unwrap(),
            "--dm-max-tokens",
            "8",
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect::<Vec<_>>(),
    );
    // `serve_command` wrote a fresh key to key.nsec: the model's key replaces it, the same
    // across a restart.
    std::fs::write(dir.join("key.nsec"), keys.secret_key().to_bech32().unwrap()).unwrap();
    let mut child = command.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if line.contains("answering direct messages") {
                    let _ = tx.send(());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("serve did not start: {:?}", log.lock().unwrap()));
    let base = log
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://127.0.0.1:"))
                .map(|w| w.trim_end_matches(',').to_owned())
        })
        .unwrap();
    Box {
        _serve: Serve { child, base },
        keys: keys.clone(),
        log,
    }
}

async fn publish(relay: &str, event: &Event) {
    let reports = provenance_relay::publish(&[relay.to_owned()], event, &Default::default()).await;
    assert!(
        reports[0].outcome.as_ref().is_ok_and(|a| a.accepted),
        "{reports:?}"
    );
}

/// The gift wraps on `relay` addressed to `to`.
async fn wraps_to(relay: &str, to: &Keys) -> Vec<Event> {
    let filter = Filter::new()
        .kind(Kind::from_u16(1059))
        .pubkey(to.public_key());
    let found = provenance_relay::fetch(&[relay.to_owned()], &filter, &Default::default()).await;
    found
        .events
        .iter()
        .map(|raw| Event::from_json(&raw.json).unwrap())
        .collect()
}

/// Waits until `to` has `n` wraps on `relay` (60 s at most), then returns them.
async fn wait_for(relay: &str, to: &Keys, n: usize, log: &Mutex<Vec<String>>) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = wraps_to(relay, to).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} replies after 60 s; serve said: {:#?}",
            found.len(),
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rumors(to: &Keys, wraps: &[Event]) -> Vec<Value> {
    wraps.iter().map(|w| open_by_nostr_tools(to, w)).collect()
}

fn nevent_in(text: &str) -> &str {
    let start = text
        .find("nostr:nevent1")
        .expect("the reply names its event")
        + "nostr:".len();
    text[start..].split_whitespace().next().unwrap()
}

#[test]
fn direct_messages_are_answered_signed_and_refused_or_replayed_ones_are_not() {
    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    let mallory = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let first = start(dir.path(), &llama.url(), &url, &[&alice], &model_keys);

    // Alice writes from nostr-tools; the reply, opened by nostr-tools, is the model's, answers
    // her message and names a provenance event.
    let question = wrap_by_nostr_tools(&alice, &model_keys, "Say hello.");
    rt.block_on(publish(&url, &question));
    let replies = rt.block_on(wait_for(&url, &alice, 1, &first.log));
    let rumor = &rumors(&alice, &replies)[0];
    assert_eq!(rumor["pubkey"], model_keys.public_key().to_hex());
    assert_eq!(rumor["kind"], 14);
    let content = rumor["content"].as_str().unwrap();
    let nevent = nevent_in(content);
    let tags = rumor["tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!(["p", alice.public_key().to_hex()])),
        "{tags:?}"
    );
    let quoted = tags.iter().find(|t| t[0] == "q").expect("a q tag");

    // The event verifies, fetched from the relays the nevent names, and the text before the
    // reference is exactly the signed output.
    let answer = content.split("\n\nnostr:").next().unwrap();
    std::fs::write(dir.path().join("answer.txt"), answer).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(["verify", "--json", nevent, "--output"])
        .arg(dir.path().join("answer.txt"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify {nevent}: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(quoted[1].as_str().unwrap()), "{report}");

    // The same wrap again: no second answer. Mallory, not on the list, is told why, and
    // nothing is generated for her.
    rt.block_on(publish_again(&url, &question));
    let from_mallory = wrap_by_nostr_tools(&mallory, &model_keys, "Let me in.");
    rt.block_on(publish(&url, &from_mallory));
    let refusal = rt.block_on(wait_for(&url, &mallory, 1, &first.log));
    let refusal = &rumors(&mallory, &refusal)[0];
    let text = refusal["content"].as_str().unwrap();
    assert!(text.starts_with("Not answered:"), "{text}");
    assert!(!text.contains("nostr:nevent"), "{text}");
    // A message sent after them is answered after them: by then both were decided about.
    let second = wrap_by_nostr_tools(&alice, &model_keys, "And goodbye.");
    rt.block_on(publish(&url, &second));
    let replies = rt.block_on(wait_for(&url, &alice, 2, &first.log));
    assert_eq!(replies.len(), 2, "the replayed wrap was not answered again");
    let log = first.log.lock().unwrap().join("\n");
    assert!(
        log.contains("refused: this model answers only the keys"),
        "{log}"
    );
    assert!(
        !log.contains("Say hello"),
        "message text is never logged: {log}"
    );
    drop(first);

    // A restart reads the same stored wraps again and answers none of them twice; a new
    // message is still answered.
    let again = start(dir.path(), &llama.url(), &url, &[&alice], &model_keys);
    let third = wrap_by_nostr_tools(&alice, &model_keys, "Still there?");
    rt.block_on(publish(&url, &third));
    let replies = rt.block_on(wait_for(&url, &alice, 3, &again.log));
    assert_eq!(replies.len(), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rt.block_on(wraps_to(&url, &alice)).len(), 3);
    assert_eq!(rt.block_on(wraps_to(&url, &mallory)).len(), 1);
    let _ = again.keys;
}

/// Publishes an event the relay already has (it answers `duplicate:`, which still counts as
/// accepted) so that live subscriptions see it again.
async fn publish_again(relay: &str, event: &Event) {
    let reports = provenance_relay::publish(&[relay.to_owned()], event, &Default::default()).await;
    assert!(reports[0].outcome.is_ok(), "{reports:?}");
}

#[test]
fn dm_relay_without_an_allow_list_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_command(
        dir.path(),
        "http://127.0.0.1:9",
        &model(),
        &["--dm-relay", "ws://127.0.0.1:9"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dm-allow FILE or --dm-any"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// An upstream that answers every GET with 404 (so serve starts at once) and holds every POST
/// for 30 s without a word: a model that is busy for longer than the test waits.
fn stuck_upstream(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some((head, _)) = serve_common::read_request(&mut reader) {
        if head.starts_with("POST") {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    }
}

#[test]
fn a_message_accepted_before_a_kill_is_answered_once_after_the_restart() {
    let relay = NostrRsRelay::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let stuck = format!(
        "http://127.0.0.1:{}",
        serve_common::canned_upstream(stuck_upstream)
    );
    let mut first = start(dir.path(), &stuck, &url, &[&alice], &model_keys);

    // Garbage addressed to the model: a valid outer event whose content is not a seal. It is
    // dropped with its reason; the agent goes on.
    let junk = provenance::nostr::prelude::EventBuilder::new(Kind::from_u16(1059), "not nip44")
        .tag(provenance::nostr::prelude::Tag::public_key(
            model_keys.public_key(),
        ))
        .finalize(&Keys::generate())
        .unwrap();
    rt.block_on(publish(&url, &junk));
    wait_log(&first.log, &format!("gift wrap {} dropped:", junk.id));

    let question = wrap_by_nostr_tools(&alice, &model_keys, "Are you there?");
    rt.block_on(publish(&url, &question));
    wait_log(&first.log, &format!("gift wrap {} from", question.id));
    wait_log(&first.log, "queued");
    // Killed while the model works on it (SIGKILL: nothing is flushed or closed).
    first._serve.child.kill().unwrap();
    first._serve.child.wait().unwrap();
    assert!(rt.block_on(wraps_to(&url, &alice)).is_empty());

    // The restart, now with a model that answers: the accepted message is answered, once,
    // though the relay sends its wrap again too.
    let llama = llama(&model());
    let again = start(dir.path(), &llama.url(), &url, &[&alice], &model_keys);
    let replies = rt.block_on(wait_for(&url, &alice, 1, &again.log));
    let rumor = &rumors(&alice, &replies)[0];
    assert!(
        rumor["content"].as_str().unwrap().contains("nostr:nevent1"),
        "{rumor}"
    );
    let later = wrap_by_nostr_tools(&alice, &model_keys, "Thanks.");
    rt.block_on(publish(&url, &later));
    rt.block_on(wait_for(&url, &alice, 2, &again.log));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rt.block_on(wraps_to(&url, &alice)).len(),
        2,
        "{:#?}",
        again.log.lock().unwrap()
    );
}

/// Events of `kind` on `relay` that p-tag `to`.
async fn events_to(relay: &str, kind: u16, to: &Keys) -> Vec<Event> {
    let filter = Filter::new()
        .kind(Kind::from_u16(kind))
        .pubkey(to.public_key());
    let found = provenance_relay::fetch(&[relay.to_owned()], &filter, &Default::default()).await;
    found
        .events
        .iter()
        .map(|raw| Event::from_json(&raw.json).unwrap())
        .collect()
}

/// Waits (60 s at most) for an event of `kind` to `to` answering the request `job` (`e` tag).
async fn answer_to(
    relay: &str,
    kind: u16,
    to: &Keys,
    job: &Event,
    log: &Mutex<Vec<String>>,
) -> Event {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = events_to(relay, kind, to).await;
        if let Some(e) = found
            .into_iter()
            .find(|e| tag_value(e, "e") == Some(job.id.to_hex()))
        {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no kind {kind} for job {} after 60 s; serve said: {:#?}",
            job.id,
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tag_value(event: &Event, name: &str) -> Option<String> {
    event.tags.iter().find_map(|t| {
        let t = t.as_slice();
        (t.first().map(String::as_str) == Some(name))
            .then(|| t.get(1).cloned())
            .flatten()
    })
}

/// A kind 5050 request signed by nostr-tools.
fn job_by_nostr_tools(customer: &Keys, tags: Value, content: &str) -> Event {
    let answer = oracle(&json!({"sign": [{
        "secret_key": customer.secret_key().to_secret_hex(),
        "kind": 5050,
        "tags": tags,
        "content": content,
    }]}));
    Event::from_json(answer["sign"][0].to_string()).unwrap()
}

fn verify_result(dir: &Path, input: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provenance"))
        .arg("verify")
        .arg(input)
        .args(extra)
        .output()
        .unwrap();
    let _ = dir;
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn nip90_jobs_from_nostr_tools_get_feedback_and_results_that_verify() {
    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let customer = Keys::generate();
    let stranger = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let served = start_with(
        dir.path(),
        &llama.url(),
        &url,
        &[&customer],
        &model_keys,
        &["--dm-jobs"],
    );
    let p = model_keys.public_key().to_hex();

    // A plain request: processing feedback, then a result that names its provenance event.
    let plain = job_by_nostr_tools(
        &customer,
        json!([
            ["i", "Say hi.", "text"],
            ["param", "max_tokens", "4"],
            ["param", "temperature", "0"],
            ["p", p],
            ["relays", url]
        ]),
        "",
    );
    rt.block_on(publish(&url, &plain));
    let result = rt.block_on(answer_to(&url, 6050, &customer, &plain, &served.log));
    assert_eq!(result.pubkey, model_keys.public_key());
    assert!(result.verify().is_ok());
    assert_eq!(
        tag_value(&result, "p"),
        Some(customer.public_key().to_hex())
    );
    assert_eq!(tag_value(&result, "i").as_deref(), Some("Say hi."));
    assert!(tag_value(&result, "model").is_some());
    assert!(tag_value(&result, "q").is_some());
    let feedback = rt.block_on(answer_to(&url, 7000, &customer, &plain, &served.log));
    assert_eq!(
        tag_value(&feedback, "status").as_deref(),
        Some("processing")
    );

    // `provenance verify` takes the result, as a file and as a nevent, and checks its
    // provenance event against its content.
    let file = dir.path().join("result.json");
    std::fs::write(&file, result.as_json()).unwrap();
    let (code, said) = verify_result(dir.path(), file.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("job result"), "{said}");
    assert!(said.contains("its content matches its x tag"), "{said}");
    let nevent = provenance::nip19::Nevent {
        id: result.id,
        relays: vec![url.clone()],
        author: Some(result.pubkey),
        kind: Some(6050),
    }
    .encode()
    .unwrap();
    let (code, said) = verify_result(dir.path(), &nevent, &[]);
    assert_eq!(code, Some(0), "{said}");
    // An altered result fails, one line, exit 1.
    let mut altered: Value = serde_json::from_str(&result.as_json()).unwrap();
    altered["content"] = Value::from("something else");
    std::fs::write(&file, altered.to_string()).unwrap();
    let (code, said) = verify_result(dir.path(), file.to_str().unwrap(), &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("id or signature does not verify"), "{said}");

    // Encrypted parameters (NIP-04, as NIP-90 says): the result is encrypted back, carries
    // no input in the clear, and verifies with the text the customer decrypted.
    let secret = r#"[["i","Say hello.","text"],["param","max_tokens","4"]]"#;
    let sealed = oracle(&json!({"nip04_encrypt": [{
        "secret_key": customer.secret_key().to_secret_hex(),
        "public_key": p,
        "plaintext": secret,
    }]}))["nip04_encrypt"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let hidden = job_by_nostr_tools(&customer, json!([["p", p], ["encrypted"]]), &sealed);
    rt.block_on(publish(&url, &hidden));
    let result = rt.block_on(answer_to(&url, 6050, &customer, &hidden, &served.log));
    assert!(tag_value(&result, "i").is_none());
    assert!(!result.as_json().contains("Say hello"));
    let opened = oracle(&json!({"nip04_decrypt": [{
        "secret_key": customer.secret_key().to_secret_hex(),
        "public_key": p,
        "payload": result.content,
    }]}));
    let text = opened["nip04_decrypt"][0]["plaintext"].as_str().unwrap();
    std::fs::write(&file, result.as_json()).unwrap();
    std::fs::write(dir.path().join("answer.txt"), text).unwrap();
    let answer = dir.path().join("answer.txt");
    let (code, said) = verify_result(
        dir.path(),
        file.to_str().unwrap(),
        &["--output", answer.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("encrypted"), "{said}");

    // An unknown parameter, and a customer who is not allowed: error feedback, no result.
    let odd = job_by_nostr_tools(
        &customer,
        json!([["i", "Hi", "text"], ["param", "frobnicate", "1"], ["p", p]]),
        "",
    );
    rt.block_on(publish(&url, &odd));
    let refused = rt.block_on(answer_to(&url, 7000, &customer, &odd, &served.log));
    let status: Vec<String> = refused
        .tags
        .iter()
        .find(|t| t.as_slice()[0] == "status")
        .unwrap()
        .as_slice()
        .to_vec();
    assert_eq!(status[1], "error");
    assert!(
        status[2].contains("unknown param \"frobnicate\""),
        "{status:?}"
    );
    let from_stranger = job_by_nostr_tools(&stranger, json!([["i", "Hi", "text"], ["p", p]]), "");
    rt.block_on(publish(&url, &from_stranger));
    let refused = rt.block_on(answer_to(
        &url,
        7000,
        &stranger,
        &from_stranger,
        &served.log,
    ));
    assert_eq!(tag_value(&refused, "status").as_deref(), Some("error"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(rt.block_on(events_to(&url, 6050, &stranger)).is_empty());
    assert_eq!(rt.block_on(events_to(&url, 6050, &customer)).len(), 2);

    // The service is announced (NIP-89) for kind 5050.
    let filter = Filter::new()
        .kind(Kind::from_u16(31990))
        .author(model_keys.public_key());
    let found = rt.block_on(provenance_relay::fetch(
        std::slice::from_ref(&url),
        &filter,
        &Default::default(),
    ));
    let announcement = Event::from_json(&found.events[0].json).unwrap();
    assert_eq!(tag_value(&announcement, "k").as_deref(), Some("5050"));
}

/// A gift wrap built by hand, layer by layer, so that each layer can be wrong: the rumor
/// claims `author`, the seal is signed by `sealer` and encrypted to `seal_to`, the wrap is
/// encrypted to `wrap_to`, p-tags `tagged` and is dated `wrap_date`.
struct Hostile<'a> {
    author: &'a Keys,
    sealer: &'a Keys,
    seal_to: &'a Keys,
    wrap_to: &'a Keys,
    tagged: &'a Keys,
    wrap_date: u64,
    break_seal_signature: bool,
}

impl Hostile<'_> {
    fn build(&self, text: &str) -> Event {
        use provenance::nostr::prelude::{SignEvent as _, Tag, UnsignedEvent};
        use provenance_dm::nip44::{ConversationKey, encrypt};
        let now = provenance::Timestamp::now();
        let mut rumor = UnsignedEvent::new(
            self.author.public_key(),
            now,
            Kind::from_u16(14),
            [Tag::public_key(self.tagged.public_key())],
            text,
        );
        rumor.ensure_id();
        let key =
            ConversationKey::derive(self.sealer.secret_key(), &self.seal_to.public_key()).unwrap();
        let seal = UnsignedEvent::new(
            self.sealer.public_key(),
            now,
            Kind::from_u16(13),
            [],
            encrypt(&key, &rumor.as_json()).unwrap(),
        );
        let seal = self.sealer.sign_event(seal).unwrap();
        let mut seal_json: Value = serde_json::from_str(&seal.as_json()).unwrap();
        if self.break_seal_signature {
            seal_json["sig"] = Value::from("00".repeat(64));
        }
        let one_time = Keys::generate();
        let key =
            ConversationKey::derive(one_time.secret_key(), &self.wrap_to.public_key()).unwrap();
        let wrap = UnsignedEvent::new(
            one_time.public_key(),
            provenance::Timestamp::from_secs(self.wrap_date),
            Kind::from_u16(1059),
            [Tag::public_key(self.tagged.public_key())],
            encrypt(&key, &seal_json.to_string()).unwrap(),
        );
        one_time.sign_event(wrap).unwrap()
    }
}

#[test]
fn hostile_gift_wraps_are_dropped_with_their_reason_and_never_answered() {
    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    let mallory = Keys::generate();
    let bob = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let served = start(dir.path(), &llama.url(), &url, &[&alice], &model_keys);
    let now = provenance::Timestamp::now().as_secs();
    let honest = Hostile {
        author: &alice,
        sealer: &alice,
        seal_to: &model_keys,
        wrap_to: &model_keys,
        tagged: &model_keys,
        wrap_date: now - 60,
        break_seal_signature: false,
    };
    let cases = [
        // Mallory seals a rumor that claims to be Alice's (who is allowed).
        (
            Hostile {
                author: &alice,
                sealer: &mallory,
                ..honest
            },
            "but the seal is signed by",
        ),
        // Addressed to the model, encrypted to Bob.
        (
            Hostile {
                wrap_to: &bob,
                ..honest
            },
            "dropped",
        ),
        (
            Hostile {
                seal_to: &bob,
                ..honest
            },
            "dropped",
        ),
        (
            Hostile {
                break_seal_signature: true,
                ..honest
            },
            "signature",
        ),
        (
            Hostile {
                wrap_date: now + 3600,
                ..honest
            },
            "future",
        ),
    ];
    for (hostile, reason) in &cases {
        let wrap = hostile.build("answer me");
        rt.block_on(publish(&url, &wrap));
        let line = format!("gift wrap {} dropped:", wrap.id);
        wait_log(&served.log, &line);
        let log = served.log.lock().unwrap();
        let said = log.iter().find(|l| l.contains(&line)).unwrap();
        assert!(said.contains(reason), "{said} / {reason}");
        assert_eq!(said.lines().count(), 1);
    }
    // The honest one, sent last, is answered; none of the others was.
    let wrap = honest.build("Hello.");
    rt.block_on(publish(&url, &wrap));
    rt.block_on(wait_for(&url, &alice, 1, &served.log));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rt.block_on(wraps_to(&url, &alice)).len(), 1);
    for other in [&mallory, &bob] {
        assert!(rt.block_on(wraps_to(&url, other)).is_empty());
    }
    // The agent's DM relay list (kind 10050) and profile (kind 0) were published.
    let latest = |kind: u16| {
        let filter = Filter::new()
            .kind(Kind::from_u16(kind))
            .author(model_keys.public_key());
        let found = rt.block_on(provenance_relay::fetch(
            std::slice::from_ref(&url),
            &filter,
            &Default::default(),
        ));
        Event::from_json(&found.events[0].json).unwrap()
    };
    let list = latest(10050);
    assert!(list.verify().is_ok());
    assert_eq!(tag_value(&list, "relay"), Some(url.clone()));
    let profile: Value = serde_json::from_str(&latest(0).content).unwrap();
    assert_eq!(profile["bot"], true);
    assert_eq!(profile["name"], "tiny-llama-f16");
}

/// The first event item of a live subscription to `relay` (authenticated as `keys`) within
/// 60 s.
async fn first_event(relay: &str, filter: Filter, keys: &Keys, log: &Mutex<Vec<String>>) -> Event {
    let options = provenance_relay::SubscribeOptions {
        auth: Some(keys.clone()),
        ..Default::default()
    };
    let mut subscription = provenance_relay::subscribe(&[relay.to_owned()], filter, options);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, subscription.next()).await {
            Ok(Some(provenance_relay::SubscriptionItem::Event(raw))) => {
                return Event::from_json(&raw.json).unwrap();
            }
            Ok(Some(other)) => eprintln!("{relay}: {other:?}"),
            Ok(None) | Err(_) => panic!(
                "nothing from {relay} in 60 s; serve said: {:#?}",
                log.lock().unwrap()
            ),
        }
    }
}

#[test]
fn a_friend_talking_to_the_box_alone_is_answered_through_its_own_relay() {
    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let friend = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let served = start_with(
        dir.path(),
        &llama.url(),
        &url,
        &[&friend],
        &model_keys,
        &["--dm-jobs"],
    );
    let box_relay = served._serve.base.replacen("http://", "ws://", 1);

    // A direct message written to the box's relay, by nostr-tools; the reply read back from
    // the box's relay, authenticated (NIP-42) as the friend, and opened by nostr-tools.
    let question = wrap_by_nostr_tools(&friend, &model_keys, "Hello, box.");
    rt.block_on(publish(&box_relay, &question));
    let filter = Filter::new()
        .kind(Kind::from_u16(1059))
        .pubkey(friend.public_key());
    let reply = rt.block_on(first_event(&box_relay, filter, &friend, &served.log));
    let rumor = open_by_nostr_tools(&friend, &reply);
    assert_eq!(rumor["pubkey"], model_keys.public_key().to_hex());
    assert!(
        rumor["content"].as_str().unwrap().contains("nostr:nevent1"),
        "{rumor}"
    );

    // A job sent to the box's relay: its result is there too, for anyone.
    let p = model_keys.public_key().to_hex();
    let job = job_by_nostr_tools(
        &friend,
        json!([
            ["i", "Say hi.", "text"],
            ["param", "max_tokens", "4"],
            ["p", p]
        ]),
        "",
    );
    rt.block_on(publish(&box_relay, &job));
    let filter = Filter::new()
        .kind(Kind::from_u16(6050))
        .pubkey(friend.public_key());
    let stranger = Keys::generate();
    let result = rt.block_on(first_event(&box_relay, filter, &stranger, &served.log));
    assert_eq!(tag_value(&result, "e"), Some(job.id.to_hex()));
    let file = dir.path().join("result.json");
    std::fs::write(&file, result.as_json()).unwrap();
    let (code, said) = verify_result(dir.path(), file.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{said}");
}

/// [`start_with`] charging 1 sat a request and 1 sat an output token, in Cashu of `mint`,
/// with the wallet and balances in `pay_db`.
#[allow(clippy::too_many_arguments)]
fn start_paid(
    dir: &Path,
    upstream: &str,
    relay: &str,
    allow: &[&Keys],
    keys: &Keys,
    mint: &str,
    pay_db: &Path,
    extra: &[&str],
) -> Box {
    let pay_db = pay_db.to_str().unwrap();
    let mut args = vec![
        "--price",
        "request = 1 sat",
        "--price",
        "output_1k = 1000 sat",
        "--cashu-mint",
        mint,
        "--pay-db",
        pay_db,
    ];
    args.extend_from_slice(extra);
    start_with(dir, upstream, relay, allow, keys, &args)
}

#[test]
fn a_stranger_pays_for_answers_by_direct_message_with_cashu() {
    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let mint = provenance_harness::CashuMint::start().unwrap();
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let alice = Keys::generate();
    let bob = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let pay_db = dir.path().join("pay.sqlite");
    let served = start_paid(
        dir.path(),
        &llama.url(),
        &url,
        &[&alice],
        &model_keys,
        &mint.url(),
        &pay_db,
        &[],
    );
    let texts = |n: usize| -> Vec<String> {
        let wraps = rt.block_on(wait_for(&url, &bob, n, &served.log));
        rumors(&bob, &wraps)
            .iter()
            .map(|r| r["content"].as_str().unwrap().to_owned())
            .collect()
    };

    // Bob is not on the list: told what an answer costs and how to pay, nothing generated.
    let ask = wrap_by_nostr_tools(&bob, &model_keys, "Hello?");
    rt.block_on(publish(&url, &ask));
    let said = texts(1);
    assert!(said[0].contains("creqA"), "{said:?}");
    assert!(said[0].contains("your balance is 0 sat"), "{said:?}");
    assert!(!said[0].contains("nostr:nevent"), "{said:?}");

    // He sends a Cashu token as a message: credited, and told.
    let token = mint.mint_token(20).unwrap();
    let top_up = wrap_by_nostr_tools(&bob, &model_keys, &token);
    rt.block_on(publish(&url, &top_up));
    let said = texts(2);
    assert!(
        said.iter()
            .any(|t| t == "Credited 20 sat. Your balance is 20 sat."),
        "{said:?}"
    );
    assert!(
        mint.token_states(&token)
            .unwrap()
            .iter()
            .all(|s| s == "SPENT")
    );

    // Now he is answered, and charged for what the answer took.
    let ask = wrap_by_nostr_tools(&bob, &model_keys, "Say hi.");
    rt.block_on(publish(&url, &ask));
    let said = texts(3);
    assert!(said.iter().any(|t| t.contains("nostr:nevent1")), "{said:?}");
    drop(served);
    let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
    let left = ledger
        .balance(&format!("npub:{}", bob.public_key().to_hex()))
        .unwrap();
    assert!((20_000 - 9_000..20_000).contains(&left), "{left}");
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced() && totals.reserved == 0, "{totals:?}");
    assert_eq!(totals.operator, 20_000 - left);
}

/// The BOLT11 invoice after `lightning:` in `text`.
fn invoice_in(text: &str) -> &str {
    let start = text.find("lightning:").expect("an invoice") + "lightning:".len();
    text[start..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap()
}

#[test]
fn a_stranger_pays_by_lightning_from_the_invoice_in_the_reply_or_in_job_feedback() {
    use provenance_harness::{NwcWallet, lightning};
    use provenance_pay::bolt11::Invoice;

    let llama = llama(&model());
    let relay = NostrRsRelay::start().unwrap();
    let mint = provenance_harness::CashuMint::start().unwrap();
    // The wallet service's relay runs in this process: worker threads keep it serving.
    let nwc_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let nwc_relay = nwc_rt
        .block_on(provenance_relay::testing::MockRelay::start())
        .unwrap();
    let wallet = NwcWallet::start(nwc_relay.url(), 1_000_000);
    let url = relay.url().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().unwrap();
    let nwc = dir.path().join("nwc.uri");
    std::fs::write(&nwc, &wallet.box_uri).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&nwc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let alice = Keys::generate();
    let bob = Keys::generate();
    let carol = Keys::generate();
    let model_keys = Keys::generate();
    let rt = runtime();
    let pay_db = dir.path().join("pay.sqlite");
    let served = start_paid(
        dir.path(),
        &llama.url(),
        &url,
        &[&alice],
        &model_keys,
        &mint.url(),
        &pay_db,
        &["--nwc-file", nwc.to_str().unwrap(), "--dm-jobs"],
    );
    let ledger = provenance_pay::Ledger::open(&pay_db).unwrap();
    let balance = |who: &Keys| {
        ledger
            .balance(&format!("npub:{}", who.public_key().to_hex()))
            .unwrap()
    };
    let wait_balance = |who: &Keys, at_least: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while balance(who) < at_least {
            assert!(
                Instant::now() < deadline,
                "balance {} after 30 s",
                balance(who)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Bob, not on the list, asks: the reply says what is missing and carries an invoice for
    // it, which credits him when his own wallet pays it.
    let ask = wrap_by_nostr_tools(&bob, &model_keys, "Hello?");
    rt.block_on(publish(&url, &ask));
    let wraps = rt.block_on(wait_for(&url, &bob, 1, &served.log));
    let said = rumors(&bob, &wraps)[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(said.contains("your balance is 0 sat"), "{said}");
    let invoice = invoice_in(&said).to_owned();
    // 1 sat per request and 8 output tokens at most: 9 sat short.
    assert_eq!(Invoice::parse(&invoice).unwrap().amount_msat, Some(9_000));
    let paid = lightning(&["pay", &wallet.customer_uri, &invoice]);
    assert!(paid["preimage"].is_string(), "{paid}");
    wait_balance(&bob, 9_000);
    let ask = wrap_by_nostr_tools(&bob, &model_keys, "Say hi.");
    rt.block_on(publish(&url, &ask));
    let wraps = rt.block_on(wait_for(&url, &bob, 2, &served.log));
    let said = rumors(&bob, &wraps);
    assert!(
        said.iter()
            .any(|r| r["content"].as_str().unwrap().contains("nostr:nevent1")),
        "{said:?}"
    );

    // Carol sends a job: payment-required feedback with NIP-90's amount tag and its invoice.
    let p = model_keys.public_key().to_hex();
    let job = job_by_nostr_tools(
        &carol,
        json!([
            ["i", "Say hi.", "text"],
            ["param", "max_tokens", "4"],
            ["p", p],
            ["relays", url]
        ]),
        "",
    );
    rt.block_on(publish(&url, &job));
    let feedback = rt.block_on(answer_to(&url, 7000, &carol, &job, &served.log));
    assert_eq!(
        tag_value(&feedback, "status").as_deref(),
        Some("payment-required")
    );
    let amount = feedback
        .tags
        .iter()
        .find(|t| t.as_slice().first().map(String::as_str) == Some("amount"))
        .unwrap()
        .as_slice()
        .to_vec();
    let asked: u64 = amount[1].parse().unwrap();
    let invoice = Invoice::parse(&amount[2]).unwrap();
    assert_eq!(invoice.amount_msat, Some(asked.div_ceil(1000) * 1000));
    let paid = lightning(&["pay", &wallet.customer_uri, &amount[2]]);
    assert!(paid["preimage"].is_string(), "{paid}");
    wait_balance(&carol, asked);
    // Paid up, a new request gets its result.
    let again = job_by_nostr_tools(
        &carol,
        json!([
            ["i", "Say hi again.", "text"],
            ["param", "max_tokens", "4"],
            ["p", model_keys.public_key().to_hex()],
            ["relays", url]
        ]),
        "",
    );
    rt.block_on(publish(&url, &again));
    let result = rt.block_on(answer_to(&url, 6050, &carol, &again, &served.log));
    assert!(result.verify().is_ok());
    drop(served);
    let totals = ledger.totals().unwrap();
    assert!(totals.balanced() && totals.reserved == 0, "{totals:?}");
    assert_eq!(
        ledger.credited_by("lightning:").unwrap(),
        lightning(&["balance", &wallet.box_uri])["balance"]
            .as_u64()
            .unwrap()
    );
}
