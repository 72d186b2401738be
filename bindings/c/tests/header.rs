//! The checked-in `include/fwledger.h` must equal what cbindgen generates from this crate.
//! `FWLEDGER_BLESS=1 cargo test -p fwledger-c --test header` rewrites it instead.

use std::path::PathBuf;

#[test]
fn header_is_up_to_date() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();

    let path = crate_dir.join("../../include/fwledger.h");
    if std::env::var_os("FWLEDGER_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/fwledger.h differs from what cbindgen generates; if the change is intended, \
         run FWLEDGER_BLESS=1 cargo test -p fwledger-c --test header"
    );
}
