//! The sandbox's servers driven by real clients: omnihub's own connectors where one exists, and
//! raw sockets for the corners of each wire protocol that a well-behaved client never reaches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod email;
mod graph;
mod imap;
mod max;
mod ok_group;
mod smtp;
mod support;
mod telegram;
mod telephony;
mod viber;
mod vk;
mod vk_wall;
mod webhook_receiver;
mod whatsapp;
mod x_social;
mod youtube;
