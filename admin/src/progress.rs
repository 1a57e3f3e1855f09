//! What an import shows while it runs: an indicatif bar on a terminal, a
//! plain line every few seconds otherwise (a CI log, a file), and log lines
//! that do not tear the bar.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tracing_subscriber::fmt::MakeWriter;

/// How often a plain (not a terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// How often the bar's numbers are refreshed.
const BAR_EVERY: Duration = Duration::from_millis(200);

/// The running counts of an import, updated by the reader and the writers
/// and read by whoever shows them; also the tally of the final summary.
#[derive(Debug)]
pub(crate) struct Counters {
    started: Instant,
    /// The size of the file, 0 if unknown (not a regular file).
    pub total_bytes: u64,
    /// Bytes of the file done with: written, rejected, failed or blank.
    pub bytes: AtomicU64,
    /// Lines that are not blank.
    pub lines: AtomicU64,
    pub written: AtomicU64,
    pub unchanged: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

impl Counters {
    pub(crate) fn new(total_bytes: u64) -> Self {
        Self {
            started: Instant::now(),
            total_bytes,
            bytes: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            written: AtomicU64::new(0),
            unchanged: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// People stored (written or found unchanged) per second so far.
    pub(crate) fn people_per_sec(&self) -> f64 {
        let stored = Self::get(&self.written) + Self::get(&self.unchanged);
        stored as f64 / self.elapsed().as_secs_f64().max(1e-9)
    }

    fn message(&self) -> String {
        format!(
            "{} written, {} rejected, {} failed, {:.0} people/s",
            Self::get(&self.written) + Self::get(&self.unchanged),
            Self::get(&self.rejected),
            Self::get(&self.failed),
            self.people_per_sec(),
        )
    }

    fn plain_line(&self) -> String {
        let bytes = Self::get(&self.bytes);
        let done = if self.total_bytes > 0 {
            let fraction = bytes as f64 / self.total_bytes as f64;
            let eta = if fraction > 0.0 {
                let left = self.elapsed().as_secs_f64() * (1.0 - fraction) / fraction;
                format!(
                    ", ETA {}",
                    HumanDuration(Duration::from_secs_f64(left.max(0.0)))
                )
            } else {
                String::new()
            };
            format!(
                "{} of {} ({:.0}%{eta})",
                HumanBytes(bytes),
                HumanBytes(self.total_bytes),
                fraction * 100.0
            )
        } else {
            HumanBytes(bytes).to_string()
        };
        format!(
            "import: {done}, {} lines: {}",
            Self::get(&self.lines),
            self.message()
        )
    }
}

/// The bar currently on screen, if any, shared with the log writer so that
/// a log line is printed above the bar instead of through it.
#[derive(Clone, Default)]
pub(crate) struct Screen {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Screen {
    fn set_bar(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }

    fn bar(&self) -> Option<ProgressBar> {
        self.bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Shows `counters` until the returned display is finished: a bar if
    /// stderr is a terminal, plain lines otherwise.
    pub(crate) fn show(&self, counters: Arc<Counters>) -> Display {
        let (stop, mut stopped) = watch::channel(false);
        let bar = std::io::stderr().is_terminal().then(|| new_bar(&counters));
        self.set_bar(bar.clone());
        let task = tokio::spawn(async move {
            let every = if bar.is_some() {
                BAR_EVERY
            } else {
                PLAIN_EVERY
            };
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                match &bar {
                    Some(bar) => {
                        bar.set_position(Counters::get(&counters.bytes));
                        bar.set_message(counters.message());
                    }
                    None => eprintln!("{}", counters.plain_line()),
                }
            }
            if let Some(bar) = &bar {
                bar.set_position(Counters::get(&counters.bytes));
                bar.set_message(counters.message());
                bar.finish();
            }
        });
        Display {
            stop,
            task,
            screen: self.clone(),
        }
    }
}

fn new_bar(counters: &Counters) -> ProgressBar {
    let (bar, template) = if counters.total_bytes > 0 {
        (
            ProgressBar::new(counters.total_bytes),
            "[{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})\n{msg}",
        )
    } else {
        (
            ProgressBar::no_length(),
            "{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}",
        )
    };
    // The templates are constants: a bad one is a bug seen on first run.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A progress display that is running; `finish` draws it one last time.
pub(crate) struct Display {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    screen: Screen,
}

impl Display {
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.screen.set_bar(None);
    }
}

impl<'a> MakeWriter<'a> for Screen {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            bar: self.bar(),
            text: Vec::new(),
        }
    }
}

/// One log event, written to stderr in one piece when dropped, with the
/// bar (if any) hidden meanwhile.
pub(crate) struct LogLine {
    bar: Option<ProgressBar>,
    text: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let write = || {
            // Nowhere to report a failure to write a log line to.
            let _ = std::io::stderr().lock().write_all(&self.text);
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
