//! Release decisions, as plain synchronous tests over a tiny fleet.

mod budget;
mod fixture;
mod properties;
mod records;
mod restarts;
mod waves;
