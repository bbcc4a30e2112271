//! Pictures of a catalog's graph or a run's: DOT (for Graphviz), Mermaid (for Markdown and
//! GitHub), and SVG laid out here by `layout-rs`, so that neither the CLI nor the API's page
//! needs a system Graphviz. A large catalog stays readable through [`Graph::around`]: one
//! table with its ancestors and descendants to a depth.
//!
//! Edges point from a parent to the child that reads it, the order in which a run goes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use jiff::SignedDuration;
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use petgraph::Direction;
use petgraph::graphmap::DiGraphMap;

use crate::catalog::TableId;
use crate::run::Job;
use crate::state::JobState;

/// One table in a picture: its name, what else to say under it, and its job's state when
/// the picture is of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub details: Vec<String>,
    pub state: Option<JobState>,
}

impl Node {
    /// What its box says: the table's name, then its details, a line each.
    fn lines<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a str> {
        std::iter::once(id).chain(self.details.iter().map(String::as_str))
    }
}

/// Which way [`Graph::around`] walks from its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// What the table reads, directly or not.
    Ancestors,
    /// What reads the table, directly or not.
    Descendants,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{0} is not in the graph")]
    UnknownTable(String),
}

/// A directed graph of tables, in a stable order (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    /// (parent, child)
    edges: BTreeSet<(String, String)>,
}

impl Graph {
    /// A catalog's graph: every table with its parents (as `ApplyPlan::dependencies` has
    /// them). A parent outside the map is drawn too.
    pub fn of_catalog(dependencies: &BTreeMap<TableId, Vec<TableId>>) -> Self {
        let mut graph = Graph::default();
        for (table, parents) in dependencies {
            graph.add_node(table.to_string(), Vec::new(), None);
            for parent in parents {
                graph.add_edge(parent.to_string(), table.to_string());
            }
        }
        graph
    }

    /// A run's graph: every job, coloured by its state, with its duration (or how long it
    /// has run so far, as of `now`) and its attempt when not the first.
    pub fn of_run(jobs: &[Job], now: jiff::Timestamp) -> Self {
        let mut graph = Graph::default();
        for job in jobs {
            let mut details = vec![job.state.as_str().to_string()];
            if let Some(started) = job.started_at {
                let elapsed = job.finished_at.unwrap_or(now).duration_since(started);
                details[0].push_str(&format!(" {}", short_duration(elapsed)));
            }
            if job.attempt > 1 {
                details.push(format!("attempt {}", job.attempt));
            }
            graph.add_node(job.table.to_string(), details, Some(job.state));
            for parent in &job.parents {
                graph.add_edge(parent.to_string(), job.table.to_string());
            }
        }
        graph
    }

    pub fn add_node(&mut self, id: String, details: Vec<String>, state: Option<JobState>) {
        self.nodes.insert(id, Node { details, state });
    }

