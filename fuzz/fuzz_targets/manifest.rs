//! libFuzzer target `manifest`: see [`fwledger_fuzz::manifest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::manifest(data));
