//! CatDog Gallery's library: everything the three functions and the `catdog`
//! command share. Binaries only read configuration, call into here and serve.

pub mod domain;
pub mod objects;
pub mod store;
