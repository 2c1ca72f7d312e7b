//! The HTTP API, without sockets (`ServiceExt::oneshot`), on the demo corpus of provenance-fixtures.
//! Every response is validated against `schemas/lookup.openapi.json`, and one test checks that
//! every documented path, method and status is exercised.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use provenance::fingerprint::{Analysis, K, RULE, W};
use provenance_fixtures as kit;
use provenance_lookup::http::{Config, router};
use provenance_lookup::{Index, TrustList};
use serde_json::{Value, json};
use tower::ServiceExt;

fn openapi() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/lookup.openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks `body` against the documented response of `path`/`method`/`status`, and returns the
/// triple for the coverage check.
fn check_documented(path: &str, method: &str, status: u16, body: &Value) -> (String, String, u16) {
    let doc = openapi();
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the OpenAPI file does not document: {body}"
    );
    let schema_ref = response["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    // Validate with the whole document as the root, so that `#/components/...` resolves.
    let mut root = doc.clone();
    root["$ref"] = json!(schema_ref);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body}"
    );
    (path.to_owned(), method.to_owned(), status)
}

fn demo_index(trust: bool) -> (Arc<Mutex<Index>>, TrustList) {
    let mut index = Index::open_in_memory().unwrap();
    for ev in kit::lookup_events() {
        let json = ev.as_json();
        assert_eq!(
            index.ingest_json(&json).unwrap(),
            provenance_lookup::Ingested::Indexed
        );
    }
    let trust = if trust {
        TrustList::from_keys(vec![kit::golden_keys().public_key()])
    } else {
        TrustList::default()
    };
    (Arc::new(Mutex::new(index)), trust)
}

fn app(trust: bool, config: Config) -> Router {
    let (index, trust) = demo_index(trust);
    router(index, trust, config)
}

/// Sends one request; returns status, headers and the JSON body (validated against the
/// OpenAPI file under `documented_path`).
async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    documented_path: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    check_documented(
        documented_path,
        &method.to_lowercase(),
        status.as_u16(),
        &value,
    );
    (status, headers, value)
}

async fn lookup(app: &Router, body: Value) -> (StatusCode, Value) {
    let (status, _, value) = call(app, "POST", "/v1/lookup", "/v1/lookup", Some(body)).await;
    (status, value)
}

fn claim_status<'a>(m: &'a Value, code: &str) -> Option<&'a str> {
    m["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == code)
        .map(|c| c["status"].as_str().unwrap())
}

#[tokio::test]
async fn exact_text_is_found_with_the_output_hash_proven() {
    let app = app(true, Config::default());
    let (status, v) = lookup(&app, json!({ "text": kit::LOOKUP_ANSWER })).await;
    assert_eq!(status, StatusCode::OK);
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{v}");
    let m = &matches[0];
    assert_eq!(m["match"], "exact");
    assert_eq!(m["coverage"]["fraction"], 1.0);
    assert_eq!(m["signer"]["trusted"], true);
    assert_eq!(m["model"]["name"], "gemma3:270m");
    assert_eq!(claim_status(m, "output.hash.match"), Some("proven"));
    assert_eq!(claim_status(m, "event.sig.valid"), Some("proven"));
    assert_eq!(claim_status(m, "signer.trust.listed"), Some("proven"));
    assert_eq!(m["event"]["id"], m["id"]);
    assert!(v["note"].as_str().unwrap().contains("does not show"));
}

#[tokio::test]
async fn whitespace_and_unicode_variants_match_the_normalised_hash() {
    let app = app(false, Config::default());
    // Line breaks, a non-breaking space, a decomposed accent: the same normalised text.
    let text = "Tides are caused mainly by the gravitational\u{a0}pull of the moon\n on the \
                oceans,   with a smaller contribution from the sun; when both line up the \
                spring tides are highest.\r\n";
    let (_, v) = lookup(&app, json!({ "text": text })).await;
    let m = &v["matches"][0];
    assert_eq!(m["match"], "normalized", "{v}");
    assert_eq!(claim_status(m, "output.hash.normalized"), Some("proven"));
    // No trust list: the signer is unknown, never "untrusted".
    assert_eq!(m["signer"]["trusted"], Value::Null);
    assert_eq!(claim_status(m, "signer.trust.unknown"), Some("unknown"));
    let composed = kit::LOOKUP_ANSWER.replace("flour", "flou\u{301}r");
    let (_, v) = lookup(&app, json!({ "text": composed })).await;
    assert!(
        v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["match"] != "exact")
    );
}

