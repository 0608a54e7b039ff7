#include "src/cache/redis_client.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tpjit {
namespace {

constexpr char kForms[] =
    "expected redis://HOST:PORT[/DB] or unix:///PATH[?db=DB]";

// The URL as it may be logged: credentials (user:password@) cut out.
std::string Redacted(absl::string_view url) {
  size_t at = url.rfind('@');
  if (at == absl::string_view::npos) return std::string(url);
  size_t scheme = url.find("://");
  size_t from = scheme == absl::string_view::npos ? 0 : scheme + 3;
  return absl::StrCat(url.substr(0, from), "***", url.substr(at));
}

absl::Status Bad(absl::string_view url, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "remote cache \"", Redacted(url), "\": ", why, " (", kForms, ")"));
}

bool ParseDb(absl::string_view s, int* db) {
  return absl::SimpleAtoi(s, db) && *db >= 0 && *db < 1 << 16;
}

RedisReply Copy(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(Copy(r->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

timeval ToTimeval(absl::Duration d) { return absl::ToTimeval(d); }

class HiredisConnection final : public RedisConnection {
 public:
  explicit HiredisConnection(redisContext* c) : c_(c) {}
  ~HiredisConnection() override { redisFree(c_); }

  absl::StatusOr<RedisReply> Command(
      const std::vector<std::string>& args) override {
    if (c_->err) return absl::UnavailableError(c_->errstr);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(
        c_, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      const bool timed_out =
          c_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
      return absl::UnavailableError(
          timed_out
              ? "redis: no reply within the time-out"
              : absl::StrCat("redis: ", c_->err ? c_->errstr : "no reply"));
    }
    RedisReply out = Copy(r);
    freeReplyObject(r);
    return out;
  }

 private:
  redisContext* c_;
};

class HiredisConnector final : public RedisConnector {
 public:
  HiredisConnector(RedisAddress a, std::string password, absl::Duration t)
      : address_(std::move(a)), password_(std::move(password)), timeout_(t) {}

  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() override {
    const timeval tv = absl::ToTimeval(timeout_);
    redisContext* c =
        address_.unix_path.empty()
            ? redisConnectWithTimeout(address_.host.c_str(), address_.port, tv)
            : redisConnectUnixWithTimeout(address_.unix_path.c_str(), tv);
    if (c == nullptr) return absl::UnavailableError("redis: out of memory");
    if (c->err) {
      absl::Status s = absl::UnavailableError(absl::StrCat(
          "cannot connect to ", address_.ToString(), ": ", c->errstr));
      redisFree(c);
      return s;
    }
    redisSetTimeout(c, tv);
    auto conn = std::make_unique<HiredisConnection>(c);
    if (!password_.empty()) {
      auto r = conn->Command({"AUTH", password_});
      if (!r.ok()) return r.status();
      if (r->error()) {  // the reply never holds the password
        return absl::PermissionDeniedError(
            absl::StrCat("redis AUTH at ", address_.ToString(), ": ", r->str));
      }
    }
    if (address_.db != 0) {
      auto r = conn->Command({"SELECT", absl::StrCat(address_.db)});
      if (!r.ok()) return r.status();
      if (r->error()) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis SELECT ", address_.db, " at ",
                         address_.ToString(), ": ", r->str));
      }
    }
    return std::unique_ptr<RedisConnection>(std::move(conn));
  }

 private:
  const RedisAddress address_;
  const std::string password_;
  const absl::Duration timeout_;
};

}  // namespace

std::string RedisAddress::ToString() const {
  if (!unix_path.empty()) {
    return absl::StrCat("unix://", unix_path,
                        db ? absl::StrCat("?db=", db) : "");
  }
  return absl::StrCat("redis://", host, ":", port,
                      db ? absl::StrCat("/", db) : "");
}

absl::StatusOr<RedisAddress> ParseRedisUrl(absl::string_view url) {
  RedisAddress a;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (size_t q = rest.find("?db="); q != absl::string_view::npos) {
      if (!ParseDb(rest.substr(q + 4), &a.db)) return Bad(url, "bad db");
      rest = rest.substr(0, q);
    }
    if (!absl::StartsWith(rest, "/")) {
      return Bad(url, "the socket path must be absolute");
    }
    a.unix_path = std::string(rest);
    return a;
  }
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return Bad(url, "unknown scheme");
  }
  if (absl::StrContains(rest, "@")) {
    return Bad(url,
               "no credentials in the URL; use TPJIT_REMOTE_CACHE_PASSWORD "
               "or --remote-cache-password-file");
  }
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    if (!ParseDb(rest.substr(slash + 1), &a.db)) return Bad(url, "bad db");
    rest = rest.substr(0, slash);
  }
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Bad(url, "HOST:PORT needed");
  }
  a.host = std::string(rest.substr(0, colon));
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &a.port) || a.port <= 0 ||
      a.port > 65535) {
    return Bad(url, "bad port");
  }
  return a;
}

std::unique_ptr<RedisConnector> NewHiredisConnector(RedisAddress address,
                                                    std::string password,
                                                    absl::Duration timeout) {
  // hiredis writes with write(2): a server that closed the connection (a
  // restart, a kill) must cost a failed call, not the process.
  signal(SIGPIPE, SIG_IGN);
  return std::make_unique<HiredisConnector>(std::move(address),
                                            std::move(password), timeout);
}

}  // namespace tpjit
