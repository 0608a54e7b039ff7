// A Redis connection, as a small seam: RedisStore talks to Redis only through
// RedisConnection, so unit tests can inject faults, and the real one
// (hiredis) is opened by a RedisConnector.
//
// Addresses: redis://HOST:PORT[/DB] or unix:///PATH[?db=DB]. The password
// (AUTH) comes from the caller (an environment variable or a file, never a
// flag); it is never logged or put into an error.
//
// Every call is bounded by the connector's timeout: connecting, each command.
// NewHiredisConnector ignores SIGPIPE process-wide (as tpjitd does anyway).
// A connection is used by one thread at a time; a connector is thread-safe.
#ifndef TPJIT_SRC_CACHE_REDIS_CLIENT_H_
#define TPJIT_SRC_CACHE_REDIS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tpjit {

struct RedisAddress {
  std::string host;  // empty for a Unix socket
  int port = 6379;
  std::string unix_path;  // empty for TCP
  int db = 0;
  std::string ToString() const;  // for logs: no password, ever
};

// Parses redis://HOST:PORT[/DB] or unix:///PATH[?db=DB]; INVALID_ARGUMENT
// saying what is wrong (and the accepted forms) otherwise.
absl::StatusOr<RedisAddress> ParseRedisUrl(absl::string_view url);

// One reply, copied out of the client library.
struct RedisReply {
  enum class Type { kNil, kString, kInteger, kStatus, kError, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;
  bool nil() const { return type == Type::kNil; }
  bool error() const { return type == Type::kError; }
};

class RedisConnection {
 public:
  virtual ~RedisConnection() = default;
  // Sends one command (binary-safe arguments) and reads its reply. A reply of
  // type kError is a reply (OK status). UNAVAILABLE on an I/O error or a
  // time-out (the connection is then broken: drop it).
  virtual absl::StatusOr<RedisReply> Command(
      const std::vector<std::string>& args) = 0;
};

class RedisConnector {
 public:
  virtual ~RedisConnector() = default;
  // A new connection, authenticated and on its database; UNAVAILABLE if
  // Redis cannot be reached, PERMISSION_DENIED if AUTH fails.
  virtual absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() = 0;
};

// The real connector (hiredis). `timeout` bounds connecting and every
// command.
std::unique_ptr<RedisConnector> NewHiredisConnector(RedisAddress address,
                                                    std::string password,
                                                    absl::Duration timeout);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_REDIS_CLIENT_H_