    /// Adds the edge, and its ends as bare nodes if they are not there yet.
    pub fn add_edge(&mut self, parent: String, child: String) {
        for end in [&parent, &child] {
            self.nodes.entry(end.clone()).or_insert_with(|| Node {
                details: Vec::new(),
                state: None,
            });
        }
        self.edges.insert((parent, child));
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(id, node)| (id.as_str(), node))
    }

    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.edges.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The table `center` with the tables `reach` finds within `depth` steps (every one
    /// when `None`), and the edges among them.
    pub fn around(
        &self,
        center: &str,
        depth: Option<u32>,
        reach: Reach,
    ) -> Result<Graph, GraphError> {
        if !self.nodes.contains_key(center) {
            return Err(GraphError::UnknownTable(center.to_string()));
        }
        let kept = self.reached(&[center], depth, reach);
        Ok(Graph {
            nodes: self
                .nodes
                .iter()
                .filter(|(id, _)| kept.contains(id.as_str()))
                .map(|(id, node)| (id.clone(), node.clone()))
                .collect(),
            edges: self
                .edges
                .iter()
                .filter(|(p, c)| kept.contains(p.as_str()) && kept.contains(c.as_str()))
                .cloned()
                .collect(),
        })
    }

    /// Every table downstream of `from` (what reads them, directly or not), `from` left out:
    /// one walk however many tables it starts from.
    pub fn downstream(&self, from: &[&str]) -> BTreeSet<String> {
        let mut found: BTreeSet<String> = self
            .reached(from, None, Reach::Descendants)
            .into_iter()
            .map(String::from)
            .collect();
        for id in from {
            found.remove(*id);
        }
        found
    }

    /// `centers` (those in the graph) and what `reach` finds from them within `depth` steps.
    fn reached<'a>(
        &'a self,
        centers: &[&str],
        depth: Option<u32>,
        reach: Reach,
    ) -> BTreeSet<&'a str> {
        let mut index: DiGraphMap<&str, ()> = DiGraphMap::new();
        for id in self.nodes.keys() {
            index.add_node(id);
        }
        for (parent, child) in &self.edges {
            index.add_edge(parent, child, ());
        }
        let starts: Vec<&str> = centers
            .iter()
            .filter_map(|c| self.nodes.get_key_value(*c).map(|(id, _)| id.as_str()))
            .collect();
        let mut kept: BTreeSet<&str> = starts.iter().copied().collect();
        let directions: &[Direction] = match reach {
            Reach::Ancestors => &[Direction::Incoming],
            Reach::Descendants => &[Direction::Outgoing],
            Reach::Both => &[Direction::Incoming, Direction::Outgoing],
        };
        for &direction in directions {
            let mut seen: BTreeSet<&str> = starts.iter().copied().collect();
            let mut queue: VecDeque<(&str, u32)> = starts.iter().map(|s| (*s, 0)).collect();
            while let Some((at, steps)) = queue.pop_front() {
                if depth.is_some_and(|d| steps >= d) {
                    continue;
                }
                for next in index.neighbors_directed(at, direction) {
                    if seen.insert(next) {
                        queue.push_back((next, steps + 1));
                    }
                }
            }
            kept.extend(seen);
        }
        kept
    }

    /// Graphviz's DOT, left to right, coloured as the SVG is.
    pub fn dot(&self) -> String {
        let mut out = String::from(
            "digraph baton {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fillcolor=\"#ffffff\"];\n",
        );
        for (id, node) in &self.nodes {
            let label = node
                .lines(id)
                .map(dot_escape)
                .collect::<Vec<_>>()
                .join("\\n");
            let _ = write!(out, "  \"{}\" [label=\"{label}\"", dot_escape(id));
            if let Some(state) = node.state {
                let _ = write!(out, ", fillcolor=\"{}\"", colours(state).0);
            }
            out.push_str("];\n");
        }
        for (parent, child) in &self.edges {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                dot_escape(parent),
                dot_escape(child)
            );
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid's flowchart, left to right; nodes are numbered (Mermaid's ids take no dots),
    /// labelled with their names, and coloured by state through one class each.
    pub fn mermaid(&self) -> String {
        let number: BTreeMap<&str, usize> = self
            .nodes
            .keys()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut out = String::from("flowchart LR\n");
        let mut states: BTreeSet<JobState> = BTreeSet::new();
        for (id, node) in &self.nodes {
            let label = node
                .lines(id)
                .map(mermaid_escape)
                .collect::<Vec<_>>()
                .join("<br/>");
            let _ = write!(out, "  n{}[\"{label}\"]", number[id.as_str()]);
            if let Some(state) = node.state {
                let _ = write!(out, ":::{}", state.as_str());
                states.insert(state);
            }
            out.push('\n');
        }
        for (parent, child) in &self.edges {
            let _ = writeln!(
                out,
                "  n{} --> n{}",
                number[parent.as_str()],
                number[child.as_str()]
            );
        }
        for state in states {
            let (fill, line) = colours(state);
            let _ = writeln!(
                out,
                "  classDef {} fill:{fill},stroke:{line}",
                state.as_str()
            );
        }
        out
    }

    /// An SVG picture, laid out left to right in layers; the edge crossings are reduced in
    /// graphs of up to [`REDUCE_CROSSINGS_UP_TO`] tables.
    pub fn svg(&self) -> String {
        let mut visual = VisualGraph::new(Orientation::LeftToRight);
        let mut handles = BTreeMap::new();
        for (id, node) in &self.nodes {
            let text = node.lines(id).collect::<Vec<_>>().join("\n");
            let (fill, line) = node.state.map_or(("#ffffff", "#444444"), colours);
            let look = StyleAttr::new(rgb(line), 1, Some(rgb(fill)), 6, FONT_SIZE);
            let shape = ShapeKind::new_box(&text);
            let size = get_shape_size(Orientation::LeftToRight, &shape, FONT_SIZE, false);
            let element = Element::create(shape, look, Orientation::LeftToRight, size);
            handles.insert(id.as_str(), visual.add_node(element));
        }
        for (parent, child) in &self.edges {
            visual.add_edge(
                Arrow::simple(""),
                handles[parent.as_str()],
                handles[child.as_str()],
            );
        }
        let mut svg = SVGWriter::new();
        if !self.nodes.is_empty() {
            // Reducing edge crossings is what costs most, and more than the square of the
            // size: done only for graphs small enough for it to take well under a second.
            let reduce_crossings = self.nodes.len() <= REDUCE_CROSSINGS_UP_TO;
            visual.do_it(false, !reduce_crossings, false, &mut svg);
        }
        svg.finalize()
    }
}

