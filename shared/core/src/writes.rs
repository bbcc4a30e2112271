//! The statements that write a query's result into its table when BigQuery's write
//! dispositions cannot: a MERGE on key columns, an insert of new keys only, and the
//! replacement of a run's window. Pure: the query, the columns its result has (from a dry
//! run) and the table's options in; one BigQuery statement or script out, or what is wrong.
//!
//! Every statement is one BigQuery job, so that the job id Baton chooses covers all of it: a
//! redelivery attaches to the job instead of writing twice.

use crate::catalog::{TableOptions, WriteMode};

/// A top-level column of a result or a table: its name and BigQuery type (`INTEGER`,
/// `STRING`, `RECORD`, …, as the API spells them).
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
}

impl Column {
    pub fn new(name: &str, field_type: &str) -> Self {
        Self {
            name: name.to_string(),
            field_type: field_type.to_string(),
        }
    }
}

/// `name` as a quoted identifier.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "\\`"))
}

fn list(columns: &[&Column], prefix: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", quoted(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column of `columns` named `name` (BigQuery's column names ignore case).
fn find<'a>(columns: &'a [Column], name: &str, role: &str) -> Result<&'a Column, String> {
    columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "the {role} `{name}` is not a column of the query's result (it has {})",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The statement that writes `query`'s result into `target` (`project.dataset.table`) in
/// `mode`: `Some` exactly for the modes that `WriteMode::writes_by_statement` names (`None`
/// for truncate and append, which are a destination table and a write disposition).
pub fn statement(
    mode: WriteMode,
    target: &str,
    query: &str,
    columns: &[Column],
    options: &TableOptions,
) -> Result<Option<String>, String> {
    match mode {
        WriteMode::Truncate | WriteMode::Append => Ok(None),
        WriteMode::Merge => merge(target, query, columns, options).map(Some),
        WriteMode::InsertUnique => insert_unique(target, query, columns, options).map(Some),
        WriteMode::OverwritePartitions => {
            overwrite_window(target, query, columns, options).map(Some)
        }
    }
}

fn key_condition(columns: &[Column], options: &TableOptions) -> Result<String, String> {
    let mut parts = Vec::new();
    for key in &options.key {
        let column = quoted(&find(columns, key, "key column")?.name);
        // Keys that are NULL on both sides match, so that a NULL key is not inserted again
        // on every run.
        parts.push(format!("T.{column} IS NOT DISTINCT FROM S.{column}"));
    }
    Ok(parts.join(" AND "))
}

