"""Our HNSW against faiss IndexHNSWFlat and hnswlib on identical vectors, one thread each.

Run by .ci/bench-mips: the vectors, queries and exact top-10 are written by `rorec mips-export`
(raw little-endian f32); this script installs nothing itself (the shell script makes the venv).
Prints one JSON line per (library, ef): recall@10 and queries per second.
"""
import json
import sys
import time

import numpy as np

DIM = 64


def load(path, dim):
    return np.fromfile(path, dtype="<f4").reshape(-1, dim)


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / 10.0 for f, t in zip(found, truth)]))


def main(directory, m=16, ef_construction=100):
    items = load(f"{directory}/items.f32", DIM)
    queries = load(f"{directory}/queries.f32", DIM)
    truth = load(f"{directory}/truth.f32", 10).astype(np.int64)
    efs = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]

    import faiss

    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(items)
    build = time.perf_counter() - start
    for ef in efs:
        index.hnsw.efSearch = ef
        start = time.perf_counter()
        found = [index.search(queries[q : q + 1], 10)[1][0] for q in range(len(queries))]
        secs = time.perf_counter() - start
        print(json.dumps({"library": "faiss IndexHNSWFlat", "m": m, "ef_construction": ef_construction, "build_s": round(build, 2),
                          "ef": ef, "recall": round(recall(found, truth), 4), "qps": round(len(queries) / secs)}))

    import hnswlib

    start = time.perf_counter()
    h = hnswlib.Index(space="ip", dim=DIM)
    h.init_index(max_elements=len(items), M=m, ef_construction=ef_construction, random_seed=1)
    h.set_num_threads(1)
    h.add_items(items, np.arange(len(items)))
    build = time.perf_counter() - start
    for ef in efs:
        h.set_ef(ef)
        start = time.perf_counter()
        found = [h.knn_query(queries[q : q + 1], k=10)[0][0] for q in range(len(queries))]
        secs = time.perf_counter() - start
        print(json.dumps({"library": "hnswlib", "m": m, "ef_construction": ef_construction, "build_s": round(build, 2),
                          "ef": ef, "recall": round(recall(found, truth), 4), "qps": round(len(queries) / secs)}))


if __name__ == "__main__":
    main(sys.argv[1])
