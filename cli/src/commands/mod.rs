pub mod classify;
pub mod eval;
pub mod migrate;
pub mod serve;
