//! Error enums exported to Kotlin (as exceptions) and Swift (as `Error`s).
//!
//! Every enum has a `check()` method returning the stable check name of `fwledger-proto` (the
//! names used in the test vectors, CLI reports and status codes) and a `reason()` method with the
//! human-readable text.

use fwledger_proto::{FollowError as PFollow, ImageError as PImage, ManifestError as PManifest};
use fwledger_proto::{Refusal as PRefusal, TokenError as PToken};

/// Check name of argument errors raised by the bindings themselves (wrong key or digest length,
/// unparsable version string, using a finished verifier).
pub const ARGUMENT_CHECK: &str = "argument";

/// Why a signed manifest is refused (`fwledger_proto::ManifestError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ManifestError {
    /// Not a well-formed manifest (check `manifest-format`).
    #[error("{reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Signed with an algorithm other than EdDSA (check `signature-algorithm`).
    #[error("{reason}")]
    UnsupportedAlgorithm {
        /// Human-readable text.
        reason: String,
    },
    /// No release-key certificate, or not certified by the vendor root
    /// (check `release-key-certificate`).
    #[error("{reason}")]
    KeyNotCertified {
        /// Human-readable text.
        reason: String,
    },
    /// The certificate is for another role (check `release-key-role`).
    #[error("{reason}")]
    KeyWrongRole {
        /// Human-readable text.
        reason: String,
    },
    /// The release key's certificate was not valid (check `release-key-expiry`).
    #[error("{reason}")]
    KeyExpired {
        /// End of the certificate's validity.
        not_after: u64,
        /// Human-readable text.
        reason: String,
    },
    /// The release key's generation was retired (check `release-key-generation`).
    #[error("{reason}")]
    KeyRetired {
        /// The certificate's generation.
        generation: u64,
        /// The lowest generation still trusted.
        minimum: u64,
        /// Human-readable text.
        reason: String,
    },
    /// The manifest signature is invalid (check `manifest-signature`).
    #[error("{reason}")]
    BadSignature {
        /// Human-readable text.
        reason: String,
    },
    /// The manifest names another vendor key (check `vendor-key`).
    #[error("{reason}")]
    WrongVendor {
        /// Human-readable text.
        reason: String,
    },
    /// The manifest expired (check `manifest-expiry`).
    #[error("{reason}")]
    Expired {
        /// Expiry time, Unix seconds.
        expires: u64,
        /// Human-readable text.
        reason: String,
    },
    /// A bad argument, such as a root key that is not an Ed25519 public key (check `argument`).
    #[error("{reason}")]
    InvalidArgument {
        /// Human-readable text.
        reason: String,
    },
    /// A refusal this version of the bindings has no variant for.
    #[error("{reason}")]
    Other {
        /// The stable check name.
        check: String,
        /// Human-readable text.
        reason: String,
    },
}

impl From<PManifest> for ManifestError {
    fn from(e: PManifest) -> Self {
        let reason = e.to_string();
        match e {
            PManifest::Malformed(_) => ManifestError::Malformed { reason },
            PManifest::UnsupportedAlgorithm => ManifestError::UnsupportedAlgorithm { reason },
            PManifest::MissingCertificate | PManifest::KeyNotCertified => {
                ManifestError::KeyNotCertified { reason }
            }
            PManifest::KeyWrongRole => ManifestError::KeyWrongRole { reason },
            PManifest::KeyExpired { not_after } => ManifestError::KeyExpired { not_after, reason },
            PManifest::KeyRetired {
                generation,
                minimum,
            } => ManifestError::KeyRetired {
                generation,
                minimum,
                reason,
            },
            PManifest::BadSignature => ManifestError::BadSignature { reason },
            PManifest::WrongVendor => ManifestError::WrongVendor { reason },
            PManifest::Expired { expires } => ManifestError::Expired { expires, reason },
            other => ManifestError::Other {
                check: other.check().to_owned(),
                reason,
            },
        }
    }
}

