//! Shared test helpers: deterministic data generators and a throw-away Kubo repo.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod kubo;

use fwledger_store::Profile;

/// The data generator of `tests/vectors/cid.json` (documented there, in its "generator" field):
/// SplitMix64 words, little-endian, truncated to `size` bytes.
pub struct SplitMix64Reader {
    state: u64,
    remaining: u64,
    word: [u8; 8],
    word_pos: usize,
}

impl SplitMix64Reader {
    pub fn new(seed: u64, size: u64) -> Self {
        SplitMix64Reader {
            state: seed,
            remaining: size,
            word: [0; 8],
            word_pos: 8,
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }
}

impl Read for SplitMix64Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let out = &mut out[..n];
        let mut i = 0;
        // finish a partly used word, then whole words, then the start of the next one
        while i < n && self.word_pos < 8 {
            out[i] = self.word[self.word_pos];
            self.word_pos += 1;
            i += 1;
        }
        let whole = (n - i) / 8 * 8;
        for chunk in out[i..i + whole].chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_word());
        }
        i += whole;
        if i < n {
            self.word = self.next_word();
            self.word_pos = 0;
            while i < n {
                out[i] = self.word[self.word_pos];
                self.word_pos += 1;
                i += 1;
            }
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

pub fn splitmix64_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    SplitMix64Reader::new(seed, size as u64)
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Kubo to test against: `$FWLEDGER_KUBO`, else `ipfs` on PATH. `None` (test skipped) when
/// absent, unless `FWLEDGER_REQUIRE_KUBO=1`, which turns absence into a failure.
pub fn kubo_or_skip(test: &str) -> Option<PathBuf> {
    let found = match std::env::var_os("FWLEDGER_KUBO") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("ipfs"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        assert!(
            std::env::var("FWLEDGER_REQUIRE_KUBO").as_deref() != Ok("1"),
            "{test}: FWLEDGER_REQUIRE_KUBO=1 but no Kubo (set FWLEDGER_KUBO or put ipfs on PATH)"
        );
        eprintln!("{test}: skipped, Kubo not found (FWLEDGER_KUBO / ipfs on PATH)");
    }
    found
}

/// A throw-away Kubo repo configured with one import profile. Kubo 0.42 has no per-command
/// profile flag: the profile is repo config (`ipfs init --profile=test,<profile>`, same as
/// `ipfs config profile apply <profile>`). No daemon is ever started.
pub struct KuboRepo {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl KuboRepo {
    pub fn new(bin: &Path, profile: Profile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin)
            .args(["init", "-e", &format!("--profile=test,{profile}")])
            .env("IPFS_PATH", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "ipfs init: {out:?}");
        KuboRepo {
            bin: bin.to_owned(),
            dir,
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("IPFS_PATH", self.dir.path());
        c
    }

    /// `ipfs add --offline --only-hash -Q` of everything `data` yields, piped through stdin.
    pub fn only_hash(&self, mut data: impl Read) -> String {
        let mut child = self
            .command()
            .args(["add", "--offline", "--only-hash", "-Q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        io::copy(&mut data, &mut stdin).unwrap();
        stdin.flush().unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ipfs add: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// Unoptimized builds hash at a few MB/s, so inputs above 16 MiB are only checked in optimized
/// test runs (`cargo test --release`) or with `FWLEDGER_SLOW_TESTS=1`.
pub fn too_slow_for_this_build(size: u64) -> bool {
    cfg!(debug_assertions)
        && size > 16 * 1024 * 1024
        && std::env::var("FWLEDGER_SLOW_TESTS").as_deref() != Ok("1")
}

/// Where the embedded store keeps the block `cid` (the documented layout:
/// `blocks/<next-to-last two chars>/<CIDv1 base32>.data`).
pub fn block_path(store_dir: &Path, cid: &str) -> PathBuf {
    let cid: cid::Cid = cid.parse().unwrap();
    let key = cid.into_v1().unwrap().to_string();
    let shard = &key[key.len() - 3..key.len() - 1];
    store_dir
        .join("blocks")
        .join(shard)
        .join(format!("{key}.data"))
}

/// The CID of a single leaf chunk under `profile` (a one-chunk file is its own leaf).
pub fn leaf_cid(chunk: &[u8], profile: Profile) -> String {
    fwledger_store::cid_of_reader(chunk, profile).unwrap()
}

/// Flips one bit of the file at `path`, at `offset` from the end.
pub fn flip_byte(path: &Path, offset_from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() - 1 - offset_from_end;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// The dag-pb CIDv1 of `block`.
pub fn dag_pb_cid(block: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(block);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
    cid::Cid::new_v1(0x70, mh).to_string()
}

/// Cases per property test: 128 by default, `FWLEDGER_FUZZ_CASES=N` for a longer hunt.
pub fn fuzz_cases() -> u32 {
    std::env::var("FWLEDGER_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128)
}
