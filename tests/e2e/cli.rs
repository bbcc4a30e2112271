//! The `baton` command as a user runs it, where it needs no service: `baton deps`.

use std::process::Command;

use baton_tests::bin_dir;

#[test]
fn deps_prints_one_json_line_per_file() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("baton-deps-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let good = dir.join("good.sql");
    std::fs::write(
        &good,
        "WITH c AS (SELECT * FROM orders)\nSELECT * FROM c JOIN `acme.crm.people` USING (id)\nJOIN ga.events_* USING (id);\nINSERT INTO out SELECT 1;\n",
    )?;
    let bad = dir.join("bad.sql");
    std::fs::write(&bad, "SELECT *\nFROM t WHERE (a = 1\n")?;
    let imported = dir.join("imported.sql");
    std::fs::write(
        &imported,
        "-- import: shop_db\nSELECT id FROM public.orders\n",
    )?;

    let output = Command::new(bin_dir().join("baton"))
        .args(["deps", "--project", "acme", "--dataset", "shop"])
        .arg(&good)
        .arg(&bad)
        .arg(&imported)
        .output()?;
    assert_eq!(
        output.status.code(),
        Some(1),
        "an unreadable file fails the command"
    );
    let stdout = String::from_utf8(output.stdout)?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let third: serde_json::Value = serde_json::from_str(lines[2])?;
    assert_eq!(
        third["reads"],
        serde_json::json!([]),
        "an import's SELECT runs on its database, not in BigQuery"
    );
    assert!(
        lines[0].starts_with(&format!("{{\"file\":\"{}\",\"reads\":", good.display())),
        "fields come in the documented order: {}",
        lines[0]
    );
    let first: serde_json::Value = serde_json::from_str(lines[0])?;
    assert_eq!(
        first["reads"],
        serde_json::json!(["acme.crm.people", "acme.ga.events_*", "acme.shop.orders"])
    );
    assert_eq!(first["writes"], serde_json::json!(["acme.shop.out"]));
    assert_eq!(first["lenient"], false);
    assert_eq!(first["error"], serde_json::Value::Null);
    let second: serde_json::Value = serde_json::from_str(lines[1])?;
    assert_eq!(
        second["error"],
        "line 2, column 14: this `(` is never closed"
    );

    // Without defaults, names stay as written.
    let output = Command::new(bin_dir().join("baton"))
        .arg("deps")
        .arg(&good)
        .output()?;
    let line: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(
        line["reads"],
        serde_json::json!(["acme.crm.people", "ga.events_*", "orders"])
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
