//! The IOTA account that pays for (or at least signs) the transactions carrying channel
//! messages: an Ed25519 key in the fwledger home, mode 0600.
//!
//! This key is *not* the vendor's channel key: channel messages are signed by the vendor's own
//! keys and verified by every reader; the IOTA key only authorises the ledger transaction.

use std::io::Write;
use std::path::{Path, PathBuf};

use iota_sdk::crypto::ed25519::Ed25519PrivateKey;
use iota_sdk::types::Address;

use crate::IotaError;

/// Where the IOTA key lives inside a fwledger home.
pub const KEY_FILE: &str = "iota/ed25519.key";

/// An IOTA Ed25519 account key.
pub struct IotaKey {
    key: Ed25519PrivateKey,
}

impl std::fmt::Debug for IotaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IotaKey({})", self.address())
    }
}

impl IotaKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        IotaKey {
            key: Ed25519PrivateKey::new(seed),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Self::from_seed(seed)
    }

    /// The key file of `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join(KEY_FILE)
    }

    /// Reads a key file (64 hex digits, the Ed25519 seed).
    pub fn load(path: &Path) -> Result<Self, IotaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| IotaError::Key(format!("cannot read {}: {e}", path.display())))?;
        let bytes = hex::decode(text.trim()).map_err(|_| {
            IotaError::Key(format!(
                "{} is not an IOTA key file (64 hex digits)",
                path.display()
            ))
        })?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| {
            IotaError::Key(format!(
                "{} is not an IOTA key file (64 hex digits)",
                path.display()
            ))
        })?;
        Ok(Self::from_seed(seed))
    }

    /// Reads `home`'s key, if there is one.
    pub fn load_home(home: &Path) -> Result<Option<Self>, IotaError> {
        let path = Self::path(home);
        if !path.exists() {
            return Ok(None);
        }
        Self::load(&path).map(Some)
    }

    /// Reads `home`'s key, creating it (mode 0600) when there is none.
    pub fn load_or_create(home: &Path) -> Result<Self, IotaError> {
        if let Some(key) = Self::load_home(home)? {
            return Ok(key);
        }
        let key = Self::generate();
        key.save(&Self::path(home))?;
        Ok(key)
    }

    /// Writes the key to a new file, readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), IotaError> {
        let fail =
            |e: std::io::Error| IotaError::Key(format!("cannot write {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(fail)?;
        let seed = iota_sdk::crypto::ToFromBytes::to_bytes(&self.key);
        file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
            .map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    /// The private key, for the SDK's signers.
    pub(crate) fn private(&self) -> &Ed25519PrivateKey {
        &self.key
    }

    /// The IOTA address of this key.
    pub fn address(&self) -> Address {
        self.key.public_key().derive_address()
    }

    /// Signs a transaction.
    pub fn sign(
        &self,
        tx: &iota_sdk::types::Transaction,
    ) -> Result<iota_sdk::types::UserSignature, IotaError> {
        iota_sdk::crypto::IotaSigner::sign_transaction(&self.key, tx)
            .map_err(|e| IotaError::Key(format!("cannot sign the transaction: {e}")))
    }
}
