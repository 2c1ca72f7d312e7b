//! Unit tests, and the generator of `fixtures/nip19/{valid,invalid}.json`.
//!
//! The fixtures are written by [`valid_vectors`] and [`invalid_vectors`];
//! `checked_in_vectors_up_to_date` fails when the files differ from what they produce.
//! To regenerate: `PROVENANCE_UPDATE_FIXTURES=1 cargo test -p provenance --lib nip19`.

use serde_json::{Value, json};

use super::*;

const VALID_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/nip19/valid.json"
);
const INVALID_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/nip19/invalid.json"
);

/// NIP-19 "Examples": `npub` and its hex.
const NIP19_NPUB: (&str, &str) = (
    "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg",
    "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e",
);
/// NIP-19 "Examples": `nsec` and its hex.
const NIP19_NSEC: (&str, &str) = (
    "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5",
    "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa",
);
/// NIP-19 "Bare keys and ids": the `npub` in the text.
const NIP19_NPUB_TEXT: (&str, &str) = (
    "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6",
    "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d",
);
/// NIP-19 "Examples": the `nprofile`, whose TLVs the text lists.
const NIP19_NPROFILE: &str = "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69uhkg6nzv9ejuumpv34kytnrdaksjlyr9p";

/// NIP-21 "Examples" and `<link>` examples (after `nostr:`).
const NIP21_NPUB: &str = "npub1sn0wdenkukak0d9dfczzeacvhkrgz92ak56egt7vdgzn8pv2wfqqhrjdv9";
const NIP21_NEVENT: &str = "nevent1qqstna2yrezu5wghjvswqqculvvwxsrcvu7uc0f78gan4xqhvz49d9spr3mhxue69uhkummnw3ez6un9d3shjtn4de6x2argwghx6egpr4mhxue69uhkummnw3ez6ur4vgh8wetvd3hhyer9wghxuet5nxnepm";
const NIP21_NADDR: &str = "naddr1qqyrzwrxvc6ngvfkqyghwumn8ghj7enfv96x5ctx9e3k7mgzyqalp33lewf5vdq847t6te0wvnags0gs0mu72kz8938tn24wlfze6qcyqqq823cph95ag";
/// Relays before the public key, so not in the order [`Nprofile::encode`] writes.
const NIP21_NPROFILE: &str = "nprofile1qyxhwumn8ghj7mn0wvhxcmmvqyd8wumn8ghj7un9d3shjtnhv4ehgetjde38gcewvdhk6qpq80cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwswpnfsn";

/// secp256k1 group order: not a valid secret key.
const GROUP_ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

struct Valid {
    source: &'static str,
    input: String,
    expect: Nip19,
}

struct Invalid {
    source: &'static str,
    input: String,
    /// The error class, the variant name in snake case.
    expect: &'static str,
}

fn pk(hex: &str) -> PublicKey {
    PublicKey::from_hex(hex).unwrap()
}

fn id(byte: u8) -> EventId {
    EventId::from_byte_array([byte; 32])
}

fn strings(relays: &[&str]) -> Vec<String> {
    relays.iter().map(|&r| r.to_owned()).collect()
}

/// A bech32 string with these TLVs, written as given (no limits, no order).
fn raw_tlvs(hrp: &str, tlvs: &[(u8, &[u8])]) -> String {
    let mut data = Vec::new();
    for (tlv_type, value) in tlvs {
        data.push(*tlv_type);
        data.push(u8::try_from(value.len()).unwrap());
        data.extend_from_slice(value);
    }
    bech32::encode(hrp, &data)
}

/// A relay URL of exactly `len` bytes, numbered `i`.
fn relay_of_len(i: usize, len: usize) -> String {
    let mut url = format!("wss://relay{i:02}.example.com/");
    assert!(url.len() <= len);
    url.extend(std::iter::repeat_n('a', len - url.len()));
    url
}

