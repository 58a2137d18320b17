//! Tests of the real `capstan` binary: the server as a process (graceful shutdown, a
//! crash mid-write), and the CLI against it.

mod process;

mod config_file;
mod crash;
mod placement;
mod quick_start;
mod rollouts;
mod sdk;
mod shutdown;
