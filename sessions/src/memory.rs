//! In-process backend: a map behind a mutex. For tests and single-process demos only: every
//! session is lost when the process exits, and separate processes never see each other's
//! sessions. Lookups by user or external key scan the map (fine at demo and test sizes).

use crate::model::StoredSession;
use crate::store::{SessionStore, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Sessions in this process's memory, keyed by id hash.
#[derive(Default)]
pub struct MemoryStore {
    by_hash: Mutex<HashMap<String, StoredSession>>,
    /// Ended markers: when each ended, and until when it is kept.
    ended: Mutex<HashMap<String, (i64, i64)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, StoredSession>> {
        // A panic while holding the lock cannot leave a half-written entry (every mutation is
        // a single map operation), so a poisoned lock is still consistent.
        self.by_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remove_where(&self, pred: impl Fn(&StoredSession) -> bool) -> Vec<StoredSession> {
        let mut map = self.map();
        let keys: Vec<String> = map
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| map.remove(k)).collect()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, session: &StoredSession) -> Result<(), StoreError> {
        let mut map = self.map();
        if map.contains_key(&session.id_hash) || map.values().any(|s| s.handle == session.handle) {
            return Err(StoreError::Sql(sqlx::Error::Protocol(
                "duplicate session".into(),
            )));
        }
        map.insert(session.id_hash.clone(), session.clone());
        Ok(())
    }

    async fn get(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.map().get(id_hash).filter(|s| s.is_live(now)).cloned())
    }

    async fn update(
        &self,
        old_hash: &str,
        session: &StoredSession,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut map = self.map();
        if !map
            .get(old_hash)
            .is_some_and(|s| s.is_live(now) && s.version == session.version - 1)
        {
            return Ok(false);
        }
        map.remove(old_hash);
        map.insert(session.id_hash.clone(), session.clone());
        Ok(true)
    }

    async fn touch(&self, id_hash: &str, now: i64, idle_expires_at: i64) -> Result<(), StoreError> {
        if let Some(s) = self.map().get_mut(id_hash).filter(|s| s.is_live(now)) {
            s.last_seen_at = now;
            s.idle_expires_at = idle_expires_at;
        }
        Ok(())
    }

    async fn remove(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.map().remove(id_hash))
    }

    async fn remove_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.remove_where(|s| s.handle == handle).pop())
    }

    async fn get_by_handle(&self, handle: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.map().values().find(|s| s.handle == handle).cloned())
    }

    async fn list_expired(&self, now: i64, limit: usize) -> Result<Vec<StoredSession>, StoreError> {
        Ok(self
            .map()
            .values()
            .filter(|s| !s.is_live(now))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_ended(
        &self,
        marker: &str,
        ended_at: i64,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let mut ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ended.retain(|_, (_, until)| *until > ended_at);
        ended.insert(marker.to_owned(), (ended_at, keep_until));
        Ok(())
    }

    async fn ended_at(&self, marker: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(ended
            .get(marker)
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| *at))
    }

    async fn remove_by_user(&self, user_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        Ok(self.remove_where(|s| s.user_id.as_deref() == Some(user_id)))
    }

    async fn remove_by_external_key(&self, key: &str) -> Result<Vec<StoredSession>, StoreError> {
        Ok(self.remove_where(|s| s.external_key.as_deref() == Some(key)))
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<StoredSession>, StoreError> {
        let mut list: Vec<StoredSession> = self
            .map()
            .values()
            .filter(|s| s.user_id.as_deref() == Some(user_id) && s.is_live(now))
            .cloned()
            .collect();
        list.sort_by_key(|s| s.created_at);
        Ok(list)
    }

    async fn remove_expired(&self, now: i64) -> Result<Vec<StoredSession>, StoreError> {
        Ok(self.remove_where(|s| !s.is_live(now)))
    }
}
