//! What a run of the lesson shows, in words computed from its report: how close each start
//! comes to the world's own ranking, before and after BPR.

use super::lesson::EmbeddingsReport;

/// A start "reaches" a level once its recall is within this share of it.
const WITHIN: f64 = 0.95;

pub fn training_reading(report: &EmbeddingsReport) -> Vec<String> {
    let k = report.top_k;
    let oracle = report.svd.oracle.recall;
    let share = |recall: f64| 100.0 * recall / oracle.max(1e-12);
    let svd = &report.svd.training.metrics;
    let random = &report.random.metrics;
    let (Some(svd_start), Some(svd_end), Some(random_end)) = (svd.first(), svd.last(), random.last()) else {
        return Vec::new();
    };
    let epochs = svd.len().saturating_sub(1);
    let mut out = vec![format!(
        "In this run, the SVD embeddings before any training reach recall@{k} {:.3}: {:.0} % of the world's own ranking ({:.3}), against popularity's {:.3}.",
        svd_start.recall,
        share(svd_start.recall),
        oracle,
        report.svd.popularity.recall
    )];
    let reached = random.iter().position(|m| m.recall >= WITHIN * svd_start.recall);
    out.push(format!(
        "After {epochs} epochs of BPR, the SVD start reaches {:.3} ({:.0} %{}), the random start {:.3} ({:.0} %); {}.",
        svd_end.recall,
        share(svd_end.recall),
        if svd_end.recall < svd_start.recall { ", below where it started" } else { "" },
        random_end.recall,
        share(random_end.recall),
        match reached {
            Some(0) => "the random start begins there already".to_string(),
            Some(e) =>
                format!("the random start comes within 5 % of the untrained SVD's recall after {e} epoch{}", if e == 1 { "" } else { "s" }),
            None => format!("the random start does not come within 5 % of the untrained SVD's recall in {epochs} epochs"),
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::embeddings::lesson::EmbeddingsLesson;
    use crate::core::experiment::run_query;

    #[test]
    fn the_reading_quotes_the_report() {
        let json =
            run_query::<EmbeddingsLesson>("users=600&items=300&topics=6&density=0.05&dim=16&epochs=3&eval_users=300", &mut ()).unwrap();
        let report = serde_json::from_str::<Result<EmbeddingsReport, String>>(&json).unwrap().unwrap();
        let text = training_reading(&report);
        assert_eq!(text.len(), 2);
        let recall = |r: f64| format!("{r:.3}");
        assert!(text[0].contains(&recall(report.svd.training.metrics[0].recall)), "{text:?}");
        assert!(text[0].contains(&recall(report.svd.oracle.recall)), "{text:?}");
        assert!(text[1].contains("After 3 epochs") && text[1].contains(&recall(report.random.metrics[3].recall)), "{text:?}");
    }
}
