//! Ranking metrics on held-out interactions, by an exact scan of the catalogue.
//!
//! For each user with at least one held-out item: score every item, drop the user's observed
//! items (they are known, recommending them again is not the task), keep the top K (ties: the
//! lower item id first) and compare with the held-out set H:
//!
//! recall@K = hits / |H|,  precision@K = hits / K,
//! NDCG@K = Σ_{rank r < K, item ∈ H} 1/log₂(r + 2) ÷ Σ_{r < min(K, |H|)} 1/log₂(r + 2).
//!
//! Means over those users. The scan costs items × d per user: pass `max_users` to evaluate the
//! first users only (with held-out items, in id order) on large worlds.

use super::bpr::BprModel;
use super::sparse::Csr;
use super::InteractionWorld;
use crate::core::math::ln;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    pub k: u32,
    /// Users evaluated (with ≥ 1 held-out item).
    pub users: u32,
    pub recall: f64,
    pub precision: f64,
    pub ndcg: f64,
}

/// The K best (item, score) pairs, best first, skipping the ids in `exclude` (ascending). Ties:
/// the lower id first. A sorted buffer of ≤ K entries (K is small; cf. mips::exact).
pub fn top_k(scores: &[f64], exclude: &[u32], k: u32) -> Vec<(u32, f64)> {
    let k = k as usize;
    let mut best: Vec<(u32, f64)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    let mut next_excluded = 0;
    for (i, &s) in scores.iter().enumerate() {
        let item = i as u32;
        while next_excluded < exclude.len() && exclude[next_excluded] < item {
            next_excluded += 1;
        }
        if next_excluded < exclude.len() && exclude[next_excluded] == item {
            continue;
        }
        if best.len() < k || s > best[k - 1].1 {
            // Equal scores go after the ones already kept (lower ids, scanned earlier).
            let position = best.partition_point(|&(_, b)| b >= s);
            best.insert(position, (item, s));
            best.truncate(k);
        }
    }
    best
}

/// 1/log₂(r + 2) for ranks r = 0..k.
fn discounts(k: u32) -> Vec<f64> {
    (0..k).map(|r| ln(2.0) / ln(r as f64 + 2.0)).collect()
}

/// The metrics of a scorer: `score_user(user, history, scores)` fills `scores` (one per item) for
/// a user with that observed history. `max_users` = 0 evaluates everyone.
pub fn evaluate(observed: &Csr, held_out: &Csr, k: u32, max_users: u32, score_user: &mut ScoreUser) -> RankingMetrics {
    let discount = discounts(k);
    let mut scores = Vec::new();
    let (mut users, mut recall, mut precision, mut ndcg) = (0u32, 0.0, 0.0, 0.0);
    for user in 0..observed.rows {
        if max_users > 0 && users >= max_users {
            break;
        }
        let held = held_out.row_ids(user);
        if held.is_empty() {
            continue;
        }
        let history = observed.row_ids(user);
        score_user(user, history, &mut scores);
        let top = top_k(&scores, history, k);
        let mut hits = 0u32;
        let mut dcg = 0.0;
        for (rank, &(item, _)) in top.iter().enumerate() {
            if held.binary_search(&item).is_ok() {
                hits += 1;
                dcg += discount[rank];
            }
        }
        let ideal: f64 = discount.iter().take(held.len()).sum();
        users += 1;
        recall += hits as f64 / held.len() as f64;
        precision += hits as f64 / k.max(1) as f64;
        ndcg += if ideal > 0.0 { dcg / ideal } else { 0.0 };
    }
    let n = users.max(1) as f64;
    RankingMetrics { k, users, recall: recall / n, precision: precision / n, ndcg: ndcg / n }
}

/// The model's scores of every item for a user with this history.
pub fn model_scores(model: &BprModel, history: &[u32], out: &mut Vec<f64>) {
    let query = model.query(history);
    model.scores(&query, out);
}

pub fn evaluate_model(model: &BprModel, world: &InteractionWorld, k: u32, max_users: u32) -> RankingMetrics {
    evaluate(&world.observed, &world.held_out, k, max_users, &mut |_, history, out| model_scores(model, history, out))
}

/// The popularity baseline's scores: how many users observed each item (the same for everyone).
pub fn popularity_scores(observed: &Csr) -> Vec<f64> {
    observed.column_counts().iter().map(|&c| c as f64).collect()
}