/// An `x` that is not the x coordinate of any secp256k1 point (about half are not).
fn off_curve_x() -> [u8; 32] {
    (1u8..)
        .map(|k| {
            let mut x = [0; 32];
            x[31] = k;
            x
        })
        .find(|x| secp256k1::XOnlyPublicKey::from_byte_array(x).is_err())
        .unwrap()
}

/// The 1,201-character `nevent` with 12 relays: the `nostr` crate rejects it (its bech32
/// decoder stops at 1,023 characters); NIP-19 allows 5,000.
fn nevent_1201() -> Nevent {
    // 34 (id) + 34 (author) + 6 (kind) + 12 * 2 (relay headers) + 644 (relay URLs) = 742
    // bytes, which is 1,188 five-bit groups; plus "nevent", "1" and the checksum: 1,201.
    let lengths = [54, 54, 54, 54, 54, 54, 54, 54, 53, 53, 53, 53];
    Nevent {
        id: id(0xab),
        relays: lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| relay_of_len(i, len))
            .collect(),
        author: Some(pk(NIP19_NPUB_TEXT.1)),
        kind: Some(1),
    }
}

/// The TLVs of the longest `nevent` under the cap: 3,116 bytes, which are 4,999 characters.
/// One more byte makes 5,001.
fn longest_nevent_data(one_more: bool) -> Vec<u8> {
    let mut lengths = vec![255; 10];
    lengths.extend([254 + u8::from(one_more), 254]);
    let mut data = Vec::new();
    data.extend([TLV_SPECIAL, 32]);
    data.extend([0x5a; 32]);
    for (i, len) in lengths.iter().enumerate() {
        data.extend([TLV_RELAY, *len]);
        data.extend(relay_of_len(i, usize::from(*len)).bytes());
    }
    data
}

