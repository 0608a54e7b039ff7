// minitl: compile-time helpers. Plain constexpr host functions: device code
// that calls them needs --expt-relaxed-constexpr.
#ifndef MINITL_DETAIL_MATH_H_
#define MINITL_DETAIL_MATH_H_

namespace minitl::detail {

constexpr int CeilDiv(int a, int b) { return (a + b - 1) / b; }

constexpr float Scale(int step) {
  return 1.0f + 0.5f * static_cast<float>(step);
}

}  // namespace minitl::detail

#endif  // MINITL_DETAIL_MATH_H_
