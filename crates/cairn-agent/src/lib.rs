//! cairn agent (work in progress).
