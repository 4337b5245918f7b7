//! Switchyard simulator
