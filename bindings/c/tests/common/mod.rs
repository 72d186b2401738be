//! Shared helpers: the protocol test vectors (`tests/vectors/proto.json`) and small wrappers
//! around the C API.
#![allow(dead_code)]

use std::ffi::{c_char, CStr};
use std::path::PathBuf;
use std::ptr;

use fwledger_c::*;
use serde_json::Value;

pub fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/proto.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

pub fn key(vectors: &Value, name: &str) -> Vec<u8> {
    let key = vectors["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key {name}"));
    hex(&key["public"])
}

pub fn root(vectors: &Value) -> Vec<u8> {
    key(vectors, "acme/root")
}

pub fn now(vectors: &Value) -> u64 {
    vectors["times"]["now"].as_u64().unwrap()
}

pub fn manifest_vector<'a>(vectors: &'a Value, name: &str) -> &'a Value {
    vectors["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no manifest {name}"))
}

/// The image of the vectors: byte i = (i * 7 + 3) mod 256.
pub fn image(vectors: &Value) -> Vec<u8> {
    let size = vectors["image"]["size"].as_u64().unwrap();
    (0..size).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

/// `fwl_manifest_verify`, returning the status and the handle (NULL on failure).
pub fn verify(
    signed: &[u8],
    key: &[u8],
    min_gen: u64,
    now: u64,
) -> (fwl_status, *mut fwl_manifest) {
    let mut out = ptr::dangling_mut();
    // SAFETY: the slices are valid for the call; `out` is a valid place for a pointer.
    let status = unsafe {
        fwl_manifest_verify(
            signed.as_ptr(),
            signed.len(),
            key.as_ptr(),
            key.len(),
            min_gen,
            now,
            &mut out,
        )
    };
    assert_eq!(status == fwl_status::FWL_OK, !out.is_null(), "{status:?}");
    (status, out)
}

/// A manifest vector, verified; panics otherwise.
pub struct Verified(pub *mut fwl_manifest);

impl Verified {
    pub fn new(vectors: &Value, name: &str) -> Self {
        let signed = hex(&manifest_vector(vectors, name)["signed"]);
        let (status, m) = verify(&signed, &root(vectors), 0, now(vectors));
        assert_eq!(status, fwl_status::FWL_OK, "{}", last_error());
        Verified(m)
    }
}

impl Drop for Verified {
    fn drop(&mut self) {
        // SAFETY: a live handle, freed once.
        unsafe { fwl_manifest_free(self.0) }
    }
}

pub fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: 512 writable bytes.
    unsafe { fwl_last_error(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by fwl_last_error.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn check_name(status: fwl_status) -> &'static str {
    // SAFETY: fwl_status_check returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(fwl_status_check(status as i32)) }
        .to_str()
        .unwrap()
}

/// Streams `image` through a verifier in `chunk`-byte pieces; the first failing status.
pub fn stream(size: u64, sha256: &[u8], image: &[u8], chunk: usize) -> fwl_status {
    let mut v = fwl_image_verifier::default();
    // SAFETY: `v` is a valid verifier; the slices are valid for the calls.
    unsafe {
        let status = fwl_image_verifier_init_raw(&mut v, size, sha256.as_ptr(), sha256.len());
        assert_eq!(status, fwl_status::FWL_OK);
        for piece in image.chunks(chunk.max(1)) {
            let status = fwl_image_verifier_update(&mut v, piece.as_ptr(), piece.len());
            if status != fwl_status::FWL_OK {
                return status;
            }
        }
        fwl_image_verifier_finish(&mut v)
    }
}
