//! HNSW (hierarchical navigable small world graphs, Malkov & Yashunin 2018), written here.
//!
//! Every item is a node on layer 0 and, with probability decaying geometrically, on higher layers.
//! A search enters at the top, walks greedily down the sparse layers, then runs a beam search of
//! width `ef` on layer 0. Building inserts items one by one with the same search (width
//! `ef_construction`) and links each to `M` neighbours chosen by the paper's diversity heuristic.
//! Deterministic for a seed: levels come from a ChaCha stream, ties break by item id.

use super::{dot, dot4, l2, l2_4, Vectors};
use crate::core::math::ln;
use crate::core::progress::Progress;
use crate::core::rng::{self, Stream};
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Distance −x·q: the graph navigates inner products directly (not a metric).
    InnerProduct,
    /// Squared L2 distance, for the augmented vectors.
    L2,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub m: usize,
    pub ef_construction: usize,
    pub seed: u64,
}

#[derive(Clone)]
pub struct Hnsw {
    pub space: Space,
    dim: usize,
    nodes: usize,
    m: usize,
    m0: usize,
    /// Slots per node on layer 0: m0 plus a few spare ones for the connectivity repair.
    stride0: usize,
    ef_construction: usize,
    /// Layer 0, one block per node, as hnswlib lays it out: the number of links, `stride0` link
    /// slots, then the node's vector (its f32 bits), padded to whole 64-byte lines. A search
    /// reads a node's vector when it scores the node and its links when it expands it: side by
    /// side, the second read finds its line already fetched (with separate arrays it missed).
    blocks: Vec<Line>,
    /// u32 words per block (a multiple of 16).
    block: usize,
    /// Where the vector starts in a block: on a line of its own, so that it spans as few lines
    /// as it can (64 floats: exactly 4).
    vector_at: usize,
    /// Links on layers ≥ 1, for the few nodes that have them: upper[node][layer − 1].
    upper: Vec<Vec<Vec<u32>>>,
    levels: Vec<u8>,
    /// The level stream, where the last insertion left it: a graph grown by more items draws
    /// their levels as a build over all of them would.
    level_rng: rng::Rng,
    /// The nodes the reachability repair gave a link (one entry per link, in order): undone
    /// before the graph grows, so that the insertions see what a build over all items would.
    repair_links: Vec<u32>,
    repaired: bool,
    entry: u32,
    max_level: u8,
    visited: Vec<u32>,
    stamp: u32,
    /// Buffers reused by every search (no allocation per query).
    candidates: BinaryHeap<std::cmp::Reverse<Near>>,
    results: BinaryHeap<Near>,
    scratch: Vec<u32>,
    distances: Vec<f32>,
    /// Distance computations since the counter was last read.
    pub distance_count: u64,
}

/// One 64-byte cache line of layer 0's blocks.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

fn words_of(blocks: &[Line]) -> &[u32] {
    // SAFETY: a Line is 16 u32s with no padding (repr(C)); the slice covers exactly them.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr() as *const u32, blocks.len() * 16) }
}

/// A node's layer-0 links in the blocks' words.
#[inline]
fn links0(words: &[u32], block: usize, node: u32) -> &[u32] {
    let start = node as usize * block;
    &words[start + 1..start + 1 + words[start] as usize]
}

/// Ask the cache for a row before it is read: a hint on x86-64 (one per 64-byte line), nothing
/// elsewhere. It changes no result.
#[inline(always)]
pub(super) fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = row.as_ptr() as *const i8;
        for line in (0..std::mem::size_of_val(row)).step_by(64) {
            // SAFETY: the address lies inside `row`; a prefetch never faults nor writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(line)) };
        }
    }
    // wasm has no prefetch: a plain load of each line, whose value is unused, sets the misses
    // in flight the same way (the reads do not depend on each other).
    #[cfg(target_arch = "wasm32")]
    {
        let start = row.as_ptr() as *const u32;
        let mut sink = 0u32;
        for word in (0..row.len()).step_by(16) {
            // SAFETY: the address lies inside `row`.
            sink ^= unsafe { std::ptr::read_volatile(start.add(word)) };
        }
        std::hint::black_box(sink);
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "wasm32")))]
    let _ = row;
}

/// Layer 0's size above which a search asks for its rows ahead (below it, they are in cache:
/// on a 200-node graph the hints took a tenth of a search).
const PREFETCH_ABOVE_BYTES: usize = 256 << 10;

