//! Time in the native runtime: a clock that stands still until something waits on it. A test
//! moves it ([`advance`]), and [`block_on`] moves it to the next timer whenever every task is
//! waiting on one, so a retry after a minute, a lease that runs out or a partner that answers
//! slowly take no time at all, and happen in the order their times say.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Where every native clock starts: 2026-11-26T12:00:00Z.
pub const START_MS: i64 = 1_795_694_400_000;

#[derive(Default)]
struct Clock {
    now_ms: i64,
    /// Timers waiting, by when they are due and the order they were set in.
    timers: BTreeMap<(i64, u64), Waker>,
    next_timer: u64,
}

thread_local! {
    static CLOCK: RefCell<Clock> = RefCell::new(Clock { now_ms: START_MS, ..Clock::default() });
}

/// The time now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    CLOCK.with(|clock| clock.borrow().now_ms)
}

/// Sets the clock (a new stack starts it at [`START_MS`]); its timers are forgotten.
pub fn reset(now_ms: i64) {
    CLOCK.with(|clock| {
        *clock.borrow_mut() = Clock {
            now_ms,
            ..Clock::default()
        }
    });
}

/// Moves the clock on by `ms`; the timers due by then fire when their tasks are next polled.
pub fn advance(ms: i64) {
    let due = CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        clock.now_ms += ms.max(0);
        clock.take_due()
    });
    due.into_iter().for_each(Waker::wake);
}

impl Clock {
    fn take_due(&mut self) -> Vec<Waker> {
        let later = self.timers.split_off(&(self.now_ms + 1, 0));
        std::mem::replace(&mut self.timers, later).into_values().collect()
    }
}

/// A future that is ready once the clock has moved on by its duration since it was first
/// polled (as `worker::Delay`'s timer starts when it is first polled).
pub struct Delay {
    wait_ms: i64,
    due_ms: Option<i64>,
    timer: Option<(i64, u64)>,
}

impl From<Duration> for Delay {
    fn from(duration: Duration) -> Self {
        Self {
            wait_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2),
            due_ms: None,
            timer: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let wait_ms = self.wait_ms;
        let due_ms = *self
            .due_ms
            .get_or_insert_with(|| now_ms().saturating_add(wait_ms));
        let previous = self.timer.take();
        CLOCK.with(|clock| {
            let mut clock = clock.borrow_mut();
            if let Some(timer) = previous {
                clock.timers.remove(&timer);
            }
            if clock.now_ms >= due_ms {
                return Poll::Ready(());
            }
            let timer = (due_ms, clock.next_timer);
            clock.next_timer += 1;
            clock.timers.insert(timer, cx.waker().clone());
            self.timer = Some(timer);
            Poll::Pending
        })
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            // During a thread's teardown the clock may be gone already; then so is the timer.
            let _ = CLOCK.try_with(|clock| clock.borrow_mut().timers.remove(&timer));
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `future` to its end on this thread. Whenever it can go no further without time passing,
/// the clock jumps to the next timer. A future waiting on nothing that could ever happen is a
/// bug of the test or of the code under it, and fails loudly.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if flag.0.load(Ordering::SeqCst) {
            continue;
        }
        let next = CLOCK.with(|clock| {
            let mut clock = clock.borrow_mut();
            let (&(due_ms, _), _) = clock.timers.first_key_value()?;
            clock.now_ms = clock.now_ms.max(due_ms);
            Some(clock.take_due())
        });
        match next {
            Some(due) => due.into_iter().for_each(Waker::wake),
            None => panic!("the native runtime's task waits on nothing that can happen (no timer is set)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::{Either, select};

    #[test]
    fn a_wait_takes_no_time_and_moves_the_clock_by_what_it_waited() {
        reset(START_MS);
        block_on(Delay::from(Duration::from_secs(60)));
        assert_eq!(now_ms(), START_MS + 60_000);
    }

    #[test]
    fn the_earlier_of_two_waits_wins_a_race() {
        reset(START_MS);
        let short = pin!(Delay::from(Duration::from_millis(10)));
        let long = pin!(Delay::from(Duration::from_secs(3600)));
        let won = block_on(select(long, short));
        assert!(matches!(won, Either::Right(_)));
        assert_eq!(now_ms(), START_MS + 10);
    }

    #[test]
    fn advancing_the_clock_fires_what_is_due() {
        reset(START_MS);
        advance(5_000);
        assert_eq!(now_ms(), START_MS + 5_000);
        block_on(Delay::from(Duration::ZERO));
        assert_eq!(now_ms(), START_MS + 5_000);
    }
}
