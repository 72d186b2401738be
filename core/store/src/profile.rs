//! UnixFS import profiles: the parameters that decide which CID a file gets.

use core::fmt;
use core::str::FromStr;

use crate::StoreError;

/// A UnixFS import profile, named as in Kubo (IPIP-499).
///
/// The same bytes get different CIDs under different profiles, so the profile is part of what a
/// vendor publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// `unixfs-v1-2025`: CIDv1 (`bafy…`/`bafk…`), raw leaves, 1 MiB chunks, 1024 links per node,
    /// sha2-256.
    #[default]
    UnixfsV1_2025,
    /// `unixfs-v0-2015`: CIDv0 (`Qm…`), dag-pb leaves, 256 KiB chunks, 174 links per node,
    /// sha2-256. Kubo's historical default.
    UnixfsV0_2015,
}

impl Profile {
    /// Every known profile.
    pub const ALL: [Profile; 2] = [Profile::UnixfsV1_2025, Profile::UnixfsV0_2015];

    /// Kubo's name of the profile.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::UnixfsV1_2025 => "unixfs-v1-2025",
            Profile::UnixfsV0_2015 => "unixfs-v0-2015",
        }
    }

    /// Fixed chunk size, in bytes.
    pub const fn chunk_size(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => 1024 * 1024,
            Profile::UnixfsV0_2015 => 256 * 1024,
        }
    }

    /// Maximum number of links in one file node before the tree grows a level.
    pub const fn max_links(self) -> usize {
        match self {
            Profile::UnixfsV1_2025 => 1024,
            Profile::UnixfsV0_2015 => 174,
        }
    }

    /// The CID version of the file nodes (1 or 0).
    pub const fn cid_version(self) -> u8 {
        match self {
            Profile::UnixfsV1_2025 => 1,
            Profile::UnixfsV0_2015 => 0,
        }
    }

    /// Whether leaves are raw (`0x55`) blocks rather than dag-pb UnixFS nodes.
    pub const fn raw_leaves(self) -> bool {
        matches!(self, Profile::UnixfsV1_2025)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| StoreError::UnknownProfile(s.to_owned()))
    }
}
