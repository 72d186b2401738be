//! The embedded block store: round trips, and one test per way stored data can be bad.

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{block_path, dag_pb_cid, flip_byte, leaf_cid, splitmix64_bytes};
use futures::StreamExt;
use fwledger_store::{
    cid_of_file, cid_of_reader, ContentStore, EmbeddedStore, Profile, StoreError,
};

const V0: Profile = Profile::UnixfsV0_2015;
const V1: Profile = Profile::UnixfsV1_2025;
const MIB: usize = 1024 * 1024;

struct Fixture {
    dir: tempfile::TempDir,
    store: EmbeddedStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store")).unwrap();
        Fixture { dir, store }
    }

    fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Writes `data` to a file and adds it.
    async fn add(&self, data: &[u8], profile: Profile) -> String {
        let path = self.dir.path().join("input.bin");
        std::fs::write(&path, data).unwrap();
        let added = self.store.add_file(&path, profile, None).await.unwrap();
        assert_eq!(added.size, data.len() as u64);
        assert_eq!(added.cid, cid_of_file(&path, profile).unwrap());
        added.cid
    }
}

/// Everything the stream yields until (and including) its first error.
async fn read_all(store: &EmbeddedStore, cid: &str, max: u64) -> (Vec<u8>, Option<StoreError>) {
    let mut stream = store.get(cid, max).await.unwrap();
    let mut data = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(e) => {
                assert!(stream.next().await.is_none(), "stream continues after {e}");
                return (data, Some(e));
            }
        }
    }
    (data, None)
}

#[tokio::test]
async fn round_trip_v1_empty_small_multi_chunk() {
    let f = Fixture::new();
    for size in [0, 11, 3 * MIB + MIB / 2] {
        let data = splitmix64_bytes(size as u64, size);
        let cid = f.add(&data, V1).await;
        let (got, err) = read_all(&f.store, &cid, u64::MAX).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, data, "size {size}");
        assert!(f.store.has(&cid).await.unwrap());
    }
}

#[tokio::test]
async fn round_trip_v0_empty_small_and_two_levels() {
    let f = Fixture::new();
    // 175 chunks of 256 KiB: one more than 174 links, so the root gets a second level
    for size in [0, 11, 3 * 256 * 1024 + 7, 175 * 256 * 1024 + 100] {
        let data = splitmix64_bytes(size as u64, size);
        let cid = f.add(&data, V0).await;
        assert!(cid.starts_with("Qm"), "{cid}");
        let (got, err) = read_all(&f.store, &cid, u64::MAX).await;
        assert!(err.is_none(), "{err:?}");
        assert!(got == data, "size {size}: content differs");
    }
}

#[tokio::test]
async fn v0_root_is_readable_by_its_cidv1() {
    let f = Fixture::new();
    let data = splitmix64_bytes(3, 300_000);
    let cid = f.add(&data, V0).await;
    let v1: cid::Cid = cid.parse().unwrap();
    let v1 = v1.into_v1().unwrap().to_string();
    assert!(v1.starts_with("bafybei"));
    assert_eq!(read_all(&f.store, &v1, u64::MAX).await.0, data);
}

#[tokio::test]
async fn progress_reports_bytes_done() {
    let f = Fixture::new();
    let size = 3 * MIB + 5;
    let path = f.dir.path().join("p.bin");
    std::fs::write(&path, splitmix64_bytes(9, size)).unwrap();
    let seen = Mutex::new(Vec::new());
    let report = |done: u64| seen.lock().unwrap().push(done);
    let added = f.store.add_file(&path, V1, Some(&report)).await.unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(added.size));
    assert_eq!(added.size, size as u64);
}

#[tokio::test]
async fn tampered_leaf_on_disk_is_block_mismatch() {
    let f = Fixture::new();
    let data = splitmix64_bytes(4, 3 * MIB + 10);
    let cid = f.add(&data, V1).await;
    let second_leaf = leaf_cid(&data[MIB..2 * MIB], V1);
    flip_byte(&block_path(f.store_dir(), &second_leaf), 1000);

    let (got, err) = read_all(&f.store, &cid, u64::MAX).await;
    // nothing of the bad block (or after it) was yielded
    assert_eq!(got, &data[..MIB]);
    assert!(
        matches!(&err, Some(StoreError::BlockMismatch { cid }) if *cid == second_leaf),
        "{err:?}"
    );
    assert!(err.unwrap().is_bad_data());
}

#[tokio::test]
async fn tampered_v0_leaf_on_disk_is_block_mismatch() {
    let f = Fixture::new();
    let chunk = 256 * 1024;
    let data = splitmix64_bytes(5, 2 * chunk + 10);
    let cid = f.add(&data, V0).await;
    let first_leaf = leaf_cid(&data[..chunk], V0);
    flip_byte(&block_path(f.store_dir(), &first_leaf), 10);
    let (got, err) = read_all(&f.store, &cid, u64::MAX).await;
    assert!(got.is_empty());
    assert!(
        matches!(&err, Some(StoreError::BlockMismatch { cid }) if *cid == first_leaf),
        "{err:?}"
    );
}

