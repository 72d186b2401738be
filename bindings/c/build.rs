//! Gives the shared library a SONAME on Linux, so that programs linked against the installed
//! `libfwledger.so` find it again after an upgrade within the same ABI.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    if os == "linux" {
        // Before 1.0 every minor version may break the ABI, as Cargo's semver rules say.
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfwledger.so.{abi}");
    }
}
