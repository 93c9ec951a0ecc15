//! Threads of their own for rendering templates, so a template that loops can never hold up the
//! threads that accept requests.
//!
//! The pool is bounded: a fixed number of threads take jobs from a bounded queue. A render has a
//! deadline; its waiter stops waiting then (and answers with a fallback), and the thread it ran
//! on is replaced so the pool keeps its size. The replaced thread retires once its runaway job
//! ends (renders notice their deadline at their next write, see [`DeadlineWriter`]); a job that
//! writes nothing cannot be stopped, so the number of replacements is bounded as well.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Jobs waiting for a thread, at most; a full queue renders the fallback at once.
const QUEUE: usize = 512;
/// Threads that may be replaced while their runaway jobs still run.
const MAX_REPLACED: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

pub struct RenderPool {
    jobs: SyncSender<(Job, Instant)>,
    queue: Arc<Mutex<Receiver<(Job, Instant)>>>,
    /// Threads started to replace one that ran past a deadline, and not yet retired.
    replaced: AtomicUsize,
    /// When "no thread free" was last logged (seconds since the epoch).
    saturated_logged_at: AtomicU64,
}

/// Why a job was not taken.
#[derive(Debug, PartialEq)]
pub enum Busy {
    QueueFull,
}

impl RenderPool {
    /// A pool of `threads` threads (at least one).
    pub fn new(threads: usize) -> Arc<Self> {
        let (jobs, queue) = sync_channel(QUEUE);
        let pool = Arc::new(RenderPool {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            replaced: AtomicUsize::new(0),
            saturated_logged_at: AtomicU64::new(0),
        });
        for _ in 0..threads.max(1) {
            pool.spawn();
        }
        pool
    }

    /// Two threads per core, at least four: renders are quick, and a spare thread lets other
    /// pages through while a runaway template holds one until its deadline.
    pub fn per_core() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new((cores * 2).max(4))
    }

    /// Queues a job that should be done by `deadline`.
    pub fn submit(
        &self,
        deadline: Instant,
        job: impl FnOnce() + Send + 'static,
    ) -> Result<(), Busy> {
        match self.jobs.try_send((Box::new(job), deadline)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy::QueueFull),
        }
    }

    /// A waiter gave up on a job at its deadline: start a thread in place of the one that job
    /// holds (bounded), so the pool keeps serving at its size.
    pub fn replace_overdue(self: &Arc<Self>) {
        let taken = self
            .replaced
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_REPLACED).then_some(n + 1)
            });
        if taken.is_ok() {
            self.spawn();
        } else {
            tracing::warn!(
                "{MAX_REPLACED} render threads are held by templates past their deadline; not replacing more"
            );
        }
    }

    fn spawn(self: &Arc<Self>) {
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("render".into())
            .spawn(move || pool.work());
        if let Err(e) = spawned {
            tracing::error!("cannot start a render thread: {e}");
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            let next = match self.queue.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok((job, deadline)) = next else {
                return;
            };
            job();
            // This thread ran past the deadline, so a replacement was (probably) started for
            // it: retire, unless none was.
            if Instant::now() > deadline
                && self
                    .replaced
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return;
            }
        }
    }

    /// A job waited past its deadline for a thread (logged at most once a minute).
    pub fn note_saturated(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.saturated_logged_at.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .saturated_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "no render thread was free within the deadline: pages are served from the compiled-in templates meanwhile"
            );
        }
    }

    /// Threads currently replacing ones held past a deadline.
    pub fn replaced(&self) -> usize {
        self.replaced.load(Ordering::SeqCst)
    }
}

/// Collects a render's output and fails the render at its first write after the deadline.
pub struct DeadlineWriter {
    pub out: Vec<u8>,
    deadline: Instant,
    writes: u32,
    pub overdue: bool,
}

impl DeadlineWriter {
    pub fn new(deadline: Instant) -> Self {
        DeadlineWriter {
            out: Vec::with_capacity(16 * 1024),
            deadline,
            writes: 0,
            overdue: false,
        }
    }
}

impl Write for DeadlineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Reading the clock on every write would cost more than many writes do.
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(32) && Instant::now() > self.deadline {
            self.overdue = true;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "render deadline passed",
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stuck_thread_is_replaced_and_retires_when_its_job_ends() {
        let pool = RenderPool::new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let deadline = Instant::now() + Duration::from_millis(10);
        pool.submit(deadline, move || {
            let _ = wait.recv();
        })
        .expect("queued");
        std::thread::sleep(Duration::from_millis(30));
        // The only thread is stuck: without a replacement this job would wait.
        pool.replace_overdue();
        assert_eq!(pool.replaced(), 1);
        let (tx, rx) = std::sync::mpsc::channel();
        pool.submit(Instant::now() + Duration::from_secs(5), move || {
            let _ = tx.send(7);
        })
        .expect("queued");
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)), Ok(7));
        // The stuck job ends; its thread retires and the count goes back.
        release.send(()).expect("release");
        let start = Instant::now();
        while pool.replaced() != 0 && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.replaced(), 0);
    }

    #[test]
    fn replacements_are_bounded() {
        let pool = RenderPool::new(1);
        for _ in 0..MAX_REPLACED + 5 {
            pool.replace_overdue();
        }
        assert_eq!(pool.replaced(), MAX_REPLACED);
    }

    #[test]
    fn the_writer_fails_after_the_deadline() {
        let mut w = DeadlineWriter::new(Instant::now() - Duration::from_millis(1));
        let mut failed = false;
        for _ in 0..64 {
            if w.write(b".").is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed && w.overdue);
        let mut w = DeadlineWriter::new(Instant::now() + Duration::from_secs(60));
        for _ in 0..64 {
            w.write_all(b".").expect("before the deadline");
        }
        assert_eq!(w.out.len(), 64);
    }
}