fn merge(
    target: &str,
    query: &str,
    columns: &[Column],
    options: &TableOptions,
) -> Result<String, String> {
    let on = key_condition(columns, options)?;
    let all: Vec<&Column> = columns.iter().collect();
    let mut text = format!(
        "MERGE {} AS T\nUSING (\n{query}\n) AS S\nON {on}\n",
        quoted(target)
    );
    let flag = match &options.delete_flag {
        Some(name) => {
            let flag = find(columns, name, "delete flag")?;
            if flag.field_type != "BOOLEAN" && flag.field_type != "BOOL" {
                return Err(format!(
                    "the delete flag `{name}` must be a BOOL column, not {}",
                    flag.field_type
                ));
            }
            let flag = quoted(&flag.name);
            text.push_str(&format!("WHEN MATCHED AND S.{flag} THEN DELETE\n"));
            Some(flag)
        }
        None => None,
    };
    let updated: Vec<&Column> = columns
        .iter()
        .filter(|c| !options.key.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .collect();
    if !updated.is_empty() {
        let set = updated
            .iter()
            .map(|c| format!("{0} = S.{0}", quoted(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!("WHEN MATCHED THEN UPDATE SET {set}\n"));
    }
    let unflagged = flag.map_or_else(String::new, |f| format!(" AND S.{f} IS NOT TRUE"));
    text.push_str(&format!(
        "WHEN NOT MATCHED{unflagged} THEN INSERT ({}) VALUES ({})",
        list(&all, ""),
        list(&all, "S.")
    ));
    Ok(text)
}

fn insert_unique(
    target: &str,
    query: &str,
    columns: &[Column],
    options: &TableOptions,
) -> Result<String, String> {
    let on = key_condition(columns, options)?;
    let all: Vec<&Column> = columns.iter().collect();
    Ok(format!(
        "MERGE {} AS T\nUSING (\n{query}\n) AS S\nON {on}\nWHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
        quoted(target),
        list(&all, ""),
        list(&all, "S.")
    ))
}

/// Deletes the rows of the run's window, found by the partitioning column, and inserts the
/// result, in one transaction. The window is `@window_start` (included) to `@window_end`
/// (excluded), compared as the column's type: a DATE column by the UTC dates of the instants.
fn overwrite_window(
    target: &str,
    query: &str,
    columns: &[Column],
    options: &TableOptions,
) -> Result<String, String> {
    let Some(field) = options.partitioning.as_ref().and_then(|p| p.field.as_ref()) else {
        return Err("write mode overwrite_partitions needs `partition_by` on a column".into());
    };
    let column = find(columns, field, "partitioning column")?;
    let (start, end) = match column.field_type.as_str() {
        "TIMESTAMP" => ("@window_start".to_string(), "@window_end".to_string()),
        "DATE" | "DATETIME" => (
            format!("{}(@window_start)", column.field_type),
            format!("{}(@window_end)", column.field_type),
        ),
        other => {
            return Err(format!(
                "the partitioning column `{field}` must be a DATE, DATETIME or TIMESTAMP, not {other}"
            ));
        }
    };
    let all: Vec<&Column> = columns.iter().collect();
    let name = quoted(&column.name);
    Ok(format!(
        "BEGIN TRANSACTION;\n\
         DELETE FROM {table} WHERE {name} >= {start} AND {name} < {end};\n\
         INSERT INTO {table} ({cols})\nSELECT {cols} FROM (\n{query}\n);\n\
         COMMIT TRANSACTION;",
        table = quoted(target),
        cols = list(&all, ""),
    ))
}

/// How a result's columns change a table that keeps its rows: the columns to add, or why the
/// change is refused (a column gone or of another type; only additions are allowed).
pub fn added_columns<'a>(
    table: &[Column],
    result: &'a [Column],
) -> Result<Vec<&'a Column>, String> {
    let mut problems = Vec::new();
    for column in table {
        match result
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&column.name))
        {
            None => problems.push(format!("column `{}` is gone from the result", column.name)),
            Some(c) if c.field_type != column.field_type => problems.push(format!(
                "column `{}` is {} in the table but {} in the result",
                column.name, column.field_type, c.field_type
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}: a table that keeps its rows may only gain columns (change it by hand, or \
             write it with `truncate` once)",
            problems.join("; ")
        ));
    }
    Ok(result
        .iter()
        .filter(|c| !table.iter().any(|t| t.name.eq_ignore_ascii_case(&c.name)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Granularity, Partitioning};

    fn columns() -> Vec<Column> {
        vec![
            Column::new("id", "INTEGER"),
            Column::new("name", "STRING"),
            Column::new("day", "DATE"),
            Column::new("gone", "BOOLEAN"),
        ]
    }

    fn keyed(key: &[&str]) -> TableOptions {
        TableOptions {
            key: key.iter().map(|k| k.to_string()).collect(),
            ..TableOptions::default()
        }
    }

    #[test]
    fn merge_updates_matches_inserts_the_rest_and_deletes_what_is_flagged() {
        let options = TableOptions {
            delete_flag: Some("gone".into()),
            ..keyed(&["id"])
        };
        let sql = statement(WriteMode::Merge, "p.d.t", "SELECT 1", &columns(), &options)
            .unwrap()
            .unwrap();
        assert_eq!(
            sql,
            "MERGE `p.d.t` AS T\nUSING (\nSELECT 1\n) AS S\nON T.`id` IS NOT DISTINCT FROM S.`id`\n\
             WHEN MATCHED AND S.`gone` THEN DELETE\n\
             WHEN MATCHED THEN UPDATE SET `name` = S.`name`, `day` = S.`day`, `gone` = S.`gone`\n\
             WHEN NOT MATCHED AND S.`gone` IS NOT TRUE THEN INSERT (`id`, `name`, `day`, `gone`) \
             VALUES (S.`id`, S.`name`, S.`day`, S.`gone`)"
        );
    }

    #[test]
    fn a_merge_whose_columns_are_all_key_only_inserts() {
        let only = [Column::new("a", "STRING"), Column::new("b", "STRING")];
        let sql = statement(WriteMode::Merge, "p.d.t", "q", &only, &keyed(&["a", "B"]))
            .unwrap()
            .unwrap();
        assert!(!sql.contains("UPDATE"), "{sql}");
        assert!(
            sql.contains(
                "ON T.`a` IS NOT DISTINCT FROM S.`a` AND T.`b` IS NOT DISTINCT FROM S.`b`"
            )
        );
    }

    #[test]
    fn insert_unique_inserts_only_new_keys() {
        let sql = statement(
            WriteMode::InsertUnique,
            "p.d.t",
            "q",
            &columns(),
            &keyed(&["id"]),
        )
        .unwrap()
        .unwrap();
        assert!(sql.ends_with(
            "WHEN NOT MATCHED THEN INSERT (`id`, `name`, `day`, `gone`) VALUES (S.`id`, S.`name`, S.`day`, S.`gone`)"
        ));
        assert!(!sql.contains("WHEN MATCHED"));
    }

    #[test]
    fn overwrite_replaces_the_window_in_one_transaction_compared_as_the_columns_type() {
        let options = TableOptions {
            partitioning: Some(Partitioning {
                field: Some("day".into()),
                granularity: Granularity::Day,
                expiration_seconds: None,
            }),
            ..TableOptions::default()
        };
        let sql = statement(
            WriteMode::OverwritePartitions,
            "p.d.t",
            "q",
            &columns(),
            &options,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            sql,
            "BEGIN TRANSACTION;\n\
             DELETE FROM `p.d.t` WHERE `day` >= DATE(@window_start) AND `day` < DATE(@window_end);\n\
             INSERT INTO `p.d.t` (`id`, `name`, `day`, `gone`)\n\
             SELECT `id`, `name`, `day`, `gone` FROM (\nq\n);\n\
             COMMIT TRANSACTION;"
        );
        let on_name = TableOptions {
            partitioning: Some(Partitioning::parse("name").unwrap()),
            ..TableOptions::default()
        };
        let e = statement(
            WriteMode::OverwritePartitions,
            "p.d.t",
            "q",
            &columns(),
            &on_name,
        )
        .unwrap_err();
        assert!(
            e.contains("must be a DATE, DATETIME or TIMESTAMP, not STRING"),
            "{e}"
        );
    }

    #[test]
    fn a_key_or_flag_the_result_lacks_is_named() {
        let e =
            statement(WriteMode::Merge, "p.d.t", "q", &columns(), &keyed(&["sku"])).unwrap_err();
        assert_eq!(
            e,
            "the key column `sku` is not a column of the query's result (it has id, name, day, gone)"
        );
        let options = TableOptions {
            delete_flag: Some("name".into()),
            ..keyed(&["id"])
        };
        let e = statement(WriteMode::Merge, "p.d.t", "q", &columns(), &options).unwrap_err();
        assert!(e.contains("must be a BOOL column, not STRING"), "{e}");
    }

    #[test]
    fn a_table_that_keeps_rows_may_gain_columns_and_nothing_else() {
        let table = [Column::new("id", "INTEGER"), Column::new("name", "STRING")];
        let grown = [
            Column::new("id", "INTEGER"),
            Column::new("name", "STRING"),
            Column::new("added", "DATE"),
        ];
        let added = added_columns(&table, &grown).unwrap();
        assert_eq!(added, vec![&Column::new("added", "DATE")]);
        assert!(added_columns(&table, &table).unwrap().is_empty());
        let changed = [Column::new("id", "STRING")];
        let e = added_columns(&table, &changed).unwrap_err();
        assert!(e.starts_with(
            "column `id` is INTEGER in the table but STRING in the result; column `name` is gone from the result"
        ), "{e}");
    }
}
