//! The recommendation engine (in progress).
