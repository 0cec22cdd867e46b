//! cutover's decision core: the record a platform team writes, the status
//! cutover writes back, what it observed of the service, and the pure
//! `reads` + `decide` that turn those into commands. It does no IO and reads
//! no clock; the controller, the AWS adapters and the simulated cloud depend
//! on it.

pub mod fleet;
pub mod rollout;
pub mod time;
