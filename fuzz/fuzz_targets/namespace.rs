//! Fuzz target: see `offboard::fuzzing::namespace`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| offboard::fuzzing::namespace(data));
