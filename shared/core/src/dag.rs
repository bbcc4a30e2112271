//! The dependency graph of a set of tables: cycle detection that names the cycle, and the
//! frozen plan of a run (each job's parents and children inside the run and its priority).
//!
//! Priority is Maestro's rule: the number of a job's descendants, so that the job that
//! unblocks the most work goes first.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use fixedbitset::FixedBitSet;
use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::catalog::{TableDoc, TableId};

/// A dependency cycle, as the path that closes it, in the direction data flows: `a → b → c → a`
/// (b reads a, c reads b, a reads c).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Cycle {
    pub path: Vec<TableId>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dependency cycle: ")?;
        for (i, id) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// One table's place in a run's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedJob {
    pub table: TableId,
    /// Parents that are in the same run, which it waits for.
    pub parents: Vec<TableId>,
    /// Parents outside the run (another frequency's tables): not waited for.
    pub outside_parents: Vec<TableId>,
    pub children: Vec<TableId>,
    /// How many jobs of the run depend on it, directly or not.
    pub priority: u32,
}

struct Graph<'a> {
    graph: DiGraph<&'a TableId, ()>,
}

impl<'a> Graph<'a> {
    /// Node `i` is `nodes[i]`'s table; an edge runs from each parent that is also a node to
    /// its child. The tables must be distinct.
    fn new(nodes: &[(&'a TableId, &'a [TableId])], index: &HashMap<&'a TableId, usize>) -> Self {
        let edges: usize = nodes.iter().map(|(_, p)| p.len()).sum();
        let mut graph = DiGraph::with_capacity(nodes.len(), edges);
        for (table, _) in nodes {
            graph.add_node(*table);
        }
        for (child, (_, its_parents)) in nodes.iter().enumerate() {
            for (k, parent) in its_parents.iter().enumerate() {
                // A parent named twice is one edge.
                if let Some(&p) = index.get(parent)
                    && !its_parents[..k].contains(parent)
                {
                    graph.add_edge(NodeIndex::new(p), NodeIndex::new(child), ());
                }
            }
        }
        Self { graph }
    }

    /// The nodes in dependency order, or the first cycle found.
    fn order(&self) -> Result<Vec<NodeIndex>, Cycle> {
        toposort(&self.graph, None).map_err(|cycle| self.cycle_through(cycle.node_id()))
    }

    /// The shortest cycle through the strongly connected component holding `start`, starting
    /// at the component's smallest table id, so that the same catalog names the same cycle.
    fn cycle_through(&self, start: NodeIndex) -> Cycle {
        let component: BTreeSet<NodeIndex> = petgraph::algo::kosaraju_scc(&self.graph)
            .into_iter()
            .find(|c| c.contains(&start))
            .unwrap_or_else(|| vec![start])
            .into_iter()
            .collect();
        let first = *component
            .iter()
            .min_by_key(|&&n| self.graph[n])
            .expect("a component is not empty");
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([first]);
        while let Some(node) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self
                .graph
                .neighbors(node)
                .filter(|n| component.contains(n))
                .collect();
            next.sort_by_key(|&n| self.graph[n]);
            for n in next {
                if n == first {
                    // Walk back from `node` to `first`, then read it forwards and close it.
                    let mut path = vec![self.graph[node].clone()];
                    let mut at = node;
                    while at != first {
                        at = previous[&at];
                        path.push(self.graph[at].clone());
                    }
                    path.reverse();
                    path.push(self.graph[first].clone());
                    return Cycle { path };
                }
                if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(n) {
                    e.insert(node);
                    queue.push_back(n);
                }
            }
        }
        unreachable!("a strongly connected component from toposort's cycle closes a cycle")
    }
}

/// The position of each table in `nodes`.
fn positions<'a>(nodes: &[(&'a TableId, &'a [TableId])]) -> HashMap<&'a TableId, usize> {
    let index: HashMap<&TableId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (*t, i))
        .collect();
    debug_assert_eq!(index.len(), nodes.len(), "a table is planned once");
    index
}

fn as_nodes(parents: &BTreeMap<TableId, Vec<TableId>>) -> Vec<(&TableId, &[TableId])> {
    parents.iter().map(|(t, p)| (t, p.as_slice())).collect()
}

/// Checks that the tables, each with its parents, form no cycle.
pub fn check_acyclic(parents: &BTreeMap<TableId, Vec<TableId>>) -> Result<(), Cycle> {
    let nodes = as_nodes(parents);
    Graph::new(&nodes, &positions(&nodes)).order().map(|_| ())
}

/// Plans a run of the given tables (each with all its parents, inside the run or not).
/// Jobs come out in dependency order.
pub fn plan(parents: &BTreeMap<TableId, Vec<TableId>>) -> Result<Vec<PlannedJob>, Cycle> {
    Ok(plan_nodes(&as_nodes(parents))?
        .into_iter()
        .map(|(_, job)| job)
        .collect())
}

