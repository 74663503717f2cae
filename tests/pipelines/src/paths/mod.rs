//! The whole paths, each a test.
