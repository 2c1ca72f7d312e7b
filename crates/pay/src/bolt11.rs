//! The parts of a BOLT11 Lightning invoice the payment rails check: the amount, the payment
//! hash, the description hash, when it was made and when it expires. The wallet that made an
//! invoice is not trusted to have made the one it was asked for: an invoice for another amount,
//! or (for a zap) another description hash, is refused before it is handed to a customer.
//!
//! The signature is not checked: the node key is the wallet's own, and what is checked here is
//! that the invoice asks for what the box requested.

use bech32::Fe32;
use bech32::primitives::decode::CheckedHrpstring;

/// The longest invoice accepted, in bytes (BOLT11 sets none; 7,089 is the most a QR code
/// holds, and real invoices are well under 1,000).
pub const MAX_INVOICE_BYTES: usize = 7_089;

/// What was read from an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The network prefix after `ln` (`bc`, `tb`, `bcrt`, `sb`).
    pub network: String,
    /// The amount in msat; `None` for an invoice without one.
    pub amount_msat: Option<u64>,
    /// Seconds since the epoch.
    pub timestamp: u64,
    /// Seconds after `timestamp` (BOLT11's default: 3,600).
    pub expiry: u64,
    /// The `p` field, hex.
    pub payment_hash: String,
    /// The `h` field (SHA-256 of the description), hex.
    pub description_hash: Option<String>,
    /// The `d` field.
    pub description: Option<String>,
}

/// Why an invoice was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Longer than [`MAX_INVOICE_BYTES`].
    #[error("the invoice is longer than {MAX_INVOICE_BYTES} bytes")]
    TooLong,
    /// Not bech32 with a valid checksum.
    #[error("the invoice is not bech32 with a valid checksum")]
    Bech32,
    /// The prefix is not `ln` + network + amount.
    #[error("the invoice's prefix {0:?} is not ln<network><amount>")]
    Prefix(String),
    /// The data part is cut short or a field is malformed.
    #[error("the invoice's data is malformed ({0})")]
    Data(&'static str),
    /// No payment hash.
    #[error("the invoice has no payment hash")]
    NoPaymentHash,
}

impl Invoice {
    /// Reads `text` (any case, with or without a `lightning:` prefix).
    pub fn parse(text: &str) -> Result<Self, InvoiceError> {
        let text = text.trim();
        if text.len() > MAX_INVOICE_BYTES {
            return Err(InvoiceError::TooLong);
        }
        let text = text.to_ascii_lowercase();
        let text = text.strip_prefix("lightning:").unwrap_or(&text);
        let checked =
            CheckedHrpstring::new::<bech32::Bech32>(text).map_err(|_| InvoiceError::Bech32)?;
        let hrp = checked.hrp().to_lowercase();
        let (network, amount_msat) = prefix(&hrp)?;
        let words: Vec<u8> = checked
            .fe32_iter::<std::vec::IntoIter<u8>>()
            .map(Fe32::to_u8)
            .collect();
        // 7 words of timestamp, the fields, 104 words of signature.
        if words.len() < 7 + 104 {
            return Err(InvoiceError::Data("too short"));
        }
        let body = &words[..words.len() - 104];
        let timestamp = number(&body[..7]);
        let mut invoice = Invoice {
            network,
            amount_msat,
            timestamp,
            expiry: 3_600,
            payment_hash: String::new(),
            description_hash: None,
            description: None,
        };
        let mut rest = &body[7..];
        while !rest.is_empty() {
            if rest.len() < 3 {
                return Err(InvoiceError::Data("a field header is cut short"));
            }
            let tag = rest[0];
            let len = (usize::from(rest[1]) << 5) | usize::from(rest[2]);
            if rest.len() < 3 + len {
                return Err(InvoiceError::Data("a field is cut short"));
            }
            let data = &rest[3..3 + len];
            rest = &rest[3 + len..];
            match tag {
                // p: 52 words = 256 bits. A field of another length is skipped (BOLT11).
                1 if len == 52 && invoice.payment_hash.is_empty() => {
                    invoice.payment_hash = hex(&bytes(data));
                }
                23 if len == 52 => invoice.description_hash = Some(hex(&bytes(data))),
                13 => {
                    let text = String::from_utf8(bytes(data))
                        .map_err(|_| InvoiceError::Data("the description is not UTF-8"))?;
                    invoice.description = Some(text);
                }
                6 if len <= 12 => invoice.expiry = number(data),
                _ => {}
            }
        }
        if invoice.payment_hash.is_empty() {
            return Err(InvoiceError::NoPaymentHash);
        }
        Ok(invoice)
    }

    /// When the invoice expires, seconds since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.timestamp.saturating_add(self.expiry)
    }
}