const FONT_SIZE: usize = 13;

/// The largest graph whose SVG layout reduces its edge crossings (README, Figures).
pub const REDUCE_CROSSINGS_UP_TO: usize = 150;

/// A state's fill and line colours, in every picture of a run (the page's badges too).
pub fn colours(state: JobState) -> (&'static str, &'static str) {
    match state {
        JobState::Pending => ("#ffffff", "#9e9e9e"),
        JobState::Queued => ("#fff3c4", "#b38f00"),
        JobState::Running => ("#cfe3ff", "#1f5fbf"),
        JobState::Succeeded => ("#d4f0d4", "#2e7d32"),
        JobState::Failed => ("#ffd0d0", "#c62828"),
        JobState::Skipped => ("#eeeeee", "#757575"),
        JobState::Cancelled => ("#e6dcf0", "#6a4c93"),
    }
}

/// A `#rrggbb` colour as layout-rs wants it (RGBA).
fn rgb(hex: &str) -> Color {
    let value = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    Color::new((value << 8) | 0xff)
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`.
pub fn short_duration(d: SignedDuration) -> String {
    let ms = d.as_millis().max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1e3)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1_000)
    } else {
        format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> Graph {
        let mut g = Graph::default();
        for (p, c) in [
            ("s.a", "s.b"),
            ("s.a", "s.c"),
            ("s.b", "s.d"),
            ("s.c", "s.d"),
        ] {
            g.add_edge(p.into(), c.into());
        }
        g.add_edge("s.d".into(), "s.e".into());
        g.add_node("s.lonely".into(), Vec::new(), None);
        g
    }

    fn names(g: &Graph) -> Vec<&str> {
        g.nodes().map(|(id, _)| id).collect()
    }

    #[test]
    fn around_keeps_ancestors_and_descendants_to_the_depth_asked() {
        let g = diamond();
        let near = g.around("s.b", Some(1), Reach::Both).unwrap();
        assert_eq!(names(&near), ["s.a", "s.b", "s.d"]);
        assert_eq!(
            near.edges().collect::<Vec<_>>(),
            [("s.a", "s.b"), ("s.b", "s.d")]
        );
        let down = g.around("s.b", None, Reach::Descendants).unwrap();
        assert_eq!(names(&down), ["s.b", "s.d", "s.e"]);
        assert_eq!(
            g.downstream(&["s.b", "s.c", "s.nope"])
                .into_iter()
                .collect::<Vec<_>>(),
            ["s.d", "s.e"]
        );
        let up = g.around("s.e", Some(2), Reach::Ancestors).unwrap();
        assert_eq!(names(&up), ["s.b", "s.c", "s.d", "s.e"]);
        assert_eq!(
            g.around("s.nope", None, Reach::Both)
                .unwrap_err()
                .to_string(),
            "s.nope is not in the graph"
        );
    }

    #[test]
    fn dot_and_mermaid_name_every_table_and_edge() {
        let mut g = diamond();
        g.add_node(
            "s.b".into(),
            vec!["failed 1.5 s".into()],
            Some(JobState::Failed),
        );
        let dot = g.dot();
        assert!(dot.starts_with("digraph baton {"), "{dot}");
        assert!(dot.contains("\"s.b\" [label=\"s.b\\nfailed 1.5 s\", fillcolor=\"#ffd0d0\"];"));
        assert!(dot.contains("\"s.c\" -> \"s.d\";"));
        assert_eq!(dot.matches(" -> ").count(), 5);
        let mermaid = g.mermaid();
        assert!(
            mermaid.contains("  n1[\"s.b<br/>failed 1.5 s\"]:::failed\n"),
            "{mermaid}"
        );
        assert!(mermaid.contains("  n0 --> n1\n"));
        assert!(mermaid.contains("classDef failed fill:#ffd0d0,stroke:#c62828"));
        assert_eq!(mermaid.matches(" --> ").count(), 5);
    }

    #[test]
    fn svg_draws_a_box_for_every_table() {
        let svg = diamond().svg();
        assert!(svg.contains("<svg"), "{svg}");
        for name in ["s.a", "s.b", "s.c", "s.d", "s.e", "s.lonely"] {
            assert!(svg.contains(&format!(">{name}<")), "{name} missing");
        }
        assert!(Graph::default().svg().contains("<svg"));
    }

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        assert_eq!(short_duration(SignedDuration::from_millis(850)), "850 ms");
        assert_eq!(
            short_duration(SignedDuration::from_millis(12_345)),
            "12.3 s"
        );
        assert_eq!(short_duration(SignedDuration::from_secs(245)), "4 min 5 s");
        assert_eq!(
            short_duration(SignedDuration::from_secs(7_380)),
            "2 h 3 min"
        );
    }
}
