//! Experiments as graphs of stages, and a bounded cache of stage results.
//!
//! A lesson's run is a few named stages (world → logs → fit/index → evaluation → figures). Each
//! lesson declares its [`Graph`] in one place: for every stage, the parameters it reads itself
//! and the stages whose results it uses. A stage's [`Key`] is made of the values of every
//! parameter it depends on, directly or through the stages it uses, so two queries that agree on
//! those values share the stage's result: a change of ef_search reuses the graphs, a change of
//! the cap reuses the logged rows.
//!
//! A [`StageCache`] keeps recent results within a declared memory budget and evicts the least
//! recently used. Each browser worker keeps one across runs; the CLI passes a disabled one and
//! computes everything from scratch. Stages are pure functions of their key, so a result from
//! the cache is the result a fresh run would compute (timings aside: a reused stage reports the
//! time it took when it ran). `tests::walk` checks exactly that for every lesson.

use super::params::LessonParams;
use std::any::Any;
use std::fmt;
use std::rc::Rc;

/// One stage of an experiment.
#[derive(Clone, Copy, Debug)]
pub struct Stage {
    pub name: &'static str,
    /// The parameters this stage reads itself.
    pub reads: &'static [&'static str],
    /// The stages whose results it uses (declared before it in the graph).
    pub uses: &'static [&'static str],
}

/// A lesson's stages, in an order where every stage comes after the stages it uses.
#[derive(Clone, Copy, Debug)]
pub struct Graph {
    pub lesson: &'static str,
    pub stages: &'static [Stage],
}

