//! The C API, called from Rust: the shared test vectors, every accessor, NULL and short-buffer
//! handling, the image verifier's life cycle, notices, and garbage input.

mod common;

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use common::*;
use fwledger_c::fwl_status::*;
use fwledger_c::*;
use fwledger_proto::Notice;

const OK: fwl_status = FWL_OK;

fn text_of(f: impl Fn(*mut c_char, usize, *mut usize) -> fwl_status) -> String {
    let mut len = 0usize;
    assert_eq!(f(ptr::null_mut(), 0, &mut len), FWL_ERR_BUFFER_TOO_SMALL);
    let mut buf = vec![0 as c_char; len + 1];
    let mut len2 = usize::MAX;
    assert_eq!(
        f(buf.as_mut_ptr(), buf.len(), &mut len2),
        OK,
        "{}",
        last_error()
    );
    assert_eq!(len, len2);
    // SAFETY: NUL-terminated by the library.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.len(), len);
    s
}

fn u64_of(f: impl Fn(*mut u64) -> fwl_status) -> u64 {
    let mut v = u64::MAX - 1;
    assert_eq!(f(&mut v), OK, "{}", last_error());
    v
}

#[test]
fn status_codes_are_stable_and_named() {
    let expected: &[(fwl_status, c_int, &str)] = &[
        (FWL_OK, 0, "ok"),
        (FWL_ERR_NULL, 1, "argument"),
        (FWL_ERR_BUFFER_TOO_SMALL, 2, "argument"),
        (FWL_ERR_INVALID_ARGUMENT, 3, "argument"),
        (FWL_ERR_MALFORMED, 10, "manifest-format"),
        (FWL_ERR_UNSUPPORTED_ALGORITHM, 11, "signature-algorithm"),
        (FWL_ERR_KEY_NOT_CERTIFIED, 12, "release-key-certificate"),
        (FWL_ERR_KEY_WRONG_ROLE, 13, "release-key-role"),
        (FWL_ERR_KEY_EXPIRED, 14, "release-key-expiry"),
        (FWL_ERR_KEY_RETIRED, 15, "release-key-generation"),
        (FWL_ERR_BAD_SIGNATURE, 16, "manifest-signature"),
        (FWL_ERR_WRONG_VENDOR, 17, "vendor-key"),
        (FWL_ERR_MANIFEST_EXPIRED, 18, "manifest-expiry"),
        (FWL_ERR_NOTICE_MALFORMED, 19, "notice-format"),
        (FWL_ERR_IMAGE_TOO_LONG, 20, "image-size"),
        (FWL_ERR_IMAGE_TRUNCATED, 21, "image-size"),
        (FWL_ERR_IMAGE_DIGEST_MISMATCH, 22, "image-sha256"),
        (FWL_ERR_WRONG_MODEL, 30, "model"),
        (FWL_ERR_WRONG_HARDWARE, 31, "hardware"),
        (FWL_ERR_NOT_NEWER, 32, "version"),
        (FWL_ERR_SECURITY_VERSION_ROLLBACK, 33, "security-version"),
        (FWL_ERR_PREREQUISITE_NOT_MET, 34, "prerequisite"),
        (FWL_ERR_INTERNAL, 99, "internal"),
    ];
    assert_eq!(fwl_status::all().len(), expected.len());
    let mut descriptions = std::collections::HashSet::new();
    for &(status, code, check) in expected {
        assert_eq!(status as c_int, code);
        assert_eq!(fwl_status::from_code(code), Some(status));
        assert_eq!(check_name(status), check);
        // SAFETY: static NUL-terminated strings.
        let description = unsafe { CStr::from_ptr(fwl_status_str(code)) }
            .to_str()
            .unwrap();
        assert!(!description.is_empty());
        assert!(descriptions.insert(description), "duplicate: {description}");
    }
    for unknown in [-1, 4, 9, 23, 35, 98, 100, c_int::MAX, c_int::MIN] {
        // SAFETY: static NUL-terminated strings.
        unsafe {
            assert_eq!(CStr::from_ptr(fwl_status_str(unknown)), c"unknown status");
            assert_eq!(CStr::from_ptr(fwl_status_check(unknown)), c"unknown");
        }
    }
    // SAFETY: static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(fwl_library_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn manifest_vectors_verify_with_every_accessor() {
    let v = vectors();
    for mv in v["manifests"].as_array().unwrap() {
        let name = mv["name"].as_str().unwrap();
        let fields = &mv["fields"];
        let m = Verified::new(&v, name);
        let m = m.0 as *const fwl_manifest;
        // SAFETY (whole block): `m` is a live handle; the buffers are valid for the calls.
        unsafe {
            assert_eq!(
                text_of(|b, l, o| fwl_manifest_vendor(m, b, l, o)),
                fields["vendor"]
            );
            assert_eq!(
                text_of(|b, l, o| fwl_manifest_model(m, b, l, o)),
                fields["model"]
            );
            assert_eq!(
                text_of(|b, l, o| fwl_manifest_version(m, b, l, o)),
                fields["version"]
            );
            assert_eq!(
                text_of(|b, l, o| fwl_manifest_cid(m, b, l, o)),
                fields["cid"]
            );
            let pre = text_of(|b, l, o| fwl_manifest_prerequisite(m, b, l, o));
            assert_eq!(pre, fields["prerequisite"].as_str().unwrap_or(""));
            let notes = text_of(|b, l, o| fwl_manifest_notes(m, b, l, o));
            assert_eq!(notes, fields["notes"].as_str().unwrap_or(""));
            assert_eq!(
                u64_of(|o| fwl_manifest_security_version(m, o)),
                fields["security_version"].as_u64().unwrap()
            );
            assert_eq!(
                u64_of(|o| fwl_manifest_size(m, o)),
                fields["size"].as_u64().unwrap()
            );
            assert_eq!(
                u64_of(|o| fwl_manifest_issued(m, o)),
                fields["issued"].as_u64().unwrap()
            );
            assert_eq!(
                u64_of(|o| fwl_manifest_expires(m, o)),
                fields["expires"].as_u64().unwrap_or(0)
            );
            let cert = v["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == mv["certificate"])
                .unwrap();
            assert_eq!(
                u64_of(|o| fwl_manifest_key_generation(m, o)),
                cert["generation"].as_u64().unwrap()
            );
            let mut sha = [0u8; 32];
            assert_eq!(fwl_manifest_sha256(m, sha.as_mut_ptr(), sha.len()), OK);
            assert_eq!(sha.to_vec(), hex(&fields["sha256"]));
            let mut count = 0usize;
            assert_eq!(fwl_manifest_hardware_count(m, &mut count), OK);
            let hw = fields["hardware"].as_array().unwrap();
            assert_eq!(count, hw.len());
            for (i, h) in hw.iter().enumerate() {
                assert_eq!(text_of(|b, l, o| fwl_manifest_hardware(m, i, b, l, o)), *h);
            }
            let mut buf = [0 as c_char; 64];
            assert_eq!(
                fwl_manifest_hardware(m, count, buf.as_mut_ptr(), 64, ptr::null_mut()),
                FWL_ERR_INVALID_ARGUMENT
            );
            assert!(last_error().contains("out of range"), "{}", last_error());
        }
    }
}

#[test]
fn negative_manifest_vectors_map_to_their_status() {
    let v = vectors();
    let mut seen = 0;
    for n in v["negative"].as_array().unwrap() {
        if n["kind"] != "manifest" {
            continue;
        }
        let min_gen = n["min_key_generation"].as_u64().unwrap_or(0);
        let (status, m) = verify(&hex(&n["input"]), &root(&v), min_gen, now(&v));
        assert!(m.is_null());
        assert_eq!(
            check_name(status),
            n["expected"],
            "{}: {status:?}",
            n["name"]
        );
        assert!(
            last_error().starts_with("fwl_manifest_verify: "),
            "{}",
            last_error()
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} manifest vectors");
}

#[test]
fn image_vectors() {
    let v = vectors();
    let image = image(&v);
    let sha = hex(&v["image"]["sha256"]);
    let size = image.len() as u64;
    for chunk in [1, 7, 64, 999, 1000, 4096] {
        assert_eq!(stream(size, &sha, &image, chunk), OK, "chunk {chunk}");
    }
    for n in v["negative"].as_array().unwrap() {
        if n["kind"] != "image" {
            continue;
        }
        let input = hex(&n["input"]);
        let m = Verified::new(&v, n["manifest"].as_str().unwrap());
        let mut state = fwl_image_verifier::default();
        // SAFETY: valid verifier and handle; the slices are valid for the calls.
        let status = unsafe {
            assert_eq!(fwl_image_verifier_init(&mut state, m.0), OK);
            let s = fwl_image_verifier_update(&mut state, input.as_ptr(), input.len());
            if s == OK {
                fwl_image_verifier_finish(&mut state)
            } else {
                s
            }
        };
        assert_eq!(check_name(status), n["expected"], "{}", n["name"]);
        let want = if input.len() as u64 > size {
            FWL_ERR_IMAGE_TOO_LONG
        } else if input.len() as u64 == size {
            FWL_ERR_IMAGE_DIGEST_MISMATCH
        } else {
            FWL_ERR_IMAGE_TRUNCATED
        };
        assert_eq!(status, want, "{}", n["name"]);
    }
}

#[test]
fn image_too_long_fails_at_the_first_byte_past_the_size() {
    let v = vectors();
    let mut image = image(&v);
    let sha = hex(&v["image"]["sha256"]);
    let size = image.len() as u64;
    image.push(0);
    let mut state = fwl_image_verifier::default();
    // SAFETY: valid verifier; the slices are valid for the calls.
    unsafe {
        assert_eq!(
            fwl_image_verifier_init_raw(&mut state, size, sha.as_ptr(), 32),
            OK
        );
        for byte in &image[..size as usize] {
            assert_eq!(fwl_image_verifier_update(&mut state, byte, 1), OK);
        }
        let mut received = 0;
        assert_eq!(fwl_image_verifier_received(&state, &mut received), OK);
        assert_eq!(received, size);
        assert_eq!(
            fwl_image_verifier_update(&mut state, &image[size as usize], 1),
            FWL_ERR_IMAGE_TOO_LONG
        );
        // Stays failed, even for an empty chunk, and finish says so too.
        assert_eq!(
            fwl_image_verifier_update(&mut state, image.as_ptr(), 0),
            FWL_ERR_IMAGE_TOO_LONG
        );
        assert_eq!(
            fwl_image_verifier_finish(&mut state),
            FWL_ERR_IMAGE_TOO_LONG
        );
        // Finished: the state is no longer usable.
        assert_eq!(
            fwl_image_verifier_update(&mut state, image.as_ptr(), 1),
            FWL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fwl_image_verifier_finish(&mut state),
            FWL_ERR_INVALID_ARGUMENT
        );
    }
    // A chunk that straddles the end is refused whole.
    assert_eq!(stream(size, &sha, &image, 600), FWL_ERR_IMAGE_TOO_LONG);
}

#[test]
fn image_verifier_refuses_bad_states_and_arguments() {
    let sha = [0u8; 32];
    let mut state = fwl_image_verifier::default();
    // SAFETY: valid pointers unless the test says otherwise (NULL, misaligned, uninitialised
    // — all refused before the memory is touched as a state).
    unsafe {
        assert_eq!(
            fwl_image_verifier_update(&mut state, sha.as_ptr(), 1),
            FWL_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("not initialised"), "{}", last_error());
        assert_eq!(
            fwl_image_verifier_finish(&mut state),
            FWL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fwl_image_verifier_init_raw(&mut state, 1, sha.as_ptr(), 31),
            FWL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fwl_image_verifier_init_raw(&mut state, 1, ptr::null(), 32),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_image_verifier_init_raw(ptr::null_mut(), 1, sha.as_ptr(), 32),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_image_verifier_init(&mut state, ptr::null()),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_image_verifier_update(ptr::null_mut(), sha.as_ptr(), 1),
            FWL_ERR_NULL
        );
        assert_eq!(fwl_image_verifier_finish(ptr::null_mut()), FWL_ERR_NULL);
        let mut received = 0;
        assert_eq!(
            fwl_image_verifier_received(ptr::null(), &mut received),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_image_verifier_init_raw(&mut state, 0, sha.as_ptr(), 32),
            OK
        );
        assert_eq!(
            fwl_image_verifier_update(&mut state, ptr::null(), 0),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_image_verifier_received(&state, ptr::null_mut()),
            FWL_ERR_NULL
        );
        // Misaligned memory is refused.
        let mut raw = vec![0u64; FWL_IMAGE_VERIFIER_WORDS + 1];
        let misaligned = raw
            .as_mut_ptr()
            .cast::<u8>()
            .add(4)
            .cast::<fwl_image_verifier>();
        assert_eq!(
            fwl_image_verifier_init_raw(misaligned, 1, sha.as_ptr(), 32),
            FWL_ERR_INVALID_ARGUMENT
        );
    }
}

#[test]
fn policy_vectors() {
    let v = vectors();
    for p in v["policy"].as_array().unwrap() {
        let m = Verified::new(&v, p["manifest"].as_str().unwrap());
        let d = &p["device"];
        let cstr = |k: &str| std::ffi::CString::new(d[k].as_str().unwrap()).unwrap();
        let (model, hw, version) = (cstr("model"), cstr("hardware"), cstr("version"));
        // SAFETY: live handle and NUL-terminated strings.
        let status = unsafe {
            fwl_policy_decide(
                m.0,
                model.as_ptr(),
                hw.as_ptr(),
                version.as_ptr(),
                d["security_version"].as_u64().unwrap(),
                p["now"].as_u64().unwrap(),
            )
        };
        assert_eq!(
            check_name(status),
            p["expected"],
            "{}: {}",
            p["name"],
            last_error()
        );
    }
    let m = Verified::new(&v, "lamp-1.1.0");
    // SAFETY: live handle and NUL-terminated strings (or NULL, which is refused).
    unsafe {
        let (model, hw) = (c"lamp".as_ptr(), c"rev-b".as_ptr());
        assert_eq!(
            fwl_policy_decide(m.0, model, hw, c"1.0".as_ptr(), 0, 0),
            FWL_ERR_MALFORMED
        );
        assert_eq!(
            fwl_policy_decide(m.0, model, hw, ptr::null(), 0, 0),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_policy_decide(m.0, ptr::null(), hw, c"1.0.0".as_ptr(), 0, 0),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_policy_decide(m.0, model, ptr::null(), c"1.0.0".as_ptr(), 0, 0),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_policy_decide(ptr::null(), model, hw, c"1.0.0".as_ptr(), 0, 0),
            FWL_ERR_NULL
        );
        let bad_utf8 = [0xffu8, 0];
        assert_eq!(
            fwl_policy_decide(m.0, bad_utf8.as_ptr().cast(), hw, c"1.0.0".as_ptr(), 0, 0),
            FWL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fwl_policy_decide(m.0, model, hw, c"1.0.0".as_ptr(), 1, 0),
            OK
        );
        assert_eq!(fwl_manifest_check_security_version(m.0, 1), OK);
        assert_eq!(
            fwl_manifest_check_security_version(m.0, 2),
            FWL_ERR_SECURITY_VERSION_ROLLBACK
        );
        assert_eq!(
            fwl_manifest_check_security_version(ptr::null(), 0),
            FWL_ERR_NULL
        );
    }
}

#[test]
fn version_compare() {
    let cases = [
        ("1.0.0", "1.0.1", -1),
        ("1.10.0", "1.9.0", 1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0+build.5", "1.0.0", 0),
        ("2.0.0", "2.0.0", 0),
    ];
    for (a, b, want) in cases {
        let (a, b) = (
            std::ffi::CString::new(a).unwrap(),
            std::ffi::CString::new(b).unwrap(),
        );
        let mut out = 42;
        // SAFETY: NUL-terminated strings and a valid out pointer.
        assert_eq!(
            unsafe { fwl_version_compare(a.as_ptr(), b.as_ptr(), &mut out) },
            OK
        );
        assert_eq!(out, want);
    }
    let mut out = 42;
    // SAFETY: NUL-terminated strings or NULL; a valid out pointer or NULL.
    unsafe {
        assert_eq!(
            fwl_version_compare(c"1.0".as_ptr(), c"1.0.0".as_ptr(), &mut out),
            FWL_ERR_MALFORMED
        );
        assert_eq!(
            fwl_version_compare(c"1.0.0".as_ptr(), c"v1".as_ptr(), &mut out),
            FWL_ERR_MALFORMED
        );
        assert_eq!(
            fwl_version_compare(ptr::null(), c"1.0.0".as_ptr(), &mut out),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_version_compare(c"1.0.0".as_ptr(), ptr::null(), &mut out),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_version_compare(c"1.0.0".as_ptr(), c"1.0.0".as_ptr(), ptr::null_mut()),
            FWL_ERR_NULL
        );
    }
    assert_eq!(out, 42);
}

fn notice_bytes(manifest: Vec<u8>, time: Option<u64>) -> Vec<u8> {
    Notice {
        manifest,
        url: "https://gateway.local/fw/abc".into(),
        gateway_time: time,
    }
    .to_cbor()
}

#[test]
fn notices_parse_and_verify() {
    let v = vectors();
    let signed = hex(&manifest_vector(&v, "lamp-1.2.0")["signed"]);
    let key = root(&v);
    let bytes = notice_bytes(signed.clone(), Some(1_700_000_001));
    // SAFETY: valid slices and out pointers; handles are freed once.
    unsafe {
        let mut n = ptr::null_mut();
        assert_eq!(fwl_notice_parse(bytes.as_ptr(), bytes.len(), &mut n), OK);
        let url = text_of(|b, l, o| fwl_notice_url(n, b, l, o));
        assert_eq!(url, "https://gateway.local/fw/abc");
        let mut t = 0;
        assert_eq!(fwl_notice_gateway_time(n, &mut t), OK);
        assert_eq!(t, 1_700_000_001);
        let (mut data, mut len) = (ptr::null(), 0usize);
        assert_eq!(fwl_notice_manifest(n, &mut data, &mut len), OK);
        assert_eq!(std::slice::from_raw_parts(data, len), &signed[..]);
        fwl_notice_free(n);

        let (mut n, mut m) = (ptr::dangling_mut(), ptr::dangling_mut());
        let now = now(&v);
        let status = fwl_notice_verify(
            bytes.as_ptr(),
            bytes.len(),
            key.as_ptr(),
            32,
            0,
            now,
            &mut n,
            &mut m,
        );
        assert_eq!(status, OK, "{}", last_error());
        assert_eq!(text_of(|b, l, o| fwl_manifest_version(m, b, l, o)), "1.2.0");
        fwl_manifest_free(m);
        fwl_notice_free(n);

        // The notice output is optional.
        let mut m = ptr::null_mut();
        let status = fwl_notice_verify(
            bytes.as_ptr(),
            bytes.len(),
            key.as_ptr(),
            32,
            0,
            now,
            ptr::null_mut(),
            &mut m,
        );
        assert_eq!(status, OK);
        fwl_manifest_free(m);

        // No gateway time: 0.
        let bytes = notice_bytes(signed.clone(), None);
        let mut n = ptr::null_mut();
        assert_eq!(fwl_notice_parse(bytes.as_ptr(), bytes.len(), &mut n), OK);
        let mut t = 7;
        assert_eq!(fwl_notice_gateway_time(n, &mut t), OK);
        assert_eq!(t, 0);
        fwl_notice_free(n);

        // A forged notice: a manifest signed by a key the vendor never certified.
        let forged_input = v["negative"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "manifest-release-key-not-certified")
            .map(|n| hex(&n["input"]))
            .unwrap();
        let bytes = notice_bytes(forged_input, None);
        let (mut n, mut m) = (ptr::dangling_mut(), ptr::dangling_mut());
        let status = fwl_notice_verify(
            bytes.as_ptr(),
            bytes.len(),
            key.as_ptr(),
            32,
            0,
            now,
            &mut n,
            &mut m,
        );
        assert_eq!(status, FWL_ERR_KEY_NOT_CERTIFIED);
        assert!(n.is_null() && m.is_null());

        // Garbage notices.
        for bad in [
            &b""[..],
            b"\xa0",
            b"\xa1\x01\x02",
            &bytes[..bytes.len() - 1],
        ] {
            let (mut n, mut m) = (ptr::dangling_mut(), ptr::dangling_mut());
            assert_eq!(
                fwl_notice_parse(bad.as_ptr(), bad.len(), &mut n),
                FWL_ERR_NOTICE_MALFORMED
            );
            assert!(n.is_null());
            let status = fwl_notice_verify(
                bad.as_ptr(),
                bad.len(),
                key.as_ptr(),
                32,
                0,
                0,
                ptr::null_mut(),
                &mut m,
            );
            assert_eq!(status, FWL_ERR_NOTICE_MALFORMED);
            assert!(m.is_null());
            assert_eq!(check_name(status), "notice-format");
        }

        // NULLs.
        let mut n = ptr::null_mut();
        assert_eq!(fwl_notice_parse(ptr::null(), 0, &mut n), FWL_ERR_NULL);
        assert_eq!(
            fwl_notice_parse(bytes.as_ptr(), bytes.len(), ptr::null_mut()),
            FWL_ERR_NULL
        );
        let mut m = ptr::null_mut();
        let b = notice_bytes(signed.clone(), None);
        assert_eq!(
            fwl_notice_verify(
                b.as_ptr(),
                b.len(),
                key.as_ptr(),
                32,
                0,
                0,
                ptr::null_mut(),
                ptr::null_mut()
            ),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_notice_verify(
                ptr::null(),
                0,
                key.as_ptr(),
                32,
                0,
                0,
                ptr::null_mut(),
                &mut m
            ),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_notice_verify(
                b.as_ptr(),
                b.len(),
                ptr::null(),
                32,
                0,
                0,
                ptr::null_mut(),
                &mut m
            ),
            FWL_ERR_NULL
        );
        let (mut data, mut len) = (ptr::null(), 0usize);
        assert_eq!(
            fwl_notice_manifest(ptr::null(), &mut data, &mut len),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_notice_url(ptr::null(), ptr::null_mut(), 0, ptr::null_mut()),
            FWL_ERR_NULL
        );
        let mut t = 0;
        assert_eq!(fwl_notice_gateway_time(ptr::null(), &mut t), FWL_ERR_NULL);
        fwl_notice_free(ptr::null_mut());
    }
}

#[test]
fn null_arguments_are_refused() {
    let v = vectors();
    let signed = hex(&manifest_vector(&v, "lamp-1.1.0")["signed"]);
    let key = root(&v);
    let m = Verified::new(&v, "lamp-1.1.0");
    // SAFETY: every pointer is valid or NULL; NULL is what is being tested.
    unsafe {
        let mut out = ptr::dangling_mut();
        assert_eq!(
            fwl_manifest_verify(ptr::null(), 0, key.as_ptr(), 32, 0, 0, &mut out),
            FWL_ERR_NULL
        );
        assert!(out.is_null(), "out is set to NULL on failure");
        assert_eq!(
            fwl_manifest_verify(
                signed.as_ptr(),
                signed.len(),
                ptr::null(),
                32,
                0,
                0,
                &mut out
            ),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_manifest_verify(
                signed.as_ptr(),
                signed.len(),
                key.as_ptr(),
                32,
                0,
                0,
                ptr::null_mut()
            ),
            FWL_ERR_NULL
        );
        assert!(last_error().contains("`out` is NULL"), "{}", last_error());

        let text_fns: [unsafe extern "C" fn(
            *const fwl_manifest,
            *mut c_char,
            usize,
            *mut usize,
        ) -> fwl_status; 6] = [
            fwl_manifest_vendor,
            fwl_manifest_model,
            fwl_manifest_version,
            fwl_manifest_cid,
            fwl_manifest_prerequisite,
            fwl_manifest_notes,
        ];
        let mut buf = [0 as c_char; 8];
        for f in text_fns {
            assert_eq!(
                f(ptr::null(), buf.as_mut_ptr(), buf.len(), ptr::null_mut()),
                FWL_ERR_NULL
            );
            assert_eq!(f(m.0, ptr::null_mut(), 8, ptr::null_mut()), FWL_ERR_NULL);
        }
        let u64_fns: [unsafe extern "C" fn(*const fwl_manifest, *mut u64) -> fwl_status; 5] = [
            fwl_manifest_security_version,
            fwl_manifest_size,
            fwl_manifest_issued,
            fwl_manifest_expires,
            fwl_manifest_key_generation,
        ];
        let mut x = 0;
        for f in u64_fns {
            assert_eq!(f(ptr::null(), &mut x), FWL_ERR_NULL);
            assert_eq!(f(m.0, ptr::null_mut()), FWL_ERR_NULL);
        }
        let mut sha = [0u8; 32];
        assert_eq!(
            fwl_manifest_sha256(ptr::null(), sha.as_mut_ptr(), 32),
            FWL_ERR_NULL
        );
        assert_eq!(fwl_manifest_sha256(m.0, ptr::null_mut(), 32), FWL_ERR_NULL);
        let mut count = 0;
        assert_eq!(
            fwl_manifest_hardware_count(ptr::null(), &mut count),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_manifest_hardware_count(m.0, ptr::null_mut()),
            FWL_ERR_NULL
        );
        assert_eq!(
            fwl_manifest_hardware(ptr::null(), 0, buf.as_mut_ptr(), 8, ptr::null_mut()),
            FWL_ERR_NULL
        );
        fwl_manifest_free(ptr::null_mut());
        assert_eq!(fwl_last_error(ptr::null_mut(), 100), last_error().len());
    }
}

#[test]
fn small_buffers_are_refused_with_the_needed_length() {
    let v = vectors();
    let m = Verified::new(&v, "lamp-1.2.0");
    // SAFETY: valid handle and buffers.
    unsafe {
        let mut buf = [b'x' as c_char; 5];
        let mut len = 0;
        // "1.2.0" needs 6 bytes with the NUL.
        assert_eq!(
            fwl_manifest_version(m.0, buf.as_mut_ptr(), 5, &mut len),
            FWL_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 5);
        assert_eq!(buf[0], 0, "the buffer holds an empty string");
        assert!(
            last_error().contains("6 bytes are needed"),
            "{}",
            last_error()
        );
        let mut buf6 = [0 as c_char; 6];
        assert_eq!(
            fwl_manifest_version(m.0, buf6.as_mut_ptr(), 6, ptr::null_mut()),
            OK
        );
        assert_eq!(CStr::from_ptr(buf6.as_ptr()), c"1.2.0");
        assert_eq!(last_error(), "", "a successful call clears the message");
        let mut sha = [0u8; 31];
        assert_eq!(
            fwl_manifest_sha256(m.0, sha.as_mut_ptr(), 31),
            FWL_ERR_BUFFER_TOO_SMALL
        );
        let mut hw = [0 as c_char; 5];
        assert_eq!(
            fwl_manifest_hardware(m.0, 0, hw.as_mut_ptr(), 5, &mut len),
            FWL_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 5);
    }
}

#[test]
fn last_error_is_cut_at_a_character_boundary() {
    // SAFETY: NUL-terminated strings; valid buffers.
    unsafe {
        let mut out = 0;
        let long = std::ffi::CString::new(format!("1.0.0-{}", "é".repeat(200))).unwrap();
        assert_eq!(
            fwl_version_compare(long.as_ptr(), c"1.0.0".as_ptr(), &mut out),
            FWL_ERR_MALFORMED
        );
        let full = fwl_last_error(ptr::null_mut(), 0);
        assert!(full > 200 && full <= 255, "{full}");
        let mut small = [0 as c_char; 24];
        let n = fwl_last_error(small.as_mut_ptr(), small.len());
        assert_eq!(n, full);
        let text = CStr::from_ptr(small.as_ptr())
            .to_str()
            .expect("valid UTF-8 after cutting");
        assert!(text.len() <= 23);
        assert!(text.starts_with("fwl_version_compare: "));
        let mut one = [b'x' as c_char; 1];
        assert_eq!(fwl_last_error(one.as_mut_ptr(), 1), full);
        assert_eq!(one[0], 0);
    }
}

#[test]
fn wrong_vendor_keys_are_invalid_arguments() {
    let v = vectors();
    let signed = hex(&manifest_vector(&v, "lamp-1.1.0")["signed"]);
    let key = root(&v);
    let (status, _) = verify(&signed, &key[..31], 0, 0);
    assert_eq!(status, FWL_ERR_INVALID_ARGUMENT);
    // Not a point on the curve.
    let (status, _) = verify(&signed, &key_not_on_curve(), 0, 0);
    assert_eq!(status, FWL_ERR_INVALID_ARGUMENT, "{}", last_error());
    // Another vendor's valid root key: the certificate does not chain.
    let (status, _) = verify(&signed, &common::key(&v, "globex/root"), 0, 0);
    assert_eq!(status, FWL_ERR_KEY_NOT_CERTIFIED);
}

/// A 32-byte string that is not a valid compressed Edwards point.
fn key_not_on_curve() -> [u8; 32] {
    for y in 2u8..=255 {
        let mut k = [0u8; 32];
        k[0] = y;
        if fwledger_proto::ed25519_dalek::VerifyingKey::from_bytes(&k).is_err() {
            return k;
        }
    }
    unreachable!("some small y is not on the curve")
}

#[test]
fn every_single_byte_change_of_a_manifest_is_refused_without_panic() {
    let v = vectors();
    let signed = hex(&manifest_vector(&v, "lamp-1.2.0")["signed"]);
    let key = root(&v);
    let now = now(&v);
    for i in 0..signed.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = signed.clone();
            bad[i] ^= flip;
            let (status, m) = verify(&bad, &key, 0, now);
            assert!(m.is_null());
            assert!(
                !matches!(status, FWL_OK | FWL_ERR_INTERNAL),
                "byte {i} ^ {flip:#x}: {status:?}"
            );
        }
        // Every truncation too.
        let (status, _) = verify(&signed[..i], &key, 0, now);
        assert_eq!(status, FWL_ERR_MALFORMED, "truncated to {i}");
    }
}

#[test]
fn garbage_input_never_panics() {
    // xorshift: deterministic, no extra dependency.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let v = vectors();
    let key = root(&v);
    let signed = hex(&manifest_vector(&v, "lamp-1.1.0")["signed"]);
    for round in 0..3000 {
        let len = (next() % 1200) as usize;
        let mut input: Vec<u8> = if round % 2 == 0 {
            (0..len).map(|_| next() as u8).collect()
        } else {
            // Keep the valid prefix so the decoder gets deep before meeting garbage.
            let mut s = signed.clone();
            let at = (next() as usize) % s.len();
            for b in &mut s[at..] {
                *b = next() as u8;
            }
            s
        };
        if round % 5 == 0 {
            input = notice_bytes(input, Some(next()));
        }
        let (status, _) = verify(&input, &key, 0, next() % 2_000_000_000);
        assert!(!matches!(status, FWL_OK | FWL_ERR_INTERNAL), "{status:?}");
        let mut n = ptr::null_mut();
        // SAFETY: valid slice and out pointer; the handle is freed once.
        unsafe {
            let status = fwl_notice_parse(input.as_ptr(), input.len(), &mut n);
            assert!(
                status == OK || status == FWL_ERR_NOTICE_MALFORMED,
                "{status:?}"
            );
            fwl_notice_free(n);
        }
    }
}

#[test]
fn handles_work_across_threads() {
    let v = vectors();
    let m = Verified::new(&v, "lamp-1.2.0");
    let addr = m.0 as usize;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let m = addr as *const fwl_manifest;
                for _ in 0..200 {
                    // SAFETY: the handle outlives the scope; reads are thread-safe.
                    let version = text_of(|b, l, o| unsafe { fwl_manifest_version(m, b, l, o) });
                    assert_eq!(version, "1.2.0");
                    // Each thread has its own last error.
                    // SAFETY: valid handle and pointers.
                    let status = unsafe { fwl_manifest_sha256(m, ptr::null_mut(), 0) };
                    assert_eq!(status, FWL_ERR_NULL);
                    assert!(last_error().starts_with("fwl_manifest_sha256:"));
                }
            });
        }
    });
}
