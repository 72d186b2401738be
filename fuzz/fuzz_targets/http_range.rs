//! libFuzzer target `http_range`: see [`fwledger_fuzz::http_range`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::http_range(data));