pub fn evaluate_popularity(world: &InteractionWorld, k: u32, max_users: u32) -> RankingMetrics {
    let popularity = popularity_scores(&world.observed);
    evaluate(&world.observed, &world.held_out, k, max_users, &mut |_, _, out| {
        out.clear();
        out.extend_from_slice(&popularity);
    })
}

/// Fills `out` with one score per item for (user, history).
pub type ScoreUser<'a> = dyn FnMut(u32, &[u32], &mut Vec<f64>) + 'a;

/// One line of a user's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemRow {
    pub item: u32,
    pub topic: u32,
    pub score: f64,
    /// Whether the item is one of the user's held-out items (a hit, in a top-K list).
    pub held_out: bool,
}

/// A user's history and top-K list, for a "before and after" table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserTable {
    pub user: u32,
    /// The observed items, best scored first.
    pub history: Vec<ItemRow>,
    pub held_out: Vec<u32>,
    /// The top K among the items not observed.
    pub top: Vec<ItemRow>,
    pub hits: u32,
}

/// The table of `user` under `scores` (one per item, e.g. from [`model_scores`] or
/// [`popularity_scores`]).
pub fn user_table(world: &InteractionWorld, user: u32, scores: &[f64], k: u32) -> UserTable {
    let history = world.history(user);
    let held = world.held_out_items(user);
    let row = |item: u32| ItemRow {
        item,
        topic: world.item_topic[item as usize],
        score: scores[item as usize],
        held_out: held.binary_search(&item).is_ok(),
    };
    let mut history_rows: Vec<ItemRow> = history.iter().map(|&i| row(i)).collect();
    history_rows.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    let top: Vec<ItemRow> = top_k(scores, history, k).into_iter().map(|(i, _)| row(i)).collect();
    let hits = top.iter().filter(|r| r.held_out).count() as u32;
    UserTable { user, history: history_rows, held_out: held.to_vec(), top, hits }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::{self, Stream};

    #[test]
    fn top_k_equals_a_full_sort_with_exclusions_and_ties() {
        let mut rng = rng::seeded(1, Stream::Sweep);
        // Few distinct values: many ties.
        let scores: Vec<f64> = (0..300).map(|_| rng::index(&mut rng, 20) as f64).collect();
        let exclude: Vec<u32> = (0..300).filter(|i| i % 7 == 3).collect();
        let mut all: Vec<(u32, f64)> = (0..300u32).filter(|i| i % 7 != 3).map(|i| (i, scores[i as usize])).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [0, 1, 10, 50] {
            assert_eq!(top_k(&scores, &exclude, k), all[..k as usize].to_vec());
        }
    }

    #[test]
    fn metrics_of_hand_made_rankings() {
        // 2 users, 6 items. User 0 observed {0}, holds out {1, 2}; user 1 observed {5}, holds out
        // {4}; user 2 holds out nothing (not counted).
        let observed = Csr::from_rows(6, &[vec![0], vec![5], vec![1]]);
        let held_out = Csr::from_rows(6, &[vec![1, 2], vec![4], vec![]]);
        // Scores decreasing with the id: user 0's top 2 = [1, 2] (perfect); user 1's = [0, 1].
        let metrics = evaluate(&observed, &held_out, 2, 0, &mut |_, _, out| {
            out.clear();
            out.extend((0..6).map(|i| -(i as f64)));
        });
        assert_eq!(metrics.users, 2);
        assert!((metrics.recall - 0.5).abs() < 1e-12, "{metrics:?}");
        assert!((metrics.precision - 0.5).abs() < 1e-12, "{metrics:?}");
        assert!((metrics.ndcg - 0.5).abs() < 1e-12, "{metrics:?}");
        // Item 4 at rank 1 (second) for user 1: DCG = 1/log₂3, IDCG = 1.
        let metrics = evaluate(&observed, &held_out, 2, 0, &mut |u, _, out| {
            out.clear();
            out.extend((0..6).map(|i| if u == 1 && i == 4 { -0.5 } else { -(i as f64) }));
        });
        let expected_ndcg = (1.0 + 1.0 / 3f64.log2()) / 2.0;
        assert!((metrics.ndcg - expected_ndcg).abs() < 1e-12, "{metrics:?}");
        assert_eq!(evaluate(&observed, &held_out, 2, 1, &mut |_, _, out| out.resize(6, 0.0)).users, 1);
    }
}
