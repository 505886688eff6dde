//! Test support shared by the workspace's suites (feature `testing`): a throwaway PostgreSQL
//! database per test, and the skip-or-fail rule for suites that need an outside service.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

/// With `GATEHOUSE_REQUIRE_SERVICES=1` (set by `.ci/run`) a missing service fails the test
/// instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("GATEHOUSE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports a skipped suite, or panics when services are required.
pub fn skip(what: &str, var: &str) {
    assert!(
        !services_required(),
        "{what} needs {var}, and GATEHOUSE_REQUIRE_SERVICES=1"
    );
    eprintln!("SKIPPED {what}: set {var} to run it");
}

/// A fresh database on the server named by `GATEHOUSE_TEST_POSTGRES_URL`, dropped (with its
/// connections) when this value is dropped, even if the test panicked.
pub struct TestPostgres {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestPostgres {
    /// `None` (after reporting the skip) when the variable is not set.
    pub async fn create(what: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL") else {
            skip(what, "GATEHOUSE_TEST_POSTGRES_URL");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!(
            "gh_test_{}",
            crate::secret::random_handle().ok()?.to_lowercase()
        )
        .replace('-', "_");
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await;
        let admin = match admin {
            Ok(a) => a,
            Err(e) => panic!("GATEHOUSE_TEST_POSTGRES_URL is set but unreachable: {e}"),
        };
        let create = format!("CREATE DATABASE {name}");
        if let Err(e) = admin.execute(sqlx::AssertSqlSafe(create)).await {
            panic!("cannot create test database {name}: {e}");
        }
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).ok()?;
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            admin_url,
            name,
        })
    }
}

impl TestPostgres {
    /// The same database reached through another URL (a proxy in front of it); it is still
    /// dropped at the end.
    pub fn adopt(mut db: TestPostgres, url: String) -> TestPostgres {
        db.url = url;
        db
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside any async context we could await in: use a short-lived runtime on
        // its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url)
                    .await
                {
                    let _ = admin.execute(sqlx::AssertSqlSafe(drop_sql)).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}