/// Extra layer-0 slots per node, used only by the reachability repair.
const SPARE_LINKS: usize = 4;
/// How far from a lost node the repair looks for a reachable node with a free slot before it
/// falls back to a search. Three links: on 48,267 uniform vectors (inner-product graph) the
/// search was needed for 44,289 lost nodes with one link, 14,428 with two, none with three; the
/// build took 4.8, 3.1 and 2.1 s, with the same recall at every ef.
const REPAIR_HOPS: usize = 3;

/// Where the repair hangs lost nodes: in trees. A reachable node the repair first links from
/// (a root) takes one repair link, to the first lost node of its tree; each lost node in a tree
/// takes up to [`SPARE_LINKS`] more, filled breadth first. The repair used to link every lost
/// node straight from a reachable neighbour of its own: those are the catalogue's long vectors,
/// the nodes every search expands, and each carried up to four links to short vectors that no
/// search wants (71,937 repair links on 10⁵ clustered vectors: 992 distances per query at ef 32
/// against 401 without the repair). A tree's lost nodes are rarely expanded, so their links are
/// rarely scored. Built and dropped by one repair: the graph keeps only its links.
struct RepairTrees {
    /// The tree a node roots or belongs to (NONE: neither).
    tree_of: Vec<u32>,
    /// Repair links each node has taken.
    taken: Vec<u8>,
    trees: Vec<RepairTree>,
}

struct RepairTree {
    /// Its nodes in the order they joined, its root first.
    nodes: Vec<u32>,
    /// The first of them that may still take a link (those before it cannot).
    first_free: usize,
}

impl RepairTrees {
    const NONE: u32 = u32::MAX;

    fn new(nodes: usize) -> RepairTrees {
        RepairTrees { tree_of: vec![RepairTrees::NONE; nodes], taken: vec![0; nodes], trees: Vec::new() }
    }

    /// Whether node `w` may take another repair link: one in all as a root, SPARE_LINKS as a
    /// tree's lost node, and only into a free slot.
    fn room(&self, graph: &Hnsw, w: u32, is_root: bool) -> bool {
        let limit = if is_root { 1 } else { SPARE_LINKS as u8 };
        self.taken[w as usize] < limit && graph.neighbours(w, 0).len() < graph.stride0
    }

    /// Whether a lost node could hang under reachable node `w`: in the tree `w` is part of, if
    /// that tree still has room, else as the first link of a new tree rooted at `w`.
    fn can_take(&self, graph: &Hnsw, w: u32) -> bool {
        match self.tree_of[w as usize] {
            RepairTrees::NONE => self.room(graph, w, true),
            t => {
                let tree = &self.trees[t as usize];
                tree.first_free < tree.nodes.len()
            }
        }
    }

    /// Links lost node `v` into the tree of `anchor` (which [`Self::can_take`] it): from that
    /// tree's first node with room, whose layer-0 list it joins; that node is returned (for the
    /// repair's undo log). The tree's first node with room then moves past the nodes now full.
    fn link(&mut self, graph: &mut Hnsw, anchor: u32, v: u32) -> u32 {
        let t = match self.tree_of[anchor as usize] {
            RepairTrees::NONE => {
                self.trees.push(RepairTree { nodes: vec![anchor], first_free: 0 });
                self.tree_of[anchor as usize] = (self.trees.len() - 1) as u32;
                self.trees.len() - 1
            }
            t => t as usize,
        };
        let mut first_free = self.trees[t].first_free;
        let w = self.trees[t].nodes[first_free];
        debug_assert!(self.room(graph, w, first_free == 0));
        let mut list = graph.neighbours(w, 0).to_vec();
        list.push(v);
        graph.set_neighbours(w, 0, &list);
        self.taken[w as usize] += 1;
        self.trees[t].nodes.push(v);
        self.tree_of[v as usize] = t as u32;
        while first_free < self.trees[t].nodes.len() && !self.room(graph, self.trees[t].nodes[first_free], first_free == 0) {
            first_free += 1;
        }
        self.trees[t].first_free = first_free;
        w
    }
}

/// (distance, id), ordered by distance (`f32::total_cmp`) then id: total and deterministic.
/// Packed in one u64 whose integer order is that order, so that the heaps compare with one
/// instruction (a search of a 200-node graph: 5.2 → 4.4 µs natively).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Near(u64);

impl Near {
    #[inline]
    fn new(distance: f32, id: u32) -> Near {
        // total_cmp's order as unsigned integers: negative floats flipped whole, positive
        // ones with the sign bit set.
        let bits = distance.to_bits();
        let key = if bits >> 31 == 1 { !bits } else { bits | 1 << 31 };
        Near((key as u64) << 32 | id as u64)
    }

