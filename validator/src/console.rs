//! Where the human-readable transcript goes, and the live progress display.
//!
//! validate.py prints to stdout; with `--json` stdout carries only the JSON summary, so
//! the transcript moves to stderr. Tests capture it in a buffer.
//!
//! Progress (indicatif) draws on stderr, one bar or spinner per phase, and only where a
//! person watches: stderr is a terminal, `CI` is unset, and `--progress` is not `never`.
//! Transcript lines are printed *around* it (`ProgressBar::suspend`), so the final screen
//! holds the phase lines and nothing stale.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    #[default]
    Auto,
    Always,
    Never,
}

impl ProgressMode {
    /// Whether bars are drawn.
    pub fn enabled(self) -> bool {
        match self {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false")
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Sink {
    Stdout,
    Stderr,
    Buffer(Arc<Mutex<String>>),
}

/// The transcript sink, with the progress bar currently shown (if any).
#[derive(Debug, Clone)]
pub struct Console {
    sink: Sink,
    quiet: bool,
    progress: bool,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Console {
    fn with(sink: Sink) -> Self {
        Console {
            sink,
            quiet: false,
            progress: false,
            bar: Arc::new(Mutex::new(None)),
        }
    }

    pub fn stdout() -> Self {
        Self::with(Sink::Stdout)
    }

    pub fn stderr() -> Self {
        Self::with(Sink::Stderr)
    }

    /// A console that records into a buffer (tests).
    pub fn buffer() -> (Self, Arc<Mutex<String>>) {
        let b = Arc::new(Mutex::new(String::new()));
        (Self::with(Sink::Buffer(b.clone())), b)
    }

    /// `-q`: only [`Console::always`] lines are printed.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Draw progress bars (see [`ProgressMode::enabled`]).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on && !matches!(self.sink, Sink::Buffer(_));
        self
    }

    /// A transcript line (suppressed by `-q`).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.quiet {
            self.always(s);
        }
    }

    /// A line printed even with `-q` (the verdict, errors).
    pub fn always(&self, s: impl AsRef<str>) {
        let s = s.as_ref();
        let write = || match &self.sink {
            Sink::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
            }
            Sink::Stderr => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{s}");
            }
            Sink::Buffer(b) => {
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                b.push_str(s);
                b.push('\n');
            }
        };
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Show a bar for a phase: with `total` (in the unit's numbers, e.g. simulated
    /// seconds) a bar with elapsed / total and ETA, else a spinner. Dropping the guard
    /// clears it.
    pub fn progress(&self, msg: impl Into<String>, total: Option<f64>) -> Progress {
        let bar = if self.progress && !self.quiet {
            let b = match total {
                Some(t) => {
                    let b = ProgressBar::new((t.max(0.0) * 10.0).round() as u64);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg} [{bar:30}] {percent:>3}% elapsed {elapsed} eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b
                }
                None => {
                    let b = ProgressBar::new_spinner();
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b
                }
            };
            b.set_draw_target(ProgressDrawTarget::stderr());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(msg.into());
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Progress {
            bar,
            slot: self.bar.clone(),
        }
    }
}

/// A phase's progress display; cleared on drop.
pub struct Progress {
    bar: ProgressBar,
    slot: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    pub fn set(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    /// Position in the total's unit (e.g. simulated seconds).
    pub fn at(&self, pos: f64) {
        self.bar.set_position((pos.max(0.0) * 10.0).round() as u64);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