#[tokio::test]
async fn a_paragraph_copied_out_of_a_longer_answer_is_fully_covered() {
    let app = app(true, Config::default());
    let (_, v) = lookup(&app, json!({ "text": kit::LOOKUP_PARAGRAPH })).await;
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{v}");
    let m = &matches[0];
    assert_eq!(m["match"], "partial");
    assert_eq!(m["coverage"]["fraction"], 1.0);
    assert!(m["coverage"]["matched"].as_u64().unwrap() >= 5);
    // The output hash is only asserted: the server does not hold the whole output.
    assert_eq!(claim_status(m, "output.hash.asserted"), Some("asserted"));
    let tokens = v["query"]["tokens"].as_u64().unwrap();
    let ranges = m["coverage"]["ranges"].as_array().unwrap();
    assert!(!ranges.is_empty());
    assert!(ranges.iter().all(|r| r[1].as_u64().unwrap() <= tokens));
}

#[tokio::test]
async fn an_edited_copy_is_a_partial_match_with_its_coverage() {
    let app = app(true, Config::default());
    let (_, v) = lookup(&app, json!({ "text": kit::LOOKUP_EDITED })).await;
    let m = &v["matches"][0];
    assert_eq!(m["match"], "partial", "{v}");
    let fraction = m["coverage"]["fraction"].as_f64().unwrap();
    assert!(fraction > 0.2 && fraction < 1.0, "{fraction}");
    let edited = Analysis::of(kit::LOOKUP_EDITED);
    // "rapidly" (token 9) was changed: no covered range may contain it.
    assert_eq!(
        &edited.normalized[edited.tokens[9].start..edited.tokens[9].end],
        "rapidly"
    );
    for r in m["coverage"]["ranges"].as_array().unwrap() {
        let (first, end) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
        assert!(!(first..end).contains(&9), "{r}");
    }
}

