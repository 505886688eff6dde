//! Test support for suites that keep sessions in Redis (feature `testing`): a key prefix of
//! its own per test, deleted afterwards. The PostgreSQL counterpart and the skip rule are
//! `infra::testing`.

use infra::testing::skip;

/// A key prefix of its own on the Redis named by `GATEHOUSE_TEST_REDIS_URL`; its keys are
/// deleted when this value is dropped.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// `None` (after reporting the skip) when the variable is not set.
    pub fn create(what: &str) -> Option<Self> {
        let Ok(url) = std::env::var("GATEHOUSE_TEST_REDIS_URL") else {
            skip(what, "GATEHOUSE_TEST_REDIS_URL");
            return None;
        };
        let tag = infra::secret::random_handle().ok()?;
        Some(Self {
            url,
            prefix: format!("gh-test:{tag}:"),
        })
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
