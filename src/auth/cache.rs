//! A short-lived cache of resolved callers keyed by the hash of their cookie or token, so an
//! authenticated request costs no store round trip. Anything that changes a user's rights or
//! sessions invalidates their entries at once on this node; other nodes see the change within
//! the time-to-live.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use omnihub_core::{ClientId, Principal, UserId};

/// How a caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; unsafe methods must echo its CSRF token.
    Session {
        token_hash: Vec<u8>,
        csrf_token: String,
    },
    /// An API token; no CSRF (it is never sent automatically by a browser).
    ApiToken,
}

#[derive(Clone, Debug)]
pub struct CachedCaller {
    pub principal: Arc<Principal>,
    pub credential: Credential,
    loaded_at: Instant,
}

pub struct AuthCache {
    ttl: Duration,
    max_entries: usize,
    entries: RwLock<HashMap<Vec<u8>, CachedCaller>>,
}

impl AuthCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<CachedCaller> {
        let entries = self.entries.read().ok()?;
        entries
            .get(key)
            .filter(|c| c.loaded_at.elapsed() < self.ttl)
            .cloned()
    }

    pub fn put(&self, key: Vec<u8>, principal: Arc<Principal>, credential: Credential) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, c| c.loaded_at.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(
            key,
            CachedCaller {
                principal,
                credential,
                loaded_at: Instant::now(),
            },
        );
    }

    pub fn remove(&self, key: &[u8]) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }

    pub fn invalidate_user(&self, user: UserId) {
        self.retain(|c| c.principal.user_id != user);
    }

    pub fn invalidate_client(&self, client: ClientId) {
        self.retain(|c| c.principal.client_id != Some(client));
    }

    fn retain(&self, keep: impl Fn(&CachedCaller) -> bool) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, c| keep(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnihub_core::{GlobalRights, Role};

    fn principal(client: ClientId) -> Arc<Principal> {
        Arc::new(Principal {
            user_id: UserId::new(),
            role: Role::Employee,
            client_id: Some(client),
            client_active: true,
            global: GlobalRights::empty(),
            channels: Default::default(),
            groups: Vec::new(),
        })
    }

    #[test]
    fn entries_expire_and_invalidate() {
        let cache = AuthCache::new(Duration::from_secs(60), 10);
        let c = ClientId::new();
        let p = principal(c);
        cache.put(b"a".to_vec(), p.clone(), Credential::ApiToken);
        cache.put(
            b"b".to_vec(),
            principal(ClientId::new()),
            Credential::ApiToken,
        );
        assert!(cache.get(b"a").is_some());
        cache.invalidate_user(p.user_id);
        assert!(cache.get(b"a").is_none());
        assert!(cache.get(b"b").is_some());
        cache.put(b"a".to_vec(), p, Credential::ApiToken);
        cache.invalidate_client(c);
        assert!(cache.get(b"a").is_none());

        let short = AuthCache::new(Duration::ZERO, 10);
        short.put(b"x".to_vec(), principal(c), Credential::ApiToken);
        assert!(short.get(b"x").is_none());
    }
}
