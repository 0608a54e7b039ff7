// Return-on-error helpers for absl::Status / absl::StatusOr.
#ifndef TPJIT_SRC_COMMON_STATUS_MACROS_H_
#define TPJIT_SRC_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TPJIT_CONCAT_INNER_(a, b) a##b
#define TPJIT_CONCAT_(a, b) TPJIT_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller if not OK.
#define TPJIT_RETURN_IF_ERROR(expr)                \
  do {                                             \
    const ::absl::Status tpjit_status_ = (expr);   \
    if (!tpjit_status_.ok()) return tpjit_status_; \
  } while (0)

// `lhs = value of rexpr` (an absl::StatusOr<T>), or returns its error.
#define TPJIT_ASSIGN_OR_RETURN(lhs, rexpr)                                    \
  TPJIT_ASSIGN_OR_RETURN_IMPL_(TPJIT_CONCAT_(tpjit_statusor_, __LINE__), lhs, \
                               rexpr)

#define TPJIT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // TPJIT_SRC_COMMON_STATUS_MACROS_H_
