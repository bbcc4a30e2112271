//! The catalog's documents: `frequencies/{name}` and `tables/{dataset.table}`.

use baton_core::catalog::apply::ApplyPlan;
use baton_core::catalog::{Frequency, TableDoc};

use super::{FREQUENCIES, Store, StoreError, TABLES, counted, stored};

impl Store {
    pub async fn frequencies(&self) -> Result<Vec<Frequency>, StoreError> {
        self.list(None, FREQUENCIES).await
    }

    pub async fn frequency(&self, name: &str) -> Result<Option<Frequency>, StoreError> {
        self.get(None, FREQUENCIES, name).await
    }

    pub async fn tables(&self) -> Result<Vec<TableDoc>, StoreError> {
        self.list(None, TABLES).await
    }

    /// The tables a frequency runs.
    pub async fn tables_of_frequency(&self, frequency: &str) -> Result<Vec<TableDoc>, StoreError> {
        let frequency = frequency.to_string();
        self.db()
            .fluent()
            .select()
            .from(TABLES)
            .filter(|q| q.for_all([q.field("definition.frequency").eq(frequency.clone())]))
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Performs a planned catalog change. Each batch of 500 writes is atomic; the change as a
    /// whole is not, and a repeat of the same change completes one that stopped half-way.
    pub async fn apply_catalog(&self, plan: &ApplyPlan) -> Result<(), StoreError> {
        let frequencies: Vec<(String, Frequency)> = plan
            .write_frequencies
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        self.set_all(None, FREQUENCIES, &frequencies).await?;
        let tables: Vec<(String, TableDoc)> = plan
            .write_tables
            .iter()
            .map(|t| (t.id.to_string(), t.clone()))
            .collect();
        self.set_all(None, TABLES, &tables).await?;
        let deleted: Vec<String> = plan.delete_tables.iter().map(ToString::to_string).collect();
        self.delete_all(None, TABLES, &deleted).await?;
        self.delete_all(None, FREQUENCIES, &plan.delete_frequencies)
            .await
    }
}