fn valid_vectors() -> Vec<Valid> {
    let nip19 = "NIP-19 (19.md, Examples)";
    let nip21 = "NIP-21 (21.md, Examples)";
    let generated = "generated by valid_vectors in crates/core/src/nip19/tests.rs";
    let fiatjaf = pk(NIP19_NPUB_TEXT.1);
    let nevent_max = Nevent {
        id: EventId::from_byte_array([0x5a; 32]),
        relays: (0..12)
            .map(|i| relay_of_len(i, if i < 10 { 255 } else { 254 }))
            .collect(),
        author: None,
        kind: None,
    };
    let unknown_tlvs = raw_tlvs(
        "nevent",
        &[
            (TLV_SPECIAL, &[0x11; 32]),
            (4, b"a future field"),
            (TLV_RELAY, b"wss://relay.example.com"),
            (255, &[]),
            (TLV_KIND, &1u32.to_be_bytes()),
            (200, &[0xff; 255]),
        ],
    );
    vec![
        Valid {
            source: nip19,
            input: NIP19_NPUB.0.into(),
            expect: Nip19::Npub(pk(NIP19_NPUB.1)),
        },
        Valid {
            source: nip19,
            input: NIP19_NSEC.0.into(),
            expect: Nip19::Nsec(SecretKey::from_hex(NIP19_NSEC.1).unwrap()),
        },
        Valid {
            source: nip19,
            input: NIP19_NPUB_TEXT.0.into(),
            expect: Nip19::Npub(fiatjaf),
        },
        Valid {
            source: nip19,
            input: NIP19_NPROFILE.into(),
            expect: Nip19::Nprofile(Nprofile {
                pubkey: fiatjaf,
                relays: strings(&["wss://r.x.com", "wss://djbas.sadkb.com"]),
            }),
        },
        Valid {
            source: nip21,
            input: format!("nostr:{NIP21_NPUB}"),
            expect: Nip19::Npub(pk(
                "84dee6e676e5bb67b4ad4e042cf70cbd8681155db535942fcc6a0533858a7240",
            )),
        },
        Valid {
            source: nip21,
            input: format!("nostr:{NIP21_NEVENT}"),
            expect: Nip19::Nevent(Nevent {
                id: EventId::from_hex(
                    "b9f5441e45ca39179320e0031cfb18e34078673dcc3d3e3a3b3a981760aa5696",
                )
                .unwrap(),
                relays: strings(&[
                    "wss://nostr-relay.untethr.me",
                    "wss://nostr-pub.wellorder.net",
                ]),
                author: None,
                kind: None,
            }),
        },
        Valid {
            source: nip21,
            input: format!("nostr:{NIP21_NADDR}"),
            expect: Nip19::Naddr(Naddr {
                identifier: "18ff5416".into(),
                author: fiatjaf,
                kind: 30023,
                relays: strings(&["wss://fiatjaf.com"]),
            }),
        },
        Valid {
            source: nip21,
            input: format!("nostr:{NIP21_NPROFILE}"),
            expect: Nip19::Nprofile(Nprofile {
                pubkey: fiatjaf,
                relays: strings(&["wss://nos.lol", "wss://relay.westernbtc.com"]),
            }),
        },
        Valid {
            source: generated,
            input: NIP19_NPUB.0.to_ascii_uppercase(),
            expect: Nip19::Npub(pk(NIP19_NPUB.1)),
        },
        Valid {
            source: generated,
            input: encode_note(&id(0x42)),
            expect: Nip19::Note(id(0x42)),
        },
        Valid {
            source: generated,
            input: nevent_1201().encode().unwrap(),
            expect: Nip19::Nevent(nevent_1201()),
        },
        Valid {
            source: generated,
            input: nevent_max.encode().unwrap(),
            expect: Nip19::Nevent(nevent_max),
        },
        Valid {
            source: generated,
            input: unknown_tlvs,
            expect: Nip19::Nevent(Nevent {
                id: id(0x11),
                relays: strings(&["wss://relay.example.com"]),
                author: None,
                kind: Some(1),
            }),
        },
        Valid {
            // Types 2 and 3 are not defined for nprofile, so they are unknown there.
            source: generated,
            input: raw_tlvs(
                "nprofile",
                &[
                    (TLV_SPECIAL, fiatjaf.as_bytes()),
                    (TLV_AUTHOR, &[0xff; 32]),
                    (TLV_KIND, &[1, 2]),
                ],
            ),
            expect: Nip19::Nprofile(Nprofile {
                pubkey: fiatjaf,
                relays: vec![],
            }),
        },
        Valid {
            source: generated,
            input: Naddr {
                identifier: String::new(),
                author: fiatjaf,
                kind: 10002,
                relays: vec![],
            }
            .encode()
            .unwrap(),
            expect: Nip19::Naddr(Naddr {
                identifier: String::new(),
                author: fiatjaf,
                kind: 10002,
                relays: vec![],
            }),
        },
    ]
}

