//! BigQuery, through gcp-bigquery-client: datasets, query jobs with ids Baton chooses, their
//! status and statistics. Only translation here; what to run and when is the executor's.

use gcp_bigquery_client::Client;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::dataset_reference::DatasetReference;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_extract::JobConfigurationExtract;
use gcp_bigquery_client::model::job_configuration_load::JobConfigurationLoad;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::job_reference::JobReference;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_reference::TableReference;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;

use crate::config::Gcp;
use crate::gcp::Tokens;
use baton_core::catalog::{FileFormat, Partitioning, TableId};
use baton_core::errors::error_chain;
use baton_core::loads::CsvOptions;
use baton_core::ports::WarehousePort;
use baton_core::run::JobStatistics;
use baton_core::warehouse::{
    DryRun, ExtractJob, Field, JobProgress, QueryJob, TableShape, WarehouseError, is_transient,
};
use baton_core::writes::Column;

/// What a BigQuery client error means to Baton.
fn refused(e: BQError) -> WarehouseError {
    match e {
        BQError::ResponseError { error } => {
            let reasons: Vec<&str> = error
                .error
                .errors
                .iter()
                .filter_map(|m| m.get("reason").map(String::as_str))
                .collect();
            let message = format!("{} ({})", error.error.message, reasons.join(", "));
            match error.error.code {
                404 => WarehouseError::NotFound(message),
                409 => WarehouseError::AlreadyExists(message),
                // local-bigquery answers the loser of two simultaneous inserts of one job
                // id with its database's key violation, where BigQuery answers 409.
                _ if error
                    .error
                    .message
                    .contains("violates primary key constraint") =>
                {
                    WarehouseError::AlreadyExists(message)
                }
                429 | 500..=599 => WarehouseError::Unavailable(message),
                _ if reasons.iter().any(|r| is_transient(r, ""))
                    || is_transient("", &error.error.message) =>
                {
                    WarehouseError::Unavailable(message)
                }
                _ => WarehouseError::Permanent(message),
            }
        }
        // A transport failure, or an error body that was not JSON (a proxy's 502, say):
        // the client loses the status, so call it transient.
        BQError::RequestError(e) => WarehouseError::Unavailable(error_chain(&e)),
        other => WarehouseError::Permanent(other.to_string()),
    }
}

fn time_partitioning(p: &Partitioning) -> TimePartitioning {
    TimePartitioning {
        expiration_ms: p.expiration_seconds.map(|s| (s * 1000).to_string()),
        field: p.field.clone(),
        require_partition_filter: None,
        r#type: p.granularity.bigquery().into(),
    }
}

fn clustering(columns: &[String]) -> Option<Clustering> {
    (!columns.is_empty()).then(|| Clustering {
        fields: Some(columns.to_vec()),
    })
}

fn timestamp_parameter(name: &str, value: Option<jiff::Timestamp>) -> QueryParameter {
    QueryParameter {
        name: Some(name.to_string()),
        parameter_type: Some(QueryParameterType {
            r#type: "TIMESTAMP".into(),
            ..Default::default()
        }),
        parameter_value: Some(QueryParameterValue {
            value: value.map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.6f+00").to_string()),
            ..Default::default()
        }),
    }
}

/// A load job: an import's staged chunks, or a load table's batch of files.
#[derive(Debug)]
pub struct LoadJob<'a> {
    pub job_id: &'a str,
    pub table: &'a TableId,
    pub uris: &'a [String],
    pub format: &'a FileFormat,
    /// CSV's options, for format CSV.
    pub csv: Option<&'a CsvOptions>,
    /// The columns; none: BigQuery detects them (or reads them from Parquet and Avro).
    pub schema: &'a [Field],
    /// Rows BigQuery may skip before it fails the load.
    pub max_bad_records: u32,
    pub append: bool,
    /// Whether an append may add the columns `schema` (or the files) have and the table
    /// lacks (BigQuery's `ALLOW_FIELD_ADDITION`).
    pub add_columns: bool,
    pub partitioning: Option<&'a Partitioning>,
    pub clustering: &'a [String],
    pub labels: std::collections::HashMap<String, String>,
    pub timeout: Option<std::time::Duration>,
}

