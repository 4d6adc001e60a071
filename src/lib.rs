//! omnihub