fn invalid_vectors() -> Vec<Invalid> {
    let generated = "generated by invalid_vectors in crates/core/src/nip19/tests.rs";
    let nip19 = "NIP-19 example, altered by invalid_vectors in crates/core/src/nip19/tests.rs";
    let npub = NIP19_NPUB.0;
    let off_curve = off_curve_x();
    let relays_65: Vec<(u8, &[u8])> = std::iter::once((TLV_SPECIAL, &[1u8; 32][..]))
        .chain(std::iter::repeat_n((TLV_RELAY, &b"wss://a"[..]), 65))
        .collect();
    let cases: Vec<(&'static str, &'static str, String)> = vec![
        (
            "bech32m",
            generated,
            bech32::encode_bech32m("note", &[0x42; 32]),
        ),
        ("mixed_case", nip19, format!("{}G", &npub[..npub.len() - 1])),
        ("mixed_case", nip19, format!("N{}", &npub[1..])),
        ("checksum", nip19, format!("{}h", &npub[..npub.len() - 1])),
        ("checksum", nip19, npub.replacen("npub", "nsec", 1)),
        ("invalid_character", nip19, npub.replacen("0elf", "belf", 1)),
        ("invalid_character", nip19, format!("{npub} ")),
        (
            "payload_length",
            generated,
            bech32::encode("npub", &[2; 31]),
        ),
        (
            "payload_length",
            generated,
            bech32::encode("note", &[2; 33]),
        ),
        ("payload_length", generated, bech32::encode("nsec", &[])),
        // A relay TLV that declares 40 bytes with 10 left.
        ("tlv_past_end", generated, {
            let mut data = vec![TLV_SPECIAL, 32];
            data.extend([3; 32]);
            data.extend([TLV_RELAY, 40]);
            data.extend(b"wss://abcd");
            bech32::encode("nevent", &data)
        }),
        // A lone type byte with no length.
        ("tlv_past_end", generated, {
            let mut data = vec![TLV_SPECIAL, 32];
            data.extend([3; 32]);
            data.push(TLV_KIND);
            bech32::encode("nevent", &data)
        }),
        (
            "too_long",
            generated,
            bech32::encode("nevent", &longest_nevent_data(true)),
        ),
        (
            "too_long",
            generated,
            format!("nevent1{}", "q".repeat(MAX_LEN - 6)),
        ),
        (
            "unknown_hrp",
            generated,
            bech32::encode("nrelay", b"wss://relay.example.com"),
        ),
        ("unknown_hrp", generated, bech32::encode("npub2", &[2; 32])),
        (
            "invalid_public_key",
            generated,
            bech32::encode("npub", &off_curve),
        ),
        (
            "invalid_public_key",
            generated,
            bech32::encode("npub", &[0xff; 32]),
        ),
        (
            "invalid_public_key",
            generated,
            raw_tlvs(
                "nevent",
                &[(TLV_SPECIAL, &[1; 32]), (TLV_AUTHOR, &off_curve)],
            ),
        ),
        (
            "invalid_public_key",
            generated,
            raw_tlvs("nprofile", &[(TLV_SPECIAL, &off_curve)]),
        ),
        (
            "invalid_secret_key",
            generated,
            bech32::encode("nsec", &[0; 32]),
        ),
        (
            "invalid_secret_key",
            generated,
            bech32::encode("nsec", &hex::decode(GROUP_ORDER).unwrap()),
        ),
        ("missing_separator", generated, "npubqqqqqqqqqqqq".into()),
        ("missing_separator", generated, String::new()),
        ("hrp_length", generated, "1qqqqqqqqqqqq".into()),
        ("too_short", generated, "npub1qqqqq".into()),
        (
            "invalid_padding",
            generated,
            bech32::encode_raw("note", &[1; 52]),
        ),
        (
            "invalid_padding",
            generated,
            bech32::encode_raw("note", &[0; 51]),
        ),
        (
            "missing_tlv",
            generated,
            raw_tlvs("nevent", &[(TLV_RELAY, b"wss://a")]),
        ),
        (
            "missing_tlv",
            generated,
            raw_tlvs(
                "naddr",
                &[(TLV_SPECIAL, b"d"), (TLV_AUTHOR, NIP19_NPUB_TEXT_BYTES)],
            ),
        ),
        (
            "tlv_length",
            generated,
            raw_tlvs("nevent", &[(TLV_SPECIAL, &[1; 31])]),
        ),
        (
            "tlv_length",
            generated,
            raw_tlvs("nevent", &[(TLV_SPECIAL, &[1; 32]), (TLV_KIND, &[0, 1, 2])]),
        ),
        (
            "not_utf8",
            generated,
            raw_tlvs("nevent", &[(TLV_SPECIAL, &[1; 32]), (TLV_RELAY, &[0xff])]),
        ),
        (
            "not_utf8",
            generated,
            raw_tlvs(
                "naddr",
                &[
                    (TLV_SPECIAL, &[0xc3]),
                    (TLV_AUTHOR, NIP19_NPUB_TEXT_BYTES),
                    (TLV_KIND, &[0, 0, 0x75, 0x37]),
                ],
            ),
        ),
        ("too_many_relays", generated, raw_tlvs("nevent", &relays_65)),
        (
            "duplicate_tlv",
            generated,
            raw_tlvs(
                "nevent",
                &[(TLV_SPECIAL, &[1; 32]), (TLV_SPECIAL, &[2; 32])],
            ),
        ),
        (
            "nsec_in_uri",
            "NIP-19 example with the NIP-21 scheme",
            format!("nostr:{}", NIP19_NSEC.0),
        ),
    ];
    cases
        .into_iter()
        .map(|(expect, source, input)| Invalid {
            source,
            input,
            expect,
        })
        .collect()
}

