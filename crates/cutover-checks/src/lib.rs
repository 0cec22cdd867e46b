//! What cutover asks and says over HTTP: the gates' checks (HTTP endpoints,
//! Prometheus queries, the shared CloudWatch alarm reader), the hooks'
//! webhook calls, and notifications. It implements the controller's
//! `Checks` and `Notify` ports; the daemon wires it in, and the demo and the
//! simulated cloud do without it.

pub mod checks;
pub mod notify;

// The decision core and the controller's ports under the paths this code
// has always used.
use cutover_controller::{cloud, notice};
use cutover_core::{rollout, time};
