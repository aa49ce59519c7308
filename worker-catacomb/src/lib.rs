//! Placeholder: the `worker-catacomb` crate is being built (see the project's
//! issues). It compiles so the workspace does, and exports nothing yet.

#![forbid(unsafe_code)]
