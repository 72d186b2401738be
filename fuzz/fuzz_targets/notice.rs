//! libFuzzer target `notice`: see [`fwledger_fuzz::notice`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::notice(data));
