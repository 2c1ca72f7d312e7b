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
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            dir
        }
        None => Path::new("."),
    };
    // A symlink at the key's path is never followed: with --force, writing through it would
    // replace (and chmod) whatever file it points at.
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            let target =
                fs::read_link(path).map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
            bail!(
                "{} is a symbolic link (to {target}); not writing a key through it: name the file itself with -o",
                path.display()
            );
        }
        if !force {
            bail!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            );
        }
        if !meta.is_file() {
            bail!("{} exists and is not a regular file", path.display());
        }
    }
    // The key is written whole to a new file beside the target (mode 0600 from the start),
    // then put in place: linked (which fails if the name was taken meanwhile) or, with
    // --force, renamed over the old file. Neither follows a symlink at the destination.
    let temp = write_new(dir, &line)?;
    let placed = if force {
        fs::rename(&temp, path)
    } else {
        fs::hard_link(&temp, path).and_then(|()| fs::remove_file(&temp))
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&temp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            );
        }
        bail!("cannot create {}: {e}", path.display());
    }
    // The new directory entry survives a crash too.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates a file with a fresh name in `dir` (mode 0600, never an existing file) holding
/// `line` and a newline, synced to disk; returns its path.
fn write_new(dir: &Path, line: &str) -> Result<PathBuf> {
    for attempt in 0u32..16 {
        let name = format!(
            ".key-{}-{}-{attempt}.tmp",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let temp = dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = match options.open(&temp) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("cannot create a file in {}: {e}", dir.display()),
        };
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            bail!("cannot write {}: {e}", temp.display());
        }
        return Ok(temp);
    }
    bail!("cannot find a free temporary name in {}", dir.display())
}

/// Reads a small secret file: refused unless it is a regular file (a FIFO with no writer
/// would block for ever) that only its owner can read, of at most [`MAX_KEY_FILE`] bytes of
/// UTF-8. `name` is how errors name it ("key file PATH"); the contents are never quoted.
fn read_private(path: &Path, name: &str) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot open {name}"))?;
    if !meta.is_file() {
        bail!("{name} is not a regular file");
    }
    let file = fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{name} is accessible by others (mode {mode:04o}); run `chmod 600 {}`",
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("{name} is not UTF-8 text"))?;
    if text.len() as u64 > MAX_KEY_FILE {
        bail!("{name} is over {MAX_KEY_FILE} bytes");
    }
    Ok(text)
}

/// Reads a small secret that is not a key (a wallet connection URI) from `path` as
/// [`read_private`] does; `option` names it in errors.
pub(crate) fn read_secret_file(path: &Path, option: &str) -> Result<String> {
    Ok(
        read_private(path, &format!("{option}: {}", path.display()))?
            .trim()
            .to_owned(),
    )
}

/// Loads a key file (plain or encrypted).
pub(crate) fn load(path: &Path) -> Result<Keys> {
    let text = read_private(path, &format!("key file {}", path.display()))?;
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
