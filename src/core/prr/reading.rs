//! What a run of the lesson shows, in words computed from its report: the orderings the prose
//! would otherwise state once and for all, whatever the numbers on screen say.

use super::lesson::{method_label, WorldResult, METHODS, PUBLISHED_CTR, PUBLISHED_SE, PUBLISHED_SETTINGS};

/// Two CTRs closer than this many standard errors of their difference read as a tie.
const TIE_SE: f64 = 2.0;

/// Sentences on the A/B test of a world: PRR against the oracle, then each other learned method
/// against PRR, each as "ahead", "behind" or "a tie at this many impressions".
pub fn ab_reading(world: &WorldResult, impressions: u64) -> Vec<String> {
    let find = |name: &str| world.methods.iter().find(|m| m.name == name);
    let points = |x: f64| format!("{:.2}", x * 100.0);
    let mut out = Vec::new();
    let Some(prr) = find("prr") else {
        return out;
    };
    if let Some(oracle) = find("oracle") {
        out.push(format!(
            "In this run, PRR reaches {} % against the oracle's {} % ({} points behind it, {:.1} % of its CTR).",
            points(prr.ctr),
            points(oracle.ctr),
            points(oracle.ctr - prr.ctr),
            100.0 * prr.ctr / oracle.ctr.max(1e-12)
        ));
    }
    let mut paired_all = true;
    for other in world.methods.iter().filter(|m| !matches!(m.name.as_str(), "prr" | "oracle" | "random")) {
        let (difference, se) = match world.paired_difference(&other.name, "prr") {
            Some(d) => (d.mean, d.se),
            None => {
                paired_all = false;
                (other.ctr - prr.ctr, (other.se * other.se + prr.se * prr.se).sqrt())
            }
        };
        let verdict = if difference.abs() <= TIE_SE * se {
            format!(
                "not separated from PRR at {} impressions ({} ± {} points)",
                thousands(impressions),
                signed(difference),
                points(TIE_SE * se)
            )
        } else if difference < 0.0 {
            format!("behind PRR by {} ± {} points", points(-difference), points(TIE_SE * se))
        } else {
            format!("ahead of PRR by {} ± {} points", points(difference), points(TIE_SE * se))
        };
        out.push(format!("{}: {} %, {verdict}.", method_label(&other.name), points(other.ctr)));
    }
    if out.len() > 1 {
        out.push(if paired_all {
            "± is two standard errors of the difference, paired impression by impression: every policy meets the same users \
             and slate sizes, so the noise they share cancels."
                .into()
        } else {
            "± is two standard errors of the difference, counting the two A/B tests as independent (too many impressions were \
             run to keep them for pairing); they meet the same users, so this overstates the noise of a difference."
                .into()
        });
    }
    out
}

/// The published orderings a run is checked against: PRR against every other method, and each
/// top-K variant against its plain version.
const ORDERINGS: &[(&str, &str)] = &[
    ("prr", "random"),
    ("prr", "prr-bias"),
    ("prr", "ranking"),
    ("prr", "reward"),
    ("prr", "slate-ips"),
    ("prr", "top-k-slate-ips"),
    ("prr", "iips"),
    ("prr", "top-k-iips"),
    ("reward", "random"),
    ("top-k-slate-ips", "slate-ips"),
    ("top-k-iips", "iips"),
];

/// How an ordering of this run compares with the paper's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// The same sign, and ours is more than two standard errors from zero.
    Reproduced,
    /// Ours is within two standard errors of zero: this run does not separate them.
    NotSeparated,
    /// The opposite sign, more than two standard errors from zero.
    Reversed,
    /// The paper's own difference is within two of its standard errors: not an ordering it
    /// established, so nothing to reproduce.
    PaperTie,
}

/// One published ordering, checked: `first` − `second` in CTR points, the paper's and ours.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderingCheck {
    pub first: &'static str,
    pub second: &'static str,
    pub published: f64,
    /// Two standard errors of the paper's difference, from the errors it prints (points).
    pub published_2se: f64,
    pub ours: f64,
    /// Two standard errors of our difference (points).
    pub ours_2se: f64,
    pub agreement: Agreement,
}

