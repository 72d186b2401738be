//! libFuzzer target `car`: see [`fwledger_fuzz::car`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::car(data));
