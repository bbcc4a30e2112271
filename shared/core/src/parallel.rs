//! Work over many items on all cores, answers in the items' order: a catalog's files read,
//! its tables checked, their SQL read, their dependencies resolved, their digests taken.
//! Scoped threads of the standard library, nothing async.

/// `f` of each item, on up to as many threads as there are cores (this one and the others
/// started for the call), each given at least `least` items (fewer items: all on this
/// thread); the answers in the items' order. A panic in `f` is a panic here.
pub fn map<T: Sync, R: Send>(items: &[T], least: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len() / least.max(1)).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    let (first, rest) = items.split_at(chunk);
    std::thread::scope(|scope| {
        // The first part on this thread, the others on threads of their own.
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        // Gathered into one allocation of the right size: answers can be large (a table
        // read from its file), and a growing vector would copy them as it grows.
        let mut answers = Vec::with_capacity(items.len());
        answers.extend(first.iter().map(f));
        for handle in handles {
            answers.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        answers
    })
}

/// How many threads can run at once, asked once: the standard library reads the cgroup's
/// CPU quota files each time it is asked, and a check asks for every step it parallelises.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_come_in_the_items_order_however_many_threads() {
        let items: Vec<u32> = (0..10_000).collect();
        for least in [1, 64, 20_000] {
            let doubled = super::map(&items, least, |i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(super::map(&[] as &[u32], 1, |i| *i).is_empty());
    }
}
