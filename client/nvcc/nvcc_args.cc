#include "client/nvcc/nvcc_args.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tpjit {
namespace {

// nvcc's options that take a value (`nvcc --help`, CUDA 13.0: the entries
// with a <value>, {choice} or list), long and short spellings. A value may
// follow as the next argument or after '='.
const std::set<std::string, std::less<>>& ValueOptions() {
  static const auto* kOptions = new std::set<std::string, std::less<>>{
      "--output-file",
      "-o",
      "--pre-include",
      "-include",
      "--library",
      "-l",
      "--define-macro",
      "-D",
      "--undefine-macro",
      "-U",
      "--include-path",
      "-I",
      "--system-include",
      "-isystem",
      "--library-path",
      "-L",
      "--output-directory",
      "-odir",
      "--compiler-bindir",
      "-ccbin",
      "--archiver-binary",
      "-arbin",
      "--cudart",
      "-cudart",
      "--cudadevrt",
      "-cudadevrt",
      "--libdevice-directory",
      "-ldir",
      "--target-directory",
      "-target-dir",
      "--optimization-info",
      "-opt-info",
      "--optimize",
      "-O",
      "--Ofast-compile",
      "-Ofc",
      "--dopt",
      "-dopt",
      "--ftemplate-backtrace-limit",
      "-ftemplate-backtrace-limit",
      "--ftemplate-depth",
      "-ftemplate-depth",
      "--x",
      "-x",
      "--std",
      "-std",
      "--machine",
      "-m",
      "--compiler-options",
      "-Xcompiler",
      "--linker-options",
      "-Xlinker",
      "--archive-options",
      "-Xarchive",
      "--ptxas-options",
      "-Xptxas",
      "--nvlink-options",
      "-Xnvlink",
      "--static-global-template-stub",
      "-static-global-template-stub",
      "--device-entity-has-hidden-visibility",
      "-device-entity-has-hidden-visibility",
      "--threads",
      "-t",
      "--split-compile",
      "-split-compile",
      "--split-compile-extended",
      "-split-compile-extended",
      "--fdevice-time-trace",
      "-fdevice-time-trace",
      "--keep-dir",
      "-keep-dir",
      "--time",
      "-time",
      "--run-args",
      "-run-args",
      "--input-drive-prefix",
      "-idp",
      "--dependency-drive-prefix",
      "-ddp",
      "--drive-prefix",
      "-dp",
      "--dependency-target-name",
      "-MT",
      "--dependency-output",
      "-MF",
      "--gpu-architecture",
      "-arch",
      "--gpu-code",
      "-code",
      "--generate-code",
      "-gencode",
      "--relocatable-device-code",
      "-rdc",
      "--entries",
      "-e",
      "--maxrregcount",
      "-maxrregcount",
      "--ftz",
      "-ftz",
      "--prec-div",
      "-prec-div",
      "--prec-sqrt",
      "-prec-sqrt",
      "--fmad",
      "-fmad",
      "--default-stream",
      "-default-stream",
      "--Werror",
      "-Werror",
      "--diag-error",
      "-diag-error",
      "--diag-suppress",
      "-diag-suppress",
      "--diag-warn",
      "-diag-warn",
      "--host-linker-script",
      "-hls",
      "--brief-diagnostics",
      "-brief-diag",
      "--jump-table-density",
      "-jtd",
      "--device-stack-protector",
      "-device-stack-protector",
      "--compress-mode",
      "-compress-mode",
      "--frandom-seed",
      "-frandom-seed",
      "--sanitize",
      "-sanitize",
      "--options-file",
      "-optf"};
  return *kOptions;
}

// Options that make the call something other than one compile to one file
// tpjitd can return: it runs locally, as nvcc.
const std::set<std::string, std::less<>>& LocalOnlyOptions() {
  static const auto* kOptions = new std::set<std::string, std::less<>>{
      "--cuda",
      "-cuda",
      "--fatbin",
      "-fatbin",
      "--optix-ir",
      "-optix-ir",
      "--ltoir",
      "-ltoir",
      "--preprocess",
      "-E",
      "--generate-dependencies",
      "-M",
      "--generate-nonsystem-dependencies",
      "-MM",
      "--generate-dependencies-with-compile",
      "-MD",
      "--generate-nonsystem-dependencies-with-compile",
      "-MMD",
      "--dependency-output",
      "-MF",
      "--generate-dependency-targets",
      "-MP",
      "--dependency-target-name",
      "-MT",
      "--compile",
      "-c",
      "--device-c",
      "-dc",
      "--device-w",
      "-dw",
      "--device-link",
      "-dlink",
      "--link",
      "-link",
      "--lib",
      "-lib",
      "--run",
      "-run",
      "--run-args",
      "-run-args",
      "--output-directory",
      "-odir",
      "--dryrun",
      "-dryrun",
      "--keep",
      "-keep",
      "--keep-dir",
      "-keep-dir",
      "--save-temps",
      "-save-temps",
      "--time",
      "-time",
      "--fdevice-time-trace",
      "-fdevice-time-trace",
      "--clean-targets",
      "-clean",
      "--list-gpu-code",
      "-code-ls",
      "--list-gpu-arch",
      "-arch-ls",
      "--help",
      "-h",
      "--version",
      "-V",
      "--options-file",
      "-optf",
      "--gpu-code",
      "-code",
      "--generate-code",
      "-gencode",
      "--verbose",
      "-v",
      "--fdevice-syntax-only",
      "-fdevice-syntax-only",
      "--jobserver",
      "-jobserver"};
  return *kOptions;
}

// One option and its value, split the way nvcc splits it.
struct Option {
  std::string name;   // "-I", "--std"; the whole argument for flags
  std::string value;  // empty for flags
  bool has_value = false;
};

// Short value options written with the value attached: -Ifoo, -DX, -O3.
// (-l and -L are left out: -lineinfo and -lto are flags, and libraries do
// not matter to a cubin.)
constexpr const char* kAttachable[] = {"-I", "-D", "-U", "-O"};

absl::Status Local(absl::string_view why) {
  return absl::UnimplementedError(why);
}

class Reader {
 public:
  Reader(const std::vector<std::string>& args, const std::string& cwd)
      : args_(args), cwd_(cwd) {}

