"""A fast DWARF-CFI stack unwinder for heapspec's GDB-side observer (x86-64 Linux, stdlib only).

Why it exists: at every malloc entry heapspec records the call stack as raw return addresses, and
GDB's own frame machinery (gdb.newest_frame(), frame.older()) costs ~90 us per stop, which
dominated capture time. The caller reads the stopped thread's registers with ptrace(GETREGS) and
hands them here with a reader for /proc/PID/mem; this module does the rest in a few us.

Everything comes from the inferior's memory, nothing from files on disk: /proc/PID/maps locates
every loaded ELF object (and the vDSO) through its mapping at file offset 0, which holds the ELF
and program headers; PT_GNU_EH_FRAME gives .eh_frame_hdr, whose sorted table finds the FDE for a
pc; the CIE and FDE call-frame programs run up to that pc, and the resulting rule row is compiled
and cached per pc. After warm-up a frame costs one dictionary lookup and a few slices of a single
stack read.

Supported: CIE/FDE with augmentations z, R, P, L, S; pointer encodings absptr, (u|s)data2/4/8,
uleb/sleb128, pcrel, datarel, aligned, indirect; every DW_CFA_* instruction x86-64 compilers emit,
including expression rules (evaluated by a small DWARF stack machine, which covers the PLT CFA
expression, stack-realignment (DRAP) frames and glibc's signal trampoline). Signal frames ('S')
make the interrupted frame's pc exact rather than a return address.

The result holds real return addresses only: GDB's inline frames (same pc as their caller) and
tail-call frames (synthesized from DWARF call-site info) have none on the stack and never appear.

Not supported (the walk stops there, returning what it has): pcs without an FDE (JIT code, ld.so's
own _start, objects without PT_GNU_EH_FRAME, whose .eh_frame cannot be found from memory; GDB
guesses on by prologue analysis there), textrel/funcrel pointer encodings, DWARF expression
operators beyond the arithmetic/register/deref subset, CFAs or return addresses in registers other
than the 17 integer ones (rax..r15, rip).
"""
import bisect
import struct
from array import array

_U64 = struct.Struct("<Q").unpack_from
_MASK = (1 << 64) - 1
_PAGE = 0x1000
_MARGIN = 256  # a fresh stack window starts this far below the word that needed it (saved slots)

_PT_LOAD, _PT_GNU_EH_FRAME, _PF_X = 1, 0x6474E550, 1
_RA = 16  # x86-64 DWARF column of the return address (rip)
_NREGS = 17  # DWARF registers tracked: 0..15 general purpose, 16 rip
_OMIT = 0xFF
_CALLEE_SAVED = (3, 6, 12, 13, 14, 15)  # rbx, rbp, r12-r15: what a caller may rely on after a call

# Rule kinds for registers in a compiled row.
_OFFSET, _VAL_OFFSET, _REGISTER, _UNDEFINED, _SAME, _EXPR, _VAL_EXPR = range(7)


class _Unsupported(Exception):
    """CFI we cannot follow: the walk stops at this frame."""


# What ends a walk quietly: unreadable memory, unsupported or malformed CFI.
# An address no FDE covers (JIT code, a stripped object): the walk goes on by the frame pointer.
NO_CFI = ()

_STOP = (OSError, _Unsupported, IndexError, KeyError, ValueError, TypeError, struct.error)


# ---------------------------------------------------------------------------------------------
# Little-endian decoding helpers over bytes (all return (value, next offset)).

