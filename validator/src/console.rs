//! Where the human-readable transcript goes, and the progress display.
//!
//! validate.py prints to stdout; with `--json` stdout carries only the JSON summary, so
//! the transcript moves to stderr. Tests capture it in a buffer. Progress spinners draw
//! on stderr only when it is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The transcript sink.
#[derive(Debug, Clone)]
pub enum Console {
    Stdout,
    Stderr,
    Buffer(Arc<Mutex<String>>),
}

impl Console {
    pub fn buffer() -> (Self, Arc<Mutex<String>>) {
        let b = Arc::new(Mutex::new(String::new()));
        (Console::Buffer(b.clone()), b)
    }

    pub fn line(&self, s: impl AsRef<str>) {
        let s = s.as_ref();
        match self {
            Console::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
            }
            Console::Stderr => eprintln!("{s}"),
            Console::Buffer(b) => {
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                b.push_str(s);
                b.push('\n');
            }
        }
    }
}

/// A per-phase spinner, hidden when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn start(msg: impl Into<String>) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new_spinner();
            b.set_draw_target(ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(msg.into());
        Progress { bar }
    }

    pub fn set(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