#[tokio::test]
async fn tampered_root_on_disk_is_refused_up_front() {
    let f = Fixture::new();
    let cid = f.add(&splitmix64_bytes(6, 2 * MIB + 1), V1).await;
    flip_byte(&block_path(f.store_dir(), &cid), 0);
    let err = f.store.get(&cid, u64::MAX).await.err().unwrap();
    assert!(
        matches!(&err, StoreError::BlockMismatch { cid: c } if *c == cid),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_block_file_is_refused_without_reading_it_all() {
    let f = Fixture::new();
    let cid = f.add(b"hello world", V1).await;
    std::fs::write(block_path(f.store_dir(), &cid), vec![0u8; 3 * MIB]).unwrap();
    let err = f.store.get(&cid, u64::MAX).await.err().unwrap();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn file_larger_than_max_size_is_refused_up_front() {
    let f = Fixture::new();
    for (profile, size) in [(V1, 2 * MIB + 3), (V1, 100), (V0, 100), (V0, 600_000)] {
        let cid = f.add(&splitmix64_bytes(7, size), profile).await;
        let limit = size as u64 - 1;
        let err = f.store.get(&cid, limit).await.err().unwrap();
        assert!(
            matches!(err, StoreError::TooLarge { limit: l } if l == limit),
            "{err:?}"
        );
        // exactly the size is fine
        assert_eq!(read_all(&f.store, &cid, size as u64).await.0.len(), size);
    }
}

/// A root (validly hashed, e.g. from a hostile publisher) that declares fewer bytes than its
/// leaves hold cannot make `get` yield more than `max_size`, nor more than it declares.
#[tokio::test]
async fn lying_root_cannot_push_past_max_size() {
    let f = Fixture::new();
    let data = splitmix64_bytes(8, MIB + 100);
    let honest = f.add(&data, V1).await;
    let mut root = std::fs::read(block_path(f.store_dir(), &honest)).unwrap();
    // filesize 1048676 -> 1048600 and the last blocksize 100 -> 24 (same varint lengths)
    let filesize = [0x18, 0xe4, 0x80, 0x40];
    let at = root.windows(4).position(|w| w == filesize).unwrap();
    root[at + 1] = 0x98;
    let n = root.len();
    assert_eq!(&root[n - 2..], &[0x20, 100]);
    root[n - 1] = 24;
    let liar = dag_pb_cid(&root);
    let path = block_path(f.store_dir(), &liar);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &root).unwrap();

    let limit = MIB as u64 + 50; // above the declared size, below the real one
    let (got, err) = read_all(&f.store, &liar, limit).await;
    assert_eq!(got.len(), MIB);
    assert!(
        matches!(err, Some(StoreError::TooLarge { limit: l }) if l == limit),
        "{err:?}"
    );

    let (got, err) = read_all(&f.store, &liar, u64::MAX).await;
    assert_eq!(got.len(), MIB);
    assert!(matches!(err, Some(StoreError::Malformed(_))), "{err:?}");
}

#[tokio::test]
async fn missing_block_is_not_found() {
    let f = Fixture::new();
    let data = splitmix64_bytes(10, 2 * MIB + 1);
    let cid = f.add(&data, V1).await;
    let last_leaf = leaf_cid(&data[2 * MIB..], V1);
    std::fs::remove_file(block_path(f.store_dir(), &last_leaf)).unwrap();
    let (got, err) = read_all(&f.store, &cid, u64::MAX).await;
    assert_eq!(got, &data[..2 * MIB]);
    assert!(
        matches!(&err, Some(StoreError::NotFound { cid }) if *cid == last_leaf),
        "{err:?}"
    );
    assert!(!err.unwrap().is_bad_data());

    let absent = leaf_cid(b"never added", V1);
    let err = f.store.get(&absent, u64::MAX).await.err().unwrap();
    assert!(
        matches!(&err, StoreError::NotFound { cid } if *cid == absent),
        "{err:?}"
    );
}

#[tokio::test]
async fn has_pin_and_invalid_cids() {
    let f = Fixture::new();
    let cid = f.add(b"pin me", V1).await;
    let absent = leaf_cid(b"absent", V1);
    assert!(f.store.has(&cid).await.unwrap());
    assert!(!f.store.has(&absent).await.unwrap());

    assert!(!f.store.is_pinned(&cid).unwrap());
    f.store.pin(&cid).await.unwrap();
    assert!(f.store.is_pinned(&cid).unwrap());
    let err = f.store.pin(&absent).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    for bad in ["", "not-a-cid", "Qm123", "bafyZZZ"] {
        let err = f.store.get(bad, 10).await.err().unwrap();
        assert!(matches!(err, StoreError::InvalidCid(_)), "{bad}: {err:?}");
        assert!(matches!(
            f.store.has(bad).await,
            Err(StoreError::InvalidCid(_))
        ));
    }
    // a non-sha2-256 CID (identity hash) cannot be verified, so it is refused
    let identity = "bafkqaaa";
    assert!(matches!(
        f.store.has(identity).await,
        Err(StoreError::InvalidCid(_))
    ));
}

/// A crash mid-write leaves a temp file, never a partial block under its final name; the temp
/// file is ignored by reads and by a later add.
#[tokio::test]
async fn leftover_temp_file_is_ignored() {
    let f = Fixture::new();
    let data = splitmix64_bytes(11, MIB + 17);
    let cid = cid_of_reader(&data[..], V1).unwrap();
    let final_path = block_path(f.store_dir(), &cid);
    let shard = final_path.parent().unwrap();
    std::fs::create_dir_all(shard).unwrap();
    let name = final_path.file_name().unwrap().to_str().unwrap();
    let temp = shard.join(format!(".tmp-4242-0-{name}"));
    std::fs::write(&temp, b"half a blo").unwrap();
    std::fs::write(f.store_dir().join("blocks").join(".tmp-4242-1-junk"), b"x").unwrap();

    assert!(!f.store.has(&cid).await.unwrap());
    let err = f.store.get(&cid, u64::MAX).await.err().unwrap();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    assert_eq!(f.add(&data, V1).await, cid);
    assert_eq!(read_all(&f.store, &cid, u64::MAX).await.0, data);
    assert!(
        temp.exists(),
        "stray temp files are left alone, not mistaken for blocks"
    );
}

#[tokio::test]
async fn store_reopens_with_its_blocks() {
    let f = Fixture::new();
    let cid = f.add(b"persisted", V0).await;
    let again = EmbeddedStore::open(f.store_dir()).unwrap();
    assert_eq!(read_all(&again, &cid, 100).await.0, b"persisted");
}

#[tokio::test]
async fn open_picks_backend_from_url() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("f.bin");
    std::fs::write(&path, b"x").unwrap();
    for url in ["", "embedded"] {
        let store = fwledger_store::open(url, home.path()).unwrap();
        store.add_file(&path, V1, None).await.unwrap();
        assert!(home.path().join("store/blocks").is_dir());
    }
    // embedded:PATH is taken as written (relative to the current directory, like sqlite:PATH).
    let elsewhere = home.path().join("elsewhere");
    fwledger_store::open(&format!("embedded:{}", elsewhere.display()), home.path()).unwrap();
    assert!(elsewhere.join("blocks").is_dir());
    // (kubo+http://… and https://GATEWAY are backends of their own: tests/kubo.rs, trustless.rs)
    for url in ["ftp://x", "embedded:"] {
        let err = fwledger_store::open(url, home.path()).err().unwrap();
        assert!(
            matches!(&err, StoreError::Unsupported(u) if u.contains(url)),
            "{url}: {err:?}"
        );
    }
}

mod hostile_dag {
    //! Blocks that hash correctly (a hostile publisher signs whatever it likes) but are not a
    //! sane UnixFS file: `get` must fail cleanly, never panic inside the decoder.
    use super::*;
    use proptest::prelude::*;

    fn put_as_dag_pb(f: &Fixture, block: &[u8]) -> String {
        let cid = dag_pb_cid(block);
        let path = block_path(f.store_dir(), &cid);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, block).unwrap();
        cid
    }

    fn check(block: &[u8]) -> Result<(), TestCaseError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let f = Fixture::new();
        // leaves the mutated root may point at
        let data = splitmix64_bytes(12, 3 * 256 * 1024 + 5);
        rt.block_on(f.add(&data, V0));
        let cid = put_as_dag_pb(&f, block);
        let (_, err) = rt.block_on(read_all_or_err(&f.store, &cid, 64 * MIB as u64));
        if let Some(e) = err {
            prop_assert!(
                !e.to_string().contains("decoder failed"),
                "decoder panicked: {}",
                e
            );
        }
        Ok(())
    }

    async fn read_all_or_err(
        store: &EmbeddedStore,
        cid: &str,
        max: u64,
    ) -> (Vec<u8>, Option<StoreError>) {
        match store.get(cid, max).await {
            Ok(_) => read_all(store, cid, max).await,
            Err(e) => (Vec::new(), Some(e)),
        }
    }

    fn real_v0_root() -> Vec<u8> {
        let f = Fixture::new();
        let data = splitmix64_bytes(12, 3 * 256 * 1024 + 5);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let cid = rt.block_on(f.add(&data, V0));
        std::fs::read(block_path(f.store_dir(), &cid)).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(common::fuzz_cases()))]

        #[test]
        fn arbitrary_root_block(block in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&block)?;
        }

        #[test]
        fn mutated_real_root(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            use std::sync::OnceLock;
            static ROOT: OnceLock<Vec<u8>> = OnceLock::new();
            let mut block = ROOT.get_or_init(real_v0_root).clone();
            for (at, byte) in edits {
                let i = at.index(block.len());
                block[i] = byte;
            }
            check(&block)?;
        }
    }
}
