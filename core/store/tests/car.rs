//! CAR v1 export / import: round trips, Kubo interop, and hostile CAR files.

mod common;

use common::{kubo_or_skip, splitmix64_bytes, KuboRepo};
use futures::TryStreamExt;
use fwledger_store::{export_car, import_car, ContentStore, EmbeddedStore, Profile, StoreError};
use proptest::prelude::*;

const MIB: usize = 1024 * 1024;

struct Stores {
    _dir: tempfile::TempDir,
    src: EmbeddedStore,
    dst: EmbeddedStore,
    input: std::path::PathBuf,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    Stores {
        src: EmbeddedStore::open(&dir.path().join("src")).unwrap(),
        dst: EmbeddedStore::open(&dir.path().join("dst")).unwrap(),
        input: dir.path().join("input.bin"),
        _dir: dir,
    }
}

async fn add(s: &Stores, data: &[u8], profile: Profile) -> String {
    std::fs::write(&s.input, data).unwrap();
    s.src.add_file(&s.input, profile, None).await.unwrap().cid
}

async fn read(store: &EmbeddedStore, cid: &str) -> Vec<u8> {
    let parts: Vec<Vec<u8>> = store
        .get(cid, u64::MAX)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    parts.concat()
}

fn export(store: &EmbeddedStore, cid: &str) -> Vec<u8> {
    let mut car = Vec::new();
    export_car(store, cid, &mut car).unwrap();
    car
}

/// A small valid CAR (two leaves and a root) for the hostile-input tests.
fn sample_car() -> (Vec<u8>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let s = stores();
    let data = splitmix64_bytes(77, 2 * 256 * 1024 + 99);
    let cid = rt.block_on(add(&s, &data, Profile::UnixfsV0_2015));
    (export(&s.src, &cid), cid)
}

#[tokio::test]
async fn round_trip_preserves_cid_and_bytes() {
    for (profile, size) in [
        (Profile::UnixfsV1_2025, 0),
        (Profile::UnixfsV1_2025, 10),
        (Profile::UnixfsV1_2025, 3 * MIB + 1),
        (Profile::UnixfsV0_2015, 5 * 256 * 1024 + 3),
    ] {
        let s = stores();
        let data = splitmix64_bytes(size as u64, size);
        let cid = add(&s, &data, profile).await;
        let car = export(&s.src, &cid);
        let roots = import_car(&s.dst, &car[..]).unwrap();
        assert_eq!(roots, vec![cid.clone()]);
        assert_eq!(read(&s.dst, &cid).await, data, "{profile} {size}");
        // exporting again from the copy gives the same file
        assert_eq!(export(&s.dst, &cid), car);
    }
}

#[tokio::test]
async fn repeated_chunks_are_exported_once() {
    let s = stores();
    let data = vec![0u8; 4 * MIB]; // four identical leaves
    let cid = add(&s, &data, Profile::UnixfsV1_2025).await;
    let car = export(&s.src, &cid);
    assert!(car.len() < 2 * MIB, "{} bytes", car.len());
    import_car(&s.dst, &car[..]).unwrap();
    assert_eq!(read(&s.dst, &cid).await, data);
}

#[tokio::test]
async fn export_of_tampered_store_fails() {
    let s = stores();
    let data = splitmix64_bytes(3, MIB + 5);
    let cid = add(&s, &data, Profile::UnixfsV1_2025).await;
    let leaf = common::leaf_cid(&data[MIB..], Profile::UnixfsV1_2025);
    common::flip_byte(&common::block_path(s.src.path(), &leaf), 0);
    let err = export_car(&s.src, &cid, std::io::sink()).unwrap_err();
    assert!(
        matches!(&err, StoreError::BlockMismatch { cid } if *cid == leaf),
        "{err:?}"
    );
}

#[test]
fn flipped_byte_in_block_is_block_mismatch() {
    let (car, _) = sample_car();
    // the last byte belongs to the last block's data; bytes just after the header are the
    // first section's CID and data
    for offset_from_end in [0, 100, car.len() / 2] {
        let mut bad = car.clone();
        let i = bad.len() - 1 - offset_from_end;
        bad[i] ^= 0x40;
        let s = stores();
        let err = import_car(&s.dst, &bad[..]).unwrap_err();
        assert!(
            matches!(err, StoreError::BlockMismatch { .. }),
            "byte {i}: {err:?}"
        );
    }
}