#[uniffi::export]
impl ManifestError {
    /// The stable name of the failed check (`manifest-signature`, `release-key-expiry`, …).
    pub fn check(&self) -> String {
        match self {
            ManifestError::Malformed { .. } => "manifest-format",
            ManifestError::UnsupportedAlgorithm { .. } => "signature-algorithm",
            ManifestError::KeyNotCertified { .. } => "release-key-certificate",
            ManifestError::KeyWrongRole { .. } => "release-key-role",
            ManifestError::KeyExpired { .. } => "release-key-expiry",
            ManifestError::KeyRetired { .. } => "release-key-generation",
            ManifestError::BadSignature { .. } => "manifest-signature",
            ManifestError::WrongVendor { .. } => "vendor-key",
            ManifestError::Expired { .. } => "manifest-expiry",
            ManifestError::InvalidArgument { .. } => ARGUMENT_CHECK,
            ManifestError::Other { check, .. } => check,
        }
        .to_owned()
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Why a verified release must not be installed on a device (`fwledger_proto::Refusal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum Refusal {
    /// Built for another model (check `model`).
    #[error("release is for another model")]
    WrongModel,
    /// Not built for this hardware revision (check `hardware`).
    #[error("release does not support this hardware")]
    WrongHardware,
    /// Not newer than the installed version (check `version`).
    #[error("release is not newer than the installed version")]
    NotNewer,
    /// Lower security version than the device holds (check `security-version`).
    #[error("security version {release} is lower than the device's {device}")]
    SecurityVersionRollback {
        /// The release's security version.
        release: u64,
        /// The device's security version.
        device: u64,
    },
    /// The release expired (check `manifest-expiry`).
    #[error("release expired")]
    Expired,
    /// The installed version is below the release's prerequisite (check `prerequisite`).
    #[error("installed version is below the release's prerequisite")]
    PrerequisiteNotMet,
    /// A bad argument, such as an unparsable version string (check `argument`).
    #[error("{reason}")]
    InvalidArgument {
        /// Human-readable text.
        reason: String,
    },
    /// A refusal this version of the bindings has no variant for.
    #[error("{reason}")]
    Other {
        /// The stable check name.
        check: String,
        /// Human-readable text.
        reason: String,
    },
}

impl From<PRefusal> for Refusal {
    fn from(e: PRefusal) -> Self {
        match e {
            PRefusal::WrongModel => Refusal::WrongModel,
            PRefusal::WrongHardware => Refusal::WrongHardware,
            PRefusal::NotNewer => Refusal::NotNewer,
            PRefusal::SecurityVersionRollback { release, device } => {
                Refusal::SecurityVersionRollback { release, device }
            }
            PRefusal::Expired => Refusal::Expired,
            PRefusal::PrerequisiteNotMet => Refusal::PrerequisiteNotMet,
            other => Refusal::Other {
                check: other.check().to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

#[uniffi::export]
impl Refusal {
    /// The stable name of the failed check (`model`, `security-version`, …).
    pub fn check(&self) -> String {
        match self {
            Refusal::WrongModel => "model",
            Refusal::WrongHardware => "hardware",
            Refusal::NotNewer => "version",
            Refusal::SecurityVersionRollback { .. } => "security-version",
            Refusal::Expired => "manifest-expiry",
            Refusal::PrerequisiteNotMet => "prerequisite",
            Refusal::InvalidArgument { .. } => ARGUMENT_CHECK,
            Refusal::Other { check, .. } => check,
        }
        .to_owned()
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Why an image does not match its manifest (`fwledger_proto::ImageError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ImageError {
    /// More bytes arrived than the manifest states (check `image-size`).
    #[error("image is longer than the {expected} bytes the manifest states")]
    TooLong {
        /// The size the manifest states.
        expected: u64,
    },
    /// The stream ended early (check `image-size`).
    #[error("image is truncated: {received} of {expected} bytes")]
    Truncated {
        /// The size the manifest states.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The SHA-256 differs from the manifest's (check `image-sha256`).
    #[error("image SHA-256 does not match the manifest")]
    DigestMismatch,
    /// A bad argument: a digest that is not 32 bytes, or a verifier used after `finish`
    /// (check `argument`).
    #[error("{reason}")]
    InvalidArgument {
        /// Human-readable text.
        reason: String,
    },
    /// A failure this version of the bindings has no variant for.
    #[error("{reason}")]
    Other {
        /// The stable check name.
        check: String,
        /// Human-readable text.
        reason: String,
    },
}

impl From<PImage> for ImageError {
    fn from(e: PImage) -> Self {
        match e {
            PImage::TooLong { expected } => ImageError::TooLong { expected },
            PImage::Truncated { expected, received } => {
                ImageError::Truncated { expected, received }
            }
            PImage::DigestMismatch => ImageError::DigestMismatch,
            other => ImageError::Other {
                check: other.check().to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

#[uniffi::export]
impl ImageError {
    /// The stable name of the failed check (`image-size` or `image-sha256`).
    pub fn check(&self) -> String {
        match self {
            ImageError::TooLong { .. } | ImageError::Truncated { .. } => "image-size",
            ImageError::DigestMismatch => "image-sha256",
            ImageError::InvalidArgument { .. } => ARGUMENT_CHECK,
            ImageError::Other { check, .. } => check,
        }
        .to_owned()
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Why a subscription token cannot be used (`fwledger_proto::TokenError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TokenError {
    /// Does not start with `fwl1` or is not base64url (check `token-format`).
    #[error("{reason}")]
    NotAToken {
        /// Human-readable text.
        reason: String,
    },
    /// Mistyped or truncated (check `token-checksum`).
    #[error("{reason}")]
    BadChecksum {
        /// Human-readable text.
        reason: String,
    },
    /// Not a valid token (check `token-content`).
    #[error("{reason}")]
    Malformed {
        /// Human-readable text.
        reason: String,
    },
    /// The channel author is not certified by the token's vendor key
    /// (check `channel-author-certificate`).
    #[error("{reason}")]
    AuthorNotCertified {
        /// Human-readable text.
        reason: String,
    },
    /// The token is for another vendor than the pinned one (check `vendor-pin`).
    #[error("{reason}")]
    UnexpectedVendor {
        /// Human-readable text.
        reason: String,
    },
    /// A bad argument, such as a pinned vendor key that is not 32 bytes (check `argument`).
    #[error("{reason}")]
    InvalidArgument {
        /// Human-readable text.
        reason: String,
    },
    /// A failure this version of the bindings has no variant for.
    #[error("{reason}")]
    Other {
        /// The stable check name.
        check: String,
        /// Human-readable text.
        reason: String,
    },
}

impl From<PToken> for TokenError {
    fn from(e: PToken) -> Self {
        let reason = e.to_string();
        match e {
            PToken::NotAToken => TokenError::NotAToken { reason },
            PToken::BadChecksum => TokenError::BadChecksum { reason },
            PToken::Malformed(_) => TokenError::Malformed { reason },
            PToken::AuthorNotCertified(_) => TokenError::AuthorNotCertified { reason },
            PToken::UnexpectedVendor => TokenError::UnexpectedVendor { reason },
            other => TokenError::Other {
                check: other.check().to_owned(),
                reason,
            },
        }
    }
}

#[uniffi::export]
impl TokenError {
    /// The stable name of the failed check (`token-checksum`, `vendor-pin`, …).
    pub fn check(&self) -> String {
        match self {
            TokenError::NotAToken { .. } => "token-format",
            TokenError::BadChecksum { .. } => "token-checksum",
            TokenError::Malformed { .. } => "token-content",
            TokenError::AuthorNotCertified { .. } => "channel-author-certificate",
            TokenError::UnexpectedVendor { .. } => "vendor-pin",
            TokenError::InvalidArgument { .. } => ARGUMENT_CHECK,
            TokenError::Other { check, .. } => check,
        }
        .to_owned()
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Why a channel message was not accepted (`fwledger_proto::FollowError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FollowError {
    /// Not a well-formed message (check `message-format`).
    #[error("{reason}")]
    Malformed {
        /// Human-readable text.
        reason: String,
    },
    /// The message belongs to another channel (check `channel`).
    #[error("message belongs to another channel")]
    WrongChannel,
    /// Forged or tampered (check `message-signature`).
    #[error("message is not signed by the channel author (forged or tampered)")]
    BadSignature,
    /// A replayed or reordered message (check `replay`).
    #[error("replayed message: seq {seq}, expected {expected}")]
    Replayed {
        /// The message's sequence number.
        seq: u64,
        /// The sequence number the follower waits for.
        expected: u64,
    },
    /// Messages are missing before this one (check `gap`).
    #[error("missing messages: got seq {seq}, expected {expected}")]
    Gap {
        /// The message's sequence number.
        seq: u64,
        /// The sequence number the follower waits for.
        expected: u64,
    },
    /// A substituted history (check `hash-chain`).
    #[error("message {seq} does not link to the previous message")]
    BrokenChain {
        /// The message's sequence number.
        seq: u64,
    },
    /// The author went back to an older epoch (check `epoch`).
    #[error("epoch {epoch} is older than the latest epoch {latest}")]
    EpochRegression {
        /// The message's epoch.
        epoch: u64,
        /// The latest epoch seen.
        latest: u64,
    },
    /// This reader holds no key for the message's epoch (check `epoch-key`). The follower moved
    /// past the message.
    #[error("no key for epoch {epoch}: this reader was revoked or never admitted")]
    NoEpochKey {
        /// The message's epoch.
        epoch: u64,
    },
    /// The payload does not decrypt or decode (check `payload`). The follower moved past it.
    #[error("payload does not decrypt or decode")]
    BadPayload,
    /// An authentic release whose manifest fails verification; `check` is the manifest check
    /// that failed. The follower moved past it.
    #[error("{reason}")]
    BadManifest {
        /// The manifest check that failed (`release-key-certificate`, …).
        manifest_check: String,
        /// Human-readable text.
        reason: String,
    },
    /// A failure this version of the bindings has no variant for.
    #[error("{reason}")]
    Other {
        /// The stable check name.
        check: String,
        /// Whether the follower moved past the message.
        advanced: bool,
        /// Human-readable text.
        reason: String,
    },
}

impl From<PFollow> for FollowError {
    fn from(e: PFollow) -> Self {
        match e {
            PFollow::Malformed(_) => FollowError::Malformed {
                reason: e.to_string(),
            },
            PFollow::WrongChannel => FollowError::WrongChannel,
            PFollow::BadSignature => FollowError::BadSignature,
            PFollow::Replayed { seq, expected } => FollowError::Replayed { seq, expected },
            PFollow::Gap { seq, expected } => FollowError::Gap { seq, expected },
            PFollow::BrokenChain { seq } => FollowError::BrokenChain { seq },
            PFollow::EpochRegression { epoch, latest } => {
                FollowError::EpochRegression { epoch, latest }
            }
            PFollow::NoEpochKey { epoch } => FollowError::NoEpochKey { epoch },
            PFollow::BadPayload => FollowError::BadPayload,
            PFollow::BadManifest(ref m) => FollowError::BadManifest {
                manifest_check: m.check().to_owned(),
                reason: e.to_string(),
            },
            other => FollowError::Other {
                check: other.check().to_owned(),
                advanced: other.advanced(),
                reason: other.to_string(),
            },
        }
    }
}

#[uniffi::export]
impl FollowError {
    /// The stable name of the failed check (`message-signature`, `gap`, `epoch-key`, or the
    /// manifest check for a refused release).
    pub fn check(&self) -> String {
        match self {
            FollowError::Malformed { .. } => "message-format",
            FollowError::WrongChannel => "channel",
            FollowError::BadSignature => "message-signature",
            FollowError::Replayed { .. } => "replay",
            FollowError::Gap { .. } => "gap",
            FollowError::BrokenChain { .. } => "hash-chain",
            FollowError::EpochRegression { .. } => "epoch",
            FollowError::NoEpochKey { .. } => "epoch-key",
            FollowError::BadPayload => "payload",
            FollowError::BadManifest { manifest_check, .. } => manifest_check,
            FollowError::Other { check, .. } => check,
        }
        .to_owned()
    }

    /// Whether the follower consumed the message despite the error (it was authentic and in
    /// order): true for `epoch-key`, `payload` and manifest refusals.
    pub fn advanced(&self) -> bool {
        match self {
            FollowError::NoEpochKey { .. }
            | FollowError::BadPayload
            | FollowError::BadManifest { .. } => true,
            FollowError::Other { advanced, .. } => *advanced,
            _ => false,
        }
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Why a notice cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NoticeError {
    /// Not a well-formed notice (check `notice-format`).
    #[error("malformed notice: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
}

#[uniffi::export]
impl NoticeError {
    /// The stable name of the failed check (`notice-format`).
    pub fn check(&self) -> String {
        match self {
            NoticeError::Malformed { .. } => "notice-format".to_owned(),
        }
    }

    /// Human-readable text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}
