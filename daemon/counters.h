// Daemon-wide counters, read by Stats, Status and /metrics. Lock-free.
#ifndef TPJIT_DAEMON_COUNTERS_H_
#define TPJIT_DAEMON_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>

namespace tpjit {

struct DaemonCounters {
  std::atomic<int64_t> compiles{0};    // compiles performed
  std::atomic<int64_t> cache_hits{0};  // kernels served from the cache
  std::atomic<int64_t> cache_misses{0};
  // Cache entries refused on a hit: not a CUDA ELF of the task's SM with its
  // symbols, or failed this daemon's load check (recompiled).
  std::atomic<int64_t> cache_rejects{0};
  std::atomic<int64_t> compile_failures{0};
  std::atomic<int64_t> worker_restarts{0};
  std::atomic<int64_t> warmup_calls{0};
  std::atomic<int64_t> jobs{0};
  std::atomic<int64_t> compile_micros{0};  // summed compile wall time
  std::atomic<int64_t> barrier_waits{0};
  std::atomic<int64_t> barrier_timeouts{0};
  // Warm-ups whose planning stopped because their client went away.
  std::atomic<int64_t> plans_cancelled{0};
  // Compile seconds histogram, upper bounds kHistogramBounds (+Inf last).
  static constexpr std::array<double, 8> kHistogramBounds = {
      0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  std::array<std::atomic<int64_t>, 9> compile_histogram{};

  void RecordCompile(double seconds) {
    compiles.fetch_add(1);
    compile_micros.fetch_add(static_cast<int64_t>(seconds * 1e6));
    size_t b = 0;
    while (b < kHistogramBounds.size() && seconds > kHistogramBounds[b]) ++b;
    compile_histogram[b].fetch_add(1);
  }
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_COUNTERS_H_
