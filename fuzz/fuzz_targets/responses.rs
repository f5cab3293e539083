//! Fuzz target: see `offboard::fuzzing::responses`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| offboard::fuzzing::responses(data));