    #[inline]
    fn distance(self) -> f32 {
        let key = (self.0 >> 32) as u32;
        f32::from_bits(if key >> 31 == 1 { key & !(1 << 31) } else { !key })
    }

    #[inline]
    fn id(self) -> u32 {
        self.0 as u32
    }
}

impl Hnsw {
    /// Build over `vectors` (already augmented for L2-on-augmented search).
    pub fn build(vectors: &Vectors, space: Space, config: Config, progress: &mut dyn Progress) -> Hnsw {
        let mut index = Hnsw::build_unrepaired(vectors, space, config, progress);
        index.repair_reachability();
        index
    }

    /// The insertions of a build, without the reachability repair (see [`Hnsw::repair_reachability`]).
    pub fn build_unrepaired(vectors: &Vectors, space: Space, config: Config, progress: &mut dyn Progress) -> Hnsw {
        let m = config.m.max(2);
        let mut index = Hnsw {
            space,
            m,
            m0: 2 * m,
            stride0: 2 * m + SPARE_LINKS,
            ef_construction: config.ef_construction.max(m),
            dim: vectors.dim,
            nodes: 0,
            blocks: Vec::new(),
            vector_at: (1 + 2 * m + SPARE_LINKS).div_ceil(16) * 16,
            block: (1 + 2 * m + SPARE_LINKS).div_ceil(16) * 16 + vectors.dim.div_ceil(16) * 16,
            upper: Vec::new(),
            levels: Vec::new(),
            level_rng: rng::seeded(config.seed, Stream::Model),
            repair_links: Vec::new(),
            repaired: false,
            entry: 0,
            max_level: 0,
            visited: Vec::new(),
            stamp: 0,
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
            scratch: Vec::new(),
            distances: Vec::new(),
            distance_count: 0,
        };
        index.insert_rows(vectors, progress);
        index
    }

    /// This graph grown to all of `vectors`, whose first rows must be this graph's items: the
    /// same graph, link for link, as a build over all of them, for the cost of the new rows'
    /// insertions (and a copy of this graph). Not repaired (see [`Hnsw::repair_reachability`]).
    pub fn grown_unrepaired(&self, vectors: &Vectors, progress: &mut dyn Progress) -> Hnsw {
        assert!(vectors.dim == self.dim && vectors.len() >= self.nodes, "a graph grows only by more rows of the same dimension");
        debug_assert!((0..self.nodes).all(|i| self.row(i) == vectors.row(i)), "a graph grows only by rows after its own");
        let mut index = self.clone();
        // Undo the repair's links, last first: each was appended to its node's layer-0 list.
        let block = index.block;
        let links = std::mem::take(&mut index.repair_links);
        index.repaired = false;
        let words = index.words_mut();
        for &w in links.iter().rev() {
            words[w as usize * block] -= 1;
        }
        index.insert_rows(vectors, progress);
        index
    }

    /// Copies the rows of `vectors` after this graph's nodes into new blocks and inserts them.
    fn insert_rows(&mut self, vectors: &Vectors, progress: &mut dyn Progress) {
        let (from, n) = (self.nodes, vectors.len());
        self.nodes = n;
        // Exactly what the nodes need: a plain resize would double a grown graph's capacity,
        // memory the stage cache does not count (it counts lengths).
        self.blocks.reserve_exact(n * self.block / 16 - self.blocks.len());
        self.upper.reserve_exact(n - self.upper.len());
        self.levels.reserve_exact(n - self.levels.len());
        self.visited.reserve_exact(n - self.visited.len());
        self.blocks.resize(n * self.block / 16, Line([0; 16]));
        self.upper.resize(n, Vec::new());
        self.levels.resize(n, 0);
        self.visited.resize(n, 0);
        let (vector_at, block, dim) = (self.vector_at, self.block, self.dim);
        let words = self.words_mut();
        for i in from..n {
            let start = i * block + vector_at;
            for (w, x) in words[start..start + dim].iter_mut().zip(vectors.row(i)) {
                *w = x.to_bits();
            }
        }
        let level_scale = 1.0 / ln(self.m as f64);
        for i in from..n {
            if (i - from) % 2048 == 0 {
                progress.report((i - from) as f64 / (n - from) as f64, "building the HNSW graph");
            }
            let level = ((-ln(1.0 - rng::uniform(&mut self.level_rng)) * level_scale) as u32).min(16) as u8;
            self.insert(i as u32, level);
        }
        progress.report(1.0, "building the HNSW graph");
        self.distance_count = 0;
    }

