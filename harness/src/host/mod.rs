//! The machine xdplab runs on: whether it can run labs at all ([`privileges`], [`doctor`]),
//! the kernel features a scenario declares ([`requires`]) and what killed runs left behind
//! ([`clean`]).

pub mod clean;
pub mod doctor;
pub mod privileges;
pub mod requires;
