// A cache hit is served only if its bytes are a CUDA ELF of the task's SM
// with its symbols (issue 12): metadata such as load_checked is not
// believed. Cubins are built by hand, as in tests/compile.
#include "daemon/cubin_check.h"

#include <elf.h>

#include <cstring>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

// A minimal 64-bit ELF holding one function symbol `name`; e_flags carry
// `sm` the way CUDA ELF ABI v8 does.
std::string TinyCubin(const std::string& name, int sm = 90, int machine = 190) {
  const std::string shstr = std::string("\0.symtab\0.strtab\0.shstrtab\0", 27);
  const std::string str = std::string("\0", 1) + name + std::string("\0", 1);
  Elf64_Sym syms[2] = {};
  syms[1].st_name = 1;
  syms[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
  std::string body = shstr + str;
  const size_t shstr_off = sizeof(Elf64_Ehdr);
  const size_t str_off = shstr_off + shstr.size();
  const size_t sym_off = shstr_off + body.size();
  body.append(reinterpret_cast<const char*>(syms), sizeof(syms));
  const size_t sh_off = shstr_off + body.size();
  Elf64_Shdr sh[4] = {};
  sh[1] = {1, SHT_SYMTAB,       0, 0, sym_off, sizeof(syms), 2, 1,
           8, sizeof(Elf64_Sym)};
  sh[2] = {9, SHT_STRTAB, 0, 0, str_off, str.size(), 0, 0, 1, 0};
  sh[3] = {17, SHT_STRTAB, 0, 0, shstr_off, shstr.size(), 0, 0, 1, 0};
  Elf64_Ehdr h = {};
  std::memcpy(h.e_ident, ELFMAG, SELFMAG);
  h.e_ident[EI_CLASS] = ELFCLASS64;
  h.e_ident[EI_DATA] = ELFDATA2LSB;
  h.e_ident[EI_ABIVERSION] = 8;
  h.e_flags = static_cast<uint32_t>(sm) << 8;
  h.e_machine = machine;
  h.e_shoff = sh_off;
  h.e_shentsize = sizeof(Elf64_Shdr);
  h.e_shnum = 4;
  h.e_shstrndx = 3;
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  return out + body +
         std::string(reinterpret_cast<const char*>(sh), sizeof(sh));
}

TEST(CubinCheckTest, ArchSm) {
  EXPECT_EQ(ArchSm("sm_90a"), 90);
  EXPECT_EQ(ArchSm("sm_100"), 100);
  EXPECT_EQ(ArchSm("compute_90"), 0);
  EXPECT_EQ(ArchSm(""), 0);
}

TEST(CubinCheckTest, AcceptsACudaElfWithItsSymbolsAndDerivesAttributes) {
  std::vector<tpjit::v1::KernelAttributes> attrs;
  ASSERT_TRUE(
      CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {"_Z1kv"}, &attrs).ok());
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].symbol(), "_Z1kv");
}

TEST(CubinCheckTest, RefusesWhatIsNotTheTasksCubin) {
  std::vector<tpjit::v1::KernelAttributes> attrs;
  // A planted payload with a valid cache checksum but no ELF in it.
  EXPECT_FALSE(CheckCachedCubin("not an elf, load_checked=1", "sm_90a",
                                {"_Z1kv"}, &attrs)
                   .ok());
  EXPECT_FALSE(CheckCachedCubin("", "sm_90a", {}, &attrs).ok());
  // An x86-64 ELF, another SM, a missing kernel.
  EXPECT_FALSE(
      CheckCachedCubin(TinyCubin("_Z1kv", 90, 62), "sm_90a", {"_Z1kv"}, &attrs)
          .ok());
  EXPECT_FALSE(
      CheckCachedCubin(TinyCubin("_Z1kv", 80), "sm_90a", {"_Z1kv"}, &attrs)
          .ok());
  EXPECT_EQ(
      CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {"_Z1xv"}, &attrs).code(),
      absl::StatusCode::kNotFound);
  // Without symbols, the ELF itself is still checked.
  EXPECT_TRUE(CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {}, &attrs).ok());
}

}  // namespace
}  // namespace tpjit