impl Graph {
    pub fn stage(&self, name: &str) -> &'static Stage {
        self.stages.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{}: no stage {name}", self.lesson))
    }

    /// Every parameter the stage depends on, directly or through the stages it uses, in the
    /// order of the lesson's parameter specs.
    pub fn inputs<P: LessonParams>(&self, name: &str) -> Vec<&'static str> {
        let mut reads = Vec::new();
        let mut pending = vec![self.stage(name)];
        let mut seen: Vec<&str> = Vec::new();
        while let Some(stage) = pending.pop() {
            if seen.contains(&stage.name) {
                continue;
            }
            seen.push(stage.name);
            reads.extend_from_slice(stage.reads);
            pending.extend(stage.uses.iter().map(|u| self.stage(u)));
        }
        P::specs().iter().map(|s| s.name).filter(|n| reads.contains(n)).collect()
    }

    /// The key of a stage's result for these parameters.
    pub fn key<P: LessonParams>(&self, name: &'static str, params: &P) -> Key {
        let values: Vec<String> = self.inputs::<P>(name).iter().map(|n| format!("{n}={}", params.get(n))).collect();
        Key(format!("{}/{name}?{}", self.lesson, values.join("&")))
    }

    /// What a test checks once per lesson: names are real parameters and earlier stages (so the
    /// graph has no cycle), and every parameter is read by some stage (none silently ignored).
    pub fn validate<P: LessonParams>(&self) -> Result<(), String> {
        let names: Vec<&str> = P::specs().iter().map(|s| s.name).collect();
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(bad) = stage.reads.iter().find(|r| !names.contains(r)) {
                return Err(format!("{}/{}: reads “{bad}”, which is no parameter", self.lesson, stage.name));
            }
            if let Some(bad) = stage.uses.iter().find(|u| !self.stages[..i].iter().any(|s| s.name == **u)) {
                return Err(format!("{}/{}: uses “{bad}”, which is no earlier stage", self.lesson, stage.name));
            }
            if self.stages[..i].iter().any(|s| s.name == stage.name) {
                return Err(format!("{}: stage {} twice", self.lesson, stage.name));
            }
        }
        match names.iter().find(|n| !self.stages.iter().any(|s| s.reads.contains(n))) {
            Some(unread) => Err(format!("{}: no stage reads “{unread}”", self.lesson)),
            None => Ok(()),
        }
    }

    /// The graph in words, one line a stage: `logs ← world; logging, logs`.
    pub fn describe(&self) -> String {
        self.stages
            .iter()
            .map(|s| {
                let mut from: Vec<String> = s.uses.iter().map(|u| u.to_string()).collect();
                if !s.reads.is_empty() {
                    from.push(s.reads.join(", "));
                }
                format!("{} ← {}", s.name, from.join("; "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Names one stage result: the lesson, the stage and the values of everything it depends on,
/// plus whatever else tells results apart (a catalogue size, a replication range).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn with(self, extra: impl fmt::Display) -> Key {
        Key(format!("{}|{extra}", self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// About how many bytes a stage result holds (its heap buffers), for the cache's budget.
pub trait Footprint {
    fn footprint(&self) -> usize;
}

/// Bytes of a vector's buffer.
pub fn bytes_of<T>(v: &[T]) -> usize {
    std::mem::size_of_val(v)
}

/// What the allocator adds to each small heap buffer (header and rounding): logged rows are a few
/// small vectors each, so their buffers' bytes alone would undercount by about a third.
pub const PER_BUFFER: usize = 16;

/// A small vector's bytes, as the allocator sees them.
pub fn small_buffer_bytes<T>(v: &[T]) -> usize {
    bytes_of(v) + PER_BUFFER
}

impl<T: Footprint> Footprint for std::cell::RefCell<T> {
    fn footprint(&self) -> usize {
        self.borrow().footprint()
    }
}

impl<T: Footprint> Footprint for Vec<T> {
    fn footprint(&self) -> usize {
        self.iter().map(Footprint::footprint).sum::<usize>() + bytes_of(self)
    }
}

impl<A: Footprint, B: Footprint> Footprint for (A, B) {
    fn footprint(&self) -> usize {
        self.0.footprint() + self.1.footprint()
    }
}

impl<T: Footprint> Footprint for Option<T> {
    fn footprint(&self) -> usize {
        self.as_ref().map_or(0, Footprint::footprint)
    }
}

/// A stage that can fail keeps its error as well as its value.
impl<T: Footprint> Footprint for Result<T, String> {
    fn footprint(&self) -> usize {
        match self {
            Ok(v) => v.footprint(),
            Err(e) => e.capacity(),
        }
    }
}

/// `Footprint` for values that own no heap buffer (their size is counted by the cache).
#[macro_export]
macro_rules! no_heap_footprint {
    ($($ty:ty),* $(,)?) => {
        $(impl $crate::core::stages::Footprint for $ty {
            fn footprint(&self) -> usize {
                0
            }
        })*
    };
}

no_heap_footprint!(f64, u32);

impl Footprint for String {
    fn footprint(&self) -> usize {
        self.capacity()
    }
}

struct Entry {
    key: Key,
    value: Rc<dyn Any>,
    bytes: usize,
    last_used: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

/// Recent stage results within a memory budget, least recently used evicted first.
pub struct StageCache {
    budget_bytes: usize,
    used_bytes: usize,
    tick: u64,
    entries: Vec<Entry>,
    pub stats: CacheStats,
}

/// What one browser worker may keep (each worker has its own cache).
pub const WORKER_BUDGET_BYTES: usize = 160 << 20;

impl StageCache {
    pub const fn new(budget_bytes: usize) -> StageCache {
        StageCache { budget_bytes, used_bytes: 0, tick: 0, entries: Vec::new(), stats: CacheStats { hits: 0, misses: 0, evictions: 0 } }
    }

    /// Keeps nothing: every stage is computed (the CLI, the reference runs of the tests).
    pub const fn disabled() -> StageCache {
        StageCache::new(0)
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The result under `key`, if kept (and of type T).
    pub fn get<T: 'static>(&mut self, key: &Key) -> Option<Rc<T>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.iter_mut().find(|e| e.key == *key)?;
        let value = Rc::clone(&entry.value).downcast::<T>().ok()?;
        entry.last_used = tick;
        self.stats.hits += 1;
        Some(value)
    }

    /// Whether a result is kept under `key` (not a use: neither its age nor the stats change).
    pub fn contains(&self, key: &Key) -> bool {
        self.entries.iter().any(|e| e.key == *key)
    }

    /// Keep `value` under `key` if it fits the budget, evicting the least recently used.
    pub fn insert<T: Footprint + 'static>(&mut self, key: Key, value: Rc<T>) {
        let bytes = value.footprint() + std::mem::size_of::<T>() + key.0.len();
        if bytes > self.budget_bytes {
            return;
        }
        self.remove(&key);
        while self.used_bytes + bytes > self.budget_bytes {
            let oldest =
                self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i).expect("over budget means non-empty");
            let evicted = self.entries.swap_remove(oldest);
            self.used_bytes -= evicted.bytes;
            self.stats.evictions += 1;
        }
        self.tick += 1;
        self.used_bytes += bytes;
        self.entries.push(Entry { key, value, bytes, last_used: self.tick });
    }

    fn remove(&mut self, key: &Key) {
        if let Some(i) = self.entries.iter().position(|e| e.key == *key) {
            self.used_bytes -= self.entries.swap_remove(i).bytes;
        }
    }

    /// The kept result under `key`, or `compute` it (it may use the cache for the stages it
    /// depends on) and keep it.
    pub fn get_or_compute<T: Footprint + 'static>(&mut self, key: Key, compute: impl FnOnce(&mut StageCache) -> T) -> Rc<T> {
        if let Some(value) = self.get::<T>(&key) {
            return value;
        }
        self.stats.misses += 1;
        let value = Rc::new(compute(self));
        self.insert(key, Rc::clone(&value));
        value
    }

    /// The kept result under `key`; else, if `compute`, as [`StageCache::get_or_compute`]; else
    /// None (a preview leaves out a costly extra that the full run, next, computes).
    pub fn get_or_compute_if<T: Footprint + 'static>(
        &mut self,
        compute: bool,
        key: Key,
        f: impl FnOnce(&mut StageCache) -> T,
    ) -> Option<Rc<T>> {
        if compute {
            Some(self.get_or_compute(key, f))
        } else {
            self.get::<T>(&key)
        }
    }
}

impl Default for StageCache {
    fn default() -> Self {
        StageCache::disabled()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::experiment::{merge_query, run_part_query_cached, run_query, Experiment, Part};
    use crate::core::params::{from_query, to_query, LessonParams};
    use rand::{RngExt, SeedableRng};

    struct Blob(Vec<u8>);
    impl Footprint for Blob {
        fn footprint(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn keeps_results_within_budget_and_evicts_the_least_recently_used() {
        let mut cache = StageCache::new(3_000);
        let key = |i: u32| Key(format!("k{i}"));
        let mut computed = 0;
        for i in 0..3 {
            cache.get_or_compute(key(i), |_| {
                computed += 1;
                Blob(vec![0; 900])
            });
        }
        assert_eq!((cache.len(), computed), (3, 3));
        // Touch k0, then add k3: k1 (least recently used) goes.
        assert!(cache.get::<Blob>(&key(0)).is_some());
        cache.get_or_compute(key(3), |_| Blob(vec![0; 900]));
        assert!(cache.get::<Blob>(&key(1)).is_none());
        assert!(cache.get::<Blob>(&key(0)).is_some() && cache.get::<Blob>(&key(2)).is_some());
        assert!(cache.used_bytes() <= 3_000);
        assert_eq!(cache.stats.evictions, 1);
        // Too large for the budget: computed, returned, not kept.
        let big = cache.get_or_compute(key(9), |_| Blob(vec![0; 10_000]));
        assert_eq!(big.0.len(), 10_000);
        assert!(cache.get::<Blob>(&key(9)).is_none());
        // A disabled cache keeps nothing; the wrong type is a miss, not a panic.
        let mut off = StageCache::disabled();
        off.get_or_compute(key(0), |_| Blob(vec![1]));
        assert!(off.is_empty());
        assert!(cache.get::<String>(&key(0)).is_none());
    }

    #[test]
    fn nested_stages_use_the_cache_for_what_they_depend_on() {
        let mut cache = StageCache::new(1 << 20);
        let mut world_builds = 0;
        for logs in [10, 20, 10] {
            let world_key = Key("world".into());
            let logs_key = Key(format!("logs={logs}"));
            let rows = cache.get_or_compute(logs_key, |cache| {
                let world = cache.get_or_compute(world_key, |_| {
                    world_builds += 1;
                    Blob(vec![7; 100])
                });
                Blob(vec![world.0[0]; logs])
            });
            assert_eq!(rows.0.len(), logs);
        }
        assert_eq!(world_builds, 1);
        assert_eq!((cache.stats.hits, cache.stats.misses), (2, 3));
    }

    /// The report `parts` of `query` give, run one after the other in one worker's `cache`
    /// and merged as the page merges them.
    pub fn report_of_parts<E: Experiment + 'static>(query: &str, parts: &[Part], cache: &mut StageCache) -> E::Report {
        let partials: Vec<String> = parts.iter().map(|&part| run_part_query_cached::<E>(query, part, cache, &mut ()).unwrap()).collect();
        serde_json::from_str(&merge_query::<E>(query, &partials).unwrap()).unwrap()
    }

    /// The fields at these paths set to 0 (`sizes.build_ms`: the field `build_ms` of every
    /// element of the array `sizes`; arrays are crossed without naming them), so that reports
    /// compare bit for bit otherwise.
    pub fn without_timings(value: &mut serde_json::Value, paths: &[&str]) {
        fn clear(value: &mut serde_json::Value, path: &[&str]) {
            match value {
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| clear(v, path)),
                serde_json::Value::Object(map) => match path {
                    [] => {}
                    [last] => {
                        if let Some(v) = map.get_mut(*last) {
                            *v = serde_json::Value::from(0);
                        }
                    }
                    [first, rest @ ..] => {
                        if let Some(v) = map.get_mut(*first) {
                            clear(v, rest);
                        }
                    }
                },
                _ => {}
            }
        }
        for path in paths {
            clear(value, &path.split('.').collect::<Vec<_>>());
        }
    }

    #[test]
    fn timing_paths_cross_arrays() {
        let mut v: serde_json::Value =
            serde_json::from_str(r#"{"ms":1,"sizes":[{"ms":2,"n":3},{"ms":4,"n":5}],"other":{"ms":6}}"#).unwrap();
        without_timings(&mut v, &["sizes.ms", "ms"]);
        assert_eq!(v.to_string(), r#"{"ms":0,"other":{"ms":6},"sizes":[{"ms":0,"n":3},{"ms":0,"n":5}]}"#);
    }

    /// Walk a lesson through `steps` random parameter changes with one cache per worker (as the
    /// page does, `workers` of them, each running its part), and check that every report equals
    /// a fresh run of the same query with nothing cached, bit for bit, timings aside. `choices`
    /// lists the values each changed parameter may take (small, so that the walk is quick);
    /// `base` fixes the rest. Returns the cache statistics of worker 0.
    pub fn walk<E: Experiment + 'static>(base: &str, choices: &[(&str, &[&str])], steps: u32, seed: u64) -> CacheStats {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut caches: Vec<StageCache> = (0..2).map(|_| StageCache::new(WORKER_BUDGET_BYTES)).collect();
        let mut current: Vec<(String, String)> = Vec::new();
        let compare_every = 1;
        for step in 1..=steps {
            let (name, values) = choices[rng.random_range(0..choices.len())];
            let value = values[rng.random_range(0..values.len())];
            current.retain(|(n, _)| n != name);
            current.push((name.to_string(), value.to_string()));
            let overrides: Vec<String> = current.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let (params, _) = from_query::<E::Params>(&format!("{base}&{}", overrides.join("&")));
            let query = to_query(&*params);
            let parts = E::parts(&params).clamp(1, caches.len() as u32);
            let partials: Vec<String> = (0..parts)
                .map(|index| {
                    run_part_query_cached::<E>(&query, Part::new(index, parts), &mut caches[index as usize], &mut ())
                        .unwrap_or_else(|e| panic!("step {step} ({query}): {e}"))
                })
                .collect();
            if step % compare_every != 0 && step != steps {
                continue;
            }
            let cached = merge_query::<E>(&query, &partials).unwrap();
            let fresh = run_query::<E>(&query, &mut ()).unwrap();
            let strip = |json: &str| {
                let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
                without_timings(&mut v, E::TIMINGS);
                v
            };
            assert!(
                strip(&cached) == strip(&fresh),
                "step {step}: the cached report differs from a fresh run for {query}\ncached: {}\nfresh:  {}",
                &cached[..cached.len().min(600)],
                &fresh[..fresh.len().min(600)]
            );
        }
        let _ = <E::Params as LessonParams>::specs();
        caches[0].stats
    }
}