/// The bytes of [`NIP19_NPUB_TEXT`].
const NIP19_NPUB_TEXT_BYTES: &[u8] = &[
    0x3b, 0xf0, 0xc6, 0x3f, 0xcb, 0x93, 0x46, 0x34, 0x07, 0xaf, 0x97, 0xa5, 0xe5, 0xee, 0x64, 0xfa,
    0x88, 0x3d, 0x10, 0x7e, 0xf9, 0xe5, 0x58, 0x47, 0x2c, 0x4e, 0xb9, 0xaa, 0xae, 0xfa, 0x45, 0x9d,
];

/// The fixture form of an expected value.
fn expect_json(value: &Nip19) -> Value {
    let opt_pk = |p: &Option<PublicKey>| p.map(|p| p.to_hex());
    match value {
        Nip19::Npub(p) => json!({ "npub": p.to_hex() }),
        Nip19::Nsec(s) => json!({ "nsec": s.to_secret_hex() }),
        Nip19::Note(id) => json!({ "note": id.to_hex() }),
        Nip19::Nevent(e) => json!({ "nevent": {
            "id": e.id.to_hex(), "relays": e.relays, "author": opt_pk(&e.author), "kind": e.kind,
        }}),
        Nip19::Nprofile(p) => {
            json!({ "nprofile": { "pubkey": p.pubkey.to_hex(), "relays": p.relays }})
        }
        Nip19::Naddr(a) => json!({ "naddr": {
            "identifier": a.identifier, "author": a.author.to_hex(), "kind": a.kind, "relays": a.relays,
        }}),
    }
}

fn decode_any(input: &str) -> Result<Nip19, Nip19Error> {
    if input.starts_with("nostr:") {
        decode_uri(input)
    } else {
        decode(input)
    }
}

fn render_valid() -> String {
    let vectors: Vec<Value> = valid_vectors()
        .iter()
        .map(|v| {
            let canonical = decode_any(&v.input).unwrap().encode().unwrap()
                == v.input.trim_start_matches("nostr:");
            json!({
                "source": v.source,
                "input": v.input,
                "canonical": canonical,
                "expect": expect_json(&v.expect),
            })
        })
        .collect();
    let file = json!({
        "_comment": "NIP-19 strings that must decode to `expect`. Inputs starting with `nostr:` \
            go through decode_uri, the others through decode. `canonical`: encoding the decoded \
            value gives the input back (without `nostr:`). Hex is lowercase; `null` is absent. \
            See README.md for where each vector comes from.",
        "vectors": vectors,
    });
    serde_json::to_string_pretty(&file).unwrap() + "\n"
}

fn render_invalid() -> String {
    let vectors: Vec<Value> = invalid_vectors()
        .iter()
        .map(|v| json!({ "source": v.source, "input": v.input, "expect": v.expect }))
        .collect();
    let file = json!({
        "_comment": "Strings that must not decode. `expect` is the error class: the Nip19Error \
            variant in snake case. Inputs starting with `nostr:` go through decode_uri, the \
            others through decode. See README.md for where each vector comes from.",
        "vectors": vectors,
    });
    serde_json::to_string_pretty(&file).unwrap() + "\n"
}

