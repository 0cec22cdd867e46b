//! Tests of the simulated cloud through the ports.
