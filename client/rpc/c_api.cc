// The C ABI (client/include/tpjit/tpjit_c.h) over tpjit::Client.
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/include/tpjit/client.h"
#include "client/include/tpjit/tpjit_c.h"
#include "src/plan/spec.h"

struct tpjit_client {
  std::unique_ptr<tpjit::Client> client;
};

struct tpjit_manifest {
  tpjit::WarmupResult result;
  std::map<int, std::string> cubins;  // fetched bytes by kernel index
};

namespace {

thread_local std::string last_error;

int Fail(const absl::Status& status) {
  last_error = std::string(status.message());
  return static_cast<int>(status.code());
}

int Fail(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

const tpjit::v1::ManifestKernel* KernelAt(const tpjit_manifest* m, int i) {
  if (m == nullptr || i < 0 || i >= m->result.manifest.kernels_size()) {
    return nullptr;
  }
  return &m->result.manifest.kernels(i);
}

}  // namespace

extern "C" {

const char* tpjit_last_error(void) { return last_error.c_str(); }

int tpjit_connect(const char* socket, double connect_timeout_seconds,
                  tpjit_client** out) {
  if (out == nullptr) return Fail(TPJIT_ERR_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  tpjit::ClientOptions options;
  options.connect_timeout =
      absl::Seconds(connect_timeout_seconds > 0 ? connect_timeout_seconds : 0);
  auto client =
      tpjit::Client::Connect(socket == nullptr ? "" : socket, options);
  if (!client.ok()) return Fail(client.status());
  *out = new tpjit_client{*std::move(client)};
  return TPJIT_OK;
}

void tpjit_client_free(tpjit_client* client) { delete client; }

int tpjit_warmup(tpjit_client* client, const char* spec_json, int32_t rank,
                 int32_t world, const char* group, double timeout_seconds,
                 tpjit_progress_fn progress, void* user_data,
                 tpjit_manifest** out) {
  if (client == nullptr || spec_json == nullptr || out == nullptr) {
    return Fail(TPJIT_ERR_INVALID_ARGUMENT,
                "tpjit_warmup: client, spec_json and out must not be NULL");
  }
  *out = nullptr;
  if (!(timeout_seconds > 0)) {
    return Fail(TPJIT_ERR_INVALID_ARGUMENT,
                "tpjit_warmup: timeout_seconds must be > 0");
  }
  auto spec = tpjit::ParseSpecJson(spec_json);
  if (!spec.ok()) return Fail(spec.status());
  tpjit::ProgressCallback on_progress;
  if (progress != nullptr) {
    on_progress = [progress, user_data](const tpjit::v1::WarmupProgress& p) {
      progress(user_data, p.done(), p.total(), p.cache_hits(), p.compiled(),
               p.failed(), p.phase().c_str());
    };
  }
  auto result =
      client->client->Warmup(*spec, rank, world, group == nullptr ? "" : group,
                             on_progress, absl::Seconds(timeout_seconds));
  if (!result.ok()) return Fail(result.status());
  *out = new tpjit_manifest{*std::move(result), {}};
  return TPJIT_OK;
}

void tpjit_manifest_free(tpjit_manifest* manifest) { delete manifest; }

const char* tpjit_manifest_digest(const tpjit_manifest* manifest) {
  return manifest == nullptr ? "" : manifest->result.manifest.digest().c_str();
}

int32_t tpjit_manifest_kernel_count(const tpjit_manifest* manifest) {
  return manifest == nullptr ? 0 : manifest->result.manifest.kernels_size();
}

int32_t tpjit_manifest_shape_count(const tpjit_manifest* manifest) {
  return manifest == nullptr ? 0 : manifest->result.manifest.shapes_size();
}

int64_t tpjit_manifest_m_max(const tpjit_manifest* manifest) {
  return manifest == nullptr ? 0 : manifest->result.manifest.m_max();
}

void tpjit_manifest_summary(const tpjit_manifest* manifest,
                            tpjit_summary* out) {
  if (out == nullptr) return;
  *out = tpjit_summary{};
  if (manifest == nullptr) return;
  const tpjit::v1::WarmupSummary& s = manifest->result.summary;
  out->distinct_kernels = s.distinct_kernels();
  out->compiled = s.compiled();
  out->cache_hits = s.cache_hits();
  out->attached = s.attached() ? 1 : 0;
  out->wall_seconds = s.wall_seconds();
}

int tpjit_lookup(const tpjit_manifest* manifest, int32_t shape, int64_t m,
                 int32_t* kernel) {
  if (manifest == nullptr || kernel == nullptr) {
    return Fail(TPJIT_ERR_INVALID_ARGUMENT,
                "tpjit_lookup: manifest and kernel must not be NULL");
  }
  auto k = tpjit::LookupKernel(manifest->result.manifest, shape, m);
  if (!k.ok()) return Fail(k.status());
  *kernel = *k;
  return TPJIT_OK;
}

const char* tpjit_kernel_key(const tpjit_manifest* manifest, int32_t kernel) {
  const auto* k = KernelAt(manifest, kernel);
  return k == nullptr ? nullptr : k->key().c_str();
}

const char* tpjit_kernel_lowered_name(const tpjit_manifest* manifest,
                                      int32_t kernel) {
  const auto* k = KernelAt(manifest, kernel);
  return k == nullptr ? nullptr : k->lowered_name().c_str();
}

int tpjit_fetch(tpjit_client* client, tpjit_manifest* manifest, int32_t kernel,
                void* buffer, size_t capacity, size_t* size) {
  const auto* k = KernelAt(manifest, kernel);
  if (client == nullptr || k == nullptr || size == nullptr) {
    return Fail(TPJIT_ERR_INVALID_ARGUMENT,
                absl::StrCat("tpjit_fetch: NULL argument or kernel ", kernel,
                             " is not in the manifest"));
  }
  auto it = manifest->cubins.find(kernel);
  if (it == manifest->cubins.end()) {
    auto bytes = client->client->Fetch(*k);
    if (!bytes.ok()) return Fail(bytes.status());
    it = manifest->cubins.emplace(kernel, *std::move(bytes)).first;
  }
  *size = it->second.size();
  if (buffer == nullptr) return TPJIT_OK;
  if (capacity < it->second.size()) {
    return Fail(TPJIT_ERR_OUT_OF_RANGE,
                absl::StrCat("tpjit_fetch: buffer of ", capacity,
                             " bytes is smaller than the cubin's ", *size));
  }
  std::memcpy(buffer, it->second.data(), it->second.size());
  return TPJIT_OK;
}

}  // extern "C"