#[test]
fn checked_in_vectors_up_to_date() {
    for (path, rendered) in [
        (VALID_PATH, render_valid()),
        (INVALID_PATH, render_invalid()),
    ] {
        if std::env::var_os("PROVENANCE_UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == rendered,
            "{path} is stale: run `PROVENANCE_UPDATE_FIXTURES=1 cargo test -p provenance --lib nip19`"
        );
    }
}

#[test]
fn valid_vectors_decode_and_round_trip() {
    for v in valid_vectors() {
        let decoded = decode_any(&v.input).unwrap_or_else(|e| panic!("{}: {e}", v.input));
        assert_eq!(decoded, v.expect, "{}", v.input);
        let encoded = decoded.encode().unwrap();
        assert_eq!(decode(&encoded).unwrap(), decoded);
    }
}

#[test]
fn invalid_vectors_fail_with_their_class() {
    for v in invalid_vectors() {
        let err = decode_any(&v.input).expect_err(&v.input);
        let class = format!("{err:?}");
        let class = class.split([' ', '{', '(']).next().unwrap();
        let snake: String = class
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                sep.into_iter()
                    .chain(std::iter::once(c.to_ascii_lowercase()))
            })
            .collect();
        assert_eq!(snake, v.expect, "{}: {err}", v.input);
    }
}

#[test]
fn nip19_examples_encode_to_the_text() {
    assert_eq!(encode_npub(&pk(NIP19_NPUB.1)), NIP19_NPUB.0);
    assert_eq!(encode_npub(&pk(NIP19_NPUB_TEXT.1)), NIP19_NPUB_TEXT.0);
    assert_eq!(
        encode_nsec(&SecretKey::from_hex(NIP19_NSEC.1).unwrap()),
        NIP19_NSEC.0
    );
    let nprofile = Nprofile {
        pubkey: pk(NIP19_NPUB_TEXT.1),
        relays: strings(&["wss://r.x.com", "wss://djbas.sadkb.com"]),
    };
    assert_eq!(nprofile.encode().unwrap(), NIP19_NPROFILE);
}

/// The examples decode the same with the `nostr` crate, where that crate follows NIP-19.
#[test]
fn nip_examples_agree_with_the_nostr_crate() {
    use nostr::nips::nip19::{FromBech32, Nip19 as Theirs};
    for s in [
        NIP19_NPUB.0,
        NIP19_NSEC.0,
        NIP19_NPROFILE,
        NIP21_NEVENT,
        NIP21_NADDR,
        NIP21_NPROFILE,
    ] {
        let ours = decode(s).unwrap();
        match (Theirs::from_bech32(s).unwrap(), &ours) {
            (Theirs::Pubkey(theirs), Nip19::Npub(p)) => assert_eq!(&theirs, p),
            (Theirs::Secret(theirs), Nip19::Nsec(k)) => assert_eq!(&theirs, k),
            (Theirs::Profile(theirs), Nip19::Nprofile(p)) => {
                assert_eq!(theirs.public_key, p.pubkey);
                assert_eq!(theirs.relays.len(), p.relays.len());
            }
            (Theirs::Event(theirs), Nip19::Nevent(e)) => {
                assert_eq!(theirs.event_id, e.id);
                assert_eq!(theirs.relays.len(), e.relays.len());
            }
            (Theirs::Coordinate(theirs), Nip19::Naddr(a)) => {
                assert_eq!(theirs.identifier, a.identifier);
                assert_eq!(theirs.public_key, a.author);
                assert_eq!(u32::from(theirs.kind.as_u16()), a.kind);
            }
            (theirs, _) => panic!("{s}: they decode {theirs:?}, we decode {ours:?}"),
        }
    }
}

#[test]
fn nevent_with_12_relays_is_1201_characters_and_accepted() {
    let nevent = nevent_1201();
    let s = nevent.encode().unwrap();
    assert_eq!(s.len(), 1201);
    assert_eq!(nevent.relays.len(), 12);
    assert_eq!(decode_nevent(&s).unwrap(), nevent);
}