impl OrderingCheck {
    pub fn mark(&self) -> &'static str {
        match self.agreement {
            Agreement::Reproduced => "✓",
            Agreement::NotSeparated => "≈",
            Agreement::Reversed => "✗",
            Agreement::PaperTie => "·",
        }
    }

    pub fn words(&self) -> String {
        let (a, b) = (method_label(self.first), method_label(self.second));
        match self.agreement {
            Agreement::Reproduced => format!("reproduced: {a} {} {b} here too", if self.ours > 0.0 { "beats" } else { "trails" }),
            Agreement::NotSeparated => format!("not separated here: the difference is within ±{} points", margin(self.ours_2se)),
            Agreement::Reversed => format!("reversed here: {a} {} {b}", if self.ours > 0.0 { "beats" } else { "trails" }),
            Agreement::PaperTie => {
                format!("the paper does not separate them (±{:.2} points): here {a} {}", self.published_2se, self.our_words())
            }
        }
    }

    /// This run's side of the difference in words.
    fn our_words(&self) -> String {
        match self.ours {
            d if d.abs() <= self.ours_2se => "ties too".to_string(),
            d if d > 0.0 => format!("leads by {d:.2} ± {}", margin(self.ours_2se)),
            d => format!("trails by {:.2} ± {}", -d, margin(self.ours_2se)),
        }
    }
}

/// Every published ordering of the paper's column `setting` whose two methods ran, checked
/// against this run. Orderings the paper reports as an exact tie are left out.
pub fn ordering_checks(world: &WorldResult, setting: usize) -> Vec<OrderingCheck> {
    let published = |name: &str| METHODS.iter().position(|m| m.0 == name).map(|i| PUBLISHED_CTR[i][setting]);
    let published_se = |name: &str| METHODS.iter().position(|m| m.0 == name).map(|i| PUBLISHED_SE[i][setting]);
    let ours = |name: &str| world.methods.iter().find(|m| m.name == name);
    ORDERINGS
        .iter()
        .filter_map(|&(first, second)| {
            let paper = published(first)? - published(second)?;
            if paper == 0.0 {
                return None;
            }
            // The paper's two CTRs come from separate A/B tests: independent errors.
            let published_2se = TIE_SE * (published_se(first)?.powi(2) + published_se(second)?.powi(2)).sqrt();
            let (a, b) = (ours(first)?, ours(second)?);
            // Paired impression by impression when the A/B tests kept their rewards.
            let (difference, se) = match world.paired_difference(first, second) {
                Some(d) => (d.mean, d.se),
                None => (a.ctr - b.ctr, (a.se * a.se + b.se * b.se).sqrt()),
            };
            let (difference, two_se) = (difference * 100.0, TIE_SE * se * 100.0);
            let agreement = if paper.abs() <= published_2se {
                Agreement::PaperTie
            } else if difference.abs() <= two_se {
                Agreement::NotSeparated
            } else if (difference > 0.0) == (paper > 0.0) {
                Agreement::Reproduced
            } else {
                Agreement::Reversed
            };
            Some(OrderingCheck { first, second, published: paper, published_2se, ours: difference, ours_2se: two_se, agreement })
        })
        .collect()
}

/// A margin in points to two decimals; one that rounds to zero reads "<0.01" (paired differences
/// of near-identical policies have margins that small).
pub fn margin(points: f64) -> String {
    if points < 0.005 {
        "<0.01".into()
    } else {
        format!("{points:.2}")
    }
}

/// One sentence on the checks: how many of the paper's orderings this run reproduces.
pub fn ordering_summary(checks: &[OrderingCheck], setting: usize) -> String {
    let count = |a: Agreement| checks.iter().filter(|c| c.agreement == a).count();
    let ties = count(Agreement::PaperTie);
    format!(
        "Of the paper's {} orderings in its {} column that this run can check, {} reproduce (✓), {} are not separated at this \
         run's size (≈) and {} are reversed (✗); {ties} more differences are within the paper's own noise (·).",
        checks.len() - ties,
        PUBLISHED_SETTINGS[setting],
        count(Agreement::Reproduced),
        count(Agreement::NotSeparated),
        count(Agreement::Reversed)
    )
}

fn signed(x: f64) -> String {
    format!("{:+.2}", x * 100.0)
}

