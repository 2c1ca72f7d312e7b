//! The claims of the structural checks: id, signature, record, tags, and what the record
//! asserts without proof.

use super::*;

/// Whether the recomputed id is the event's own.
pub(super) fn id_claim(event: &Event, computed: EventId) -> Claim {
    if computed == event.id {
        Claim::new(
            Code::EventIdMatch,
            join(&[
                "id ",
                Hex64::of(computed.as_bytes()).as_str(),
                " recomputed",
            ]),
        )
    } else {
        Claim::new(
            Code::EventIdMismatch,
            format!("claimed id {}, computed {computed}", event.id),
        )
    }
}

/// Whether the signature over the event's (claimed) id verified.
pub(super) fn sig_claim(event: &Event, valid: bool) -> Claim {
    let (code, end) = if valid {
        (Code::EventSigValid, "")
    } else {
        (Code::EventSigInvalid, " does not verify")
    };
    Claim::new(
        code,
        join(&[
            "BIP-340 signature by ",
            Hex64::of(event.pubkey.as_bytes()).as_str(),
            " over id ",
            Hex64::of(event.id.as_bytes()).as_str(),
            end,
        ]),
    )
}

/// The checks after id and signature: request, kind, record, tags, assertions.
pub(super) fn finish_verification(
    event: &Event,
    expect: &Expect,
    computed: EventId,
    mut claims: Vec<Claim>,
) -> Verification {
    if let Some(id) = expect.id {
        claims.push(if id == computed {
            Claim::new(
                Code::EventIdRequested,
                format!("recomputed id equals requested {id}"),
            )
        } else {
            Claim::new(
                Code::EventIdUnrequested,
                format!("requested id {id}, recomputed {computed}"),
            )
        });
    }
    if let Some(author) = expect.author {
        claims.push(if author == event.pubkey {
            Claim::new(
                Code::EventAuthorRequested,
                format!("author is the requested {author}"),
            )
        } else {
            Claim::new(
                Code::EventAuthorUnrequested,
                format!("requested author {author}, found {}", event.pubkey),
            )
        });
    }
    if event.kind.as_u16() != KIND {
        claims.push(Claim::new(
            Code::EventKindUnexpected,
            format!("expected kind {KIND}, found {}", event.kind.as_u16()),
        ));
        return Verification {
            claims,
            record: None,
            verified: None,
        };
    }
    claims.push(Claim::new(
        Code::EventKindProvenance,
        join(&["kind ", itoa::Buffer::new().format(KIND)]),
    ));

    let record = match parse_record(&event.content) {
        Ok(record) => record,
        Err(claim) => {
            claims.push(claim);
            return Verification {
                claims,
                record: None,
                verified: None,
            };
        }
    };
    claims.push(Claim::new(
        Code::RecordValid,
        join(&[
            "canonical record, version ",
            itoa::Buffer::new().format(record.v),
        ]),
    ));
    claims.push(check_tags(&event.tags, &record));
    assertions(&record, &mut claims);

    if claims.iter().any(|c| c.status == Status::Failed) {
        return Verification {
            claims,
            record: Some(record),
            verified: None,
        };
    }
    Verification {
        claims,
        record: None,
        verified: Some(VerifiedRecord {
            id: event.id,
            author: event.pubkey,
            created_at: event.created_at,
            record,
        }),
    }
}

/// Parses event content as a record and checks that it is canonical.
pub(super) fn parse_record(content: &str) -> Result<Record, Claim> {
    // The usual case, a canonical v1 record, in one pass over the text. Anything else is
    // parsed again below, by way of a JSON value, for the exact error message; both ways read
    // JSON with the same parser, so they arrive at the same record.
    if let Ok(record) = serde_json::from_str::<Record>(content) {
        if record.v == RECORD_VERSION
            && canonical::to_canonical_json(&record).is_ok_and(|c| c == content)
        {
            return Ok(record);
        }
    }
    parse_record_slowly(content)
}