#[test]
fn longest_nevent_is_accepted_and_one_byte_more_is_too_long() {
    let s = bech32::encode("nevent", &longest_nevent_data(false));
    assert_eq!(s.len(), 4999);
    assert!(decode_nevent(&s).is_ok());
    let s = bech32::encode("nevent", &longest_nevent_data(true));
    assert_eq!(s.len(), 5001);
    assert_eq!(
        decode(&s),
        Err(Nip19Error::TooLong {
            limit: 5000,
            found: 5001
        })
    );
}

#[test]
fn bech32m_note_is_rejected_by_name() {
    let s = bech32::encode_bech32m("note", &[0x42; 32]);
    let err = decode(&s).unwrap_err();
    assert_eq!(err, Nip19Error::Bech32m);
    assert!(err.to_string().contains("bech32m"), "{err}");
    assert_eq!(decode_note(&s), Err(Nip19Error::Bech32m));
}

#[test]
fn case_rules() {
    let upper = NIP19_NPUB.0.to_ascii_uppercase();
    assert_eq!(decode_npub(&upper).unwrap(), pk(NIP19_NPUB.1));
    assert_eq!(
        decode_uri(&format!("NOSTR:{upper}")).unwrap(),
        Nip19::Npub(pk(NIP19_NPUB.1))
    );
    let mixed = format!("N{}", &NIP19_NPUB.0[1..]);
    assert_eq!(decode(&mixed), Err(Nip19Error::MixedCase));
}

#[test]
fn typed_helpers_name_the_prefixes() {
    let err = decode_npub(NIP19_NSEC.0).unwrap_err();
    assert_eq!(
        err,
        Nip19Error::WrongHrp {
            expected: "npub",
            found: "nsec".into()
        }
    );
    assert_eq!(err.to_string(), "prefix is `nsec`, expected `npub`");
    let err = decode_nsec(NIP19_NPUB.0).unwrap_err();
    assert_eq!(
        err,
        Nip19Error::WrongHrp {
            expected: "nsec",
            found: "npub".into()
        }
    );
    assert!(matches!(
        decode_note(NIP21_NEVENT),
        Err(Nip19Error::WrongHrp { .. })
    ));
    assert!(matches!(
        decode_nevent(NIP19_NPROFILE),
        Err(Nip19Error::WrongHrp { .. })
    ));
    assert_eq!(
        decode_nsec(NIP19_NSEC.0).unwrap(),
        SecretKey::from_hex(NIP19_NSEC.1).unwrap()
    );
}

#[test]
fn invalid_curve_point_is_rejected_in_npub_and_author() {
    let off_curve = off_curve_x();
    // `nostr`'s own constructor takes it, which is why the check is ours.
    assert!(PublicKey::from_slice(&off_curve).is_ok());
    let npub = bech32::encode("npub", &off_curve);
    assert_eq!(
        decode_npub(&npub),
        Err(Nip19Error::InvalidPublicKey { hrp: "npub" })
    );
    let naddr = raw_tlvs(
        "naddr",
        &[(0, b""), (TLV_AUTHOR, &off_curve), (TLV_KIND, &[0; 4])],
    );
    assert_eq!(
        decode(&naddr),
        Err(Nip19Error::InvalidPublicKey { hrp: "naddr" })
    );
}

