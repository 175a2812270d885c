pub mod classify;
pub mod dead_letters;
pub mod eval;
pub mod import;
pub mod migrate;
pub mod relabel;
pub mod serve;
pub mod sweep_orphans;
