//! Semantic versions (semver 2.0 precedence) for the "is this newer?" decision.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

/// A semantic version `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`; build metadata is kept for
/// display and ignored for precedence, as semver says.
#[derive(Debug, Clone, Eq)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
    pre: Vec<Identifier>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    // Numeric identifiers have lower precedence than alphanumeric ones.
    Numeric(u64),
    Alpha(String),
}

/// A string that is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError;

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VersionError {}

fn number(s: &str) -> Result<u64, VersionError> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(VersionError);
    }
    s.parse().map_err(|_| VersionError)
}

fn valid_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        if text.len() > 128 {
            return Err(VersionError);
        }
        let (rest, build) = match text.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        if let Some(build) = build {
            if !build.split('.').all(valid_identifier) {
                return Err(VersionError);
            }
        }
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let major = number(parts.next().ok_or(VersionError)?)?;
        let minor = number(parts.next().ok_or(VersionError)?)?;
        let patch = number(parts.next().ok_or(VersionError)?)?;
        if parts.next().is_some() {
            return Err(VersionError);
        }
        let mut identifiers = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if !valid_identifier(id) {
                    return Err(VersionError);
                }
                identifiers.push(if id.bytes().all(|b| b.is_ascii_digit()) {
                    Identifier::Numeric(number(id)?)
                } else {
                    Identifier::Alpha(id.to_string())
                });
            }
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre: identifiers,
            text: text.to_string(),
        })
    }
}

impl Version {
    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                // A pre-release has lower precedence than the release.
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn semver_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0.0+build.5"), v("1.0.0"));
    }

    #[test]
    fn rejects_bad_versions() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "v1.2.3",
        ] {
            assert_eq!(bad.parse::<Version>(), Err(VersionError), "{bad}");
        }
    }
}
