//! A `mockall` mock of [`Worker`] (feature `mock`), for tests that must
//! pin exactly how code calls a worker (how often it kills, whether it
//! waits, in which order).

use worker_core::{Error, Worker};

mockall::mock! {
    /// A mock [`Worker`] made by `mockall`: set expectations on `kill` and
    /// `wait` with `expect_kill()` / `expect_wait()`, and use a
    /// `mockall::Sequence` to pin their order.
    ///
    /// It offers no completion callback or dead signal, so supervisors
    /// watch it the way they watch any foreign worker: with one thread that
    /// calls `wait`. Expect that call.
    ///
    /// ```
    /// use worker_core::stop;
    /// use worker_testing::mockall::Sequence;
    /// use worker_testing::MockWorker;
    ///
    /// let mut w = MockWorker::new();
    /// let mut order = Sequence::new();
    /// w.expect_kill().times(1).in_sequence(&mut order).return_const(());
    /// w.expect_wait().times(1).in_sequence(&mut order).returning(|| Ok(()));
    /// assert!(stop(&w).is_ok()); // stop kills once, then waits
    /// ```
    pub Worker {}

    impl Worker for Worker {
        fn kill(&self);
        fn wait(&self) -> Result<(), Error>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckError, check_killed, try_check_alive};

    #[test]
    fn the_checks_wait_for_a_mock_with_wait_and_refuse_to_watch_it() {
        let mut w = MockWorker::new();
        w.expect_wait()
            .times(1)
            .returning(|| Err(Error::msg("mocked")));
        assert_eq!(check_killed(&w).unwrap_err().to_string(), "mocked");
        let alive = try_check_alive(&w, std::time::Duration::from_millis(1));
        assert!(matches!(alive, Err(CheckError::Unobservable)));
    }
}
