//! cairn's ingest benchmark harness: a deterministic log generator (`gen`), a
//! concurrent `_bulk` load driver with memory sampling and ack-to-searchable
//! measurement (`load`), and on-disk accounting (`disk`). See `bench/run-ingest.sh`.

pub mod disk;
pub mod gen;
pub mod load;
pub mod summary;
pub mod util;
