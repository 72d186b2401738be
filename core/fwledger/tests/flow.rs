//! The library end to end on the embedded backends: publish, follow, rotate, fetch, verify.

use std::path::Path;
use std::time::Duration;

use fwledger::proto::channel::{Event, FollowError, Token};
use fwledger::proto::ImageError;
use fwledger::{
    fetch, verify_release, Backends, ChannelItem, FetchError, ReleaseSpec, StoreError,
    Subscription, Vendor, VendorError, VerifyError, VerifyOptions,
};

struct Setup {
    dir: tempfile::TempDir,
    backends: Backends,
    vendor: Vendor,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::open(dir.path(), "embedded", "embedded").unwrap();
    let vendor = Vendor::init(dir.path(), "acme", &backends).unwrap();
    Setup {
        dir,
        backends,
        vendor,
    }
}

fn image(dir: &Path, name: &str, len: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn releases(subscription: &mut Subscription) -> Vec<String> {
    let mut out = Vec::new();
    for item in subscription.drain().await.unwrap() {
        if let ChannelItem::Message(d) = item {
            if let Event::Release { verified, .. } = d.event {
                out.push(verified.manifest.version.to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn publish_then_follow_and_fetch() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 3 * 1024 * 1024 + 7);
    let release = s
        .vendor
        .publish(
            &path,
            &ReleaseSpec::new("lamp", &["rev-a", "rev-b"], "1.2.0"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(release.seq, 0);
    assert_eq!(release.size, 3 * 1024 * 1024 + 7);
    assert!(release.manifest_path.is_file());

    let token = Token::from_text(&s.vendor.token(Some("hub")).unwrap()).unwrap();
    let mut subscription = Subscription::new(&token, s.backends.ledger.clone()).unwrap();
    let item = subscription.try_next().await.unwrap().unwrap();
    let ChannelItem::Message(delivery) = item else {
        panic!("{item:?}")
    };
    let Event::Release { verified, signed } = delivery.event else {
        panic!("not a release")
    };
    assert_eq!(verified.manifest.cid, release.cid);
    assert_eq!(signed, std::fs::read(&release.manifest_path).unwrap());

    let out = s.dir.path().join("repo/fw.bin");
    fetch(
        s.backends.store.as_ref(),
        &verified.manifest,
        &out,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&path).unwrap());

    let verified = verify_release(
        &signed,
        std::fs::File::open(&out).unwrap(),
        &s.vendor.public_key(),
        &VerifyOptions {
            model: Some("lamp".into()),
            hardware: Some("rev-b".into()),
            current: Some("1.1.9".parse().unwrap()),
            now: Some(fwledger::unix_now()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verified.manifest.version.to_string(), "1.2.0");
}

#[tokio::test]
async fn same_version_cannot_be_published_twice() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 100);
    let spec = ReleaseSpec::new("lamp", &["rev-a"], "1.0.0");
    s.vendor.publish(&path, &spec, None).await.unwrap();
    let err = s.vendor.publish(&path, &spec, None).await.unwrap_err();
    assert!(
        matches!(err, VendorError::AlreadyPublished { seq: 0, .. }),
        "{err}"
    );
    // Invalid descriptions are refused before anything is stored or announced.
    let bad = ReleaseSpec::new("lamp", &["rev-a"], "one");
    assert!(matches!(
        s.vendor.publish(&path, &bad, None).await.unwrap_err(),
        VendorError::InvalidRelease(_)
    ));
    assert_eq!(
        s.backends
            .ledger
            .next_seq(s.vendor.channel())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn revoked_gateway_cannot_read_new_epoch() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 100);
    s.vendor
        .publish(&path, &ReleaseSpec::new("lamp", &["a"], "1.0.0"), None)
        .await
        .unwrap();
    let kept = Token::from_text(&s.vendor.token(Some("kept")).unwrap()).unwrap();
    let revoked = Token::from_text(&s.vendor.token(Some("revoked")).unwrap()).unwrap();
    let simple = Token::from_text(&s.vendor.token(None).unwrap()).unwrap();
    s.vendor.rotate(Some("revoked")).await.unwrap();
    s.vendor
        .publish(
            &path.clone(),
            &ReleaseSpec::new("lamp", &["a"], "1.1.0"),
            None,
        )
        .await
        .unwrap();

    let mut kept = Subscription::new(&kept, s.backends.ledger.clone()).unwrap();
    assert_eq!(releases(&mut kept).await, ["1.0.0", "1.1.0"]);

    for token in [revoked, simple] {
        let mut sub = Subscription::new(&token, s.backends.ledger.clone()).unwrap();
        let items = sub.drain().await.unwrap();
        assert_eq!(items.len(), 3);
        match &items[2] {
            ChannelItem::Rejected { position: 2, error } => {
                assert_eq!(*error, FollowError::NoEpochKey { epoch: 1 })
            }
            other => panic!("{other:?}"),
        }
    }
    // Revoking an unknown gateway is an error, and changes nothing.
    assert!(matches!(
        s.vendor.rotate(Some("nobody")).await.unwrap_err(),
        VendorError::UnknownReader(_)
    ));
}

#[tokio::test]
async fn follower_resumes_from_saved_state() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 100);
    let token = Token::from_text(&s.vendor.token(Some("hub")).unwrap()).unwrap();
    let state = s.dir.path().join("follow.json");
    for v in ["1.0.0", "1.0.1"] {
        s.vendor
            .publish(&path, &ReleaseSpec::new("lamp", &["a"], v), None)
            .await
            .unwrap();
    }
    {
        let mut sub = Subscription::new(&token, s.backends.ledger.clone())
            .unwrap()
            .persist_to(&state)
            .unwrap();
        assert_eq!(releases(&mut sub).await, ["1.0.0", "1.0.1"]);
    }
    s.vendor.rotate(None).await.unwrap();
    s.vendor
        .publish(&path, &ReleaseSpec::new("lamp", &["a"], "1.0.2"), None)
        .await
        .unwrap();
    let mut sub = Subscription::new(&token, s.backends.ledger.clone())
        .unwrap()
        .persist_to(&state)
        .unwrap();
    assert_eq!(sub.cursor(), 2);
    assert_eq!(releases(&mut sub).await, ["1.0.2"]);
    // A state file of another channel is refused, not silently reused.
    let other = setup();
    let other_token = Token::from_text(&{
        let mut v = other.vendor;
        v.token(None).unwrap()
    })
    .unwrap();
    let err = Subscription::new(&other_token, s.backends.ledger.clone())
        .unwrap()
        .persist_to(&state)
        .unwrap_err();
    assert!(err.to_string().contains("another channel"), "{err}");
}

#[tokio::test]
async fn follow_waits_for_new_messages() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 100);
    let token = Token::from_text(&s.vendor.token(Some("hub")).unwrap()).unwrap();
    let ledger = s.backends.ledger.clone();
    let follower = tokio::spawn(async move {
        let mut sub = Subscription::new(&token, ledger).unwrap();
        sub.next(Some(Duration::from_secs(10))).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.vendor
        .publish(&path, &ReleaseSpec::new("lamp", &["a"], "2.0.0"), None)
        .await
        .unwrap();
    let item = follower.await.unwrap();
    assert!(matches!(item, Some(ChannelItem::Message(_))), "{item:?}");
    // And an idle channel ends the wait at the timeout.
    let token = Token::from_text(&s.vendor.token(Some("idle")).unwrap()).unwrap();
    let mut sub = Subscription::new(&token, s.backends.ledger.clone()).unwrap();
    sub.drain().await.unwrap();
    assert_eq!(
        sub.next(Some(Duration::from_millis(50))).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn two_vendor_processes_never_fork_the_channel() {
    let s = setup();
    let home = s.dir.path().to_path_buf();
    let mut tasks = Vec::new();
    for worker in 0..2 {
        let home = home.clone();
        tasks.push(tokio::spawn(async move {
            let backends = Backends::open(&home, "embedded", "embedded").unwrap();
            let mut vendor = Vendor::open(&home, &backends).unwrap();
            for i in 0..10 {
                vendor
                    .heartbeat(Duration::from_secs(60 + worker * 100 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = s.vendor.history().await.unwrap();
    assert_eq!(history.len(), 20);
    assert!(history
        .iter()
        .all(|e| matches!(e, fwledger::ChannelEntry::Heartbeat { .. })));
}

#[tokio::test]
async fn fetch_refuses_content_that_differs_from_the_manifest() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 5000);
    let release = s
        .vendor
        .publish(&path, &ReleaseSpec::new("lamp", &["a"], "1.0.0"), None)
        .await
        .unwrap();
    let signed = std::fs::read(&release.manifest_path).unwrap();
    let trust = fwledger::proto::TrustAnchor::new(
        fwledger::proto::ed25519_dalek::VerifyingKey::from_bytes(&s.vendor.public_key()).unwrap(),
    );
    let manifest = fwledger::proto::verify_manifest(&signed, &trust, None)
        .unwrap()
        .manifest;
    let out = s.dir.path().join("out.bin");

    // Malicious mirror: the manifest names other content (here: another release's CID).
    let other = image(s.dir.path(), "other.bin", 5000 + 1);
    let other = s
        .vendor
        .publish(&other, &ReleaseSpec::new("lamp", &["a"], "1.0.1"), None)
        .await
        .unwrap();
    let mut swapped = manifest.clone();
    swapped.cid = other.cid;
    let err = fetch(
        s.backends.store.as_ref(),
        &swapped,
        &out,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Store(StoreError::TooLarge { .. })),
        "{err}"
    );
    assert!(!out.exists(), "nothing is left under the final name");

    // Same length, other bytes: the digest check fails at the end.
    let same_len = image(s.dir.path(), "same.bin", 4999);
    let mut bytes = std::fs::read(&same_len).unwrap();
    bytes.push(1);
    std::fs::write(&same_len, bytes).unwrap();
    let added = s
        .backends
        .store
        .add_file(&same_len, Default::default(), None)
        .await
        .unwrap();
    let mut swapped = manifest.clone();
    swapped.cid = added.cid;
    let err = fetch(
        s.backends.store.as_ref(),
        &swapped,
        &out,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Image(ImageError::DigestMismatch)),
        "{err}"
    );
    assert!(!out.exists());
    let leftovers = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
        .count();
    assert_eq!(leftovers, 0, "temporary files are removed");
}

#[tokio::test]
async fn verify_names_the_failed_check() {
    let mut s = setup();
    let path = image(s.dir.path(), "fw.bin", 2048);
    let mut spec = ReleaseSpec::new("lamp", &["rev-a"], "2.0.0");
    spec.security_version = 5;
    let release = s.vendor.publish(&path, &spec, None).await.unwrap();
    let signed = std::fs::read(&release.manifest_path).unwrap();
    let key = s.vendor.public_key();
    let good = std::fs::read(&path).unwrap();
    let check = |image: Vec<u8>, options: VerifyOptions| {
        verify_release(&signed, image.as_slice(), &key, &options)
            .map(|_| ())
            .map_err(|e: VerifyError| e.check())
    };
    assert_eq!(check(good.clone(), VerifyOptions::default()), Ok(()));
    let mut flipped = good.clone();
    flipped[100] ^= 1;
    assert_eq!(check(flipped, Default::default()), Err("image-sha256"));
    assert_eq!(
        check(good[..2000].to_vec(), Default::default()),
        Err("image-size")
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(check(longer, Default::default()), Err("image-size"));
    let opts = |f: fn(&mut VerifyOptions)| {
        let mut o = VerifyOptions::default();
        f(&mut o);
        o
    };
    assert_eq!(
        check(good.clone(), opts(|o| o.model = Some("fan".into()))),
        Err("model")
    );
    assert_eq!(
        check(good.clone(), opts(|o| o.hardware = Some("rev-z".into()))),
        Err("hardware")
    );
    assert_eq!(
        check(good.clone(), opts(|o| o.security_version = 6)),
        Err("security-version")
    );
    assert_eq!(
        check(
            good.clone(),
            opts(|o| o.current = Some("2.0.0".parse().unwrap()))
        ),
        Err("version")
    );
    assert_eq!(
        check(good.clone(), opts(|o| o.min_key_generation = 2)),
        Err("release-key-generation")
    );
    let other = setup();
    let wrong = verify_release(
        &signed,
        good.as_slice(),
        &other.vendor.public_key(),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(wrong.check(), "release-key-certificate");
}
