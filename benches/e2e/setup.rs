//! What every figure needs: a fresh PostgreSQL database (created and dropped by the bench),
//! the engine on it with the generated people seeded, the axum router on a loopback port with
//! a JWT the test keys sign, and the broker URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use delius_bridge::engine::Engine;
use delius_bridge::http::auth::{Auth, ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW};
use delius_bridge::http::{router, AppState};
use delius_bridge::workload::{SyncRequest, Workload};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sqlx::PgPool;

const PRIVATE_KEY: &[u8] = include_bytes!("../../tests/it/keys/test-only-private.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("../../tests/it/keys/test-only-public.pem");

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A database created for this run and dropped by [`Database::drop_now`].
pub struct Database {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgPool,
}

impl Database {
    /// Creates `bench_<suffix>_<uuid>` and opens a pool of `max_connections` on it.
    pub async fn create(suffix: &str, max_connections: u32) -> anyhow::Result<Self> {
        let admin = delius_bridge::engine::connect(&database_url(), 2)
            .await
            .with_context(|| format!("PostgreSQL at {} is not reachable", database_url()))?;
        let name = format!("bench_{suffix}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        let url = crate::text::with_database(&database_url(), &name);
        let pool = delius_bridge::engine::connect(&url, max_connections).await?;
        Ok(Self {
            name,
            url,
            pool,
            admin,
        })
    }

    pub async fn drop_now(self) {
        self.pool.close().await;
        let dropped = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await;
        if let Err(error) = dropped {
            eprintln!("could not drop database {}: {error}", self.name);
        }
    }
}

/// The engine on a fresh database, the workload's people seeded and projected.
pub struct Service {
    pub db: Database,
    pub engine: Arc<Engine>,
    pub base_url: String,
    pub client: reqwest::Client,
    token: String,
    server: tokio::task::JoinHandle<()>,
}

impl Service {
    pub async fn start(workload: &Workload, suffix: &str) -> anyhow::Result<Self> {
        // The pool size `serve` uses by default.
        let db = Database::create(suffix, 16).await?;
        delius_bridge::engine::MIGRATOR.run(&db.pool).await?;
        let engine = Arc::new(Engine::postgres(db.pool.clone()));
        let started = Instant::now();
        let file = workload.seed_file()?;
        delius_bridge::seed::load(&engine, &file, "seed:bench").await?;
        settle(&engine).await?;
        eprintln!(
            "seeded {} people in {:.1?}",
            file.cases.len(),
            started.elapsed()
        );
        let state = AppState {
            engine: engine.clone(),
            broker: None,
            auth: Arc::new(Auth::from_pem(PUBLIC_KEY)?),
            dead_letters: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let app = router(state);
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("http server stopped: {error}");
            }
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            db,
            engine,
            base_url,
            client,
            token: token()?,
            server,
        })
    }

    /// `PUT` the request with the bearer token; the status.
    pub async fn put(&self, request: &SyncRequest) -> anyhow::Result<reqwest::StatusCode> {
        let response = self
            .client
            .put(format!("{}{}", self.base_url, request.path))
            .bearer_auth(&self.token)
            .json(&request.body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("PUT {} answered {status}: {body}", request.path);
        }
        Ok(status)
    }

    pub async fn stop(self) {
        self.into_database().await.drop_now().await;
    }

    /// Stops the HTTP server and the engine (its projector), keeping the database.
    pub async fn into_database(self) -> Database {
        self.server.abort();
        if let Some(engine) = Arc::into_inner(self.engine) {
            engine.shutdown().await;
        }
        self.db
    }
}

/// Waits until the projector has passed everything written so far.
pub async fn settle(engine: &Engine) -> anyhow::Result<()> {
    let head = engine.head().await?;
    engine
        .wait_for_checkpoint(head, Duration::from_secs(300))
        .await?;
    Ok(())
}

/// A bearer token with the Refer and Monitor role, signed with the test key.
fn token() -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "user_name": "bench-user",
        "client_id": "bench-client",
        "sub": "bench-user",
        "authorities": [ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW],
        "aud": "oauth2-resource",
        "exp": now + 24 * 3600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-only-key-1".into());
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(PRIVATE_KEY)?,
    )?)
}
