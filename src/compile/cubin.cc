#include "src/compile/cubin.h"

#include <elf.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

constexpr int kEmCuda = 190;

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed cubin: ", why));
}

// Copies a T at `offset` out of `data` if it fits.
template <typename T>
bool Read(absl::string_view data, uint64_t offset, T* out) {
  if (offset > data.size() || data.size() - offset < sizeof(T)) return false;
  std::memcpy(out, data.data() + offset, sizeof(T));
  return true;
}

// The NUL-terminated string at `offset` of section `strtab`, or "" if out of
// bounds or unterminated.
absl::string_view StringAt(absl::string_view data, const Elf64_Shdr& strtab,
                           uint64_t offset) {
  if (offset >= strtab.sh_size) return {};
  const absl::string_view table = data.substr(strtab.sh_offset, strtab.sh_size);
  const size_t end = table.find('\0', offset);
  if (end == absl::string_view::npos) return {};
  return table.substr(offset, end - offset);
}

struct Elf {
  Elf64_Ehdr header;
  std::vector<Elf64_Shdr> sections;
};

absl::StatusOr<Elf> ParseHeaders(absl::string_view data) {
  Elf elf;
  if (!Read(data, 0, &elf.header)) return Bad("shorter than an ELF header");
  const Elf64_Ehdr& h = elf.header;
  if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) return Bad("no ELF magic");
  if (h.e_ident[EI_CLASS] != ELFCLASS64) return Bad("not ELFCLASS64");
  if (h.e_ident[EI_DATA] != ELFDATA2LSB) return Bad("not little-endian");
  if (h.e_machine != kEmCuda) {
    return Bad(absl::StrCat("e_machine ", h.e_machine, " != EM_CUDA (190)"));
  }
  if (h.e_shentsize != sizeof(Elf64_Shdr) || h.e_shnum == 0) {
    return Bad("no section headers");
  }
  for (int i = 0; i < h.e_shnum; ++i) {
    Elf64_Shdr s;
    if (!Read(data, h.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr), &s)) {
      return Bad("section header table out of bounds");
    }
    if (s.sh_type != SHT_NOBITS &&
        (s.sh_offset > data.size() || data.size() - s.sh_offset < s.sh_size)) {
      return Bad(absl::StrCat("section ", i, " out of bounds"));
    }
    elf.sections.push_back(s);
  }
  if (h.e_shstrndx >= h.e_shnum) return Bad("bad e_shstrndx");
  return elf;
}

// The .symtab index of function symbol `symbol`, or -1 when absent.
absl::StatusOr<int64_t> FunctionIndex(absl::string_view data, const Elf& elf,
                                      absl::string_view symbol) {
  for (const Elf64_Shdr& s : elf.sections) {
    if (s.sh_type != SHT_SYMTAB) continue;
    if (s.sh_entsize != sizeof(Elf64_Sym) || s.sh_link >= elf.sections.size()) {
      return Bad("bad .symtab header");
    }
    const Elf64_Shdr& strtab = elf.sections[s.sh_link];
    for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= s.sh_size;
         off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      if (!Read(data, s.sh_offset + off, &sym)) return Bad("symbol past end");
      if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC &&
          StringAt(data, strtab, sym.st_name) == symbol) {
        return static_cast<int64_t>(off / sizeof(Elf64_Sym));
      }
    }
    return -1;
  }
  return Bad("no .symtab");
}

// EIATTR records of a .nv.info section: {u8 format, u8 attribute, then
// either a u16 value (formats 1-3) or a u16 size and that many bytes
// (format 4, EIFMT_SVAL)}. Per-kernel values are {u32 symbol, u32 value}.
constexpr uint8_t kEifmtSval = 0x04;
constexpr uint8_t kEiattrFrameSize = 0x11;
constexpr uint8_t kEiattrRegcount = 0x2f;

void ReadNvInfo(absl::string_view info, int64_t symbol_index,
                CubinKernelInfo& out) {
  size_t pos = 0;
  while (pos + 4 <= info.size()) {
    const uint8_t format = info[pos], attr = info[pos + 1];
    uint16_t size = 0;
    std::memcpy(&size, info.data() + pos + 2, 2);
    if (format != kEifmtSval) {
      pos += 4;
      continue;
    }
    if (pos + 4 + size > info.size()) return;
    if (size == 8) {
      uint32_t sym = 0, value = 0;
      std::memcpy(&sym, info.data() + pos + 4, 4);
      std::memcpy(&value, info.data() + pos + 8, 4);
      if (sym == symbol_index && attr == kEiattrRegcount) {
        out.registers = static_cast<int>(value);
      } else if (sym == symbol_index && attr == kEiattrFrameSize) {
        out.frame_bytes = static_cast<int>(value);
      }
    }
    pos += 4 + size;
  }
}

}  // namespace

absl::Status ValidateCubin(absl::string_view cubin) {
  return ParseHeaders(cubin).status();
}

absl::StatusOr<CubinKernelInfo> InspectCubin(absl::string_view cubin,
                                             absl::string_view symbol) {
  TPJIT_ASSIGN_OR_RETURN(const Elf elf, ParseHeaders(cubin));
  TPJIT_ASSIGN_OR_RETURN(const int64_t index,
                         FunctionIndex(cubin, elf, symbol));
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrCat("cubin holds no function symbol ", symbol));
  }
  CubinKernelInfo info;
  info.symbol = std::string(symbol);
  // CUDA ELF ABI v8+ (CUDA 12.x on) keeps the SM in bits 8..15 of e_flags,
  // older ones in bits 0..7.
  info.sm = elf.header.e_ident[EI_ABIVERSION] >= 8
                ? (elf.header.e_flags >> 8) & 0xff
                : elf.header.e_flags & 0xff;
  const Elf64_Shdr& names = elf.sections[elf.header.e_shstrndx];
  const std::string text = absl::StrCat(".text.", symbol);
  const std::string shared = absl::StrCat(".nv.shared.", symbol);
  for (const Elf64_Shdr& s : elf.sections) {
    const absl::string_view name = StringAt(cubin, names, s.sh_name);
    if (name == ".nv.info" || name == absl::StrCat(".nv.info.", symbol)) {
      ReadNvInfo(cubin.substr(s.sh_offset, s.sh_size), index, info);
    } else if (name == text) {
      info.code_bytes = static_cast<int64_t>(s.sh_size);
    } else if (name == shared) {
      info.static_shared = static_cast<int64_t>(s.sh_size);
    }
  }
  return info;
}

}  // namespace tpjit