  absl::StatusOr<NvccCompileCall> Read() {
    for (i_ = 0; i_ < args_.size(); ++i_) {
      const std::string& a = args_[i_];
      if (a.size() < 2 || a[0] != '-') {
        if (!call_.source.empty()) return Local("more than one input file");
        call_.source = a;
        continue;
      }
      auto opt = Split(a);
      if (!opt.ok()) return opt.status();
      if (absl::Status s = Take(*opt); !s.ok()) return s;
    }
    return Finish();
  }

 private:
  // `a` as an option; a value from the next argument when it needs one.
  absl::StatusOr<Option> Split(const std::string& a) {
    const size_t eq = a.find('=');
    if (eq != std::string::npos && ValueOptions().count(a.substr(0, eq))) {
      return Option{a.substr(0, eq), a.substr(eq + 1), true};
    }
    if (ValueOptions().count(a)) {
      if (i_ + 1 >= args_.size()) return Local(absl::StrCat(a, ": no value"));
      return Option{a, args_[++i_], true};
    }
    for (const char* p : kAttachable) {
      if (absl::StartsWith(a, p)) return Option{p, a.substr(2), true};
    }
    return Option{a, "", false};
  }

  absl::Status Take(const Option& o) {
    if (LocalOnlyOptions().count(o.name)) return Local(o.name);
    if (o.name == "-cubin" || o.name == "--cubin") return SetMode(kCubin);
    if (o.name == "-ptx" || o.name == "--ptx") return SetMode(kPtx);
    if (o.name == "-o" || o.name == "--output-file") {
      if (!call_.output.empty()) return Local("more than one -o");
      if (o.value.empty() || o.value == "-") return Local("-o to stdout");
      call_.output = AbsolutePath(o.value, cwd_);
      return absl::OkStatus();
    }
    if (o.name == "-arch" || o.name == "--gpu-architecture") {
      if (!call_.arch.empty()) return Local("more than one -arch");
      call_.arch = o.value;
      return absl::OkStatus();
    }
    if (o.name == "-I" || o.name == "--include-path") {
      for (absl::string_view d : absl::StrSplit(o.value, ',')) {
        if (d.empty()) return Local("empty -I");
        call_.include_dirs.push_back(AbsolutePath(std::string(d), cwd_));
      }
      return absl::OkStatus();
    }
    call_.options.push_back(Joined(o));
    return absl::OkStatus();
  }