/// [`parse_record`] by way of a JSON value: the version is checked before the shape, so that
/// a future version gets a clear message rather than an "unknown field" error.
pub(super) fn parse_record_slowly(content: &str) -> Result<Record, Claim> {
    let invalid = |detail: String| Claim::new(Code::RecordInvalid, detail);
    let value: serde_json::Value =
        serde_json::from_str(content).map_err(|e| invalid(format!("content is not JSON: {e}")))?;
    if let Some(v) = value.get("v") {
        if v.as_u64() != Some(u64::from(RECORD_VERSION)) {
            return Err(invalid(format!(
                "record version {v} is not supported (expected {RECORD_VERSION})"
            )));
        }
    }
    let record = Record::deserialize(&value)
        .map_err(|e| invalid(format!("content is not a v1 record: {e}")))?;
    // The content must be the one serialisation of this record: canonical JSON, and nothing
    // the record drops when written (explicit nulls, empty lists, `false` flags).
    let canonical = canonical::to_canonical_json(&record).map_err(|e| invalid(e.to_string()))?;
    if canonical != content {
        let at = canonical
            .bytes()
            .zip(content.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(content.len()));
        return Err(Claim::new(
            Code::RecordNoncanonical,
            format!("content is not RFC 8785 canonical JSON (first difference at byte {at})"),
        ));
    }
    Ok(record)
}

/// Checks that the indexing tags say what the record says.
pub(super) fn check_tags(tags: &Tags, record: &Record) -> Claim {
    if tags_match(tags, record) {
        return Claim::new(
            Code::EventTagsConsistent,
            "x, m and model tags match the record",
        );
    }
    describe_tag_problems(tags, record)
}

/// Whether the `x`, `m` and `model` tags are exactly those [`tags_for`] writes, each once, in
/// any order: the test [`describe_tag_problems`] makes, without building the expected tags.
pub(super) fn tags_match(tags: &Tags, record: &Record) -> bool {
    let hex = |d: &Sha256Digest| Hex64::of(d.as_bytes()).0;
    let out = &record.output;
    let exact = hex(&out.sha256);
    let normalized = out
        .normalized
        .as_ref()
        .filter(|n| n.sha256 != out.sha256)
        .map(|n| hex(&n.sha256));
    let mut model_digest = [0u8; 71];
    let model_digest = record.model.sha256.map(|d| {
        model_digest[..7].copy_from_slice(b"sha256:");
        model_digest[7..].copy_from_slice(&hex(&d));
        model_digest
    });
    fn text(ascii: &[u8]) -> &str {
        // Hex digits and the ASCII prefix.
        std::str::from_utf8(ascii).expect("ASCII")
    }
    let mut x_want: [Option<&str>; 2] = [Some(text(&exact)), normalized.as_ref().map(|n| text(n))];
    let model_want = [
        Some(record.model.name.as_str()),
        model_digest.as_ref().map(|d| text(d)),
    ];
    let x_count = x_want.iter().flatten().count();
    let mut x_found = 0;
    let (mut m_found, mut model_found) = (0, 0);
    for tag in tags.iter() {
        match tag.as_slice() {
            [kind, value] if kind == "x" => {
                // Each expected value may be found once.
                match x_want.iter_mut().find(|w| **w == Some(value.as_str())) {
                    Some(slot) => *slot = None,
                    None => return false,
                }
                x_found += 1;
            }
            [kind, value] if kind == "m" && *value == out.mime => m_found += 1,
            [kind, rest @ ..] if kind == "model" => {
                let want = model_want.iter().flatten();
                if rest.len() != want.clone().count() || !rest.iter().zip(want).all(|(a, b)| a == b)
                {
                    return false;
                }
                model_found += 1;
            }
            [kind, ..] if kind == "x" || kind == "m" => return false,
            _ => {}
        }
    }
    x_found == x_count && m_found == 1 && model_found == 1
}

