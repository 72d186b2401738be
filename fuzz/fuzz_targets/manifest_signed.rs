//! libFuzzer target `manifest_signed`: see [`fwledger_fuzz::manifest_signed`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::manifest_signed(data));
