//! The panels of the studio window, one per file. Each draws from the studio state and the
//! runtime, edits settings in place and pushes a [`super::command::Command`] for anything
//! that starts work or touches a file; none of them runs a job or waits on one.

pub mod compare;
pub mod inputs;
pub mod method;
pub mod top_bar;
