//! `uniffi-bindgen` for fwledger: `cargo run -p fwledger-uniffi --bin uniffi-bindgen -- generate
//! --library <libfwledger_uniffi.so> --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
