//! libFuzzer target `mqtt_topic`: see [`fwledger_fuzz::mqtt_topic`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fwledger_fuzz::mqtt_topic(data));
