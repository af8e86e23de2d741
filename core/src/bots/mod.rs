//! The bot pool's pure parts: load counters ([`load`]) and bot/connection choice ([`select`]).

pub mod load;
pub mod select;
