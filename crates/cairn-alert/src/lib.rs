//! Cairn alert engine (work in progress).
