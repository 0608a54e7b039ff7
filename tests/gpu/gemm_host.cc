#include "tests/gpu/gemm_host.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"

namespace tpjit {
namespace {

uint32_t Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

float FromBits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// e4m3 codes with |value| <= 4 (keeps sums well inside fp32 and bf16 range).
const std::vector<uint8_t>& SmallE4m3Codes() {
  static const auto* codes = [] {
    auto* v = new std::vector<uint8_t>();
    for (int c = 0; c < 256; ++c) {
      const float x = E4m3ToFloat(static_cast<uint8_t>(c));
      if (!std::isnan(x) && std::fabs(x) <= 4.0f) v->push_back(c);
    }
    return v;
  }();
  return *codes;
}

// e4m3 code -> value, for all 256 codes.
const float* E4m3Table() {
  static const float* table = [] {
    auto* t = new float[256];
    for (int c = 0; c < 256; ++c) t[c] = E4m3ToFloat(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

// Fills raw[i0, i1) / val[i0, i1) from its own generator.
void FillRange(bool fp8, int64_t i0, int64_t i1, uint64_t seed,
               std::vector<uint8_t>& raw, std::vector<float>& val) {
  std::mt19937_64 rng(seed);
  if (fp8) {
    const auto& codes = SmallE4m3Codes();
    const float* table = E4m3Table();
    for (int64_t i = i0; i < i1; i += 8) {
      uint64_t r = rng();
      for (int64_t j = i; j < std::min(i1, i + 8); ++j, r >>= 8) {
        const uint8_t c = codes[(r & 0xff) % codes.size()];
        raw[j] = c;
        val[j] = table[c];
      }
    }
    return;
  }
  auto* out = reinterpret_cast<uint16_t*>(raw.data());
  for (int64_t i = i0; i < i1; i += 2) {
    const uint64_t r = rng();
    for (int64_t j = i; j < std::min(i1, i + 2); ++j) {
      const uint32_t bits = static_cast<uint32_t>(r >> (32 * (j - i)));
      const float x = (bits >> 8) * (2.0f / 16777216.0f) - 1.0f;
      out[j] = FloatToBf16(x);
      val[j] = Bf16ToFloat(out[j]);
    }
  }
}

void FillOperand(bool fp8, int64_t count, std::mt19937_64& rng, int threads,
                 std::vector<uint8_t>& raw, std::vector<float>& val) {
  raw.resize(count * (fp8 ? 1 : 2));
  val.resize(count);
  // Chunks are multiples of 8 elements so each generator call fills whole
  // groups.
  const int64_t chunk = ((count + threads - 1) / threads + 7) / 8 * 8;
  std::vector<std::thread> pool;
  for (int64_t i0 = 0; i0 < count; i0 += chunk) {
    pool.emplace_back(FillRange, fp8, i0, std::min(count, i0 + chunk), rng(),
                      std::ref(raw), std::ref(val));
  }
  for (auto& t : pool) t.join();
}

void FillScales(int64_t count, std::mt19937_64& rng, std::vector<float>& s) {
  std::uniform_real_distribution<float> dist(0.25f, 2.0f);
  s.resize(count);
  for (float& x : s) x = dist(rng);
}

std::vector<int32_t> ContigLayout(int groups, int64_t m, std::mt19937_64& rng) {
  std::vector<int32_t> layout;
  const int64_t per = std::max<int64_t>(1, m / std::max(1, groups));
  for (int g = 0; g < groups && static_cast<int64_t>(layout.size()) < m; ++g) {
    int64_t rows = std::uniform_int_distribution<int64_t>(0, 2 * per)(rng);
    if (g == 0) rows = std::max<int64_t>(rows, 1);
    layout.insert(layout.end(), rows, g);
    while (layout.size() % 128 != 0) layout.push_back(-1);
    if (g == 1) layout.insert(layout.end(), 128, -1);  // a padding tile
  }
  return layout;
}

}  // namespace

uint16_t FloatToBf16(float x) {
  uint32_t u = Bits(x);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

float Bf16ToFloat(uint16_t x) { return FromBits(uint32_t{x} << 16); }

float E4m3ToFloat(uint8_t x) {
  const int sign = x >> 7, exp = (x >> 3) & 0xf, man = x & 7;
  if (exp == 15 && man == 7) return NAN;
  const float v = exp == 0 ? std::ldexp(man / 8.0f, -6)
                           : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -v : v;
}

size_t HostGemm::d_bytes() const {
  return static_cast<size_t>(a_rows) * spec.n * out_bytes();
}

int HostGemm::out_bytes() const { return Info(spec.family).f32_out ? 4 : 2; }

int HostGemm::RowGroup(int64_t r) const {
  switch (Info(spec.family).group) {
    case GroupKind::kNone:
      return r < m ? 0 : -1;
    case GroupKind::kContig:
      return r < static_cast<int64_t>(groups.size()) ? groups[r] : -1;
    case GroupKind::kMasked: {
      const int g = static_cast<int>(r / m);
      return r % m < groups[g] ? g : -1;
    }
  }
  return -1;
}

std::shared_ptr<const HostOperandB> MakeHostB(const KernelSpec& spec,
                                              std::mt19937_64& rng,
                                              int threads) {
  const FamilyInfo& info = Info(spec.family);
  auto b = std::make_shared<HostOperandB>();
  b->b_mats = info.group == GroupKind::kNone ? 1 : spec.groups;
  FillOperand(info.fp8, int64_t{b->b_mats} * spec.n * spec.k, rng, threads,
              b->raw, b->val);
  if (info.fp8) {
    FillScales(int64_t{b->b_mats} * ((spec.n + 127) / 128) * (spec.k / 128),
               rng, b->scales);
  }
  return b;
}

HostGemm MakeHostGemm(const KernelSpec& spec, int64_t m, std::mt19937_64& rng,
                      std::shared_ptr<const HostOperandB> b, int threads) {
  const FamilyInfo& info = Info(spec.family);
  HostGemm h;
  h.spec = spec;
  h.m = m;
  h.a_rows = m;
  if (info.group == GroupKind::kContig) {
    h.groups = ContigLayout(spec.groups, m, rng);
    h.m = h.a_rows = h.groups.size();
  } else if (info.group == GroupKind::kMasked) {
    h.a_rows = m * spec.groups;
    for (int g = 0; g < spec.groups; ++g) {
      h.groups.push_back(static_cast<int32_t>(
          std::uniform_int_distribution<int64_t>(0, m)(rng)));
    }
    h.groups[0] = static_cast<int32_t>(m);
    if (spec.groups > 1) h.groups[1] = 0;
    if (spec.groups > 2) h.groups[2] = 1;
  }
  h.b = std::move(b);
  FillOperand(info.fp8, h.a_rows * spec.k, rng, threads, h.a, h.a_val);
  if (info.fp8) FillScales(h.a_rows * (spec.k / 128), rng, h.sa);
  return h;
}

namespace {

// Dot product of a[0, len) and b[0, len) in double, four partial sums.
double Dot(const float* a, const float* b, int len) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    s0 += double{a[i]} * b[i];
    s1 += double{a[i + 1]} * b[i + 1];
    s2 += double{a[i + 2]} * b[i + 2];
    s3 += double{a[i + 3]} * b[i + 3];
  }
  for (; i < len; ++i) s0 += double{a[i]} * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Reference row `r` (group g) into `ref` (N values).
void ReferenceRow(const HostGemm& h, int64_t r, int g,
                  std::vector<double>& ref) {
  const int n = h.spec.n, k = h.spec.k, kb = k / 128;
  const bool fp8 = Info(h.spec.family).fp8;
  const float* a = h.a_val.data() + r * k;
  for (int j = 0; j < n; ++j) {
    const float* b = h.b->val.data() + (int64_t{g} * n + j) * k;
    if (!fp8) {
      ref[j] = Dot(a, b, k);
      continue;
    }
    const float* sb =
        h.b->scales.data() + (int64_t{g} * ((n + 127) / 128) + j / 128) * kb;
    double sum = 0;
    for (int blk = 0; blk < kb; ++blk) {
      sum +=
          Dot(a + blk * 128, b + blk * 128, 128) * h.sa[r * kb + blk] * sb[blk];
    }
    ref[j] = sum;
  }
}

double OutAt(const HostGemm& h, const std::vector<uint8_t>& d, int64_t idx) {
  if (h.out_bytes() == 4) {
    float x;
    std::memcpy(&x, d.data() + idx * 4, 4);
    return x;
  }
  uint16_t x;
  std::memcpy(&x, d.data() + idx * 2, 2);
  return Bf16ToFloat(x);
}

bool IsPoison(const HostGemm& h, const std::vector<uint8_t>& d, int64_t idx) {
  for (int i = 0; i < h.out_bytes(); ++i) {
    if (d[idx * h.out_bytes() + i] != kPoisonByte) return false;
  }
  return true;
}

// What one thread found on its rows.
struct PartialCheck {
  double err2 = 0, ref2 = 0, worst_ratio = 0;
  int64_t bad = 0;
  std::vector<std::string> first_bad;  // up to kShownBad
};

constexpr int kShownBad = 4;

// Compares valid row `r` element by element; adds to `p`.
void CheckRow(const HostGemm& h, const std::vector<uint8_t>& d, int64_t r,
              double rtol, std::vector<double>& ref, PartialCheck& p) {
  const int n = h.spec.n;
  ReferenceRow(h, r, h.RowGroup(r), ref);
  double row2 = 0;
  for (int j = 0; j < n; ++j) row2 += ref[j] * ref[j];
  const double atol = rtol * std::sqrt(row2 / n);
  for (int j = 0; j < n; ++j) {
    const double out = OutAt(h, d, r * n + j);
    const double diff = std::isfinite(out) ? out - ref[j] : 1e300;
    const double allowed = atol + rtol * std::fabs(ref[j]);
    const double ratio =
        allowed > 0 ? std::fabs(diff) / allowed : (diff == 0 ? 0.0 : INFINITY);
    p.err2 += diff * diff;
    p.worst_ratio = std::max(p.worst_ratio, ratio);
    if (!(ratio <= 1.0)) {
      ++p.bad;
      if (p.first_bad.size() < kShownBad) {
        p.first_bad.push_back(
            absl::StrFormat("[%d,%d] out=%g ref=%g", r, j, out, ref[j]));
      }
    }
  }
  p.ref2 += row2;
}

}  // namespace

double DefaultRtol(const FamilyInfo& info) {
  return info.f32_out ? 1e-4 : 1e-2;
}

int64_t CountUnpoisoned(const std::vector<uint8_t>& bytes, size_t begin,
                        size_t end) {
  int64_t n = 0;
  for (size_t i = begin; i < end && i < bytes.size(); ++i) {
    n += bytes[i] != kPoisonByte;
  }
  return n;
}

CheckResult CheckGemm(const HostGemm& h, const std::vector<uint8_t>& d,
                      double rtol, int threads) {
  CheckResult res;
  const int n = h.spec.n;
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < h.a_rows; ++r) {
    const bool row_valid = h.RowGroup(r) >= 0;
    if (row_valid) rows.push_back(r);
    for (int j = 0; j < n; ++j) {
      const int64_t idx = r * n + j;
      if (!row_valid) {
        res.touched_poison += !IsPoison(h, d, idx);
      } else if (!std::isfinite(OutAt(h, d, idx))) {
        ++res.nan_valid;
      }
    }
  }
  res.rows_checked = rows.size();
  std::vector<PartialCheck> parts(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<double> ref(n);
      for (size_t i = t; i < rows.size(); i += threads) {
        CheckRow(h, d, rows[i], rtol, ref, parts[t]);
      }
    });
  }
  for (auto& th : pool) th.join();
  double e = 0, r = 0;
  std::vector<std::string> shown;
  for (const PartialCheck& p : parts) {
    e += p.err2;
    r += p.ref2;
    res.bad_elements += p.bad;
    res.worst_ratio = std::max(res.worst_ratio, p.worst_ratio);
    for (const std::string& s : p.first_bad) {
      if (shown.size() < kShownBad) shown.push_back(s);
    }
  }
  res.rel_err = r > 0 ? std::sqrt(e / r) : (e > 0 ? INFINITY : 0.0);
  res.ok =
      res.bad_elements == 0 && res.nan_valid == 0 && res.touched_poison == 0;
  res.detail = absl::StrFormat(
      "rows_checked=%d (all valid) elements_out_of_tolerance=%d "
      "worst_tolerance_use=%.3g rel_err=%.3g nan_in_valid=%d "
      "poison_overwritten=%d (rtol=%g, atol=rtol*row rms)",
      res.rows_checked, res.bad_elements, res.worst_ratio, res.rel_err,
      res.nan_valid, res.touched_poison, rtol);
  for (const std::string& s : shown) res.detail += " " + s;
  return res;
}

}  // namespace tpjit
