//! libFuzzer target `unixfs`: see [`fwledger_fuzz::unixfs`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::unixfs(data));
