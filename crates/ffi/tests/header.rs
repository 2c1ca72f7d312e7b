//! `include/provenance.h` is written by hand; these tests keep it in step with the library:
//! every exported function is declared, nothing else is, and every code and limit has the
//! library's value.

use std::collections::BTreeSet;

const HEADER: &str = include_str!("../include/provenance.h");
const ABI: &str = include_str!("../src/abi.rs");

/// The names after `marker` up to the next `(`.
fn names_after<'a>(text: &'a str, marker: &str) -> BTreeSet<&'a str> {
    text.match_indices(marker)
        .map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            let name = rest.split('(').next().unwrap_or("");
            name.rsplit([' ', '*']).next().unwrap_or("").trim()
        })
        .collect()
}

#[test]
fn every_exported_function_is_declared_and_nothing_else() {
    let exported = names_after(ABI, "extern \"C\" fn ");
    assert_eq!(exported.len(), 7, "{exported:?}");
    // Declarations in the header: `<type> provenance_xxx(` at the start of a line.
    let declared: BTreeSet<&str> = HEADER
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with("/*"))
        .filter_map(|l| l.split_once('(').map(|(head, _)| head))
        .filter_map(|head| head.rsplit([' ', '*']).next())
        .filter(|name| name.starts_with("provenance_"))
        .collect();
    assert_eq!(exported, declared);
}

#[test]
fn codes_and_limits_have_the_librarys_values() {
    let defines: BTreeSet<(String, String)> = HEADER
        .lines()
        .filter_map(|l| l.strip_prefix("#define PROVENANCE_"))
        .filter(|l| !l.starts_with("H"))
        .map(|l| {
            let mut parts = l.splitn(2, ' ');
            let name = parts.next().unwrap_or("").to_owned();
            let value = parts.next().unwrap_or("");
            let value = value.split("/*").next().unwrap_or("").trim().to_owned();
            (name, value)
        })
        .collect();
    let eval = |v: &str| -> i64 {
        let v = v.trim_matches(|c| c == '(' || c == ')');
        if let Some((a, b)) = v.split_once(" << ") {
            a.parse::<i64>().unwrap() << b.parse::<i64>().unwrap()
        } else if let Some((a, b)) = v.split_once(" * ") {
            a.parse::<i64>().unwrap() * b.parse::<i64>().unwrap()
        } else {
            v.parse().unwrap()
        }
    };
    use provenance_ffi as f;
    let expected: [(&str, i64); 15] = [
        ("OK", f::PROVENANCE_OK.into()),
        ("ERR_NULL", f::PROVENANCE_ERR_NULL.into()),
        ("ERR_UTF8", f::PROVENANCE_ERR_UTF8.into()),
        ("ERR_TOO_LARGE", f::PROVENANCE_ERR_TOO_LARGE.into()),
        ("ERR_RECORD", f::PROVENANCE_ERR_RECORD.into()),
        ("ERR_SIGN", f::PROVENANCE_ERR_SIGN.into()),
        ("ERR_INTERNAL", f::PROVENANCE_ERR_INTERNAL.into()),
        ("VERIFY_FAILS", f::PROVENANCE_VERIFY_FAILS.into()),
        ("VERIFY_ERROR", f::PROVENANCE_VERIFY_ERROR.into()),
        ("MAX_SECRET_KEY_BYTES", f::MAX_SECRET_KEY_BYTES as i64),
        ("MAX_RECORD_JSON_BYTES", f::MAX_RECORD_JSON_BYTES as i64),
        ("MAX_INPUT_BYTES", f::MAX_INPUT_BYTES as i64),
        ("MAX_MIME_BYTES", f::MAX_MIME_BYTES as i64),
        ("MAX_EVENT_JSON_BYTES", f::MAX_EVENT_JSON_BYTES as i64),
        (
            "MAX_EVENT_JSON_BYTES",
            provenance::event::Limits::default().max_event_bytes as i64,
        ),
    ];
    let names: BTreeSet<&str> = defines.iter().map(|(n, _)| n.as_str()).collect();
    let want: BTreeSet<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want);
    for (name, value) in expected {
        let (_, text) = defines.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(eval(text), value, "PROVENANCE_{name} = {text}");
    }
}
