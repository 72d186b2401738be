//! libFuzzer target `mqtt_status`: see [`fwledger_fuzz::mqtt_status`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::mqtt_status(data));
