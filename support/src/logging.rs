//! One logging set-up for every binary: `tracing` to stderr, filtered by `RUST_LOG`
//! (else the binary's default), with ANSI colour only where a person reads it.

use std::io::IsTerminal;

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether a stream that `is_terminal` gets colour.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }

    /// Whether stderr gets colour.
    pub fn stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }
}

/// Install the global subscriber (a second call is a no-op).
pub fn init_logging(default_filter: &str, color: ColorChoice) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(color.stderr())
        .with_env_filter(filter)
        .try_init();
}
