//! Secret key files: created 0600 or NIP-49 encrypted, checked for permissions on load.
//!
//! A key file holds one line: an `nsec1...` (plain) or an `ncryptsec1...` (NIP-49: scrypt +
//! XChaCha20-Poly1305 under a passphrase). Plain files are created with mode 0600 and refused
//! on load when group or others can read them, the way ssh refuses private keys. The key is
//! never printed or logged; only the public key is.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use provenance::nostr::nips::nip19::{FromBech32, ToBech32};
use provenance::nostr::nips::nip49::{EncryptedSecretKey, KeySecurity};
use provenance::{Keys, SecretKey};

/// Environment variable holding the passphrase of an encrypted key (for scripts and tests).
pub(crate) const PASSPHRASE_ENV: &str = "PROVENANCE_PASSPHRASE";

/// Largest key file read (a key is one short line).
const MAX_KEY_FILE: u64 = 4096;

/// The default key location: `$XDG_CONFIG_HOME/provenance/key.nsec` or
/// `~/.config/provenance/key.nsec`.
pub(crate) fn default_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!(
                "no key file given and neither XDG_CONFIG_HOME nor HOME is set; pass --key FILE"
            ),
        },
    };
    Ok(base.join("provenance").join("key.nsec"))
}

/// Writes a new key file, refusing to overwrite unless `force`. Returns the key.
pub(crate) fn create(
    path: &Path,
    keys: &Keys,
    passphrase: Option<&str>,
    log_n: u8,
    force: bool,
) -> Result<()> {
    let line = match passphrase {
        Some(pass) => {
            let encrypted =
                EncryptedSecretKey::new(keys.secret_key(), pass, log_n, KeySecurity::Medium)
                    .context("NIP-49 encryption failed")?;
            encrypted.to_bech32().context("NIP-49 encoding failed")?
        }
        None => keys
            .secret_key()
            .to_bech32()
            .context("nsec encoding failed")?,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    // An existing file opened with --force keeps its old mode: tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set mode 0600 on {}", path.display()))?;
    }
    file.write_all(line.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Loads a key file (plain or encrypted).
pub(crate) fn load(path: &Path) -> Result<Keys> {
    let file =
        fs::File::open(path).with_context(|| format!("cannot open key file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "key file {} is accessible by others (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("key file {} is not UTF-8 text", path.display()))?;
    if text.len() as u64 > MAX_KEY_FILE {
        bail!(
            "key file {} is over {MAX_KEY_FILE} bytes: not a key file",
            path.display()
        );
    }
    let line = text.trim();
    if line.starts_with("ncryptsec1") {
        let encrypted = EncryptedSecretKey::from_bech32(line).map_err(|e| {
            anyhow::anyhow!("key file {}: not a valid ncryptsec: {e}", path.display())
        })?;
        let pass = passphrase(false)?;
        let secret = encrypted.decrypt(&pass).map_err(|_| {
            anyhow::anyhow!(
                "key file {}: wrong passphrase (or a corrupted ncryptsec)",
                path.display()
            )
        })?;
        return Ok(Keys::new(secret));
    }
    let secret = SecretKey::parse(line).map_err(|_| {
        anyhow::anyhow!(
            "key file {} does not hold an nsec1, ncryptsec1 or 64-hex secret key",
            path.display()
        )
    })?;
    Ok(Keys::new(secret))
}

/// The passphrase: from [`PASSPHRASE_ENV`] when set, else asked on the terminal (twice when
/// `confirm`).
pub(crate) fn passphrase(confirm: bool) -> Result<String> {
    if let Ok(pass) = std::env::var(PASSPHRASE_ENV) {
        if pass.is_empty() {
            bail!("{PASSPHRASE_ENV} is set but empty");
        }
        return Ok(pass);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("a passphrase is needed: set {PASSPHRASE_ENV} or run in a terminal");
    }
    let pass = rpassword::prompt_password("passphrase: ").context("cannot read the passphrase")?;
    if pass.is_empty() {
        bail!("the passphrase is empty");
    }
    if confirm {
        let again = rpassword::prompt_password("passphrase again: ")
            .context("cannot read the passphrase")?;
        if again != pass {
            bail!("the passphrases differ");
        }
    }
    Ok(pass)
}
