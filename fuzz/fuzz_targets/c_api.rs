//! libFuzzer target `c_api`: see [`fwledger_fuzz::c_api`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::c_api(data));
