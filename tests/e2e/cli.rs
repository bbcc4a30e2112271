//! The `baton` command as a user runs it, where it needs no service: `baton deps`, `baton
//! check` and `baton graph` of a folder.

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

/// Where an offline command keeps what it read (this test process's own, one per command).
fn cache_dir(command: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("baton-cli-cache-{}-{command}", std::process::id()))
}

/// Runs `baton check DIR` with no API to reach: its exit code, standard output and error.
fn check(dir: &std::path::Path) -> anyhow::Result<(Option<i32>, String, String)> {
    offline("check", &[dir.to_str().expect("a UTF-8 path")])
}

/// Runs `baton COMMAND ARGS` with no API to reach and no credentials: its exit code,
/// standard output and error.
fn offline(command: &str, args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let output = Command::new(bin_dir().join("baton"))
        .arg(command)
        .args(args)
        .env("BATON_API_URL", "http://127.0.0.1:9")
        .env("BATON_CACHE_DIR", cache_dir(command))
        .env_remove("BATON_TOKEN")
        .env_remove("BATON_PROJECT")
        .output()?;
    Ok((
        output.status.code(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

#[test]
fn check_reads_a_folder_offline_and_names_each_problem_where_it_is() -> anyhow::Result<()> {
    // The example catalog is sound.
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs/shop");
    let (code, out, err) = check(&shop)?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(
            ": 7 tables, 1 frequencies, 6 dependencies, 0 external tables read, 0 warning(s)"
        ),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("baton-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d"))?;
    let write = |name: &str, text: &str| std::fs::write(dir.join("d").join(name), text);
    write("a.sql", "SELECT * FROM d.b\n")?;
    write("b.sql", "SELECT * FROM d.c\n")?;
    write("c.sql", "SELECT *\nFROM d.a WHERE (x = 1\n")?;
    write("e.sql", "-- frequency: weekly\nSELECT 1 AS x\n")?;
    write("g.sql", "-- colour: blue\nSELECT 1 AS x\n")?;
    write("h.sql", "-- depends_on: d.g\nSELECT 1 AS x\n")?;
    write("x.sql", "SELECT * FROM d.y\n")?;
    write("y.sql", "SELECT * FROM d.x\n")?;
    // Every problem at once, in order: a file's header, a setting (an unknown frequency),
    // SQL at its line and column, and a cycle among the tables that could be read. d.h's
    // `depends_on: d.g` is no problem: d.g is there, its header is.
    let (code, out, err) = check(&dir)?;
    assert_eq!(code, Some(1));
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines[0].starts_with("d/g.sql:1: unknown setting `colour`"),
        "{err}"
    );
    assert_eq!(lines[1], "d/e.sql: frequency `weekly` is not defined");
    assert_eq!(lines[2], "d/c.sql:2:16: this `(` is never closed");
    assert!(
        lines[3].ends_with(": dependency cycle: d.x → d.y → d.x")
            || lines[3].ends_with(": dependency cycle: d.y → d.x → d.y"),
        "{err}"
    );
    assert_eq!(
        lines[4],
        format!("baton: {} has 4 problem(s)", dir.display())
    );
    // Once c.sql reads, its own cycle shows.
    for gone in ["e.sql", "g.sql", "h.sql", "x.sql", "y.sql"] {
        std::fs::remove_file(dir.join("d").join(gone))?;
    }
    write("c.sql", "SELECT *\nFROM d.a WHERE (x = 1)\n")?;
    let (code, _, err) = check(&dir)?;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("d/a.sql: dependency cycle: d.a → d.c → d.b → d.a\n"),
        "{err}"
    );
    // Mended, with a warning that does not fail it. Only the SQL that changed since the last
    // check is read again (a.sql, and f.sql, new): b.sql and c.sql are answered as before.
    write("a.sql", "SELECT 1 AS n\n")?;
    write("f.sql", "CALL d.refresh()\n")?;
    let (code, out, err) = check(&dir)?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(
            ": 4 tables, 0 frequencies, 2 dependencies, 0 external tables read, 1 warning(s)"
        ),
        "{out}"
    );
    assert!(out.ends_with(" (2 tables' SQL as read before)\n"), "{out}");
    let (_, again, _) = check(&dir)?;
    assert!(
        again.ends_with(" (4 tables' SQL as read before)\n"),
        "{again}"
    );
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    let (_, fresh, _) = offline("check", &[dir_arg, "--no-cache"])?;
    assert!(
        fresh.ends_with(" (0 tables' SQL as read before)\n"),
        "{fresh}"
    );
    // Another project reads the same SQL to other answers: kept apart.
    let (_, other, _) = offline("check", &[dir_arg, "--project", "acme"])?;
    assert!(
        other.ends_with(" (0 tables' SQL as read before)\n"),
        "{other}"
    );
    // What is kept cannot be read (damaged, or of another version): everything is read.
    for kept in std::fs::read_dir(cache_dir("check"))? {
        std::fs::write(kept?.path(), "{not json")?;
    }
    let (code, damaged, _) = check(&dir)?;
    assert_eq!(code, Some(0));
    assert!(
        damaged.ends_with(" (0 tables' SQL as read before)\n"),
        "{damaged}"
    );
    std::fs::remove_dir_all(cache_dir("check"))?;
    assert!(
        err.starts_with(
            "d/f.sql: warning: line 1: CALL baton-check.d.refresh: what a procedure reads"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Runs `baton graph ARGS` with no API to reach: its exit code, standard output and error.
fn graph(args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    offline("graph", args)
}

#[test]
fn graph_draws_a_folder_offline_whole_or_around_a_table() -> anyhow::Result<()> {
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs/shop");
    let shop = shop.to_str().expect("a UTF-8 path");
    // DOT: every table, every dependency the SQL says.
    let (code, dot, err) = graph(&[shop])?;
    assert_eq!(code, Some(0), "{err}");
    let mut edges: Vec<&str> = dot.lines().filter(|l| l.contains(" -> ")).collect();
    edges.sort_unstable();
    assert_eq!(
        edges,
        [
            r#"  "analytics.customer_totals" -> "analytics.net_revenue";"#,
            r#"  "analytics.customer_totals" -> "analytics.top_customers";"#,
            r#"  "shop.customers" -> "analytics.customer_totals";"#,
            r#"  "shop.customers" -> "analytics.net_revenue";"#,
            r#"  "shop.orders" -> "analytics.customer_totals";"#,
            r#"  "shop.refunds" -> "analytics.net_revenue";"#,
        ]
    );
    assert!(dot.contains(r#""analytics.calendar" [label="analytics.calendar"];"#));
    // Around a table, one step up: its parents and nothing else.
    let (code, mermaid, err) = graph(&[
        shop,
        "--format",
        "mermaid",
        "--around",
        "analytics.customer_totals",
        "--depth",
        "1",
        "--reach",
        "ancestors",
    ])?;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        mermaid,
        "flowchart LR\n  n0[\"analytics.customer_totals\"]\n  n1[\"shop.customers\"]\n  \
         n2[\"shop.orders\"]\n  n1 --> n0\n  n2 --> n0\n"
    );
    // SVG, laid out here: a box for every table.
    let (code, svg, _) = graph(&[shop, "--format", "svg"])?;
    assert_eq!(code, Some(0));
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(svg.matches("<rect").count(), 7, "{svg}");
    // A table the folder does not have, and a folder with a problem, are refused.
    let (code, out, err) = graph(&[shop, "--around", "shop.nope"])?;
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(err, "baton: shop.nope is not in the graph\n");
    let dir = std::env::temp_dir().join(format!("baton-graph-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d"))?;
    std::fs::write(dir.join("d/a.sql"), "SELECT (1 AS n\n")?;
    let (code, out, err) = graph(&[dir.to_str().expect("a UTF-8 path")])?;
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.starts_with("d/a.sql:1:8: "), "{err}");
    std::fs::remove_dir_all(&dir)?;
    let _ = std::fs::remove_dir_all(cache_dir("graph"));
    Ok(())
}
