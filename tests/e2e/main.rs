//! End-to-end suites: the provider and two sample apps started in-process on port 0 (each on
//! its own `*.localhost` host), driven over real HTTP by a cookie-jar client that follows
//! redirects by hand and records every hop.

// A test binary has no public API: `pub` here only shares items between its modules.
#![allow(unreachable_pub)]
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The whole provider runs inside each test's future, whose layout the compiler computes to a
// depth beyond its default of 128.
#![recursion_limit = "256"]

mod flows;
mod harness;
