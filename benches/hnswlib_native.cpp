// hnswlib called from C++ on the vectors `rorec mips-export` wrote: the same build and searches
// as benches/mips_vs_faiss.py makes through hnswlib's Python binding, without the binding's
// per-query call, and with the distances each search computes (ours count them too).
// .ci/bench-mips compiles it against the headers of hnswlib's source package, with the flags
// hnswlib's own setup.py uses for a source build (-O3 -march=native).
// Prints one JSON line per ef: recall@10, queries/s, distances per query.
#include "hnswlib/hnswlib.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace {

constexpr size_t kDim = 64;

// Every distance the index computes goes through here: hnswlib's own inner-product kernel for
// this CPU, plus a count (one add; a search's distances cost ~10 ns each in d = 64).
hnswlib::DISTFUNC<float> g_kernel = nullptr;
long g_distances = 0;

float counted_distance(const void *a, const void *b, const void *param) {
    ++g_distances;
    return g_kernel(a, b, param);
}

class CountingInnerProduct : public hnswlib::SpaceInterface<float> {
   public:
    explicit CountingInnerProduct(size_t dim) : inner_(dim) { g_kernel = inner_.get_dist_func(); }
    size_t get_data_size() override { return inner_.get_data_size(); }
    hnswlib::DISTFUNC<float> get_dist_func() override { return counted_distance; }
    void *get_dist_func_param() override { return inner_.get_dist_func_param(); }

   private:
    hnswlib::InnerProductSpace inner_;
};

std::vector<float> load(const std::string &path) {
    std::ifstream file(path, std::ios::binary | std::ios::ate);
    if (!file) {
        fprintf(stderr, "cannot read %s\n", path.c_str());
        exit(1);
    }
    std::vector<float> values(static_cast<size_t>(file.tellg()) / sizeof(float));
    file.seekg(0);
    file.read(reinterpret_cast<char *>(values.data()), values.size() * sizeof(float));
    return values;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hnswlib_native DIR [M EF_CONSTRUCTION]\n");
        return 2;
    }
    const std::string dir = argv[1];
    const size_t m = argc > 2 ? std::stoul(argv[2]) : 16, ef_construction = argc > 3 ? std::stoul(argv[3]) : 100;
    const auto items = load(dir + "/items.f32"), queries = load(dir + "/queries.f32"), truth = load(dir + "/truth.f32");
    const size_t n = items.size() / kDim, nq = queries.size() / kDim;

    CountingInnerProduct space(kDim);
    const auto start = std::chrono::steady_clock::now();
    hnswlib::HierarchicalNSW<float> index(&space, n, m, ef_construction, /*random_seed=*/1);
    for (size_t i = 0; i < n; i++) index.addPoint(&items[i * kDim], i);
    const double build = seconds_since(start);

    for (size_t ef : {10, 16, 24, 32, 48, 64, 96, 128, 192, 256}) {
        index.setEf(ef);
        g_distances = 0;
        double recall = 0;
        std::vector<std::vector<size_t>> found(nq);
        const auto searching = std::chrono::steady_clock::now();
        for (size_t q = 0; q < nq; q++) {
            auto best = index.searchKnn(&queries[q * kDim], 10);
            for (; !best.empty(); best.pop()) found[q].push_back(best.top().second);
        }
        const double secs = seconds_since(searching);
        for (size_t q = 0; q < nq; q++) {
            std::set<size_t> exact;
            for (size_t j = 0; j < 10; j++) exact.insert(static_cast<size_t>(truth[q * 10 + j]));
            for (size_t id : found[q]) recall += exact.count(id) / 10.0;
        }
        printf("{\"library\":\"hnswlib (C++)\",\"m\":%zu,\"ef_construction\":%zu,\"build_s\":%.2f,\"ef\":%zu,"
               "\"recall\":%.4f,\"qps\":%.0f,\"distances_per_query\":%.0f}\n",
               m, ef_construction, build, ef, recall / nq, nq / secs, static_cast<double>(g_distances) / nq);
        fflush(stdout);
    }
    return 0;
}
