//! Streaming image verification: exact length and SHA-256, checked while the bytes flow.
//!
//! The verifier holds a fixed-size state (see [`ImageVerifier::STATE_SIZE`]) and never allocates,
//! so devices can run it on every chunk as it is written to the inactive slot.

use core::fmt;
use sha2::{Digest, Sha256};

/// Why an image does not match its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// More bytes arrived than the manifest's size (endless-data attack).
    TooLong {
        /// The size the manifest states.
        expected: u64,
    },
    /// The stream ended before the manifest's size.
    Truncated {
        /// The size the manifest states.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The image's SHA-256 differs from the manifest's.
    DigestMismatch,
}

impl ImageError {
    /// A short stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            ImageError::TooLong { .. } | ImageError::Truncated { .. } => "image-size",
            ImageError::DigestMismatch => "image-sha256",
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::TooLong { expected } => {
                write!(
                    f,
                    "image is longer than the {expected} bytes the manifest states"
                )
            }
            ImageError::Truncated { expected, received } => {
                write!(f, "image is truncated: {received} of {expected} bytes")
            }
            ImageError::DigestMismatch => f.write_str("image SHA-256 does not match the manifest"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ImageError {}

/// Checks an image against the size and digest a verified manifest states.
#[derive(Clone)]
pub struct ImageVerifier {
    hasher: Sha256,
    expected_size: u64,
    received: u64,
    expected_sha256: [u8; 32],
    failed: bool,
}

impl ImageVerifier {
    /// Size of the verifier state in bytes.
    pub const STATE_SIZE: usize = core::mem::size_of::<ImageVerifier>();

    /// A verifier for an image of `size` bytes with digest `sha256`.
    pub fn new(size: u64, sha256: [u8; 32]) -> Self {
        ImageVerifier {
            hasher: Sha256::new(),
            expected_size: size,
            received: 0,
            expected_sha256: sha256,
            failed: false,
        }
    }

    /// Feeds the next chunk. Fails as soon as the image exceeds its stated size; after a failure
    /// every further call fails too.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        let too_long = ImageError::TooLong {
            expected: self.expected_size,
        };
        if self.failed {
            return Err(too_long);
        }
        let total = self.received.checked_add(chunk.len() as u64);
        match total {
            Some(total) if total <= self.expected_size => {
                self.hasher.update(chunk);
                self.received = total;
                Ok(())
            }
            _ => {
                self.failed = true;
                Err(too_long)
            }
        }
    }

    /// Bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ends the stream: the image is accepted only if its length and digest both match.
    pub fn finish(self) -> Result<(), ImageError> {
        if self.failed {
            return Err(ImageError::TooLong {
                expected: self.expected_size,
            });
        }
        if self.received != self.expected_size {
            return Err(ImageError::Truncated {
                expected: self.expected_size,
                received: self.received,
            });
        }
        let digest: [u8; 32] = self.hasher.finalize().into();
        if digest != self.expected_sha256 {
            return Err(ImageError::DigestMismatch);
        }
        Ok(())
    }
}
