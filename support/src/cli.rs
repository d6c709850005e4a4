//! What every binary's command line shares: the long `--version` (commit and build
//! date) and `--generate <bash|zsh|fish|elvish|powershell|man>`, shell completions and
//! a man page generated from the binary's own clap definition (as `rg --generate`).

use std::io::Write;

/// `0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-06)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MLNODE_GIT_COMMIT"),
    ", built ",
    env!("MLNODE_BUILD_DATE"),
    ")"
);

/// The exit code of a usage error (a typo, a bad value, a missing flag) on every
/// binary: 1, never 2 — 2 is fraud for `mlnode-validate`, and a CI gate on `$? -eq 2`
/// must not read a typo as fraud. (validate.py's argparse exits 2 here; we differ on
/// purpose.)
pub const EXIT_USAGE: i32 = 1;

/// Parse the command line; `--help`/`--version` print and exit 0, a usage error prints
/// clap's message and exits [`EXIT_USAGE`].
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => exit_with(e),
    }
}

/// Print a clap error (help, version or usage) and exit with our code for it.
pub fn exit_with(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let code = match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
        _ => EXIT_USAGE,
    };
    let _ = e.print();
    std::process::exit(code)
}

/// What `--generate` accepts.
pub const GENERATE: &[&str] = &["bash", "zsh", "fish", "elvish", "powershell", "man"];

/// The value of `--generate` among the process arguments (before the normal parse, so
/// that required flags need not be given), if any.
pub fn generate_request() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if let Some(v) = a.strip_prefix("--generate=") {
            return Some(v.to_owned());
        }
        if a == "--generate" {
            return Some(args.next().unwrap_or_default());
        }
    }
    None
}

/// Write `what` for `cmd` to `out`.
pub fn generate(mut cmd: clap::Command, what: &str, out: &mut dyn Write) -> Result<(), String> {
    use clap_complete::Shell;
    let name = cmd.get_name().to_owned();
    let shell = match what {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "elvish" => Shell::Elvish,
        "powershell" => Shell::PowerShell,
        "man" => {
            return clap_mangen::Man::new(cmd)
                .render(out)
                .map_err(|e| e.to_string())
        }
        other => {
            return Err(format!(
                "--generate {other:?}: give one of {}",
                GENERATE.join(", ")
            ))
        }
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Handle `--generate` for `cmd` and exit (0, or 1 with the error), or return.
pub fn generate_and_exit_if_asked(cmd: impl FnOnce() -> clap::Command) {
    if let Some(what) = generate_request() {
        let mut buf = Vec::new();
        match generate(cmd(), &what, &mut buf) {
            Ok(()) => {
                // A closed pipe (`| head`) is not an error worth a message.
                let _ = std::io::stdout().lock().write_all(&buf);
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("demo").arg(clap::Arg::new("x").long("xx").help("an x"))
    }

    #[test]
    fn completions_and_man_pages() {
        for what in GENERATE {
            let mut buf = Vec::new();
            generate(cmd(), what, &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            assert!(text.contains("xx"), "{what}: {text}");
        }
        assert!(generate(cmd(), "tcsh", &mut Vec::new())
            .unwrap_err()
            .contains("bash"));
        assert!(LONG_VERSION.contains("commit "));
    }
}