/// What a load skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadRejects {
    pub bad_records: i64,
    pub errors: Vec<Rejected>,
}

/// One of BigQuery's errors of a load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The file (`gs://…`) when BigQuery says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub message: String,
}

/// BigQuery as the core's `WarehousePort`, with a few reads of its own for tools and tests
/// (`table`, `job_ids`, `query_rows`).
#[derive(Clone)]
pub struct Warehouse {
    client: Client,
    project: String,
    location: String,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("project", &self.project)
            .field("location", &self.location)
            .finish()
    }
}

impl Warehouse {
    pub async fn new(gcp: &Gcp) -> Result<Self, WarehouseError> {
        let tokens = Tokens::for_endpoint(gcp.bigquery_emulated)
            .map_err(|e| WarehouseError::Permanent(e.to_string()))?;
        // Idle connections are dropped before a server closes them (uvicorn, under
        // local-bigquery, after 5 s), so that a request never goes out on a dead one.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| WarehouseError::Permanent(e.to_string()))?;
        let client = ClientBuilder::new()
            .with_client(http)
            .with_v2_base_url(gcp.bigquery_url.clone())
            .build_from_authenticator(std::sync::Arc::new(tokens))
            .await
            .map_err(refused)?;
        Ok(Self {
            client,
            project: gcp.bigquery_project.clone(),
            location: gcp.bigquery_location.clone(),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// Inserts a job under the id Baton chose; if one with that id exists already (a
    /// redelivery, a restart), returns that job's progress instead: the same work never runs
    /// twice.
    async fn insert_job(
        &self,
        job_id: &str,
        configuration: JobConfiguration,
    ) -> Result<JobProgress, WarehouseError> {
        let request = Job {
            job_reference: Some(JobReference {
                job_id: Some(job_id.to_string()),
                location: Some(self.location.clone()),
                project_id: Some(self.project.clone()),
            }),
            configuration: Some(configuration),
            ..Default::default()
        };
        match self.client.job().insert(&self.project, request).await {
            Ok(inserted) => Ok(progress(&inserted)),
            Err(e) => match refused(e) {
                // Another delivery inserted it first: attach. A job that exists but cannot be
                // read yet (the other insert not yet committed) is for the next delivery.
                WarehouseError::AlreadyExists(_) => match self.job_progress(job_id).await {
                    Err(WarehouseError::NotFound(m)) => Err(WarehouseError::Unavailable(format!(
                        "job {job_id} exists but cannot be read yet: {m}"
                    ))),
                    read => read,
                },
                other => Err(other),
            },
        }
    }

    fn query_configuration(
        &self,
        sql: &str,
        default_dataset: &str,
        timestamps: &[(String, Option<jiff::Timestamp>)],
    ) -> JobConfigurationQuery {
        JobConfigurationQuery {
            query: sql.to_string(),
            use_legacy_sql: Some(false),
            // Unqualified names are the table's own dataset's, as dependency inference reads
            // them.
            default_dataset: Some(DatasetReference {
                dataset_id: default_dataset.to_string(),
                project_id: self.project.clone(),
            }),
            parameter_mode: (!timestamps.is_empty()).then(|| "NAMED".into()),
            query_parameters: (!timestamps.is_empty()).then(|| {
                timestamps
                    .iter()
                    .map(|(name, value)| timestamp_parameter(name, *value))
                    .collect()
            }),
            ..Default::default()
        }
    }

    /// Inserts a load job of newline-delimited JSON files under its id with an explicit
    /// schema, or, like `start_query`, finds it there already. `append` adds the rows (and
    /// lets new nullable columns in); otherwise they replace the table, schema included.
    pub async fn start_load(&self, job: &LoadJob<'_>) -> Result<JobProgress, WarehouseError> {
        let csv = job.csv.filter(|_| *job.format == FileFormat::Csv);
        let load = JobConfigurationLoad {
            source_uris: Some(job.uris.to_vec()),
            source_format: Some(job.format.bigquery().into()),
            schema: (!job.schema.is_empty()).then(|| table_schema(job.schema)),
            autodetect: (job.schema.is_empty() && !job.format.self_describing()).then_some(true),
            skip_leading_rows: csv.map(|c| i32::try_from(c.skip_leading_rows).unwrap_or(i32::MAX)),
            field_delimiter: csv.map(|c| c.field_delimiter.clone()),
            quote: csv.map(|c| c.quote.clone()),
            allow_quoted_newlines: csv.map(|c| c.allow_quoted_newlines),
            allow_jagged_rows: csv.map(|c| c.allow_jagged_rows),
            null_marker: csv.and_then(|c| c.null_marker.clone()),
            encoding: csv.and_then(|c| c.encoding.clone()),
            use_avro_logical_types: (*job.format == FileFormat::Avro).then_some(true),
            destination_table: Some(TableReference {
                project_id: self.project.clone(),
                dataset_id: job.table.dataset().to_string(),
                table_id: job.table.table().to_string(),
            }),
            create_disposition: Some("CREATE_IF_NEEDED".into()),
            write_disposition: Some(
                if job.append {
                    "WRITE_APPEND"
                } else {
                    "WRITE_TRUNCATE"
                }
                .into(),
            ),
            schema_update_options: (job.append && job.add_columns)
                .then(|| vec!["ALLOW_FIELD_ADDITION".to_string()]),
            time_partitioning: job.partitioning.map(time_partitioning),
            clustering: clustering(job.clustering),
            max_bad_records: Some(i32::try_from(job.max_bad_records).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        let configuration = JobConfiguration {
            job_type: Some("LOAD".into()),
            labels: Some(job.labels.clone()),
            job_timeout_ms: job.timeout.map(|t| t.as_millis().to_string()),
            load: Some(load),
            ..Default::default()
        };
        self.insert_job(job.job_id, configuration).await
    }

    /// What a load job skipped: its bad records and BigQuery's error for each (its location,
    /// the file, and message, with the position), as far as BigQuery lists them.
    pub async fn load_rejects(&self, job_id: &str) -> Result<LoadRejects, WarehouseError> {
        let job = self
            .client
            .job()
            .get_job(&self.project, job_id, Some(&self.location))
            .await
            .map_err(refused)?;
        Ok(rejects(job))
    }

    /// A table as BigQuery describes it (schema, partitioning, clustering, expiration), or
    /// `None` when there is no such table: for tools and tests (the executor asks `schema`).
    pub async fn table(&self, table: &TableId) -> Result<Option<Table>, WarehouseError> {
        match self
            .client
            .table()
            .get(&self.project, table.dataset(), table.table(), None)
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(e) => match refused(e) {
                WarehouseError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The ids of every job in the project (all pages), newest first: for tools and tests that
    /// check what ran.
    pub async fn job_ids(&self) -> Result<Vec<String>, WarehouseError> {
        use futures::StreamExt;
        let mut ids = Vec::new();
        let mut pages = std::pin::pin!(self.client.job().get_job_list(&self.project, None));
        while let Some(page) = pages.next().await {
            for job in page.map_err(refused)?.jobs.unwrap_or_default() {
                if let Some(id) = job.job_reference.and_then(|r| r.job_id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Runs a query and returns its rows as JSON values, column by column (for tools and
    /// tests; jobs go through `start_query`).
    pub async fn query_rows(
        &self,
        sql: &str,
    ) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        let mut request = QueryRequest::new(sql);
        request.use_legacy_sql = false;
        request.location = Some(self.location.clone());
        let response = self
            .client
            .job()
            .query(&self.project, request)
            .await
            .map_err(refused)?;
        let columns = response
            .schema
            .as_ref()
            .and_then(|s| s.fields.as_ref())
            .map_or(0, Vec::len);
        let mut out = Vec::new();
        for row in response.rows.unwrap_or_default() {
            let cells = row.columns.unwrap_or_default();
            let mut values = Vec::with_capacity(columns);
            for cell in cells {
                values.push(cell.value.unwrap_or(serde_json::Value::Null));
            }
            out.push(values);
        }
        Ok(out)
    }
}

impl WarehousePort for Warehouse {
    /// Creates the dataset unless it exists.
    async fn ensure_dataset(&self, dataset: &str) -> Result<(), WarehouseError> {
        match self.client.dataset().get(&self.project, dataset).await {
            Ok(_) => return Ok(()),
            Err(e) => match refused(e) {
                WarehouseError::NotFound(_) => {}
                other => return Err(other),
            },
        }
        let mut ds = Dataset::new(&self.project, dataset);
        ds.location = Some(self.location.clone());
        let Err(e) = self.client.dataset().create(ds).await else {
            return Ok(());
        };
        // Two jobs of a new dataset race to create it: BigQuery answers the loser 409, the
        // emulator 409 or a commit conflict. If it exists now, it exists.
        let e = refused(e);
        if matches!(e, WarehouseError::AlreadyExists(_)) {
            return Ok(());
        }
        match self.client.dataset().get(&self.project, dataset).await {
            Ok(_) => Ok(()),
            Err(_) => Err(e),
        }
    }

    /// Inserts the query job under its id, or finds it there already (`insert_job`).
    async fn start_query(&self, job: &QueryJob<'_>) -> Result<JobProgress, WarehouseError> {
        let mut query = self.query_configuration(job.sql, job.default_dataset, &job.timestamps);
        query.maximum_bytes_billed = job.max_bytes_billed.map(|b| b.to_string());
        if let Some(to) = job.destination {
            query.destination_table = Some(TableReference {
                project_id: self.project.clone(),
                dataset_id: to.table.dataset().to_string(),
                table_id: to.table.table().to_string(),
            });
            query.create_disposition = Some("CREATE_IF_NEEDED".into());
            query.write_disposition = Some(
                if to.append {
                    "WRITE_APPEND"
                } else {
                    "WRITE_TRUNCATE"
                }
                .into(),
            );
            // Appending may add columns; truncating replaces the schema anyway.
            query.schema_update_options =
                to.append.then(|| vec!["ALLOW_FIELD_ADDITION".to_string()]);
            query.time_partitioning = to.partitioning.map(time_partitioning);
            query.clustering = clustering(to.clustering);
        }
        let configuration = JobConfiguration {
            job_type: Some("QUERY".into()),
            labels: Some(job.labels.clone()),
            job_timeout_ms: job.timeout.map(|t| t.as_millis().to_string()),
            query: Some(query),
            ..Default::default()
        };
        self.insert_job(job.job_id, configuration).await
    }

    /// Inserts the extract job under its id, or, like `start_query`, finds it there already.
    async fn start_extract(&self, job: &ExtractJob<'_>) -> Result<JobProgress, WarehouseError> {
        let extract = JobConfigurationExtract {
            source_table: Some(TableReference {
                project_id: self.project.clone(),
                dataset_id: job.table.dataset().to_string(),
                table_id: job.table.table().to_string(),
            }),
            destination_uris: Some(vec![job.uri.to_string()]),
            destination_format: Some(job.format.bigquery().to_string()),
            compression: job.compression.map(str::to_uppercase),
            print_header: (job.format == FileFormat::Csv).then_some(true),
            use_avro_logical_types: (job.format == FileFormat::Avro).then_some(true),
            ..Default::default()
        };
        let configuration = JobConfiguration {
            job_type: Some("EXTRACT".into()),
            labels: Some(job.labels.clone()),
            extract: Some(extract),
            ..Default::default()
        };
        self.insert_job(job.job_id, configuration).await
    }

    async fn job_progress(&self, job_id: &str) -> Result<JobProgress, WarehouseError> {
        let job = self
            .client
            .job()
            .get_job(&self.project, job_id, Some(&self.location))
            .await
            .map_err(refused)?;
        Ok(progress(&job))
    }

    /// `jobs.getQueryResults` with `timeoutMs` (and no rows): BigQuery holds the request until
    /// the query job completes or the time is up, then the job is read for its end.
    async fn wait_for_query(
        &self,
        job_id: &str,
        max: std::time::Duration,
    ) -> Result<JobProgress, WarehouseError> {
        let parameters = GetQueryResultsParameters {
            format_options: None,
            location: Some(self.location.clone()),
            max_results: Some(0),
            page_token: None,
            start_index: None,
            timeout_ms: Some(i32::try_from(max.as_millis()).unwrap_or(i32::MAX)),
        };
        let answer = match self
            .client
            .job()
            .get_query_results(&self.project, job_id, parameters)
            .await
        {
            Ok(answer) => answer,
            // A query that failed is answered with its own error (a table it reads that does
            // not exist is a 404, bad SQL a 400), not with its job: the job says how it ended
            // (and a job that really is not there is a 404 there too).
            Err(e) => {
                tracing::debug!(job_id, error = %refused(e), "the wait answered with an error; reading the job");
                return self.job_progress(job_id).await;
            }
        };
        if answer.job_complete == Some(true) {
            self.job_progress(job_id).await
        } else {
            Ok(JobProgress::Running)
        }
    }

    /// Asks BigQuery to stop a job; it ends with an error when it stops.
    async fn cancel_job(&self, job_id: &str) -> Result<(), WarehouseError> {
        self.client
            .job()
            .cancel_job(&self.project, job_id, Some(&self.location))
            .await
            .map_err(refused)?;
        Ok(())
    }

    /// Checks a query without running it: the schema of its result and the bytes it would
    /// process. Invalid SQL is a `Permanent` error with BigQuery's message.
    async fn dry_run(
        &self,
        sql: &str,
        default_dataset: &str,
        timestamps: &[(String, Option<jiff::Timestamp>)],
    ) -> Result<DryRun, WarehouseError> {
        let request = Job {
            job_reference: Some(JobReference {
                job_id: None,
                location: Some(self.location.clone()),
                project_id: Some(self.project.clone()),
            }),
            configuration: Some(JobConfiguration {
                job_type: Some("QUERY".into()),
                dry_run: Some(true),
                query: Some(self.query_configuration(sql, default_dataset, timestamps)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let job = self
            .client
            .job()
            .insert(&self.project, request)
            .await
            .map_err(refused)?;
        if let Some(error) = job.status.as_ref().and_then(|s| s.error_result.as_ref()) {
            return Err(WarehouseError::Permanent(format!(
                "{}: {}",
                error.reason.as_deref().unwrap_or_default(),
                error.message.as_deref().unwrap_or_default()
            )));
        }
        let query = job.statistics.as_ref().and_then(|s| s.query.as_ref());
        Ok(DryRun {
            schema: query
                .and_then(|q| q.schema.as_ref())
                .map(fields)
                .unwrap_or_default(),
            bytes_processed: parse_i64(query.and_then(|q| q.total_bytes_processed.as_ref())),
        })
    }

    async fn schema(&self, table: &TableId) -> Result<Option<Vec<Field>>, WarehouseError> {
        Ok(self
            .table(table)
            .await?
            .and_then(|t| t.schema.fields)
            .map(|f| fields(&TableSchema::new(f))))
    }

    /// Creates a table with `schema`, partitioned and clustered as `shape` says; one that
    /// exists already (two deliveries racing) is left as it is.
    async fn create_table(
        &self,
        table: &TableId,
        schema: &[Field],
        shape: TableShape<'_>,
    ) -> Result<(), WarehouseError> {
        let mut t = Table::new(
            &self.project,
            table.dataset(),
            table.table(),
            table_schema(schema),
        );
        t.time_partitioning = shape.partitioning.map(time_partitioning);
        t.clustering = clustering(shape.clustering);
        match self.client.table().create(t).await {
            Ok(_) => Ok(()),
            Err(e) => match refused(e) {
                WarehouseError::AlreadyExists(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Adds the fields of `result` that `table` lacks to the table's schema (as NULLABLE).
    async fn add_columns(
        &self,
        table: &TableId,
        current: &[Field],
        result: &[Field],
        added: &[Column],
    ) -> Result<(), WarehouseError> {
        let mut fields = current.to_vec();
        for field in result {
            if added.iter().any(|c| c.name == field.name) {
                let mut field = field.clone();
                if field.mode.as_deref() == Some("REQUIRED") {
                    field.mode = Some("NULLABLE".into());
                }
                fields.push(field);
            }
        }
        let t = Table::new(
            &self.project,
            table.dataset(),
            table.table(),
            table_schema(&fields),
        );
        self.client
            .table()
            .patch(&self.project, table.dataset(), table.table(), t)
            .await
            .map_err(refused)?;
        Ok(())
    }

    /// Makes the table expire at `at`; returns its row count after.
    async fn set_expiration(
        &self,
        table: &TableId,
        at: jiff::Timestamp,
    ) -> Result<Option<i64>, WarehouseError> {
        let mut t = self
            .client
            .table()
            .get(&self.project, table.dataset(), table.table(), None)
            .await
            .map_err(refused)?;
        t.expiration_time = Some(at.as_millisecond().to_string());
        let t = self
            .client
            .table()
            .patch(&self.project, table.dataset(), table.table(), t)
            .await
            .map_err(refused)?;
        Ok(rows(&t))
    }

    /// The table's row count, or `None` when BigQuery does not say.
    async fn row_count(&self, table: &TableId) -> Result<Option<i64>, WarehouseError> {
        let t = self
            .client
            .table()
            .get(&self.project, table.dataset(), table.table(), None)
            .await
            .map_err(refused)?;
        Ok(rows(&t))
    }
}

/// A schema in Baton's terms: BigQuery's `TableFieldSchema` as JSON, read into `Field`s.
fn fields(schema: &TableSchema) -> Vec<Field> {
    schema
        .fields
        .iter()
        .flatten()
        .filter_map(|f| serde_json::to_value(f).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

fn table_schema(fields: &[Field]) -> TableSchema {
    let fields = fields
        .iter()
        .filter_map(|f| serde_json::to_value(f).ok())
        .filter_map(|v| serde_json::from_value::<TableFieldSchema>(v).ok())
        .collect();
    TableSchema::new(fields)
}

fn parse_i64(value: Option<&String>) -> i64 {
    value.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A table's row count, when BigQuery says it.
fn rows(table: &Table) -> Option<i64> {
    table.num_rows.as_ref().and_then(|n| n.parse().ok())
}

/// BigQuery's statistics in Baton's terms.
fn statistics(job: &Job) -> JobStatistics {
    let Some(stats) = job.statistics.as_ref() else {
        return JobStatistics::default();
    };
    let query = stats.query.as_ref();
    JobStatistics {
        bytes_processed: parse_i64(
            query
                .and_then(|q| q.total_bytes_processed.as_ref())
                .or(stats.total_bytes_processed.as_ref()),
        ),
        bytes_billed: parse_i64(query.and_then(|q| q.total_bytes_billed.as_ref())),
        slot_ms: parse_i64(
            query
                .and_then(|q| q.total_slot_ms.as_ref())
                .or(stats.total_slot_ms.as_ref()),
        ),
        cache_hit: query.and_then(|q| q.cache_hit).unwrap_or(false),
        statement_type: query.and_then(|q| q.statement_type.clone()),
        // A DML statement's rows, or the rows a load job wrote.
        rows_affected: query
            .and_then(|q| q.num_dml_affected_rows.as_ref())
            .or(stats.load.as_ref().and_then(|l| l.output_rows.as_ref()))
            .and_then(|n| n.parse().ok()),
        destination_rows: None,
        cost: 0.0,
        import: None,
    }
}

/// What a load job skipped, from its resource: its bad records and the errors BigQuery
/// listed for them.
fn rejects(job: Job) -> LoadRejects {
    let bad_records = job
        .statistics
        .as_ref()
        .and_then(|s| s.load.as_ref())
        .and_then(|l| l.bad_records.as_ref())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = job
        .status
        .and_then(|s| s.errors)
        .unwrap_or_default()
        .into_iter()
        .map(|e| Rejected {
            location: e.location,
            reason: e.reason,
            message: e.message.unwrap_or_default(),
        })
        .collect();
    LoadRejects {
        bad_records,
        errors,
    }
}

/// A job's progress from its status.
fn progress(job: &Job) -> JobProgress {
    let status = job.status.as_ref();
    if status.and_then(|s| s.state.as_deref()) != Some("DONE") {
        return JobProgress::Running;
    }
    match status.and_then(|s| s.error_result.as_ref()) {
        None => JobProgress::Succeeded(statistics(job)),
        Some(error) => JobProgress::Failed {
            reason: error.reason.clone().unwrap_or_default(),
            message: error.message.clone().unwrap_or_default(),
            statistics: statistics(job),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_read_a_load_jobs_skipped_rows() {
        // A load job resource as BigQuery returns it (trimmed) after skipping one bad row.
        let job: Job = serde_json::from_value(serde_json::json!({
            "jobReference": {"projectId": "acme", "jobId": "baton_load_x_1", "location": "US"},
            "status": {"state": "DONE", "errors": [{
                "reason": "invalid", "location": "gs://acme-landing/in/bad/one.csv",
                "message": "Error while reading data, error message: Could not parse \
                            'not-a-number' as INT64 for field id (position 0) starting at \
                            location 24  with message 'Unable to parse'"}]},
            "statistics": {"creationTime": "1795379994121", "load": {"inputFiles": "1",
                "inputFileBytes": "58", "outputRows": "2", "outputBytes": "40",
                "badRecords": "1"}}
        }))
        .unwrap();
        assert!(matches!(progress(&job), JobProgress::Succeeded(s) if s.rows_affected == Some(2)));
        let rejects = rejects(job);
        assert_eq!(rejects.bad_records, 1);
        let line = serde_json::to_string(&rejects.errors[0]).unwrap();
        assert!(
            line.contains("gs://acme-landing/in/bad/one.csv") && line.contains("position 0"),
            "{line}"
        );
    }

    #[test]
    fn progress_reads_a_recorded_bigquery_job() {
        // A job resource as BigQuery returns it (trimmed), with real figures.
        let job: Job = serde_json::from_value(serde_json::json!({
            "jobReference": {"projectId": "acme", "jobId": "baton_x", "location": "US"},
            "status": {"state": "DONE"},
            "statistics": {
                "creationTime": "1795379994121", "startTime": "1795379994128",
                "endTime": "1795379996203", "totalBytesProcessed": "1073741824",
                "totalSlotMs": "5321",
                "query": {"totalBytesProcessed": "1073741824", "totalBytesBilled": "1074790400",
                          "totalSlotMs": "5321", "cacheHit": false, "statementType": "SELECT"}
            }
        }))
        .unwrap();
        let JobProgress::Succeeded(stats) = progress(&job) else {
            panic!("a DONE job without errorResult succeeded");
        };
        assert_eq!(stats.bytes_processed, 1_073_741_824);
        assert_eq!(stats.bytes_billed, 1_074_790_400);
        assert_eq!(stats.slot_ms, 5321);
        assert_eq!(stats.statement_type.as_deref(), Some("SELECT"));
        // 1,074,790,400 bytes billed (a GiB, rounded up to BigQuery's 10 MiB minimum per
        // table) at 6.25 a TiB.
        let priced = stats.priced(6.25);
        assert!(
            (priced.cost - 0.006_109_476).abs() < 1e-9,
            "{}",
            priced.cost
        );
        assert_eq!(JobStatistics::default().priced(6.25).cost, 0.0);
    }

    #[test]
    fn a_failed_job_keeps_bigquerys_reason_and_message() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "status": {"state": "DONE", "errorResult": {"reason": "invalidQuery",
                       "message": "Unrecognized name: foo at [1:8]"}}
        }))
        .unwrap();
        assert_eq!(
            progress(&job),
            JobProgress::Failed {
                reason: "invalidQuery".into(),
                message: "Unrecognized name: foo at [1:8]".into(),
                statistics: JobStatistics::default(),
            }
        );
        let running: Job =
            serde_json::from_value(serde_json::json!({"status": {"state": "RUNNING"}})).unwrap();
        assert_eq!(progress(&running), JobProgress::Running);
    }
}
