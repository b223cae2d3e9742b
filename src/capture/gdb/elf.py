"""Just enough ELF for heapspec's GDB script: an object's dynamic symbols and its GOT slots.

Read from the object's file (stdlib only). Addresses are link-time virtual addresses; add the
object's load bias (see load_bias) for addresses in the process.
"""
import os
import struct

SHT_DYNSYM = 11
SHT_RELA = 4
R_X86_64_GLOB_DAT = 6
R_X86_64_JUMP_SLOT = 7
STT_FUNC = 2


class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.path = path
        shoff, = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", self.data, 0x3A)
        # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + i * shentsize) for i in range(shnum)]
        self._symbols = None

    def _string(self, table_offset, at):
        end = self.data.index(b"\0", table_offset + at)
        return self.data[table_offset + at:end].decode("utf-8", "replace")

    def dynamic_symbols(self):
        """[(name, value, defined)] of .dynsym, in table order (index = symbol number)."""
        if self._symbols is None:
            self._symbols, self._types, self._sizes = [], [], []
            for _n, kind, _f, _a, offset, size, link, _i, _al, entsize in self.sections:
                if kind != SHT_DYNSYM:
                    continue
                strtab = self.sections[link][4]
                for at in range(offset, offset + size, entsize):
                    st_name, info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", self.data, at)
                    self._symbols.append((self._string(strtab, st_name), value, shndx != 0 and value != 0))
                    self._types.append(info & 0xF)
                    self._sizes.append(_size)
        return self._symbols

    def extents(self, names):
        """[(value, size)] of the defined symbols among `names`."""
        symbols = self.dynamic_symbols()
        return [(value, self._sizes[i]) for i, (name, value, defined) in enumerate(symbols) if defined and name in names]

    def defined(self):
        """{name: value} of the symbols this object defines (the first definition of a name wins)."""
        found = {}
        for name, value, defined in self.dynamic_symbols():
            if defined:
                found.setdefault(name, value)
        return found

    def got_slots(self, kinds=(R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT)):
        """{symbol name: [GOT slot address]} for every relocation of `kinds` (JUMP_SLOT: a PLT call's)."""
        symbols = self.dynamic_symbols()
        slots = {}
        for _n, kind, _f, _a, offset, size, _link, _i, _al, entsize in self.sections:
            if kind != SHT_RELA or entsize == 0:
                continue
            for at in range(offset, offset + size, entsize):
                r_offset, r_info, _addend = struct.unpack_from("<QQq", self.data, at)
                if (r_info & 0xFFFFFFFF) in kinds and (r_info >> 32) < len(symbols):
                    slots.setdefault(symbols[r_info >> 32][0], []).append(r_offset)
        return slots

    def plain_functions(self):
        """{name: value} of the functions this object defines once, as plain code: no IFUNC (whose
        value is a resolver, not the function), no name defined in several symbol versions."""
        counts, found = {}, {}
        for at in range(len(self.dynamic_symbols())):
            name, value, defined = self._symbols[at]
            if defined:
                counts[name] = counts.get(name, 0) + 1
                if self._types[at] == STT_FUNC:
                    found.setdefault(name, value)
        return {name: value for name, value in found.items() if counts[name] == 1}


def first_load_address(path):
    """The link-time address of `path`'s first loadable segment, page-aligned: 0 for a shared
    object or a PIE, 0x400000 or so for an executable linked at a fixed address (Node's)."""
    with open(path, "rb") as f:
        header = f.read(64)
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _flags, _offset, vaddr = struct.unpack_from("<IIQQ", table, i * phentsize)
        if p_type == 1:  # PT_LOAD
            return vaddr & ~0xFFF
    return 0


def mappings(pid, path):
    """[(start, end, file offset)] of `path`'s mappings in process `pid`."""
    real = os.path.realpath(path)
    found = []
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and os.path.realpath(parts[5].strip()) == real:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                found.append((start, end, int(parts[2], 16)))
    return found


def load_bias(pid, path):
    """What `path`'s link-time addresses are relocated by in process `pid`: where its mapping at
    file offset 0 starts, less where it was linked to start."""
    for start, _end, offset in mappings(pid, path):
        if offset == 0:
            return start - first_load_address(path)
    return None