def _uleb(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def _sleb(data, i):
    result, j = _uleb(data, i)
    if data[j - 1] & 0x40:  # the last byte's sign bit
        result -= 1 << (7 * (j - i))
    return result, j


_FIXED = {  # DW_EH_PE format -> struct format
    0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q",
    0x0A: "<h", 0x0B: "<i", 0x0C: "<q",
}


def _pointer(data, i, enc, addr, datarel=None, read=None):
    """Decodes a DW_EH_PE-encoded pointer at data[i]; addr is the memory address of data[0].

    read, when given, dereferences DW_EH_PE_indirect pointers; without it the address of the
    pointer is returned (enough when the value is only skipped, as the personality routine is).
    """
    if enc == _OMIT:
        return None, i
    app = enc & 0x70
    if app == 0x50:  # aligned: an absptr at the next 8-byte boundary
        i = (i + 7) & ~7
        app, enc = 0, enc & 0x80
    field = addr + i
    fmt = enc & 0x0F
    if fmt == 0x01:
        value, i = _uleb(data, i)
    elif fmt == 0x09:
        value, i = _sleb(data, i)
    else:
        code = _FIXED.get(fmt)
        if code is None:
            raise _Unsupported("pointer format 0x%x" % fmt)
        value = struct.unpack_from(code, data, i)[0]
        i += struct.calcsize(code)
    if app == 0x10:
        value += field
    elif app == 0x30:
        if datarel is None:
            raise _Unsupported("datarel pointer without a base")
        value += datarel
    elif app:
        raise _Unsupported("pointer application 0x%x" % app)  # textrel, funcrel: never in x86-64 CFI
    value &= _MASK
    if enc & 0x80 and read is not None:
        value = _U64(read(value, 8))[0]
    return value, i


# ---------------------------------------------------------------------------------------------
# The stack: one read from sp, widened only when a frame lies beyond it.

class _Window:
    """Stack memory from sp upwards, read in as few calls as possible."""

    __slots__ = ("read", "base", "data", "lim")

    def __init__(self, read, sp, tops):
        self.read = read
        self.base = sp
        page_end = (sp & ~(_PAGE - 1)) + _PAGE
        self.data = b""
        # Read one page past sp's, unless that page is known to be unmapped (the top of the main
        # thread's stack, learned from a failed read: a failed pread costs as much as a good one).
        for end in ((page_end,) if page_end in tops else (page_end + _PAGE, page_end)):
            try:
                self.data = read(sp, end - sp)
                break
            except OSError:
                tops.add(page_end)
        self.lim = len(self.data) - 8

    def word(self, addr):
        off = addr - self.base
        if 0 <= off <= self.lim:
            return _U64(self.data, off)[0]
        return self._far(addr)

    def _far(self, addr):
        end = self.base + len(self.data)
        if addr >= self.base:
            # Callers lie further up the stack. Just past the window, extend it; beyond a frame
            # with big locals, start afresh a little below addr rather than read the locals.
            start = end if addr - end < 2 * _PAGE else addr - _MARGIN
            page_end = (addr + 8 + _PAGE - 1) & ~(_PAGE - 1)
            for stop in (page_end + _PAGE, page_end):
                try:
                    data = self.read(start, stop - start)
                except OSError:
                    continue
                if start == end:
                    self.data += data
                else:
                    self.base, self.data = start, data
                self.lim = len(self.data) - 8
                return _U64(self.data, addr - self.base)[0]
        return _U64(self.read(addr, 8), 0)[0]  # below sp (a signal alternate stack): one word


# ---------------------------------------------------------------------------------------------
# Loaded objects and their CFI.

class _Module:
    """One loaded ELF object: where its code lies and where its .eh_frame_hdr is."""

    __slots__ = ("name", "bias", "loads", "code", "hdr", "hdr_size", "table")

    def __init__(self, name, bias, loads, code, hdr, hdr_size):
        self.name = name
        self.bias = bias
        self.loads = loads  # [(start, end)] of every PT_LOAD, relocated
        self.code = code  # [(start, end)] of the executable ones
        self.hdr = hdr
        self.hdr_size = hdr_size
        self.table = None  # (initial locations, FDE addresses, base), read on first use


class _Cie:
    __slots__ = ("code_align", "data_align", "ra", "fde_enc", "signal", "aug_z", "instructions")


class _Fde:
    __slots__ = ("cie", "start", "end", "instructions", "where")


def _read_entry(read, addr):
    """Reads one CIE/FDE; returns (bytes from addr, offset of the CIE pointer/id field)."""
    length = struct.unpack("<I", read(addr, 4))[0]
    if length == 0xFFFFFFFF:  # 64-bit DWARF format
        length = struct.unpack("<Q", read(addr + 4, 8))[0]
        return read(addr, 12 + length), 12
    if length == 0:
        raise _Unsupported("terminator where an entry was expected")
    return read(addr, 4 + length), 4


# ---------------------------------------------------------------------------------------------
# DWARF expressions: enough of the stack machine for CFA/register expressions gcc and glibc emit.

_BINARY = {
    0x1A: lambda a, b: a & b,
    0x1C: lambda a, b: a - b,
    0x1E: lambda a, b: a * b,
    0x21: lambda a, b: a | b,
    0x22: lambda a, b: a + b,
    0x24: lambda a, b: a << b if b < 64 else 0,
    0x25: lambda a, b: a >> b,
    0x26: lambda a, b: _signed(a) >> b,
    0x27: lambda a, b: a ^ b,
    0x29: lambda a, b: int(_signed(a) == _signed(b)),
    0x2A: lambda a, b: int(_signed(a) >= _signed(b)),
    0x2B: lambda a, b: int(_signed(a) > _signed(b)),
    0x2C: lambda a, b: int(_signed(a) <= _signed(b)),
    0x2D: lambda a, b: int(_signed(a) < _signed(b)),
    0x2E: lambda a, b: int(_signed(a) != _signed(b)),
}
_CONST = {0x08: "<B", 0x09: "<b", 0x0A: "<H", 0x0B: "<h", 0x0C: "<I", 0x0D: "<i", 0x0E: "<Q", 0x0F: "<q"}


def _signed(v):
    v &= _MASK
    return v - (1 << 64) if v >> 63 else v


def _evaluate(expr, regs, word, stack):
    """Runs a DWARF expression; regs[16] must hold the frame's pc (the PLT expression reads it)."""
    i, n = 0, len(expr)
    while i < n:
        op = expr[i]
        i += 1
        if 0x30 <= op <= 0x4F:  # DW_OP_lit0..31
            stack.append(op - 0x30)
        elif 0x70 <= op <= 0x8F or op == 0x92:  # DW_OP_breg0..31, DW_OP_bregx
            if op == 0x92:
                reg, i = _uleb(expr, i)
            else:
                reg = op - 0x70
            off, i = _sleb(expr, i)
            value = regs[reg] if reg < _NREGS else None
            if value is None:
                raise _Unsupported("expression reads an unknown register")
            stack.append((value + off) & _MASK)
        elif op in _BINARY:
            b = stack.pop()
            stack.append(_BINARY[op](stack.pop(), b) & _MASK)
        elif op == 0x06:  # DW_OP_deref
            stack.append(word(stack.pop()))
        elif op in _CONST:
            code = _CONST[op]
            stack.append(struct.unpack_from(code, expr, i)[0] & _MASK)
            i += struct.calcsize(code)
        elif op == 0x10:  # DW_OP_constu
            v, i = _uleb(expr, i)
            stack.append(v & _MASK)
        elif op == 0x11:  # DW_OP_consts
            v, i = _sleb(expr, i)
            stack.append(v & _MASK)
        elif op == 0x23:  # DW_OP_plus_uconst
            v, i = _uleb(expr, i)
            stack.append((stack.pop() + v) & _MASK)
        elif op == 0x12:  # DW_OP_dup
            stack.append(stack[-1])
        elif op == 0x13:  # DW_OP_drop
            stack.pop()
        elif op == 0x14:  # DW_OP_over
            stack.append(stack[-2])
        elif op == 0x16:  # DW_OP_swap
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif op == 0x1F:  # DW_OP_neg
            stack.append(-stack.pop() & _MASK)
        elif op == 0x20:  # DW_OP_not
            stack.append(~stack.pop() & _MASK)
        elif op == 0x96:  # DW_OP_nop
            pass
        else:
            raise _Unsupported("DWARF expression operator 0x%x" % op)
    if not stack:
        raise _Unsupported("empty DWARF expression")
    return stack[-1]


# ---------------------------------------------------------------------------------------------

class Unwinder:
    """Walks a stopped thread's stack using the .eh_frame CFI found in the process's memory."""

    def __init__(self, pid, read):
        self.pid = pid
        self.read = read
        self._tops = set()  # page-aligned ends of stack mappings (a read past them fails)
        # code standing in for a return address -> the address (observe.py's result stubs: a call
        # made inside an allocator call, by a new-handler, finds the stub as the allocator's)
        self.returns = {}
        self.reset()

    def reset(self):
        """Forgets modules and every cached row: call when shared libraries are loaded or unloaded."""
        self._modules = {}  # address of the ELF header -> _Module
        self._starts = []  # sorted start addresses of executable ranges, for bisect
        self._ranges = []  # parallel: (end, _Module)
        self._cies = {}
        self._fdes = {}
        self._rows = {}  # lookup pc -> compiled row, or False where the walk must stop

    # -- the walk ---------------------------------------------------------------------------------

    def walk(self, pc, sp, regs, depth):
        """Return addresses of the callers of a function stopped at its first instruction.

        Innermost first: [sp] (into the caller), then the caller's return address, and so on,
        at most `depth` entries. `regs` maps DWARF register numbers to values (callee-saved ones
        and rsp). `pc` is not needed: at a function's entry nothing has been pushed but the return
        address, whatever the function.
        """
        out = []
        if depth <= 0:
            return out
        win = _Window(self.read, sp, self._tops)
        cur = [None] * _NREGS
        for reg, value in regs.items():
            if 0 <= reg < _NREGS:
                cur[reg] = value
        # At a function's first instruction the CFA is sp+8 and nothing has been saved yet: the
        # caller's registers are ours, its sp is the CFA. No CFI lookup needed for this frame.
        cur[7] = sp + 8
        rows = self._rows
        returns = self.returns
        signal = False
        try:
            ra = win.word(sp)
            count = 0
            while ra:
                ra = returns.get(ra, ra)
                out.append(ra)
                count += 1
                if count >= depth:
                    break
                # A return address points after the call, maybe at the next function: look up the
                # call itself. After a signal frame the pc is exact (the interrupted instruction).
                key = ra if signal else ra - 1
                row = rows.get(key)
                if row is None:
                    row = rows[key] = self._row(key)
                if row is NO_CFI:
                    # No CFI (JIT or interpreter code, a stripped object): the frame pointer, if it
                    # points up the stack, holds the caller's rbp and then the return address, as
                    # the preload unwinder and memcheck read it (an addon called from V8's code).
                    rbp, now = cur[6], cur[7]
                    if rbp is None or now is None or rbp < now:
                        break
                    ra = win.word(rbp + 8)
                    cur = [None, None, None, cur[3], None, None, win.word(rbp), rbp + 16,
                           None, None, None, None, cur[12], cur[13], cur[14], cur[15], None]
                    signal = False
                    continue
                if not row:
                    break
                cfa_reg, cfa_off, ra_at, saves, signal, lo, hi = row
                if cfa_reg < 0:  # rules beyond plain offsets: the general path
                    ra, cur = self._step_general(saves, cur, ra, win)
                    continue
                base = cur[cfa_reg]
                if base is None:
                    break
                # The caller keeps the callee-saved registers (rbx, rbp, r12-r15) unless saved.
                new = [None, None, None, cur[3], None, None, cur[6], base + cfa_off,
                       None, None, None, None, cur[12], cur[13], cur[14], cur[15], None]
                at = base - win.base
                if at + lo >= 0 and at + hi <= win.lim:
                    # The frame's saved slots lie in the window: slice without calls.
                    data = win.data
                    ra = _U64(data, at + ra_at)[0]
                    for reg, off in saves:
                        new[reg] = _U64(data, at + off)[0]
                else:
                    ra = win.word(base + ra_at)
                    for reg, off in saves:
                        new[reg] = win.word(base + off)
                cur = new
        except _STOP:
            pass  # unreadable memory or CFI we cannot follow: the stack ends here
        return out

    def _step_general(self, spec, cur, pc, win):
        """Unwinds one frame whose row uses expressions, register copies or undefined registers."""
        cfa_rule, rules = spec
        cur = list(cur)
        cur[16] = pc  # DW_OP_breg16 (the PLT CFA expression) reads the frame's pc
        word = win.word
        if cfa_rule[0] is None:
            cfa = _evaluate(cfa_rule[1], cur, word, [])
        else:
            base = cur[cfa_rule[0]]
            if base is None:
                raise _Unsupported("CFA register unknown")
            cfa = base + cfa_rule[1]
        new = [None, None, None, cur[3], None, None, cur[6], cfa,
               None, None, None, None, cur[12], cur[13], cur[14], cur[15], None]
        for reg, kind, value in rules:
            if kind == _OFFSET:
                new[reg] = word(cfa + value)
            elif kind == _VAL_OFFSET:
                new[reg] = (cfa + value) & _MASK
            elif kind == _REGISTER:
                new[reg] = cur[value] if value < _NREGS else None
            elif kind == _UNDEFINED:
                new[reg] = None
            elif kind == _SAME:
                new[reg] = cur[reg]
            elif kind == _EXPR:
                new[reg] = word(_evaluate(value, cur, word, [cfa]))
            else:
                new[reg] = _evaluate(value, cur, word, [cfa])
        ra = new[_RA]
        new[_RA] = None
        return (ra or 0), new

    # -- rows -------------------------------------------------------------------------------------

    def _row(self, pc):
        """The compiled unwind row for pc, NO_CFI where no FDE covers it, or False where the walk must stop."""
        try:
            fde = self._fde_for(pc)
            if fde is None:
                return NO_CFI
            cfa, rules = self._execute(fde, pc)
            return self._compile(cfa, rules, fde.cie)
        except _STOP:
            return False

    @staticmethod
    def _compile(cfa, rules, cie):
        """Turns the rules at a pc into a row: (cfa_reg, cfa_off, ra_at, saves, signal, lo, hi).

        The common case (CFA = register + offset, registers saved at CFA offsets) gets offsets
        relative to the CFA register's value, so the walk reads ra at reg+ra_at and each saved
        register at reg+off, with [lo, hi] the span of those slots; anything else gets cfa_reg -1
        and (cfa rule, register rules) for the general path.
        """
        ra_rule = rules.get(cie.ra)
        if ra_rule is None or ra_rule[0] in (_UNDEFINED, _SAME):
            return False  # outermost frame (_start, clone3 mark their return address undefined)
        if cie.ra != _RA or (cfa[0] is not None and cfa[0] >= _NREGS):
            raise _Unsupported("return address or CFA in a register we do not track")
        # Vector registers (17 and up) are never needed to find a CFA or a return address.
        tracked = tuple((reg, kind, value) for reg, (kind, value) in sorted(rules.items()) if reg < _NREGS)
        simple = cfa[0] is not None and ra_rule[0] == _OFFSET and all(
            kind == _OFFSET and reg != 7 or kind == _SAME and reg in _CALLEE_SAVED for reg, kind, _ in tracked)
        if not simple:
            return (-1, 0, 0, (cfa, tracked), cie.signal, 0, 0)
        reg, off = cfa
        saves = tuple((r, off + value) for r, kind, value in tracked if kind == _OFFSET and r != _RA)
        slots = [off + ra_rule[1]] + [at for _, at in saves]
        return (reg, off, off + ra_rule[1], saves, cie.signal, min(slots), max(slots))

    def _execute(self, fde, pc):
        """Runs the CIE's initial instructions then the FDE's up to pc; returns (cfa, rules)."""
        cie = fde.cie
        state = [(7, 8), {}]  # [CFA rule (reg, offset) or (None, expression), register rules]
        self._run(cie.instructions, cie, fde, state, None, None)
        initial = dict(state[1])
        self._run(fde.instructions, cie, fde, state, initial, pc)
        return state[0], state[1]

    @staticmethod
    def _run(code, cie, fde, state, initial, target):
        """Interprets call-frame instructions, stopping when the location passes target."""
        loc = fde.start
        cfa, rules = state
        stack = []
        da, ca = cie.data_align, cie.code_align
        i, n = 0, len(code)
        while i < n:
            op = code[i]
            i += 1
            high, low = op & 0xC0, op & 0x3F
            if high == 0x40:  # DW_CFA_advance_loc
                loc += low * ca
                if target is not None and loc > target:
                    break
            elif high == 0x80:  # DW_CFA_offset
                off, i = _uleb(code, i)
                rules[low] = (_OFFSET, off * da)
            elif high == 0xC0:  # DW_CFA_restore
                _restore(rules, initial, low)
            elif op in (0x02, 0x03, 0x04):  # DW_CFA_advance_loc1/2/4
                code_fmt = {0x02: "<B", 0x03: "<H", 0x04: "<I"}[op]
                loc += struct.unpack_from(code_fmt, code, i)[0] * ca
                i += struct.calcsize(code_fmt)
                if target is not None and loc > target:
                    break
            elif op == 0x01:  # DW_CFA_set_loc
                loc, i = _pointer(code, i, cie.fde_enc, fde.where if code is fde.instructions else 0)
                if target is not None and loc > target:
                    break
            elif op in (0x05, 0x11, 0x2F):  # DW_CFA_offset_extended(_sf), GNU_negative_offset_ext
                reg, i = _uleb(code, i)
                if op == 0x11:
                    off, i = _sleb(code, i)
                else:
                    off, i = _uleb(code, i)
                    off = -off if op == 0x2F else off
                rules[reg] = (_OFFSET, off * da)
            elif op in (0x14, 0x15):  # DW_CFA_val_offset(_sf)
                reg, i = _uleb(code, i)
                off, i = (_uleb if op == 0x14 else _sleb)(code, i)
                rules[reg] = (_VAL_OFFSET, off * da)
            elif op == 0x06:  # DW_CFA_restore_extended
                reg, i = _uleb(code, i)
                _restore(rules, initial, reg)
            elif op == 0x07:  # DW_CFA_undefined
                reg, i = _uleb(code, i)
                rules[reg] = (_UNDEFINED, None)
            elif op == 0x08:  # DW_CFA_same_value
                reg, i = _uleb(code, i)
                rules[reg] = (_SAME, None)
            elif op == 0x09:  # DW_CFA_register
                reg, i = _uleb(code, i)
                other, i = _uleb(code, i)
                rules[reg] = (_REGISTER, other)
            elif op == 0x0A:  # DW_CFA_remember_state (the CFA is part of the state, as in gcc/gdb)
                stack.append((cfa, dict(rules)))
            elif op == 0x0B:  # DW_CFA_restore_state
                cfa, saved = stack.pop()
                rules.clear()
                rules.update(saved)
            elif op in (0x0C, 0x12):  # DW_CFA_def_cfa(_sf)
                reg, i = _uleb(code, i)
                if op == 0x0C:
                    off, i = _uleb(code, i)
                else:
                    off, i = _sleb(code, i)
                    off *= da
                cfa = (reg, off)
            elif op == 0x0D:  # DW_CFA_def_cfa_register
                reg, i = _uleb(code, i)
                if cfa[0] is None:
                    raise _Unsupported("def_cfa_register after a CFA expression")
                cfa = (reg, cfa[1])
            elif op in (0x0E, 0x13):  # DW_CFA_def_cfa_offset(_sf)
                if op == 0x0E:
                    off, i = _uleb(code, i)
                else:
                    off, i = _sleb(code, i)
                    off *= da
                if cfa[0] is None:
                    raise _Unsupported("def_cfa_offset after a CFA expression")
                cfa = (cfa[0], off)
            elif op == 0x0F:  # DW_CFA_def_cfa_expression
                size, i = _uleb(code, i)
                cfa = (None, bytes(code[i:i + size]))
                i += size
            elif op in (0x10, 0x16):  # DW_CFA_expression, DW_CFA_val_expression
                reg, i = _uleb(code, i)
                size, i = _uleb(code, i)
                rules[reg] = (_EXPR if op == 0x10 else _VAL_EXPR, bytes(code[i:i + size]))
                i += size
            elif op == 0x2E:  # DW_CFA_GNU_args_size: only matters for landing pads
                _, i = _uleb(code, i)
            elif op == 0x00:  # DW_CFA_nop
                pass
            else:
                raise _Unsupported("call frame instruction 0x%x" % op)
        state[0] = cfa

    # -- FDE lookup -------------------------------------------------------------------------------

    def _fde_for(self, pc):
        """The FDE covering pc, via the .eh_frame_hdr binary-search table of pc's module."""
        module = self._module_for(pc)
        if module is None:
            return None
        if module.table is None:
            module.table = self._load_table(module)
        locs, addrs, base = module.table
        index = bisect.bisect_right(locs, pc - base) - 1
        if index < 0:
            return None
        fde = self._fde(addrs[index] + base)
        if not fde.start <= pc < fde.end:
            return None  # a gap between functions
        return fde

    def _load_table(self, module):
        """Reads .eh_frame_hdr once: ([initial location], [FDE address], base they are relative to)."""
        if module.hdr is None:
            return ((), (), 0)
        hdr = module.hdr
        data = self.read(hdr, module.hdr_size)
        version, eh_enc, count_enc, table_enc = data[0], data[1], data[2], data[3]
        if version != 1:
            raise _Unsupported(".eh_frame_hdr version %d" % version)
        eh_frame, i = _pointer(data, 4, eh_enc, hdr, hdr, self.read)
        count, i = _pointer(data, i, count_enc, hdr, hdr, self.read)
        if table_enc == 0x3B and count is not None:
            # datarel|sdata4, what every linker writes: slice the table without decoding entries.
            table = array("i", data[i:i + 8 * count])
            return table[0::2], table[1::2], hdr
        if table_enc != _OMIT and count is not None:
            locs, addrs = [], []
            for _ in range(count):
                loc, i = _pointer(data, i, table_enc, hdr, hdr, self.read)
                fde, i = _pointer(data, i, table_enc, hdr, hdr, self.read)
                locs.append(loc)
                addrs.append(fde)
            return locs, addrs, 0
        return self._scan_eh_frame(module, eh_frame)

    def _scan_eh_frame(self, module, eh_frame):
        """No search table: index .eh_frame itself (it runs to a zero terminator or segment end)."""
        if eh_frame is None:
            return ((), (), 0)
        end = next((e for s, e in module.loads if s <= eh_frame < e), None)
        if end is None:
            return ((), (), 0)
        data = self.read(eh_frame, end - eh_frame)
        entries = []
        i = 0
        while i + 4 <= len(data):
            length = struct.unpack_from("<I", data, i)[0]
            if length == 0:
                break
            head = 4
            if length == 0xFFFFFFFF:
                length = struct.unpack_from("<Q", data, i + 4)[0]
                head = 12
            cie_id = struct.unpack_from("<I", data, i + head)[0]
            if cie_id != 0:
                try:
                    fde = self._fde(eh_frame + i)
                    entries.append((fde.start, eh_frame + i))
                except _Unsupported:
                    pass
            i += head + length
        entries.sort()
        return [e[0] for e in entries], [e[1] for e in entries], 0

    def _fde(self, addr):
        fde = self._fdes.get(addr)
        if fde is not None:
            return fde
        data, i = _read_entry(self.read, addr)
        wide = i == 12
        pointer_field = addr + i
        cie_off = struct.unpack_from("<Q" if wide else "<I", data, i)[0]
        if cie_off == 0:
            raise _Unsupported("a CIE where an FDE was expected")
        i += 8 if wide else 4
        cie = self._cie(pointer_field - cie_off)
        fde = _Fde()
        fde.cie = cie
        fde.start, i = _pointer(data, i, cie.fde_enc, addr, None, self.read)
        size, i = _pointer(data, i, cie.fde_enc & 0x0F, addr)
        fde.end = fde.start + size
        if cie.aug_z:
            length, i = _uleb(data, i)
            i += length  # the LSDA pointer: only exception handling needs it
        fde.instructions = data[i:]
        fde.where = addr + i  # DW_CFA_set_loc's pcrel operands are relative to their own address
        self._fdes[addr] = fde
        return fde

    def _cie(self, addr):
        cie = self._cies.get(addr)
        if cie is not None:
            return cie
        data, i = _read_entry(self.read, addr)
        i += 8 if i == 12 else 4  # the CIE id
        cie = _Cie()
        version = data[i]
        end = data.index(b"\0", i + 1)
        aug = data[i + 1:end].decode("latin-1")
        i = end + 1
        if "eh" in aug:
            i += 8  # an old gcc's exception-table pointer
        cie.code_align, i = _uleb(data, i)
        cie.data_align, i = _sleb(data, i)
        if version == 1:
            cie.ra, i = data[i], i + 1
        else:
            cie.ra, i = _uleb(data, i)
        cie.fde_enc, cie.signal, cie.aug_z = 0, False, aug.startswith("z")
        if cie.aug_z:
            length, i = _uleb(data, i)
            after = i + length
            for ch in aug[1:]:
                if ch == "R":
                    cie.fde_enc, i = data[i], i + 1
                elif ch == "L":
                    i += 1  # the LSDA encoding
                elif ch == "P":
                    enc, i = data[i], i + 1
                    _, i = _pointer(data, i, enc, addr)
                elif ch == "S":
                    cie.signal = True
                elif ch != "B":
                    break  # unknown but skippable: the 'z' length says where the data ends
            i = after
        elif aug not in ("", "eh"):
            raise _Unsupported("augmentation %r" % aug)
        cie.instructions = data[i:]
        self._cies[addr] = cie
        return cie

    # -- modules ----------------------------------------------------------------------------------

    def _module_for(self, pc):
        module = self._lookup(pc)
        if module is None and self._scan_maps():
            module = self._lookup(pc)  # something was mapped since the last scan
        return module

    def _lookup(self, pc):
        index = bisect.bisect_right(self._starts, pc) - 1
        if index >= 0:
            end, module = self._ranges[index]
            if pc < end:
                return module
        return None

    def _scan_maps(self):
        """Finds ELF objects in /proc/PID/maps not seen yet; returns whether any was added."""
        with open("/proc/%d/maps" % self.pid) as f:
            lines = f.read().splitlines()
        heads, executable = [], []
        for line in lines:
            parts = line.split(None, 5)
            if len(parts) < 6:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip()
            if "x" in parts[1]:
                executable.append((start, end, name))
            if int(parts[2], 16) == 0 and (name.startswith("/") or name == "[vdso]"):
                heads.append((start, name))
        added = False
        for start, name in heads:
            if start in self._modules:
                continue
            try:
                module = self._load_module(start, name, executable)
            except _STOP:
                module = None
            self._modules[start] = module  # None: not an ELF object, do not look again
            if module is not None:
                added = True
        if added:
            self._index()
        return added

    def _load_module(self, start, name, executable):
        """Reads the ELF and program headers at start (the mapping of file offset 0)."""
        ehdr = self.read(start, 64)
        if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2 or ehdr[5] != 1:
            return None  # not a 64-bit little-endian ELF (a data file mapped by the program)
        phoff = struct.unpack_from("<Q", ehdr, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", ehdr, 0x36)
        phdrs = self.read(start + phoff, phentsize * phnum)
        headers = [struct.unpack_from("<IIQQQQQQ", phdrs, k * phentsize) for k in range(phnum)]
        loads = [h for h in headers if h[0] == _PT_LOAD]
        if not loads:
            return None
        first = loads[0]
        bias = start - ((first[3] - first[2]) & ~(_PAGE - 1))  # vaddr of file offset 0 -> start
        ranges = []
        for p_type, flags, _off, vaddr, _pa, _filesz, memsz, _al in loads:
            lo, hi = bias + vaddr, bias + vaddr + memsz
            # Trust a code range only if it really is mapped executable under the same name, so
            # an ELF file the program merely mmaps cannot claim other objects' addresses.
            if flags & _PF_X and any(s <= lo < e and n == name for s, e, n in executable):
                ranges.append((lo, hi))
        if not ranges:
            return None
        hdr = next(((bias + h[3], h[6]) for h in headers if h[0] == _PT_GNU_EH_FRAME), (None, 0))
        return _Module(name, bias, [(bias + h[3], bias + h[3] + h[6]) for h in loads], ranges, hdr[0], hdr[1])

    def _index(self):
        """Rebuilds the sorted code-range index used to find the module of a pc."""
        ranges = sorted((lo, hi, m) for m in self._modules.values() if m is not None for lo, hi in m.code)
        self._starts = [r[0] for r in ranges]
        self._ranges = [(r[1], r[2]) for r in ranges]


def _restore(rules, initial, reg):
    """DW_CFA_restore: back to the CIE's initial rule for reg (none means same value)."""
    if initial is not None and reg in initial:
        rules[reg] = initial[reg]
    else:
        rules.pop(reg, None)
