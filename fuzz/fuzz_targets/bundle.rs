//! libFuzzer target `bundle`: see [`fwledger_fuzz::bundle`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::bundle(data));
