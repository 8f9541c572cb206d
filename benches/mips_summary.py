"""Median ratios ours/hnswlib (from Python and from C++) and ours/faiss over the interleaved rounds
of .ci/bench-mips.

Reads the JSON lines the rounds wrote (one per library, ef and round) and prints, per data set:
queries/s ratio at each ef, the ratio at equal recall (each library's fastest ef reaching
recall@10 ≥ 0.95, or the highest multiple of 0.05 both reach), the build-time ratio, and recall at ef 32. Medians over rounds.
"""
import json
import statistics
import sys
from collections import defaultdict

OURS, HNSWLIB, HNSWLIB_CPP, FAISS = "rorec", "hnswlib", "hnswlib (C++)", "faiss IndexHNSWFlat"
TARGET_RECALL = 0.95


def fastest_at(rows, recall):
    ok = [r["qps"] for r in rows if r["recall"] >= recall]
    return max(ok) if ok else None


def target_recall(ours, theirs):
    """0.95, or where one library never gets there (Gaussian data at these ef), the highest
    multiple of 0.05 that both reach."""
    reachable = min(max(r["recall"] for r in ours), max(r["recall"] for r in theirs))
    return min(TARGET_RECALL, int(reachable * 20) / 20)


def main(paths):
    for path in paths:
        runs = defaultdict(list)  # (round, library) -> rows
        kind = None
        for line in open(path):
            row = json.loads(line)
            kind = row["kind"]
            runs[(row["round"], row["library"])].append(row)
        rounds = sorted({r for r, _ in runs})
        efs = sorted({row["ef"] for rows in runs.values() for row in rows})
        print(f"## {kind}: medians over {len(rounds)} interleaved rounds")
        for other in (HNSWLIB, HNSWLIB_CPP, FAISS):
            if not all(runs[(r, other)] for r in rounds):
                continue  # not run (hnswlib from C++ needs g++)
            per_ef = defaultdict(list)
            equal_recall, build = [], []
            for r in rounds:
                ours, theirs = runs[(r, OURS)], runs[(r, other)]
                by_ef = {x["ef"]: x for x in theirs}
                for x in ours:
                    if x["ef"] in by_ef:
                        per_ef[x["ef"]].append(x["qps"] / by_ef[x["ef"]]["qps"])
                level = target_recall(ours, theirs)
                a, b = fastest_at(ours, level), fastest_at(theirs, level)
                if a and b:
                    equal_recall.append(a / b)
                build.append(ours[0]["build_s"] / theirs[0]["build_s"])
            cells = " · ".join(f"ef {ef}: {statistics.median(per_ef[ef]):.2f}" for ef in efs if per_ef[ef])
            print(f"ours / {other}, q/s at equal ef: {cells}")
            level = target_recall(runs[(rounds[0], OURS)], runs[(rounds[0], other)])
            print(f"ours / {other}, q/s at recall@10 ≥ {level:.2f} (each at its fastest such ef): {statistics.median(equal_recall):.2f}")
            print(f"ours / {other}, build time: {statistics.median(build):.2f} "
                  f"(ours {statistics.median(runs[(r, OURS)][0]['build_s'] for r in rounds):.1f} s, "
                  f"{other} {statistics.median(runs[(r, other)][0]['build_s'] for r in rounds):.1f} s)")
        for lib in (OURS, HNSWLIB, HNSWLIB_CPP, FAISS):
            at32 = [x["recall"] for r in rounds for x in runs[(r, lib)] if x["ef"] == 32]
            if at32:
                print(f"recall@10 at ef 32, {lib}: {statistics.median(at32):.4f}")
        for lib in (OURS, HNSWLIB_CPP):
            counts = {ef: statistics.median(x["distances_per_query"] for r in rounds for x in runs[(r, lib)] if x["ef"] == ef)
                      for ef in efs if any(x["ef"] == ef for r in rounds for x in runs[(r, lib)])}
            if counts:
                print(f"distances per query, {lib}: " + " · ".join(f"ef {ef}: {c:.0f}" for ef, c in counts.items()))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
