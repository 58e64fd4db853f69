//! The `gateprobe` binary: parse arguments, run the library, map the outcome to an
//! exit code.

fn main() -> std::process::ExitCode {
    gateprobe::cli::main()
}