#[test]
fn truncated_car_is_malformed() {
    let (car, _) = sample_car();
    let header_len = usize::from(car[0]) + 1;
    for cut in [
        0,
        1,
        header_len / 2,
        header_len + 1,
        header_len + 40,
        car.len() - 1,
    ] {
        let s = stores();
        let err = import_car(&s.dst, &car[..cut]).unwrap_err();
        assert!(
            matches!(err, StoreError::Malformed(_)),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn garbage_and_oversized_lengths_are_malformed() {
    let s = stores();
    let cases: Vec<Vec<u8>> = vec![
        b"this is not a CAR file at all".to_vec(),
        vec![0xff; 64], // varint longer than 9 bytes
        vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40], // header length 2^62
        vec![0x00],     // empty header
        vec![0x81, 0x00], // non-minimal varint
        // {"version": 2}: the CAR v2 pragma
        vec![
            0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02,
        ],
    ];
    for bytes in cases {
        let err = import_car(&s.dst, &bytes[..]).unwrap_err();
        assert!(
            matches!(err, StoreError::Malformed(_)),
            "{bytes:x?}: {err:?}"
        );
    }
    // a valid header followed by a section claiming 1 GiB
    let (car, _) = sample_car();
    let header_len = usize::from(car[0]) + 1;
    let mut huge = car[..header_len].to_vec();
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04]);
    let err = import_car(&s.dst, &huge[..]).unwrap_err();
    assert!(
        matches!(&err, StoreError::Malformed(m) if m.contains("out of range")),
        "{err:?}"
    );
}

#[tokio::test]
async fn kubo_car_imports_and_ours_matches_kubos() {
    let Some(kubo) = kubo_or_skip("kubo_car_imports_and_ours_matches_kubos") else {
        return;
    };
    for profile in Profile::ALL {
        let repo = KuboRepo::new(&kubo, profile);
        let s = stores();
        let data = splitmix64_bytes(21, 3 * profile.chunk_size() + 1234);
        std::fs::write(&s.input, &data).unwrap();
        let out = repo
            .command()
            .args(["add", "--offline", "-Q"])
            .arg(&s.input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let cid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let out = repo
            .command()
            .args(["dag", "export", "--offline", &cid])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let kubo_car = out.stdout;

        assert_eq!(
            import_car(&s.dst, &kubo_car[..]).unwrap(),
            vec![cid.clone()]
        );
        assert_eq!(read(&s.dst, &cid).await, data);
        assert_eq!(add(&s, &data, profile).await, cid);
        assert!(
            export(&s.src, &cid) == kubo_car,
            "{profile}: CAR differs from Kubo's"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::fuzz_cases() * 4))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let s = stores();
        let _ = import_car(&s.dst, &bytes[..]);
    }

    #[test]
    fn mutated_car_never_panics_and_is_never_wrongly_accepted(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        use std::sync::OnceLock;
        static SAMPLE: OnceLock<(Vec<u8>, String)> = OnceLock::new();
        let (car, cid) = SAMPLE.get_or_init(sample_car);
        let mut bad = car.clone();
        for (at, byte) in edits {
            let i = at.index(bad.len());
            bad[i] = byte;
        }
        bad.truncate(cut.index(bad.len() + 1));
        let s = stores();
        match import_car(&s.dst, &bad[..]) {
            // an accepted file only ever stores blocks that hash to their CIDs
            Ok(_) => {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                if let Ok(stream) = rt.block_on(s.dst.get(cid, u64::MAX)) {
                    let got: Result<Vec<Vec<u8>>, _> = rt.block_on(stream.try_collect());
                    if let Ok(parts) = got {
                        let data = splitmix64_bytes(77, 2 * 256 * 1024 + 99);
                        prop_assert_eq!(parts.concat(), data);
                    }
                }
            }
            Err(e) => prop_assert!(
                e.is_bad_data(),
                "unexpected error class: {:?}", e
            ),
        }
    }
}