/// Plans a run of distinct tables, each with all its parents (inside the run or not): the
/// jobs in dependency order, each with the position of its table in `nodes`.
pub fn plan_nodes(nodes: &[(&TableId, &[TableId])]) -> Result<Vec<(usize, PlannedJob)>, Cycle> {
    let index = positions(nodes);
    let graph = Graph::new(nodes, &index);
    let order = graph.order()?;
    let g = &graph.graph;
    let n = g.node_count();

    // Descendant sets, children first: a node's set is the union of its children and theirs.
    // A set is counted when made and dropped once every parent has taken it in, which keeps
    // few of the n sets of n bits alive at once.
    let mut waiting_parents: Vec<usize> = (0..n)
        .map(|i| {
            g.neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                .count()
        })
        .collect();
    let mut descendants: Vec<FixedBitSet> = vec![FixedBitSet::new(); n];
    let mut priority = vec![0u32; n];
    for &node in order.iter().rev() {
        let mut set = FixedBitSet::with_capacity(n);
        for child in g.neighbors(node) {
            let c = child.index();
            set.insert(c);
            set.union_with(&descendants[c]);
            waiting_parents[c] -= 1;
            if waiting_parents[c] == 0 {
                descendants[c] = FixedBitSet::new();
            }
        }
        priority[node.index()] = u32::try_from(set.count_ones(..)).unwrap_or(u32::MAX);
        if waiting_parents[node.index()] > 0 {
            descendants[node.index()] = set;
        }
    }

    let jobs = order
        .iter()
        .map(|&node| {
            let i = node.index();
            let (table, its_parents) = nodes[i];
            let mut in_run = Vec::new();
            let mut outside = Vec::new();
            for parent in its_parents {
                if index.contains_key(parent) {
                    in_run.push(parent.clone());
                } else {
                    outside.push(parent.clone());
                }
            }
            in_run.sort();
            in_run.dedup();
            outside.sort();
            outside.dedup();
            let mut children: Vec<TableId> = g.neighbors(node).map(|c| g[c].clone()).collect();
            children.sort();
            (
                i,
                PlannedJob {
                    table: table.clone(),
                    parents: in_run,
                    outside_parents: outside,
                    children,
                    priority: priority[i],
                },
            )
        })
        .collect();
    Ok(jobs)
}