#[test]
fn tlv_running_past_the_end_says_where() {
    let s = raw_tlvs("nevent", &[(TLV_SPECIAL, &[1; 32])]);
    let (_, mut data) = bech32::decode(&s).unwrap();
    data.extend([TLV_RELAY, 9, b'w']);
    let err = decode(&bech32::encode("nevent", &data)).unwrap_err();
    assert_eq!(
        err,
        Nip19Error::TlvPastEnd {
            hrp: "nevent",
            offset: 34,
            needed: 11,
            remaining: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "`nevent` TLV at byte 34 needs 11 bytes, found 3"
    );
}

#[test]
fn nsec_is_refused_in_a_uri_but_not_bare() {
    let uri = format!("nostr:{}", NIP19_NSEC.0);
    assert_eq!(decode_uri(&uri), Err(Nip19Error::NsecInUri));
    assert!(matches!(decode_uri(NIP19_NSEC.0), Ok(Nip19::Nsec(_))));
    // `decode` does not strip a scheme.
    assert!(decode(&format!("nostr:{NIP21_NPUB}")).is_err());
}

#[test]
fn secret_keys_stay_out_of_debug_and_errors() {
    let decoded = decode(NIP19_NSEC.0).unwrap();
    let debug = format!("{decoded:?}");
    assert_eq!(debug, "Nsec(<redacted>)");
    for err in [
        decode_uri(&format!("nostr:{}", NIP19_NSEC.0)).unwrap_err(),
        decode_npub(NIP19_NSEC.0).unwrap_err(),
        decode(&bech32::encode("nsec", &hex::decode(GROUP_ORDER).unwrap())).unwrap_err(),
    ] {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(
                !text.contains(NIP19_NSEC.1) && !text.contains(&NIP19_NSEC.0[5..]),
                "{text}"
            );
        }
    }
}

#[test]
fn encoders_enforce_the_limits() {
    let mut nevent = Nevent {
        id: id(1),
        relays: vec![],
        author: None,
        kind: None,
    };
    nevent.relays = vec!["x".repeat(256)];
    assert_eq!(
        nevent.encode(),
        Err(Nip19Error::ValueTooLong {
            hrp: "nevent",
            tlv_type: 1,
            limit: 255,
            found: 256
        })
    );
    nevent.relays = vec!["wss://a".into(); MAX_RELAYS + 1];
    assert_eq!(
        nevent.encode(),
        Err(Nip19Error::TooManyRelays {
            limit: 64,
            found: 65
        })
    );
    nevent.relays = vec!["x".repeat(255); 13];
    assert!(matches!(
        nevent.encode(),
        Err(Nip19Error::TooLong { limit: 5000, .. })
    ));
    let naddr = Naddr {
        identifier: "d".repeat(300),
        author: pk(NIP19_NPUB.1),
        kind: 1,
        relays: vec![],
    };
    assert!(matches!(
        naddr.encode(),
        Err(Nip19Error::ValueTooLong { tlv_type: 0, .. })
    ));
}

#[test]
fn duplicate_relays_are_kept_in_order() {
    let s = raw_tlvs(
        "nevent",
        &[
            (TLV_RELAY, b"wss://b"),
            (TLV_SPECIAL, &[9; 32]),
            (TLV_RELAY, b"wss://a"),
            (TLV_RELAY, b"wss://b"),
        ],
    );
    assert_eq!(
        decode_nevent(&s).unwrap().relays,
        strings(&["wss://b", "wss://a", "wss://b"])
    );
}

#[test]
fn error_messages_are_lowercase_without_a_period() {
    for v in invalid_vectors() {
        let message = decode_any(&v.input).unwrap_err().to_string();
        let first = message.chars().next().unwrap();
        assert!(
            !first.is_ascii_uppercase() && !message.ends_with('.'),
            "{message}"
        );
    }
}

#[test]
fn written_public_keys_are_npub_or_hex_on_the_curve() {
    let key =
        PublicKey::from_hex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
            .unwrap();
    assert_eq!(parse_public_key(&key.to_hex()).unwrap(), key);
    assert_eq!(parse_public_key(&encode_npub(&key)).unwrap(), key);
    // 64 hex digits that are no x coordinate on secp256k1 (x = 5 has no y).
    let off_curve = format!("{:064x}", 5);
    assert_eq!(parse_public_key(&off_curve), Err(PublicKeyError::NotAKey));
    assert!(matches!(
        parse_public_key("npub1notakey"),
        Err(PublicKeyError::Npub(_))
    ));
    for bad in ["", "abc", "alice@example.com", &key.to_hex()[..63]] {
        assert_eq!(parse_public_key(bad), Err(PublicKeyError::NotAKey), "{bad}");
    }
}
