//! Canonical model and mapping engine of Syncline (pure, no I/O).
