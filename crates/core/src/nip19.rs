//! NIP-19 bech32 entities.
