//! Connectors to the outside providers omnihub talks to. Each provider is one module holding its
//! wire types, its client and the mapping to the domain types of `omnihub-core`. Connectors know
//! nothing of the HTTP layer, the store or the actor tree: they are called with plain values and
//! hand back plain values, so the sandbox and the tests can drive them directly.

pub mod email;
