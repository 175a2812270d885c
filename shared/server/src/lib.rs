//! The serving runtime every binary shares: the server loop with graceful
//! shutdown, the middleware stack, problem+json errors, health checks,
//! logging, and start-up (settings, stores, serve until SIGTERM; the AWS
//! Lambda runtime with the `lambda` feature).

pub mod http;
pub mod startup;
pub mod telemetry;
