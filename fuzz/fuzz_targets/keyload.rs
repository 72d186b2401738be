//! libFuzzer target `keyload`: see [`fwledger_fuzz::keyload`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::keyload(data));
