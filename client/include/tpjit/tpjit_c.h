/* The C ABI of the tpjit client, for FFI (ctypes, cffi, Rust, ...).
 *
 * Handles are opaque; every function that can fail returns an int error code
 * (TPJIT_OK = 0, else a gRPC / absl status code) and records a message that
 * tpjit_last_error() returns (per thread, valid until the thread's next
 * failing call). Strings returned by accessors live as long as their handle.
 * A client handle may be used from several threads at once; a manifest handle
 * is read-only after warm-up, except tpjit_fetch, which caches bytes in it and
 * must not run concurrently on one manifest. Library: libtpjit_c.so. */
#ifndef TPJIT_CLIENT_INCLUDE_TPJIT_TPJIT_C_H_
#define TPJIT_CLIENT_INCLUDE_TPJIT_TPJIT_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: the gRPC status codes. */
enum {
  TPJIT_OK = 0,
  TPJIT_ERR_CANCELLED = 1,
  TPJIT_ERR_UNKNOWN = 2,
  TPJIT_ERR_INVALID_ARGUMENT = 3,
  TPJIT_ERR_DEADLINE_EXCEEDED = 4,
  TPJIT_ERR_NOT_FOUND = 5,
  TPJIT_ERR_ALREADY_EXISTS = 6,
  TPJIT_ERR_PERMISSION_DENIED = 7,
  TPJIT_ERR_RESOURCE_EXHAUSTED = 8,
  TPJIT_ERR_FAILED_PRECONDITION = 9,
  TPJIT_ERR_ABORTED = 10,
  TPJIT_ERR_OUT_OF_RANGE = 11, /* also: caller buffer too small */
  TPJIT_ERR_UNIMPLEMENTED = 12,
  TPJIT_ERR_INTERNAL = 13,
  TPJIT_ERR_UNAVAILABLE = 14,
  TPJIT_ERR_DATA_LOSS = 15,
  TPJIT_ERR_UNAUTHENTICATED = 16
};

typedef struct tpjit_client tpjit_client;
typedef struct tpjit_manifest tpjit_manifest;

/* The warm-up summary (see tpjit.v1.WarmupSummary). */
typedef struct tpjit_summary {
  int32_t distinct_kernels;
  int32_t compiled;
  int32_t cache_hits;
  int32_t attached; /* 1: this call joined an existing job */
  double wall_seconds;
} tpjit_summary;

/* Called on the warm-up's thread for each progress event. `phase` is
 * "planning", "compiling", "done" or "failed"; valid during the call. */
typedef void (*tpjit_progress_fn)(void* user_data, int32_t done, int32_t total,
                                  int32_t cache_hits, int32_t compiled,
                                  int32_t failed, const char* phase);

/* The message of this thread's last failing call ("" when none). */
const char* tpjit_last_error(void);

/* Connects to tpjitd. `socket` is a Unix socket path or gRPC target; NULL or
 * "" means $TPJIT_SOCKET, $XDG_RUNTIME_DIR/tpjit/tpjitd.sock or
 * /run/tpjit/tpjitd.sock. Waits up to `connect_timeout_seconds` for the
 * daemon (0: connect lazily). On success *out owns a client. */
int tpjit_connect(const char* socket, double connect_timeout_seconds,
                  tpjit_client** out);
void tpjit_client_free(tpjit_client* client); /* NULL is fine */

/* Warms up the spec (JSON, the protobuf JSON mapping of WarmupSpec) as `rank`
 * of `world` in `group` (NULL = ""), within `timeout_seconds`. `progress` may
 * be NULL. On success *out owns the manifest. */
int tpjit_warmup(tpjit_client* client, const char* spec_json, int32_t rank,
                 int32_t world, const char* group, double timeout_seconds,
                 tpjit_progress_fn progress, void* user_data,
                 tpjit_manifest** out);
void tpjit_manifest_free(tpjit_manifest* manifest); /* NULL is fine */

const char* tpjit_manifest_digest(const tpjit_manifest* manifest);
int32_t tpjit_manifest_kernel_count(const tpjit_manifest* manifest);
int32_t tpjit_manifest_shape_count(const tpjit_manifest* manifest);
int64_t tpjit_manifest_m_max(const tpjit_manifest* manifest);
void tpjit_manifest_summary(const tpjit_manifest* manifest, tpjit_summary* out);

/* The kernel index serving M=`m` of shape `shape` (any m in 1..m_max; m is
 * first rounded up to the shape's M alignment: 128 for contig shapes). */
int tpjit_lookup(const tpjit_manifest* manifest, int32_t shape, int64_t m,
                 int32_t* kernel);
/* Kernel `kernel`'s cache key / entry symbol; NULL for a bad index. */
const char* tpjit_kernel_key(const tpjit_manifest* manifest, int32_t kernel);
const char* tpjit_kernel_lowered_name(const tpjit_manifest* manifest,
                                      int32_t kernel);

/* Kernel `kernel`'s cubin, checked against the manifest's sha256. Two-call
 * pattern: with buffer NULL, sets *size to the byte count and returns
 * TPJIT_OK; with a buffer of `capacity` >= *size bytes, copies the bytes and
 * sets *size; with a smaller buffer, sets *size and returns
 * TPJIT_ERR_OUT_OF_RANGE. The bytes are fetched once per manifest handle. */
int tpjit_fetch(tpjit_client* client, tpjit_manifest* manifest, int32_t kernel,
                void* buffer, size_t capacity, size_t* size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TPJIT_CLIENT_INCLUDE_TPJIT_TPJIT_C_H_ */