#[tokio::test]
async fn unrelated_text_finds_nothing() {
    let app = app(true, Config::default());
    let (status, v) = lookup(&app, json!({ "text": kit::LOOKUP_UNRELATED })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["matches"], json!([]));
    assert!(v["query"]["fingerprints"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn client_computed_hashes_find_the_same_events_without_the_text() {
    let app = app(true, Config::default());
    let a = Analysis::of(kit::LOOKUP_PARAGRAPH);
    let hashes: Vec<String> = a.hashes().iter().map(|h| h.to_string()).collect();
    let body = json!({
        "sha256": provenance::digest::sha256(kit::LOOKUP_PARAGRAPH.as_bytes()),
        "normalized_sha256": provenance::digest::sha256(a.normalized.as_bytes()),
        "fingerprints": { "rule": RULE, "k": K, "w": W, "hashes": hashes },
    });
    let (_, v) = lookup(&app, body).await;
    let m = &v["matches"][0];
    assert_eq!(m["match"], "partial");
    assert_eq!(m["coverage"]["fraction"], 1.0);
    assert!(m["coverage"].get("ranges").is_none());
    assert!(v["query"].get("tokens").is_none());

    let exact = json!({ "sha256": provenance::digest::sha256(kit::LOOKUP_ANSWER.as_bytes()) });
    let (_, v) = lookup(&app, exact).await;
    assert_eq!(v["matches"][0]["match"], "exact");
    assert_eq!(
        claim_status(&v["matches"][0], "output.hash.asserted"),
        Some("asserted")
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let app = app(false, Config::default());
    let cases = [
        (
            json!({ "text": "a", "sha256": "00".repeat(32) }),
            422,
            "text_and_hashes",
        ),
        (json!({}), 422, "empty_query"),
        (
            json!({ "fingerprints": { "rule": "wk-v2", "k": 5, "w": 4, "hashes": [] } }),
            422,
            "unsupported_fingerprint_rule",
        ),
        (
            json!({ "fingerprints": { "rule": RULE, "k": K, "w": W, "hashes": vec!["0000000000000000"; 1025] } }),
            422,
            "too_many_fingerprints",
        ),
        (json!({ "sha256": "ABC" }), 400, "bad_json"),
        (json!({ "text": "a", "extra": 1 }), 400, "bad_json"),
    ];
    for (body, status, code) in cases {
        let (s, v) = lookup(&app, body.clone()).await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let app = app(
        false,
        Config {
            body_limit: 1024,
            ..Config::default()
        },
    );
    let (status, v) = lookup(&app, json!({ "text": "word ".repeat(400) })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn clients_over_their_rate_are_told_when_to_retry() {
    let app = app(
        false,
        Config {
            rate_burst: 2,
            rate_per_second: 0.01,
            ..Config::default()
        },
    );
    for _ in 0..2 {
        let (status, _) = lookup(&app, json!({ "text": "a" })).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, v) = call(
        &app,
        "POST",
        "/v1/lookup",
        "/v1/lookup",
        Some(json!({ "text": "a" })),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v["error"]["code"], "rate_limited");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn cors_allows_extension_origins_only() {
    let app = app(false, Config::default());
    for (origin, allowed) in [
        ("chrome-extension://abcdefghijklmnopabcdefghijklmnop", true),
        ("moz-extension://0e2f7c1a-1111-2222-3333-444455556666", true),
        ("https://evil.example", false),
    ] {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/v1/lookup")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let got = resp.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        assert_eq!(got.is_some(), allowed, "{origin}");
        if allowed {
            assert_eq!(got.unwrap(), origin);
        }
    }
}

#[tokio::test]
async fn events_are_served_by_id() {
    let app = app(true, Config::default());
    let id = kit::lookup_events()[0].id.to_hex();
    let (status, _, v) = call(
        &app,
        "GET",
        &format!("/v1/events/{id}"),
        "/v1/events/{id}",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["id"], id);
    assert_eq!(v["signer"]["trusted"], true);
    assert_eq!(claim_status(&v, "event.sig.valid"), Some("proven"));
    let missing = "00".repeat(32);
    let (status, _, v) = call(
        &app,
        "GET",
        &format!("/v1/events/{missing}"),
        "/v1/events/{id}",
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, _) = call(&app, "GET", "/v1/events/xyz", "/v1/events/{id}", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Every path, method and status in the OpenAPI file is answered for real here, and validated.
#[tokio::test]
async fn every_documented_response_is_exercised() {
    let mut seen: BTreeSet<(String, String, u16)> = BTreeSet::new();
    let app = app(
        true,
        Config {
            body_limit: 2048,
            rate_burst: 8,
            rate_per_second: 0.01,
            ..Config::default()
        },
    );
    let id = kit::lookup_events()[0].id.to_hex();
    let mut run = async |method: &str, uri: String, path: &str, body: Option<Value>| {
        let (status, _, v) = call(&app, method, &uri, path, body).await;
        seen.insert((path.to_owned(), method.to_lowercase(), status.as_u16()));
        v
    };
    run("GET", "/healthz".into(), "/healthz", None).await;
    run("GET", format!("/v1/events/{id}"), "/v1/events/{id}", None).await;
    run("GET", "/v1/events/nope".into(), "/v1/events/{id}", None).await;
    run(
        "GET",
        format!("/v1/events/{}", "11".repeat(32)),
        "/v1/events/{id}",
        None,
    )
    .await;
    run(
        "POST",
        "/v1/lookup".into(),
        "/v1/lookup",
        Some(json!({ "text": kit::LOOKUP_EDITED })),
    )
    .await;
    run(
        "POST",
        "/v1/lookup".into(),
        "/v1/lookup",
        Some(json!({ "sha256": 1 })),
    )
    .await;
    run(
        "POST",
        "/v1/lookup".into(),
        "/v1/lookup",
        Some(json!({ "text": "x".repeat(4000) })),
    )
    .await;
    run("POST", "/v1/lookup".into(), "/v1/lookup", Some(json!({}))).await;
    // The burst of 8 is spent: the next one is refused.
    let v = run(
        "POST",
        "/v1/lookup".into(),
        "/v1/lookup",
        Some(json!({ "text": "a" })),
    )
    .await;
    assert_eq!(v["error"]["code"], "rate_limited");

    let doc = openapi();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                documented.insert((path.clone(), method.clone(), status.parse::<u16>().unwrap()));
            }
        }
    }
    assert_eq!(seen, documented);
}

#[tokio::test]
async fn health_reports_counters() {
    let app = app(false, Config::default());
    let (status, _, v) = call(&app, "GET", "/healthz", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["counters"]["indexed"], 2);
    assert_eq!(v["schema_version"], 2);
}
