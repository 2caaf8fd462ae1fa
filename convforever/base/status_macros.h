// Status propagation macros for absl::Status / absl::StatusOr.
//
//   RETURN_IF_ERROR(expr);            // expr yields absl::Status; returns it from the caller if not OK
//   ASSIGN_OR_RETURN(lhs, expr);      // expr yields absl::StatusOr<T>; on OK moves the value into
//                                     // lhs (a declaration like `auto x` or an existing lvalue),
//                                     // otherwise returns the status from the caller.
// Both work in functions returning absl::Status or any absl::StatusOr<U>. Each expression is
// evaluated exactly once.
#ifndef CONVFOREVER_BASE_STATUS_MACROS_H_
#define CONVFOREVER_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CF_STATUS_CONCAT_INNER_(a, b) a##b
#define CF_STATUS_CONCAT_(a, b) CF_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                        \
  do {                                                               \
    ::absl::Status cf_status_ = (expr);                              \
    if (!cf_status_.ok()) return cf_status_;                         \
  } while (false)

#define CF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  CF_ASSIGN_OR_RETURN_IMPL_(CF_STATUS_CONCAT_(cf_statusor_, __LINE__), lhs, expr)

#endif  // CONVFOREVER_BASE_STATUS_MACROS_H_
