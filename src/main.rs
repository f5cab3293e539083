//! The `offboard` binary: parse, run, turn the outcome into an exit code. Nothing else.

fn main() -> std::process::ExitCode {
    offboard::cli::main()
}
