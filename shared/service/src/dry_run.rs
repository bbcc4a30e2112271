//! A dry run of a table's SQL as its job would run it: BigQuery checks the SQL and says what
//! the result's columns are and how many bytes it would process, without running it or billing
//! anything. The API offers it so that SQL can be checked and priced before it is applied.

use serde::{Deserialize, Serialize};

use baton_core::catalog::WriteMode;
use baton_core::ports::WarehousePort;
use baton_core::run::{Instants, on_demand_cost};
use baton_core::warehouse::{WarehouseError, columns};
use baton_core::writes::Column;
use baton_google::warehouse::Warehouse;

/// What a dry run found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DryRunReport {
    pub bytes_processed: i64,
    /// The bytes at the on-demand price: an estimate of what a run costs (BigQuery bills at
    /// least 10 MiB per table read, and nothing for a cached result).
    pub estimated_cost: f64,
    pub columns: Vec<Column>,
    pub instants: Instants,
}

/// Dry-runs `sql`, the SQL of a table written in `mode`, in `dataset` (its unqualified names'),
/// with the parameters it uses (`run_time`, `window_start`, `window_end`) set to `instants`.
/// The modes that write through a statement of Baton's own check their SQL as the one query
/// they need (else an `Invalid` error). SQL BigQuery refuses is a `Permanent` error with
/// BigQuery's message.
pub async fn dry_run(
    warehouse: &Warehouse,
    sql: &str,
    mode: WriteMode,
    dataset: &str,
    parameters: &[String],
    instants: Instants,
    price_per_tib: f64,
) -> Result<DryRunReport, WarehouseError> {
    let sql = if mode.writes_by_statement() {
        baton_core::sql::single_query(sql).map_err(|e| WarehouseError::Invalid(e.to_string()))?
    } else {
        sql
    };
    let timestamps = instants.parameters(parameters);
    let found = warehouse.dry_run(sql, dataset, &timestamps).await?;
    Ok(DryRunReport {
        bytes_processed: found.bytes_processed,
        estimated_cost: on_demand_cost(found.bytes_processed, price_per_tib),
        columns: columns(&found.schema),
        instants,
    })
}