/// 20000 → "20,000".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How far PRR's and the Reward model's per-slate predictions are from the truth (root mean
/// square, in CTR points), over the slates where both are shown.
pub fn scatter_reading(world: &WorldResult) -> Option<String> {
    let pairs: Vec<(f64, f64, f64)> = world.scatter.iter().filter_map(|s| Some((s.truth, s.prr?, s.reward?))).collect();
    if pairs.is_empty() {
        return None;
    }
    let rmse = |pick: fn(&(f64, f64, f64)) -> f64| {
        (pairs.iter().map(|p| (pick(p) - p.0).powi(2)).sum::<f64>() / pairs.len() as f64).sqrt() * 100.0
    };
    let (prr, reward) = (rmse(|p| p.1), rmse(|p| p.2));
    let closer = if prr < reward {
        "PRR's predictions lie closer to the diagonal"
    } else {
        "the Reward model's predictions lie as close to the diagonal or closer"
    };
    Some(format!(
        "Over these {} slates, PRR's predictions are {prr:.2} points from the truth (root mean square), the Reward model's {reward:.2}: {closer}.",
        pairs.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::prr::lesson::{MethodResult, SlatePoint};

    fn world(methods: &[(&str, f64, f64)], scatter: Vec<SlatePoint>) -> WorldResult {
        WorldResult {
            items: 7,
            slate_size: 2,
            logged_ctr: 0.05,
            logged_se: 0.001,
            methods: methods.iter().map(|(n, c, s)| MethodResult { name: n.to_string(), ctr: *c, se: *s, epoch_ms: None }).collect(),
            curves: Vec::new(),
            scatter,
            scatter_slate_size: 2,
            curve_oracle: None,
            curve_random: None,
            paired: Vec::new(),
        }
    }

    #[test]
    fn orderings_follow_the_numbers_and_their_noise() {
        let w = world(&[("oracle", 0.10, 0.002), ("prr", 0.09, 0.002), ("reward", 0.0895, 0.002), ("slate-ips", 0.07, 0.002)], vec![]);
        let text = ab_reading(&w, 20000);
        assert!(text[0].contains("9.00 %") && text[0].contains("10.00 %") && text[0].contains("90.0 %"), "{text:?}");
        assert!(text[1].contains("not separated from PRR at 20,000 impressions (-0.05 ± 0.57 points)"), "{text:?}");
        assert!(text[2].contains("behind PRR by 2.00"), "{text:?}");
        let w = world(&[("prr", 0.05, 0.001), ("reward", 0.06, 0.001)], vec![]);
        assert!(ab_reading(&w, 100)[0].contains("ahead of PRR by 1.00"));
    }

    #[test]
    fn orderings_are_checked_against_the_paper_with_their_noise() {
        // Toy column: PRR 8.56, Reward 7.68, slate IPS 7.93, top-K IIPS 8.56 (a tie: left out).
        let w =
            world(&[("prr", 0.090, 0.001), ("reward", 0.080, 0.001), ("slate-ips", 0.095, 0.001), ("top-k-iips", 0.090, 0.001)], vec![]);
        let checks = ordering_checks(&w, 0);
        let find = |second: &str| checks.iter().find(|c| c.first == "prr" && c.second == second).unwrap();
        assert_eq!(find("reward").agreement, Agreement::Reproduced);
        assert!((find("reward").published - 0.88).abs() < 1e-9 && (find("reward").ours - 1.0).abs() < 1e-9);
        // The paper's PRR − slate IPS (+0.63 ± 2·√(0.2² + 0.19²) = ±0.55) is an ordering; ours reverses it.
        assert_eq!(find("slate-ips").agreement, Agreement::Reversed);
        // PRR − IIPS in the paper's toy column (+0.04 ± 0.57) is within its noise.
        let w2 = world(&[("prr", 0.090, 0.001), ("iips", 0.080, 0.001)], vec![]);
        let tie = &ordering_checks(&w2, 0)[0];
        assert_eq!(tie.agreement, Agreement::PaperTie);
        assert!(tie.words().contains("does not separate") && tie.words().contains("leads by 1.00"), "{}", tie.words());
        assert!(checks.iter().all(|c| c.second != "top-k-iips"), "the paper's tie is not an ordering");
        let close = world(&[("prr", 0.090, 0.002), ("reward", 0.088, 0.002)], vec![]);
        assert_eq!(ordering_checks(&close, 0)[0].agreement, Agreement::NotSeparated);
        // Paired differences, when the run kept them, replace the independent standard errors.
        let mut paired = close.clone();
        paired.paired =
            vec![crate::core::prr::lesson::PairedDifference { first: "reward".into(), second: "prr".into(), mean: -0.002, se: 0.0005 }];
        assert_eq!(ordering_checks(&paired, 0)[0].agreement, Agreement::Reproduced);
        let text = ab_reading(&paired, 100);
        assert!(text[0].contains("behind PRR by 0.20 ± 0.10 points"), "{text:?}");
        let summary = ordering_summary(&checks, 0);
        assert!(summary.contains("2 orderings") && summary.contains("1 reproduce") && summary.contains("1 are reversed"), "{summary}");
        assert!(summary.contains("0 more differences are within the paper's own noise"), "{summary}");
    }

    #[test]
    fn the_scatter_reading_compares_distances_to_the_truth() {
        let point = |truth: f64, prr: f64, reward: f64| SlatePoint {
            context: "z".into(),
            slate: vec![],
            truth,
            prr: Some(prr),
            reward: Some(reward),
            ips: 0.0,
            rows: 0,
        };
        let w = world(&[], vec![point(0.1, 0.1, 0.12), point(0.2, 0.21, 0.15)]);
        let text = scatter_reading(&w).unwrap();
        assert!(text.contains("PRR's predictions lie closer"), "{text}");
    }
}
