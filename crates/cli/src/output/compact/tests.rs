//! The compact writer against serde_json itself.

use std::collections::BTreeMap;

use super::*;

/// [`write_json`] against serde_json itself.
fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
    let mut ours = String::from("prefix ");
    write_json(&mut ours, value);
    let theirs = format!("prefix {}", serde_json::to_string(value).unwrap());
    assert_eq!(ours, theirs);
}

#[test]
fn every_string_is_escaped_as_serde_json_escapes_it() {
    // Every ASCII byte and a few multi-byte characters, at every offset in an eight-byte
    // word, alone and between plain text.
    let mut specials: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
    specials.extend(["é", "😀", "\u{2028}", "\u{7f}", "\u{80}", "\u{ff}"].map(String::from));
    for special in &specials {
        for pad in 0..17 {
            let plain = "a".repeat(pad);
            same_as_serde_json(&format!("{plain}{special}"));
            same_as_serde_json(&format!("{special}{plain}"));
            same_as_serde_json(&format!("{plain}{special}{plain}{special}x"));
        }
    }
    let all: String = (0u8..128).map(char::from).collect();
    same_as_serde_json(&all);
    same_as_serde_json("");
    same_as_serde_json(&'\n');
    same_as_serde_json(&'"');
}

#[test]
fn every_kind_of_value_is_written_as_serde_json_writes_it() {
    #[derive(Serialize)]
    enum Variant {
        Unit,
        Newtype(u8),
        Tuple(u8, &'static str),
        Struct { a: i32 },
    }
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Newtype(&'static str);
    #[derive(Serialize)]
    struct Everything {
        #[serde(rename = "type")]
        kind: &'static str,
        yes: bool,
        no: bool,
        small: i8,
        negative: i64,
        min: i64,
        max: u64,
        zero: u32,
        float: f64,
        third: f32,
        infinite: f64,
        none: Option<u8>,
        some: Option<&'static str>,
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        empty: Vec<u8>,
        seq: Vec<Option<u16>>,
        tuple: (u8, char, &'static str),
        map: BTreeMap<String, serde_json::Value>,
        empty_map: BTreeMap<String, u8>,
        variants: Vec<Variant>,
        display: std::net::Ipv4Addr,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
    }
    same_as_serde_json(&Everything {
        kind: "verdict",
        yes: true,
        no: false,
        small: -7,
        negative: -1234567890123,
        min: i64::MIN,
        max: u64::MAX,
        zero: 0,
        float: 0.8,
        third: 1.0 / 3.0,
        infinite: f64::INFINITY,
        none: None,
        some: Some("tab\there"),
        unit: (),
        unit_struct: Unit,
        newtype: Newtype("new\"type"),
        empty: vec![],
        seq: vec![Some(1), None, Some(65535)],
        tuple: (1, '\u{1}', "x"),
        map: serde_json::from_str(
            r#"{"a\nb":1,"c":[true,null,1.5,-2,"s"],"d":{"e":{}},"f":18446744073709551615}"#,
        )
        .unwrap(),
        empty_map: BTreeMap::new(),
        variants: vec![
            Variant::Unit,
            Variant::Newtype(3),
            Variant::Tuple(4, "five"),
            Variant::Struct { a: -6 },
        ],
        display: std::net::Ipv4Addr::new(127, 0, 0, 1),
        skipped: None,
    });
}

#[test]
fn what_the_compact_writer_leaves_alone_is_written_by_serde_json() {
    // Byte strings, 128-bit integers, non-string map keys, raw JSON values.
    same_as_serde_json(&serde_bytes_like(b"\x00\x01"));
    same_as_serde_json(&(u128::MAX, i128::MIN));
    same_as_serde_json(&BTreeMap::from([(1u8, "one"), (2, "two")]));
    same_as_serde_json(&BTreeMap::from([(true, 1u8)]));
    let raw = serde_json::value::RawValue::from_string("{ \"spaced\" : 1 }".into()).unwrap();
    same_as_serde_json(&vec![raw]);
    same_as_serde_json(&serde_json::json!({"a": [1, {"b": null}]}));
}

/// A value serialised with `serialize_bytes`.
fn serde_bytes_like(bytes: &'static [u8]) -> impl Serialize {
    struct Bytes(&'static [u8]);
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    Bytes(bytes)
}