  static std::string Joined(const Option& o) {
    if (!o.has_value) return o.name;
    for (const char* p : kAttachable) {
      if (o.name == p) return absl::StrCat(o.name, o.value);
    }
    return absl::StrCat(o.name, "=", o.value);
  }

  static constexpr NvccMode kCubin = NvccMode::kCubin;
  static constexpr NvccMode kPtx = NvccMode::kPtx;

  absl::Status SetMode(NvccMode mode) {
    if (mode_set_ && call_.mode != mode) return Local("both -cubin and -ptx");
    mode_set_ = true;
    call_.mode = mode;
    return absl::OkStatus();
  }

  absl::StatusOr<NvccCompileCall> Finish() {
    if (!mode_set_) return Local("neither -cubin nor -ptx");
    if (call_.source.empty()) return Local("no input file");
    if (!IsSmArch(call_.arch)) {
      return Local(absl::StrCat("arch \"", call_.arch, "\" is not one sm_XX"));
    }
    call_.source_abs = AbsolutePath(call_.source, cwd_);
    if (call_.output.empty()) call_.output = DefaultOutput();
    return std::move(call_);
  }

  // nvcc's default output: the source's base name, extension replaced, in
  // the working directory.
  std::string DefaultOutput() const {
    std::string base = call_.source.substr(call_.source.rfind('/') + 1);
    const size_t dot = base.rfind('.');
    if (dot != std::string::npos && dot > 0) base.resize(dot);
    return AbsolutePath(
        absl::StrCat(base, call_.mode == kPtx ? ".ptx" : ".cubin"), cwd_);
  }

  static bool IsSmArch(absl::string_view arch) {
    if (!absl::ConsumePrefix(&arch, "sm_") || arch.size() < 2 ||
        arch.size() > 4) {
      return false;
    }
    return absl::ascii_isdigit(arch[0]) && absl::ascii_isdigit(arch[1]) &&
           std::all_of(arch.begin(), arch.end(),
                       [](char c) { return absl::ascii_isalnum(c); });
  }

  const std::vector<std::string>& args_;
  const std::string& cwd_;
  size_t i_ = 0;
  bool mode_set_ = false;
  NvccCompileCall call_;
};

bool NameStart(absl::string_view log, size_t at) {
  if (at == 0) return true;
  const char c = log[at - 1];
  return c == '\n' || c == ' ' || c == '"' || c == '\t';
}

bool NameEnd(absl::string_view log, size_t end) {
  if (end == log.size()) return true;
  const char c = log[end];
  return c == '(' || c == ':' || c == '"' || c == ',' || c == ' ' ||
         c == '\n' || c == '\r';
}

}  // namespace

absl::StatusOr<NvccCompileCall> ParseNvccArgs(
    const std::vector<std::string>& args, const std::string& cwd) {
  return Reader(args, cwd).Read();
}

std::string AbsolutePath(const std::string& path, const std::string& cwd) {
  if (!path.empty() && path[0] == '/') return path;
  if (cwd.empty() || cwd.back() == '/') return cwd + path;
  return absl::StrCat(cwd, "/", path);
}

std::string RewriteSourceName(absl::string_view log,
                              absl::string_view daemon_name,
                              absl::string_view as_given) {
  if (daemon_name.empty() || daemon_name == as_given) return std::string(log);
  std::string out;
  size_t from = 0;
  for (size_t at = log.find(daemon_name); at != absl::string_view::npos;
       at = log.find(daemon_name, at + 1)) {
    const size_t end = at + daemon_name.size();
    if (at < from || !NameStart(log, at) || !NameEnd(log, end)) continue;
    absl::StrAppend(&out, log.substr(from, at - from), as_given);
    from = end;
  }
  absl::StrAppend(&out, log.substr(from));
  return out;
}

std::vector<std::string> QuotedIncludes(absl::string_view source) {
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(source, '\n')) {
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&t, "#")) continue;
    t = absl::StripLeadingAsciiWhitespace(t);
    if (!absl::ConsumePrefix(&t, "include")) continue;
    absl::ConsumePrefix(&t, "_next");
    t = absl::StripLeadingAsciiWhitespace(t);
    if (!absl::ConsumePrefix(&t, "\"")) continue;
    const size_t close = t.find('"');
    if (close != absl::string_view::npos && close > 0) {
      names.emplace_back(t.substr(0, close));
    }
  }
  return names;
}

}  // namespace tpjit
