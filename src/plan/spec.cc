#include "src/plan/spec.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "src/common/request_limits.h"
#include "src/common/status_macros.h"
#include "src/plan/family.h"
#include "src/plan/m_list.h"

namespace tpjit {
namespace {

using tpjit::v1::MPolicy;
using tpjit::v1::Shape;
using tpjit::v1::WarmupSpec;

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status ValidateTarget(const tpjit::v1::Target& target) {
  int sm = 0;
  const std::string& arch = target.arch();
  // Bounded before it is echoed in an error.
  TPJIT_RETURN_IF_ERROR(CheckName("target.arch", arch, 16));
  if (!absl::StartsWith(arch, "sm_") ||
      !absl::SimpleAtoi(arch.substr(3, 2), &sm) || sm < 80 || arch.size() > 6 ||
      (arch.size() == 6 && arch.back() != 'a')) {
    return Bad("target.arch",
               absl::StrCat("\"", arch, "\" is not sm_80 .. sm_120a"));
  }
  if (target.num_sms() < 1 || target.num_sms() > 1024) {
    return Bad("target.numSms",
               absl::StrCat(target.num_sms(), " is outside 1..1024"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicy(const MPolicy& policy) {
  if (policy.kind() == MPolicy::KIND_UNSPECIFIED) {
    return Bad("mPolicy.kind", "missing (FULL, FAST or EXPLICIT)");
  }
  if (policy.kind() != MPolicy::EXPLICIT && !policy.m_values().empty()) {
    return Bad("mPolicy.mValues", "only EXPLICIT takes a list");
  }
  if (policy.m_values_size() > kMaxM) {
    return Bad("mPolicy.mValues", absl::StrCat("more than ", kMaxM, " values"));
  }
  return PolicyMValues(policy).status();
}

absl::Status ValidateShape(const Shape& shape, int index) {
  const std::string at = absl::StrCat("shapes[", index, "]");
  TPJIT_RETURN_IF_ERROR(CheckName(at + ".family", shape.family()));
  auto family = FamilyFromId(shape.family());
  if (!family.ok()) return Bad(at + ".family", family.status().message());
  const FamilyInfo& info = Info(*family);
  if (shape.n() < 64 || shape.n() > kMaxDim || shape.n() % 64 != 0) {
    return Bad(at + ".n", absl::StrCat(shape.n(),
                                       " must be a positive multiple of 64 up "
                                       "to ",
                                       kMaxDim));
  }
  if (shape.k() < info.block_k || shape.k() > kMaxDim ||
      shape.k() % info.block_k != 0) {
    return Bad(at + ".k",
               absl::StrCat(shape.k(), " must be a positive multiple of ",
                            info.block_k, " (", info.id, "'s block K) up to ",
                            kMaxDim));
  }
  const bool grouped = info.group != GroupKind::kNone;
  if (grouped && (shape.num_groups() < 1 || shape.num_groups() > kMaxGroups)) {
    return Bad(at + ".numGroups",
               absl::StrCat(shape.num_groups(), " must be in 1..", kMaxGroups,
                            " for ", info.id));
  }
  if (!grouped && shape.num_groups() > 1) {
    return Bad(at + ".numGroups", absl::StrCat(info.id, " is not grouped; got ",
                                               shape.num_groups()));
  }
  return absl::OkStatus();
}

// Planning cost is bounded: shapes x M values <= kMaxPlanWork.
absl::Status CheckPlanWork(const WarmupSpec& spec) {
  TPJIT_ASSIGN_OR_RETURN(std::vector<int64_t> values,
                         PolicyMValues(spec.m_policy()));
  const int64_t work =
      int64_t{spec.shapes_size()} * static_cast<int64_t>(values.size());
  if (work <= kMaxPlanWork) return absl::OkStatus();
  return Bad("shapes",
             absl::StrCat(spec.shapes_size(), " shapes x ", values.size(),
                          " M values = ", work,
                          " exceeds the planning limit of ", kMaxPlanWork,
                          " (fewer shapes, or a smaller "
                          "chunkedPrefillSize or mValues list)"));
}

}  // namespace

absl::Status ValidateSpec(const WarmupSpec& spec) {
  TPJIT_RETURN_IF_ERROR(CheckName("name", spec.name()));
  if (spec.comment().size() > kMaxCommentBytes) {
    return Bad("comment", absl::StrCat(spec.comment().size(),
                                       " bytes exceeds the limit of ",
                                       kMaxCommentBytes, " bytes"));
  }
  TPJIT_RETURN_IF_ERROR(ValidateTarget(spec.target()));
  TPJIT_RETURN_IF_ERROR(ValidatePolicy(spec.m_policy()));
  if (spec.shapes().empty()) return Bad("shapes", "at least one is needed");
  if (spec.shapes_size() > kMaxShapes) {
    return Bad("shapes", absl::StrCat(spec.shapes_size(),
                                      " exceeds the limit "
                                      "of ",
                                      kMaxShapes));
  }
  for (int i = 0; i < spec.shapes_size(); ++i) {
    TPJIT_RETURN_IF_ERROR(ValidateShape(spec.shapes(i), i));
  }
  return CheckPlanWork(spec);
}

absl::StatusOr<WarmupSpec> ParseSpecJson(absl::string_view json) {
  WarmupSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &spec, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec JSON: ", status.message().as_string()));
  }
  TPJIT_RETURN_IF_ERROR(ValidateSpec(spec));
  return spec;
}

}  // namespace tpjit
