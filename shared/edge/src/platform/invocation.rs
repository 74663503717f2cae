//! Work an invocation leaves for its end: what code it ran asks for it ([`at_end`]), and the
//! function's entry (`http::serve`, `queue::consume`) runs it ([`end`]) before the invocation's
//! usage line. Only code that asks for it is linked in: the gateway, which calls no CRM, carries a
//! check of an empty cell.

use crate::Env;
use futures_util::future::LocalBoxFuture;
use std::cell::Cell;

/// Work for the end of an invocation.
pub type AtEnd = fn(&Env) -> LocalBoxFuture<'_, ()>;

thread_local! {
    static AT_END: Cell<Option<AtEnd>> = const { Cell::new(None) };
}

/// Asks for `work` to run when this invocation (or another of the isolate that ends first) ends;
/// asked again, it runs once.
pub fn at_end(work: AtEnd) {
    AT_END.with(|at_end| at_end.set(Some(work)));
}

/// Runs what was asked for, if anything.
pub async fn end(env: &Env) {
    if let Some(work) = AT_END.with(Cell::take) {
        work(env).await;
    }
}