    /// Pruning can leave nodes with no way in from the entry point: they could never be found
    /// (on inner-product graphs, many: a short vector is nobody's best match). Link each such
    /// node from a reachable node (in a spare slot), so that every item is reachable from the
    /// entry on layer 0 and a wide enough search finds it. That is all the repair guarantees and
    /// all it does: after each new link, everything the linked node reaches is marked reached,
    /// so a lost node that an earlier link made reachable costs nothing.
    pub fn repair_reachability(&mut self) {
        if !self.repaired {
            self.link_lost_nodes();
            self.repaired = true;
            self.distance_count = 0;
        }
    }

    fn link_lost_nodes(&mut self) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let mut reached = vec![false; n];
        let mut stack = Vec::new();
        let mut frontier = Vec::new();
        let mut trees = RepairTrees::new(n);
        self.mark_reachable(self.entry, &mut reached, &mut stack);
        // A node is left lost only when no reachable node near it can take a link; the next
        // pass retries it (new links free no slots, but make more nodes reachable).
        for _ in 0..8 {
            let mut linked_any = false;
            let mut lost_any = false;
            for v in 0..n as u32 {
                if reached[v as usize] {
                    continue;
                }
                // A reachable node near v that can take it: within REPAIR_HOPS links of v (no
                // distance needed), else the best of what a search for v finds (everything a
                // search finds is reachable).
                let mut anchor = self.free_near(v, &reached, &trees, REPAIR_HOPS, &mut frontier);
                if anchor.is_none() {
                    let query = self.row(v as usize).to_vec();
                    let entry = [Near::new(self.distance_to(&query, self.entry), self.entry)];
                    let found = self.search_layer(&query, &entry, self.ef_construction, 0, usize::MAX);
                    anchor = found.iter().map(|n| n.id()).find(|&w| w != v && reached[w as usize] && trees.can_take(self, w));
                }
                match anchor {
                    Some(anchor) => {
                        let w = trees.link(self, anchor, v);
                        self.repair_links.push(w);
                        self.mark_reachable(v, &mut reached, &mut stack);
                        linked_any = true;
                    }
                    None => lost_any = true,
                }
            }
            if !lost_any || !linked_any {
                return;
            }
        }
    }

    /// A reachable node that can take a repair link (see [`RepairTrees::can_take`]) among those
    /// `v` reaches within `hops` links, breadth first, each list nearest first: near `v`, found
    /// without a distance.
    fn free_near(&mut self, v: u32, reached: &[bool], trees: &RepairTrees, hops: usize, frontier: &mut Vec<u32>) -> Option<u32> {
        let stamp = self.next_stamp();
        self.visited[v as usize] = stamp;
        frontier.clear();
        frontier.push(v);
        let mut start = 0;
        for _ in 0..hops {
            let end = frontier.len();
            for i in start..end {
                let node = frontier[i];
                for &w in links0(words_of(&self.blocks), self.block, node) {
                    if self.visited[w as usize] == stamp {
                        continue;
                    }
                    self.visited[w as usize] = stamp;
                    if reached[w as usize] && trees.can_take(self, w) {
                        return Some(w);
                    }
                    frontier.push(w);
                }
            }
            start = end;
        }
        None
    }

    /// Marks `from` and every node it reaches on layer 0.
    fn mark_reachable(&self, from: u32, reached: &mut [bool], stack: &mut Vec<u32>) {
        if reached[from as usize] {
            return;
        }
        reached[from as usize] = true;
        stack.push(from);
        while let Some(v) = stack.pop() {
            for &w in self.neighbours(v, 0) {
                if !reached[w as usize] {
                    reached[w as usize] = true;
                    stack.push(w);
                }
            }
        }
    }

    #[inline]
    fn distance_to(&mut self, query: &[f32], node: u32) -> f32 {
        self.distance_count += 1;
        let v = self.row(node as usize);
        match self.space {
            Space::InnerProduct => -dot(v, query),
            Space::L2 => l2(v, query),
        }
    }

    /// Distances from `query` to each of `nodes`, four at a time.
    fn distances_into(&mut self, query: &[f32], nodes: &[u32], out: &mut Vec<f32>) {
        out.clear();
        self.distance_count += nodes.len() as u64;
        let row = |i: u32| self.row(i as usize);
        let mut groups = nodes.chunks_exact(4);
        for g in &mut groups {
            let rows = [row(g[0]), row(g[1]), row(g[2]), row(g[3])];
            match self.space {
                Space::InnerProduct => out.extend(dot4(rows, query).map(|x| -x)),
                Space::L2 => out.extend(l2_4(rows, query)),
            }
        }
        for &i in groups.remainder() {
            out.push(match self.space {
                Space::InnerProduct => -dot(row(i), query),
                Space::L2 => l2(row(i), query),
            });
        }
    }

    fn distance_between(&mut self, a: u32, b: u32) -> f32 {
        self.distance_count += 1;
        let (x, y) = (self.row(a as usize), self.row(b as usize));
        match self.space {
            Space::InnerProduct => -dot(x, y),
            Space::L2 => l2(x, y),
        }
    }

    /// The u32 words of layer 0's blocks.
    fn words(&self) -> &[u32] {
        words_of(&self.blocks)
    }

    fn words_mut(&mut self) -> &mut [u32] {
        // SAFETY: a Line is 16 u32s with no padding (repr(C)); the slice covers exactly them.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr() as *mut u32, self.blocks.len() * 16) }
    }

    /// Node `i`'s vector.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        let start = i * self.block + self.vector_at;
        let words = &self.words()[start..start + self.dim];
        // SAFETY: u32 and f32 have the same size and alignment, and every bit pattern is an f32.
        unsafe { std::slice::from_raw_parts(words.as_ptr() as *const f32, words.len()) }
    }

    fn neighbours(&self, node: u32, layer: u8) -> &[u32] {
        if layer == 0 {
            links0(self.words(), self.block, node)
        } else {
            &self.upper[node as usize][layer as usize - 1]
        }
    }

    fn set_neighbours(&mut self, node: u32, layer: u8, list: &[u32]) {
        if layer == 0 {
            let start = node as usize * self.block;
            let words = self.words_mut();
            words[start] = list.len() as u32;
            words[start + 1..start + 1 + list.len()].copy_from_slice(list);
        } else {
            self.upper[node as usize][layer as usize - 1] = list.to_vec();
        }
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    /// Beam search on one layer from `entries`; of the `ef` nearest found, the `keep` nearest,
    /// nearest first.
    fn search_layer(&mut self, query: &[f32], entries: &[Near], ef: usize, layer: u8, keep: usize) -> Vec<Near> {
        let stamp = self.next_stamp();
        // A graph that fits a core's cache has nothing to fetch: the hints would only cost.
        let prefetch_rows = std::mem::size_of_val(&self.blocks[..]) > PREFETCH_ABOVE_BYTES;
        let mut candidates = std::mem::take(&mut self.candidates);
        let mut results = std::mem::take(&mut self.results);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut distances = std::mem::take(&mut self.distances);
        candidates.clear();
        results.clear();
        for e in entries {
            self.visited[e.id() as usize] = stamp;
            candidates.push(std::cmp::Reverse(*e));
            results.push(*e);
        }
        while results.len() > ef {
            results.pop();
        }
        while let Some(std::cmp::Reverse(current)) = candidates.pop() {
            let worst = results.peek().map_or(f32::INFINITY, |w| w.distance());
            if current.distance() > worst && results.len() >= ef {
                break;
            }
            // The neighbours not seen yet, marked as seen; then their rows are asked of memory
            // all at once, before the first is read: a search is bound by the latency of these
            // reads (72 % of the distance time was the first load of a row), and several misses
            // in flight overlap. The distances that follow are computed in the same order as
            // without the hint, so results are unchanged.
            scratch.clear();
            let links = if layer == 0 {
                links0(words_of(&self.blocks), self.block, current.id())
            } else {
                &self.upper[current.id() as usize][layer as usize - 1]
            };
            // Without a branch: whether a link was seen is unpredictable early in a search, and
            // the mispredictions cost more than writing every link (a search of a 200-node
            // graph: 4.4 → 3.8 µs natively).
            scratch.resize(links.len(), 0);
            let mut unseen = 0;
            for &next in links {
                let seen = std::mem::replace(&mut self.visited[next as usize], stamp) == stamp;
                scratch[unseen] = next;
                unseen += usize::from(!seen);
            }
            scratch.truncate(unseen);
            // Four distances at a time (four independent accumulation chains; each bit-identical
            // to a single distance), then the beam takes them in order as before.
            if prefetch_rows {
                for &next in &scratch {
                    prefetch(self.row(next as usize));
                }
            }
            self.distances_into(query, &scratch, &mut distances);
            for (&next, &d) in scratch.iter().zip(&distances) {
                let worst = results.peek().map_or(f32::INFINITY, |w| w.distance());
                if results.len() < ef || d < worst {
                    let near = Near::new(d, next);
                    candidates.push(std::cmp::Reverse(near));
                    results.push(near);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.drain().collect();
        // Only the `keep` nearest are sorted (a query's top 4 of ef 32: a sort of 32 was 2 % of
        // the capstone's drag preview in wasm). Near's order is total: the same list as a sort.
        if keep < out.len() {
            out.select_nth_unstable(keep);
            out.truncate(keep);
        }
        out.sort_unstable();
        self.candidates = candidates;
        self.results = results;
        self.scratch = scratch;
        self.distances = distances;
        out
    }

    /// The paper's heuristic: keep a candidate only if it is nearer to the base than to every
    /// neighbour kept so far (spreads the links in different directions).
    fn select(&mut self, candidates: &[Near], max: usize) -> Vec<u32> {
        let mut kept: Vec<Near> = Vec::with_capacity(max);
        for c in candidates {
            if kept.len() >= max {
                break;
            }
            let mut good = true;
            // Indexing, not iterating: distance_between needs `self` mutably (it counts).
            #[allow(clippy::needless_range_loop)]
            for i in 0..kept.len() {
                let k = kept[i].id();
                if self.distance_between(c.id(), k) < c.distance() {
                    good = false;
                    break;
                }
            }
            if good {
                kept.push(*c);
            }
        }
        kept.into_iter().map(|k| k.id()).collect()
    }

    fn insert(&mut self, node: u32, level: u8) {
        self.levels[node as usize] = level;
        self.upper[node as usize] = vec![Vec::new(); level as usize];
        if node == 0 {
            self.entry = 0;
            self.max_level = level;
            return;
        }
        let query = self.row(node as usize).to_vec();
        let mut entry = vec![Near::new(self.distance_to(&query, self.entry), self.entry)];
        let mut layer = self.max_level;
        while layer > level {
            entry = self.search_layer(&query, &entry, 1, layer, 1);
            layer -= 1;
        }
        let top = level.min(self.max_level);
        for layer in (0..=top).rev() {
            let found = self.search_layer(&query, &entry, self.ef_construction, layer, usize::MAX);
            let max = if layer == 0 { self.m0 } else { self.m };
            let chosen = self.select(&found, self.m);
            self.set_neighbours(node, layer, &chosen);
            for &other in &chosen {
                let mut list = self.neighbours(other, layer).to_vec();
                if list.len() < max {
                    list.push(node);
                    self.set_neighbours(other, layer, &list);
                } else {
                    // Over capacity: keep the `max` nearest of the old links and the new one (the
                    // diversity heuristic here would cost O(M²) distances per link).
                    list.push(node);
                    let base = self.row(other as usize).to_vec();
                    let mut scored: Vec<Near> = list.iter().map(|&x| Near::new(self.distance_to(&base, x), x)).collect();
                    scored.sort();
                    let pruned = self.select(&scored, max);
                    self.set_neighbours(other, layer, &pruned);
                }
            }
            entry = found;
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = node;
        }
    }

    /// The `k` best items for `query` (already transformed for the index's space), searching with
    /// beam width `ef` ≥ k. Returns (distance, id) nearest first.
    pub fn search(&mut self, query: &[f32], k: usize, ef: usize) -> Vec<(f32, u32)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut entry = vec![Near::new(self.distance_to(query, self.entry), self.entry)];
        let mut layer = self.max_level;
        while layer > 0 {
            entry = self.search_layer(query, &entry, 1, layer, 1);
            layer -= 1;
        }
        let found = self.search_layer(query, &entry, ef.max(k), 0, k);
        found.into_iter().map(|n| (n.distance(), n.id())).collect()
    }

    /// Bytes held: vectors plus links.
    pub fn memory_bytes(&self) -> usize {
        let upper: usize = self.upper.iter().map(|l| l.iter().map(|v| v.len() * 4 + 24).sum::<usize>() + 24).sum();
        self.blocks.len() * std::mem::size_of::<Line>() + upper + self.levels.len() + self.visited.len() * 4
    }

    pub fn len(&self) -> usize {
        self.nodes
    }

    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }
}

/// An index for MIPS of either kind, with the query transform it needs.
pub struct MipsIndex {
    pub graph: Hnsw,
    pub augmented: bool,
}

impl MipsIndex {
    pub fn build(items: &Vectors, augmented: bool, config: Config, progress: &mut dyn Progress) -> MipsIndex {
        let mut index = MipsIndex::build_unrepaired(items, augmented, config, progress);
        index.graph.repair_reachability();
        index
    }

    /// The insertions alone; [`Hnsw::repair_reachability`] makes it searchable.
    pub fn build_unrepaired(items: &Vectors, augmented: bool, config: Config, progress: &mut dyn Progress) -> MipsIndex {
        // The graph copies the vectors into its blocks: no copy of the items is kept besides.
        let graph = if augmented {
            Hnsw::build_unrepaired(&items.augmented(), Space::L2, config, progress)
        } else {
            Hnsw::build_unrepaired(items, Space::InnerProduct, config, progress)
        };
        MipsIndex { graph, augmented }
    }

    /// This index grown to all of `items` (its own items first), as
    /// [`Hnsw::grown_unrepaired`]. Only the inner-product graph can grow: the augmented vectors
    /// depend on the largest norm of the whole catalogue, so more items change all of them.
    pub fn grown_unrepaired(&self, items: &Vectors, progress: &mut dyn Progress) -> Option<MipsIndex> {
        (!self.augmented).then(|| MipsIndex { graph: self.graph.grown_unrepaired(items, progress), augmented: false })
    }

    /// Item ids of the (approximate) top-k by inner product.
    pub fn search(&mut self, query: &[f32], k: usize, ef: usize) -> Vec<u32> {
        if self.augmented {
            let mut q = query.to_vec();
            q.push(0.0);
            self.graph.search(&q, k, ef).into_iter().map(|(_, i)| i).collect()
        } else {
            self.graph.search(query, k, ef).into_iter().map(|(_, i)| i).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{data, exact, recall};
    use super::*;

    fn mean_recall(index: &mut MipsIndex, items: &Vectors, queries: &Vectors, k: usize, ef: usize) -> f64 {
        (0..queries.len()).map(|q| recall(&index.search(queries.row(q), k, ef), &exact::top_k_ids(items, queries.row(q), k))).sum::<f64>()
            / queries.len() as f64
    }

    #[test]
    fn a_near_orders_as_total_cmp_then_id_and_keeps_its_distance() {
        let values = [f32::NEG_INFINITY, -3.5, -1.0, -f32::MIN_POSITIVE, -0.0, 0.0, 1e-40, 0.25, 2.0, f32::INFINITY, f32::NAN, -f32::NAN];
        for &a in &values {
            for &b in &values {
                for (i, j) in [(0, 0), (1, 7), (7, 1), (u32::MAX, 0)] {
                    let expected = a.total_cmp(&b).then(i.cmp(&j));
                    assert_eq!(Near::new(a, i).cmp(&Near::new(b, j)), expected, "{a} {i} vs {b} {j}");
                }
            }
            let near = Near::new(a, 42);
            assert_eq!((near.distance().to_bits(), near.id()), (a.to_bits(), 42));
        }
    }

    #[test]
    fn after_the_repair_every_node_is_reachable_from_the_entry() {
        // Uniform vectors on inner products: most nodes are nobody's neighbour after pruning.
        for (kind, m) in [(data::Kind::Uniform, 8), (data::Kind::Clustered, 4), (data::Kind::Gaussian, 2)] {
            let (items, _) = data::generate(kind, 4000, 1, 24, 3);
            let index = MipsIndex::build(&items, false, Config { m, ef_construction: 16, seed: 2 }, &mut ());
            let graph = &index.graph;
            let mut reached = vec![false; graph.len()];
            graph.mark_reachable(graph.entry, &mut reached, &mut Vec::new());
            let lost = reached.iter().filter(|r| !**r).count();
            assert_eq!(lost, 0, "{kind:?}, M = {m}: {lost} nodes unreachable");
        }
    }

    #[test]
    fn the_repair_adds_few_distances_to_a_search() {
        // Many nodes of these inner-product graphs are lost before the repair (a short vector is
        // nobody's best match). Their links hang in trees under a few reachable nodes, so a search
        // scores few of them. Linked straight from the long vectors every search expands, they
        // added 56 % to the uniform graph's distances here (and 147 % on 10⁵ clustered vectors in
        // d = 64: 992 against 401 per search at ef 32).
        for kind in [data::Kind::Clustered, data::Kind::Uniform] {
            let (items, queries) = data::generate(kind, 8000, 100, 32, 11);
            let config = Config { m: 16, ef_construction: 64, seed: 1 };
            let mut repaired = MipsIndex::build(&items, false, config, &mut ());
            let mut bare = MipsIndex::build_unrepaired(&items, false, config, &mut ());
            assert!(repaired.graph.repair_links.len() > items.len() / 8, "{kind:?}: {} nodes were lost", repaired.graph.repair_links.len());
            let distances = |index: &mut MipsIndex| {
                index.graph.distance_count = 0;
                (0..queries.len()).for_each(|q| drop(index.search(queries.row(q), 10, 32)));
                index.graph.distance_count as f64
            };
            let (with, without) = (distances(&mut repaired), distances(&mut bare));
            assert!(with <= 1.15 * without, "{kind:?}: {with} distances with the repair, {without} without");
        }
    }

    #[test]
    fn on_clustered_vectors_recall_is_at_least_0_99_at_ef_32_and_1_when_the_beam_takes_all() {
        // The benchmark's kind of data (.ci/bench-mips: clustered MF-like, d = 64, M 16,
        // ef_construction 100), a fifth of its size.
        let (items, queries) = data::generate(data::Kind::Clustered, 20_000, 200, 64, 7);
        let mut index = MipsIndex::build(&items, false, Config { m: 16, ef_construction: 100, seed: 1 }, &mut ());
        let at_32 = mean_recall(&mut index, &items, &queries, 10, 32);
        let all = mean_recall(&mut index, &items, &queries, 10, items.len());
        assert!(at_32 >= 0.99, "recall@10 at ef 32: {at_32}");
        assert_eq!(all, 1.0, "recall@10 with a beam as wide as the catalogue");
    }

    #[test]
    fn recall_rises_with_ef_to_one() {
        for kind in [data::Kind::Clustered, data::Kind::Uniform] {
            let (items, queries) = data::generate(kind, 3000, 40, 16, 5);
            for augmented in [false, true] {
                let mut index = MipsIndex::build(&items, augmented, Config { m: 12, ef_construction: 80, seed: 1 }, &mut ());
                let low = mean_recall(&mut index, &items, &queries, 10, 10);
                let mid = mean_recall(&mut index, &items, &queries, 10, 64);
                let all = mean_recall(&mut index, &items, &queries, 10, 3000);
                assert!(low <= mid + 1e-9 && mid <= all + 1e-9, "{kind:?} aug={augmented}: {low} {mid} {all}");
                assert!(all >= 0.999, "{kind:?} aug={augmented}: exhaustive beam recall {all}");
                assert!(mid >= 0.8, "{kind:?} aug={augmented}: ef=64 recall {mid}");
            }
        }
    }

    /// Each node's links on every layer, the levels and the entry: the graph, slot values aside.
    fn links_of(graph: &Hnsw) -> (Vec<Vec<Vec<u32>>>, u32, u8) {
        let links = (0..graph.len() as u32)
            .map(|v| (0..=graph.levels[v as usize]).map(|layer| graph.neighbours(v, layer).to_vec()).collect())
            .collect();
        (links, graph.entry, graph.max_level)
    }

    #[test]
    fn a_grown_graph_is_the_graph_built_over_all_its_items() {
        for kind in [data::Kind::Uniform, data::Kind::Clustered, data::Kind::Gaussian] {
            let (items, queries) = data::generate(kind, 3000, 20, 12, 4);
            let config = Config { m: 6, ef_construction: 24, seed: 9 };
            let prefix = |n: usize| Vectors { dim: items.dim, data: items.data[..n * items.dim].to_vec() };
            let mut grown = MipsIndex::build(&prefix(700), false, config, &mut ());
            // Repaired at each step, as the lesson keeps them; the repair must be undone each time.
            for n in [1300, 2100, 3000] {
                grown = grown.grown_unrepaired(&prefix(n), &mut ()).expect("an inner-product graph grows");
                grown.graph.repair_reachability();
            }
            let mut built = MipsIndex::build(&items, false, config, &mut ());
            assert!(!built.graph.repair_links.is_empty(), "{kind:?}: the repair had nothing to undo");
            assert!(links_of(&grown.graph) == links_of(&built.graph), "{kind:?}: the grown graph differs");
            for q in 0..queries.len() {
                assert_eq!(grown.search(queries.row(q), 5, 20), built.search(queries.row(q), 5, 20));
            }
        }
        let (items, _) = data::generate(data::Kind::Uniform, 100, 1, 4, 1);
        assert!(MipsIndex::build(&items, true, Config { m: 4, ef_construction: 8, seed: 1 }, &mut ())
            .grown_unrepaired(&items, &mut ())
            .is_none());
    }

    #[test]
    fn build_is_deterministic_and_counts_distances() {
        let (items, queries) = data::generate(data::Kind::Clustered, 1000, 5, 8, 2);
        let config = Config { m: 8, ef_construction: 40, seed: 3 };
        let mut a = MipsIndex::build(&items, false, config, &mut ());
        let mut b = MipsIndex::build(&items, false, config, &mut ());
        assert_eq!(a.graph.words(), b.graph.words());
        assert_eq!(a.graph.row(7), items.row(7));
        let ra = a.search(queries.row(0), 5, 32);
        assert_eq!(ra, b.search(queries.row(0), 5, 32));
        assert!(a.graph.distance_count > 0 && a.graph.distance_count < 1000, "{}", a.graph.distance_count);
        assert!(a.graph.memory_bytes() > items.bytes());
    }
}