/// `ln` + network + optional amount (digits and a multiplier).
fn prefix(hrp: &str) -> Result<(String, Option<u64>), InvoiceError> {
    let bad = || InvoiceError::Prefix(hrp.to_string());
    let rest = hrp.strip_prefix("ln").ok_or_else(bad)?;
    let digits_at = rest
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (network, amount) = rest.split_at(digits_at);
    if network.is_empty() || !network.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(bad());
    }
    if amount.is_empty() {
        return Ok((network.to_string(), None));
    }
    let (digits, multiplier) = match amount.char_indices().last() {
        Some((at, c)) if c.is_ascii_lowercase() => (&amount[..at], Some(c)),
        _ => (amount, None),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.starts_with('0') {
        return Err(bad());
    }
    let n: u128 = digits.parse().map_err(|_| bad())?;
    // Amount in bitcoin times the multiplier; 1 BTC = 1e11 msat.
    let msat = match multiplier {
        None => n.checked_mul(100_000_000_000),
        Some('m') => n.checked_mul(100_000_000),
        Some('u') => n.checked_mul(100_000),
        Some('n') => n.checked_mul(100),
        Some('p') => {
            // A pico-bitcoin is a tenth of a msat: BOLT11 requires the last digit to be 0.
            if n % 10 != 0 {
                return Err(bad());
            }
            Some(n / 10)
        }
        Some(_) => return Err(bad()),
    };
    let msat = msat.and_then(|m| u64::try_from(m).ok()).ok_or_else(bad)?;
    Ok((network.to_string(), Some(msat)))
}

fn number(words: &[u8]) -> u64 {
    words.iter().fold(0u64, |n, w| {
        n.saturating_mul(32).saturating_add(u64::from(*w))
    })
}

/// 5-bit words to bytes, dropping the padding bits at the end.
fn bytes(words: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for w in words {
        acc = (acc << 5) | u32::from(*w);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // BOLT11's own examples (11-payment-encoding.md, "Examples of Valid Invoices").
    const P2SH: &str = "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z9kmrgvr7xlaqm47apw3d48zm203kzcq357a4ls9al2ea73r8jcceyjtya6fu5wzzpe50zrge6ulk4nvjcpxlekvmxl6qcs9j3tz0469gq5g658y";
    const PICO: &str = "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j";
    const UPPER: &str = "LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYETPDEESSP5ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQPQSQ67GYE39HFG3ZD8RGC80K32TVY9XK2XUNWM5LZEXNVPX6FD77EN8QAQ424DXGT56CAG2DPT359K3SSYHETKTKPQH24JQNJYW6UQD08SGPTQ44QU";
    const EXAMPLE_HASH: &str = "0001020304050607080900010203040506070809000102030405060708090102";

    #[test]
    fn reads_the_bolt11_examples() {
        let p2sh = Invoice::parse(P2SH).unwrap();
        assert_eq!(p2sh.network, "bc");
        assert_eq!(p2sh.amount_msat, Some(2_000_000_000));
        assert_eq!(p2sh.timestamp, 1_496_314_658);
        assert_eq!(p2sh.expiry, 3_600);
        assert_eq!(p2sh.payment_hash, EXAMPLE_HASH);
        // SHA-256 of the example's long description.
        assert_eq!(
            p2sh.description_hash.as_deref(),
            Some("3925b6f67e2c340036ed12093dd44e0368df1b6ea26c53dbe4811f58fd5db8c1")
        );

        let pico = Invoice::parse(PICO).unwrap();
        assert_eq!(pico.amount_msat, Some(967_878_534));
        assert_eq!(pico.timestamp, 1_572_468_703);
        assert_eq!(pico.expiry, 604_800);
        assert_eq!(pico.expires_at(), 1_572_468_703 + 604_800);
        assert_eq!(
            pico.payment_hash,
            "462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f"
        );
        assert!(
            pico.description
                .unwrap()
                .starts_with("Blockstream Store: 88.85 USD")
        );

        let upper = Invoice::parse(UPPER).unwrap();
        assert_eq!(upper.amount_msat, Some(2_500_000_000));
        assert_eq!(upper.description.as_deref(), Some("coffee beans"));
    }

    #[test]
    fn refuses_what_is_not_an_invoice() {
        assert_eq!(Invoice::parse("lnbc1"), Err(InvoiceError::Bech32));
        // One character changed: the checksum fails.
        let broken = P2SH.replacen("qqqsyq", "qqqsyp", 1);
        assert_eq!(Invoice::parse(&broken), Err(InvoiceError::Bech32));
        assert_eq!(
            Invoice::parse(&"x".repeat(MAX_INVOICE_BYTES + 1)),
            Err(InvoiceError::TooLong)
        );
        assert!(matches!(prefix("lnbc2500x"), Err(InvoiceError::Prefix(_))));
        assert!(matches!(prefix("lnbc025m"), Err(InvoiceError::Prefix(_))));
        assert!(matches!(prefix("lnbc11p"), Err(InvoiceError::Prefix(_))));
        assert!(matches!(prefix("bc25m"), Err(InvoiceError::Prefix(_))));
        assert_eq!(prefix("lnbc10p").unwrap().1, Some(1));
        assert_eq!(
            prefix("lnbcrt210n").unwrap(),
            ("bcrt".to_string(), Some(21_000))
        );
        assert!(matches!(
            prefix("lnbc99999999999999999999"),
            Err(InvoiceError::Prefix(_))
        ));
    }
}
