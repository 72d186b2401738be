//! libFuzzer target `token`: see [`fwledger_fuzz::token`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::token(data));