/// [`check_tags`] when the tags do not match: what each kind of tag should have been.
pub(super) fn describe_tag_problems(tags: &Tags, record: &Record) -> Claim {
    let expected = tags_for(record);
    let values = |tags: &mut dyn Iterator<Item = &Tag>, kind: &str| -> BTreeSet<Vec<String>> {
        tags.filter(|t| t.kind() == kind)
            .map(|t| t.as_slice().to_vec())
            .collect()
    };
    let mut problems = Vec::new();
    for kind in ["x", "m", "model"] {
        let want = values(&mut expected.iter(), kind);
        let found = values(&mut tags.iter(), kind);
        let count = tags.iter().filter(|t| t.kind() == kind).count();
        if want != found || count != want.len() {
            problems.push(format!(
                "`{kind}` tags: expected {}, found {}",
                render(&want),
                render(&found)
            ));
        }
    }
    if problems.is_empty() {
        Claim::new(
            Code::EventTagsConsistent,
            "x, m and model tags match the record",
        )
    } else {
        Claim::new(Code::EventTagsInconsistent, problems.join("; "))
    }
}

pub(super) fn render(set: &BTreeSet<Vec<String>>) -> String {
    if set.is_empty() {
        return "none".to_owned();
    }
    set.iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claims a verified record makes without evidence.
pub(super) fn assertions(record: &Record, claims: &mut Vec<Claim>) {
    let out = &record.output;
    claims.push(Claim::new(
        Code::OutputAsserted,
        join(&[
            "output sha256 ",
            Hex64::of(out.sha256.as_bytes()).as_str(),
            " (",
            itoa::Buffer::new().format(out.bytes),
            " bytes, ",
            &out.mime,
            ")",
        ]),
    ));
    if out.truncated {
        claims.push(Claim::new(
            Code::OutputTruncated,
            "the response was cut short; hashes cover only what was served",
        ));
    }
    claims.push(match &record.prompt {
        Some(p) => Claim::new(
            Code::PromptCommitted,
            join(&[
                &p.scheme,
                " commitment ",
                Hex64::of(p.commitment.as_bytes()).as_str(),
                " (",
                &p.format,
                ")",
            ]),
        ),
        None => Claim::new(Code::PromptAbsent, "no prompt commitment"),
    });
    let m = &record.model;
    claims.push(match (&m.sha256, &m.blake3, &m.tensor_root) {
        (None, None, None) => Claim::new(
            Code::ModelUnidentified,
            format!("model {:?} is named without a weights digest", m.name),
        ),
        (sha, _, _) => Claim::new(
            Code::ModelAsserted,
            match sha {
                Some(d) => format!("model {:?}, weights sha256 {d}", m.name),
                None => format!("model {:?}, weights identified by BLAKE3 only", m.name),
            },
        ),
    });
    if record.runtime.is_some() || record.sampling.is_some() {
        let engine = record
            .runtime
            .as_ref()
            .map_or("an unnamed engine".to_owned(), |r| match &r.version {
                Some(v) => format!("{} {v}", r.engine),
                None => r.engine.clone(),
            });
        claims.push(Claim::new(
            Code::GenerationAsserted,
            format!("runtime and sampling settings of {engine}, not replayed"),
        ));
    }
    for a in &record.attestations {
        claims.push(Claim::new(
            Code::AttestationUnchecked,
            format!("{} evidence {} not checked", a.kind, a.sha256),
        ));
    }
    claims.push(Claim::new(
        Code::SignerUnknown,
        "no trust list given: the author is whoever holds the key",
    ));
}

/// A claim detail from its parts. Details are written for every claim of every event, so
/// they are put together without the formatting machinery where that is easy.
pub(super) fn join(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        s.push_str(part);
    }
    s
}

/// 32 bytes as 64 lowercase hex digits, as ids, keys and digests are displayed.
pub(super) struct Hex64([u8; 64]);

impl Hex64 {
    pub(super) fn of(bytes: &[u8; 32]) -> Self {
        let mut buf = [0u8; 64];
        // The buffer is exactly twice the input length.
        hex::encode_to_slice(bytes, &mut buf).expect("64 hex digits");
        Self(buf)
    }

    pub(super) fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}