/// Every table downstream of `roots` (themselves included), from the catalog's parents.
pub fn downstream(tables: &[TableDoc], roots: &[TableId]) -> BTreeSet<TableId> {
    let mut children: BTreeMap<&TableId, Vec<&TableId>> = BTreeMap::new();
    for t in tables {
        for p in &t.parents {
            children.entry(p).or_default().push(&t.id);
        }
    }
    let mut seen: BTreeSet<TableId> = roots.iter().cloned().collect();
    let mut queue: VecDeque<TableId> = roots.iter().cloned().collect();
    while let Some(t) = queue.pop_front() {
        for c in children.get(&t).into_iter().flatten() {
            if seen.insert((*c).clone()) {
                queue.push_back((*c).clone());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> TableId {
        s.parse().unwrap()
    }

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<TableId, Vec<TableId>> {
        edges
            .iter()
            .map(|(child, parents)| (id(child), parents.iter().map(|p| id(p)).collect()))
            .collect()
    }

    #[test]
    fn a_diamond_plans_with_parents_children_and_priorities() {
        let g = graph(&[
            ("d.a", &[]),
            ("d.b", &["d.a"]),
            ("d.c", &["d.a", "x.outside"]),
            ("d.d", &["d.b", "d.c"]),
            ("d.lone", &[]),
        ]);
        let jobs = plan(&g).unwrap();
        let by_table: BTreeMap<String, &PlannedJob> =
            jobs.iter().map(|j| (j.table.to_string(), j)).collect();
        assert_eq!(by_table["d.a"].priority, 3);
        assert_eq!(by_table["d.b"].priority, 1);
        assert_eq!(by_table["d.d"].priority, 0);
        assert_eq!(by_table["d.lone"].priority, 0);
        assert_eq!(by_table["d.a"].children, vec![id("d.b"), id("d.c")]);
        assert_eq!(by_table["d.c"].parents, vec![id("d.a")]);
        assert_eq!(by_table["d.c"].outside_parents, vec![id("x.outside")]);
        let position = |t: &str| jobs.iter().position(|j| j.table == id(t)).unwrap();
        assert!(position("d.a") < position("d.b"));
        assert!(position("d.b") < position("d.d"));
        assert!(position("d.c") < position("d.d"));
    }

    #[test]
    fn a_cycle_is_named_by_its_path_from_its_smallest_table() {
        let g = graph(&[
            ("d.a", &[]),
            ("d.b", &["d.a", "d.d"]),
            ("d.c", &["d.b"]),
            ("d.d", &["d.c"]),
        ]);
        let cycle = plan(&g).unwrap_err();
        assert_eq!(cycle.to_string(), "dependency cycle: d.b → d.c → d.d → d.b");
        assert_eq!(check_acyclic(&g), Err(cycle));
    }

    #[test]
    fn a_table_reading_itself_is_a_cycle() {
        let g = graph(&[("d.a", &["d.a"])]);
        assert_eq!(
            plan(&g).unwrap_err().to_string(),
            "dependency cycle: d.a → d.a"
        );
    }

    #[test]
    fn a_parent_named_twice_is_one_edge() {
        let g = graph(&[("d.a", &[]), ("d.b", &["d.a", "d.a"])]);
        let jobs = plan(&g).unwrap();
        assert_eq!(jobs[0].children, vec![id("d.b")]);
        assert_eq!(jobs[1].parents, vec![id("d.a")]);
    }

    fn random_dag() -> impl Strategy<Value = BTreeMap<TableId, Vec<TableId>>> {
        // Edges only from lower to higher numbers: acyclic by construction.
        (2usize..40).prop_flat_map(|n| {
            proptest::collection::vec(proptest::collection::vec(0usize..n, 0..4), n).prop_map(
                move |parents| {
                    parents
                        .into_iter()
                        .enumerate()
                        .map(|(i, ps)| {
                            let ps = ps
                                .into_iter()
                                .filter(|&p| p < i)
                                .map(|p| id(&format!("d.t{p:02}")))
                                .collect();
                            (id(&format!("d.t{i:02}")), ps)
                        })
                        .collect()
                },
            )
        })
    }

    proptest! {
        #[test]
        fn plans_put_parents_first_and_count_descendants(g in random_dag()) {
            let jobs = plan(&g).unwrap();
            prop_assert_eq!(jobs.len(), g.len());
            let position: BTreeMap<&TableId, usize> =
                jobs.iter().enumerate().map(|(i, j)| (&j.table, i)).collect();
            for job in &jobs {
                for parent in &job.parents {
                    prop_assert!(position[parent] < position[&job.table]);
                }
                // Descendants by brute force.
                let mut seen = BTreeSet::new();
                let mut stack: Vec<&TableId> = job.children.iter().collect();
                while let Some(t) = stack.pop() {
                    if seen.insert(t.clone()) {
                        let j = &jobs[position[t]];
                        stack.extend(j.children.iter());
                    }
                }
                prop_assert_eq!(job.priority as usize, seen.len());
            }
        }

        #[test]
        fn adding_a_back_edge_makes_a_cycle_whose_path_is_real(g in random_dag(), a in 0usize..40, b in 0usize..40) {
            let n = g.len();
            let (lo, hi) = (a.min(b) % n, a.max(b) % n);
            let mut g = g;
            let (lo_id, hi_id) = (id(&format!("d.t{lo:02}")), id(&format!("d.t{hi:02}")));
            // Whether hi already depends on lo, directly or not: its ancestors, by brute force.
            let mut ancestors = BTreeSet::new();
            let mut stack: Vec<&TableId> = g[&hi_id].iter().collect();
            while let Some(t) = stack.pop() {
                if ancestors.insert(t.clone()) {
                    stack.extend(g[t].iter());
                }
            }
            let makes_a_cycle = lo == hi || ancestors.contains(&lo_id);
            // Make lo depend on hi.
            g.get_mut(&lo_id).unwrap().push(hi_id);
            match plan(&g) {
                Err(cycle) => {
                    prop_assert!(makes_a_cycle, "a cycle where there is none: {:?}", cycle.path);
                    prop_assert_eq!(cycle.path.first(), cycle.path.last());
                    for pair in cycle.path.windows(2) {
                        // Each step goes from a parent to a child that lists it.
                        prop_assert!(g[&pair[1]].contains(&pair[0]), "{} is not a parent of {}", pair[0], pair[1]);
                    }
                }
                Ok(jobs) => {
                    prop_assert!(!makes_a_cycle, "the cycle through {lo_id} and back was not found");
                    prop_assert_eq!(jobs.len(), g.len());
                }
            }
        }
    }

    #[test]
    fn downstream_follows_every_path() {
        let doc = |id: &str, parents: &[&str]| {
            let id: TableId = id.parse().unwrap();
            TableDoc::unanalysed(
                id.clone(),
                crate::catalog::Table::query(&id, "SELECT 1"),
                parents.iter().map(|p| p.parse().unwrap()).collect(),
                "2026-01-01T00:00:00Z".parse().unwrap(),
            )
        };
        let tables = [
            doc("d.a", &[]),
            doc("d.b", &["d.a"]),
            doc("d.c", &["d.b"]),
            doc("d.d", &["d.a", "d.x"]),
            doc("d.x", &[]),
        ];
        let got = downstream(&tables, &["d.b".parse().unwrap()]);
        let names: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["d.b", "d.c"]);
        let from_a = downstream(&tables, &["d.a".parse().unwrap()]);
        assert_eq!(from_a.len(), 4);
    }
}
