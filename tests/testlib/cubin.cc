#include "tests/testlib/cubin.h"

#include <elf.h>

#include <cstdint>
#include <cstring>

namespace tpjit::testing {

std::string TinyCubin(const std::string& name, int sm, int machine) {
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

}  // namespace tpjit::testing
