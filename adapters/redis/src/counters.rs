//! Throttle counters: one hash per counter, its window's end in it, forgotten by TTL.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use redis::AsyncCommands;
use resident_auth::{
    ports::{Count, CounterKey, CounterStore, StoreError},
    Timestamp,
};

use crate::{
    codec::{failure, glob_escape, keep_until},
    scripts::INCREMENT,
    RedisStore,
};

#[async_trait]
impl CounterStore for RedisStore {
    #[tracing::instrument(name = "redis.increment", skip_all, err(level = "debug", Display))]
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let until = keep_until(Timestamp::from_millis(
            now.as_millis().saturating_add(window),
        ));
        let (count, ends): (i64, i64) = INCREMENT
            .key(self.counter_key(key))
            .arg(now.as_millis())
            .arg(window)
            .arg(until)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failure)?;
        Ok(Count {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_ends: Timestamp::from_millis(ends),
        })
    }

    #[tracing::instrument(name = "redis.reset", skip_all, err(level = "debug", Display))]
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        let _: i64 = self
            .connection()
            .del(self.counter_key(key))
            .await
            .map_err(failure)?;
        Ok(())
    }

    #[tracing::instrument(name = "redis.purge_counters", skip_all, err(level = "debug", Display))]
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let keys = self
            .scan(&format!("{}:counter:*", glob_escape(&self.prefix)))
            .await?;
        self.purge(keys, "e", now).await
    }

    #[tracing::instrument(name = "redis.counters_about", skip_all, err(level = "debug", Display))]
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let mut found = Vec::new();
        for subject in subjects {
            let (pattern, family_at) = self.counters_of(subject);
            for stored in self.scan(&pattern).await? {
                let Some(family) = stored.get(family_at..) else {
                    continue;
                };
                let Some(key) =
                    CounterKey::from_stored(format!("{family}:{subject}"), subject.clone())
                else {
                    continue;
                };
                let fields: HashMap<String, i64> =
                    self.connection().hgetall(&stored).await.map_err(failure)?;
                if let (Some(count), Some(ends)) = (fields.get("c"), fields.get("e")) {
                    found.push((
                        key,
                        Count {
                            count: u32::try_from(*count).unwrap_or(u32::MAX),
                            window_ends: Timestamp::from_millis(*ends),
                        },
                    ));
                }
            }
        }
        Ok(found)
    }
}
