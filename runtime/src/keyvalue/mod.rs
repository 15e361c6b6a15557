//! `wasi:keyvalue` (0.2.0-draft: `store`, `atomics`, `batch`) over an app's durable buckets,
//! and `wasi:config/store` over its variables and secrets. A guest opens only the buckets its
//! grant names; every other identifier is `access-denied`.

mod store;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

pub use store::{AppStore, BucketUsage, KvError, KvStats, MAX_KEY_BYTES};

use qyvol_common::KvQuotas;

/// The buckets of one app a run may open, with their quotas.
#[derive(Debug, Clone)]
pub struct KeyValue {
    pub store: Arc<AppStore>,
    pub buckets: Vec<String>,
    pub quotas: KvQuotas,
    /// Who the store belongs to, for the log.
    pub app: String,
    /// Told of each write a quota refused.
    pub refusals: QuotaSink,
}

type Report = dyn Fn(&str, &str) + Send + Sync;

/// Told of each write a quota or size limit refused, with the app's name and why: the operator
/// learns it (`run` prints it, the node writes it to the app's log), not only the guest.
#[derive(Clone, Default)]
pub struct QuotaSink(Option<Arc<Report>>);

impl QuotaSink {
    pub fn new(f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }
}

impl std::fmt::Debug for QuotaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuotaSink")
    }
}

/// A run's `wasi:config` variables and secrets, made once and shared by every instance.
#[derive(Clone, Default)]
pub struct ConfigVars {
    all: Arc<wasmtime_wasi_config::WasiConfigVariables>,
    /// The variables (names and values, which may be shown to the operator).
    pub variables: Arc<[(String, String)]>,
    /// The secrets' names (their values are only in `all`).
    pub secret_names: Arc<[String]>,
}

impl std::fmt::Debug for ConfigVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigVars")
            .field("variables", &self.variables)
            .field("secret_names", &self.secret_names)
            .finish_non_exhaustive()
    }
}

impl ConfigVars {
    /// What the guest reads: `variables`, then `secrets` (names apart from the variables').
    pub fn new(
        variables: Vec<(String, String)>,
        secrets: &[(String, qyvol_common::Secret)],
    ) -> Self {
        let all = variables
            .iter()
            .cloned()
            .chain(
                secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string())),
            )
            .collect();
        Self {
            all: Arc::new(all),
            variables: variables.into(),
            secret_names: secrets.iter().map(|(k, _)| k.clone()).collect(),
        }
    }

    pub(crate) fn vars(&self) -> &wasmtime_wasi_config::WasiConfigVariables {
        &self.all
    }
}

mod generated {
    wasmtime::component::bindgen!({
        path: "wit/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::OpenBucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}

use generated::wasi::keyvalue as wit;

/// A bucket the guest opened: its name (checked against the grant when opened).
pub struct OpenBucket(String);

/// What the host functions see of the store's data.
pub(crate) struct KvView<'a> {
    pub(crate) kv: Option<&'a KeyValue>,
    pub(crate) table: &'a mut ResourceTable,
}

/// Store data that carries an app's buckets and configuration.
pub(crate) trait StateHost: Send + 'static {
    fn kv_view(&mut self) -> KvView<'_>;
    fn config(&mut self) -> &wasmtime_wasi_config::WasiConfigVariables;
}

struct HasKv;
impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Links `wasi:keyvalue` and `wasi:config` for every component; unused, they cost nothing.
pub(crate) fn link<T: StateHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::store::add_to_linker::<T, HasKv>(linker, T::kv_view)?;
    wit::atomics::add_to_linker::<T, HasKv>(linker, T::kv_view)?;
    wit::batch::add_to_linker::<T, HasKv>(linker, T::kv_view)?;
    wasmtime_wasi_config::add_to_linker(linker, |h: &mut T| {
        wasmtime_wasi_config::WasiConfig::new(h.config())
    })
}

impl KvView<'_> {
    /// The grant and the name of an open bucket.
    fn bucket(&self, b: &Resource<OpenBucket>) -> Result<(KeyValue, String), KvError> {
        let name = self
            .table
            .get(b)
            .map_err(|e| KvError::Other(e.to_string()))?
            .0
            .clone();
        let kv = self
            .kv
            .cloned()
            .ok_or_else(|| KvError::NotGranted(name.clone()))?;
        Ok((kv, name))
    }
}

/// Runs a blocking store operation off the async workers (a write waits for the disk).
async fn blocking<R: Send + 'static>(
    kv: KeyValue,
    f: impl FnOnce(&KeyValue) -> Result<R, KvError> + Send + 'static,
) -> Result<R, KvError> {
    let (app, sink) = (kv.app.clone(), kv.refusals.clone());
    let result = tokio::task::spawn_blocking(move || f(&kv))
        .await
        .map_err(|e| KvError::Other(format!("the key-value operation failed: {e}")))?;
    if let Err(KvError::Quota(why)) = &result {
        tracing::warn!(app = %app, "key-value write refused: {why}");
        if let Some(report) = &sink.0 {
            report(&app, why);
        }
    }
    result
}

impl wit::store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<OpenBucket>, KvError> {
        let granted = self.kv.is_some_and(|kv| kv.buckets.contains(&identifier));
        if !granted {
            let app = self.kv.map_or("", |kv| kv.app.as_str());
            tracing::warn!(
                app,
                "the guest opened bucket {:?}, which is not granted",
                qyvol_common::escape_controls(&identifier)
            );
            return Err(KvError::NotGranted(identifier));
        }
        self.table
            .push(OpenBucket(identifier))
            .map_err(|e| KvError::Other(e.to_string()))
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<wit::store::Error> {
        Ok(match err {
            KvError::NotGranted(_) => wit::store::Error::AccessDenied,
            other => wit::store::Error::Other(other.to_string()),
        })
    }
}

impl wit::store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        b: Resource<OpenBucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| kv.store.get(&name, &key)).await
    }

    async fn set(
        &mut self,
        b: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| {
            kv.store.set_many(&name, &[(key, value)], &kv.quotas)
        })
        .await
    }

    async fn delete(&mut self, b: Resource<OpenBucket>, key: String) -> Result<(), KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| kv.store.delete_many(&name, &[key])).await
    }

    async fn exists(&mut self, b: Resource<OpenBucket>, key: String) -> Result<bool, KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| Ok(kv.store.get(&name, &key)?.is_some())).await
    }

    async fn list_keys(
        &mut self,
        b: Resource<OpenBucket>,
        cursor: Option<u64>,
    ) -> Result<wit::store::KeyResponse, KvError> {
        let (kv, name) = self.bucket(&b)?;
        let skip = cursor.unwrap_or(0);
        let (keys, more) = blocking(kv, move |kv| kv.store.keys(&name, skip, store::PAGE)).await?;
        let cursor = more.then(|| skip + keys.len() as u64);
        Ok(wit::store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, b: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl wit::atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        b: Resource<OpenBucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| {
            kv.store.increment(&name, &key, delta, &kv.quotas)
        })
        .await
    }
}

impl wit::batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        b: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| {
            keys.into_iter()
                .map(|k| Ok(kv.store.get(&name, &k)?.map(|v| (k, v))))
                .collect()
        })
        .await
    }

    async fn set_many(
        &mut self,
        b: Resource<OpenBucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| kv.store.set_many(&name, &pairs, &kv.quotas)).await
    }

    async fn delete_many(
        &mut self,
        b: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        let (kv, name) = self.bucket(&b)?;
        blocking(kv, move |kv| kv.store.delete_many(&name, &keys)).await
    }
}
