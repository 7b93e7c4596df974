"""Read Go struct types (field names, struct tags, field types) from a Go ELF binary's type metadata.

A Go binary keeps a runtime type descriptor for every named struct that reflection can reach
(encoding/json needs them), with each field's name, struct tag and type. Reading them gives the
exact tag of each field of each struct, which plain tag-string scanning cannot (identical tags are
deduplicated and do not name their owning struct).

Layout (Go 1.2x, amd64, abi package): Type is 48 bytes (size, ptrdata, hash, tflag@20, align,
fieldAlign, kind@23, equal, gcdata, str@40 (nameOff), ptrToThis); StructType adds pkgPath (name
pointer) @48 and fields slice @56; an UncommonType (pkgPath nameOff first) follows when tflag has
bit 0. StructField is {name pointer, type pointer, offset}. Slice/Ptr/Array keep Elem @48; Map
keeps Key @48 and Elem @56.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

KIND_NAMES = {1: "bool", 2: "int", 5: "int32", 6: "int64", 8: "uint8", 10: "uint32", 11: "uint64",
              14: "float64", 17: "array", 20: "interface", 21: "map", 22: "ptr", 23: "slice", 24: "string",
              25: "struct"}
_TFLAG_UNCOMMON = 1
_TFLAG_EXTRA_STAR = 2
_NAME_HAS_TAG = 2
_NAME_EMBEDDED = 8


@dataclass(frozen=True)
class GoType:
    string: str             # reflect's Type.String(), e.g. "[]v1.Container", "*int32", "v1.ResourceList"
    kind: str               # see KIND_NAMES
    pkg_path: str           # for named structs: the defining package, e.g. "k8s.io/api/core/v1"
    name: str               # for named types: the bare name, e.g. "ResourceList"
    elem: GoType | None     # pointer/slice/array/map element
    key: GoType | None      # map key


@dataclass(frozen=True)
class GoField:
    name: str
    tag: str
    embedded: bool
    type: GoType


@dataclass(frozen=True)
class GoStruct:
    pkg_path: str
    name: str
    fields: tuple[GoField, ...]


class _Image:
    """The loadable part of a non-PIE ELF executable, addressed by virtual address."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise ValueError("not a 64-bit ELF binary")
        self.data = data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        secs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
        strtab = secs[shstrndx][4]
        self.sections: dict[str, tuple[int, int, int]] = {}
        for name_off, _typ, _flags, addr, off, size in secs:
            end = data.index(b"\0", strtab + name_off)
            self.sections[data[strtab + name_off:end].decode()] = (addr, off, size)
        addr, off, size = self.sections[".rodata"]
        self.ro_addr, self.ro_off, self.ro_size = addr, off, size

    def off(self, addr: int) -> int:
        for a, o, s in self.sections.values():
            if a <= addr < a + s and o:
                return addr - a + o
        raise ValueError(f"address {addr:#x} is outside the file")

    def in_rodata(self, addr: int) -> bool:
        return self.ro_addr <= addr < self.ro_addr + self.ro_size


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


class _Reader:
    def __init__(self, image: _Image) -> None:
        self.img = image
        self.types: dict[int, GoType] = {}

    def name(self, addr: int) -> tuple[int, str, str]:
        """(flags, name, tag) of an abi.Name at a virtual address."""
        data = self.img.data
        pos = self.img.off(addr)
        flags = data[pos]
        n, pos = _varint(data, pos + 1)
        name = data[pos:pos + n].decode()
        tag = ""
        if flags & _NAME_HAS_TAG:
            t, p2 = _varint(data, pos + n)
            tag = data[p2:p2 + t].decode()
        return flags, name, tag

    def type_at(self, addr: int) -> GoType:
        cached = self.types.get(addr)
        if cached is not None:
            return cached
        data = self.img.data
        pos = self.img.off(addr)
        tflag, kind = data[pos + 20], data[pos + 23] & 0x1F
        str_off, = struct.unpack_from("<i", data, pos + 40)
        string = self.name(self.img.ro_addr + str_off)[1]
        if tflag & _TFLAG_EXTRA_STAR:
            string = string[1:]
        kname = KIND_NAMES.get(kind, f"kind{kind}")
        pkg_path = ""
        if tflag & _TFLAG_UNCOMMON and kname == "struct":
            pkg_path = self.name(self.img.ro_addr + struct.unpack_from("<i", data, pos + 80)[0])[1]
        elem = key = None
        if kname in ("ptr", "slice", "array", "map"):
            key_or_elem, = struct.unpack_from("<Q", data, pos + 48)
            if kname == "map":
                key = self.type_at(key_or_elem)
                elem = self.type_at(struct.unpack_from("<Q", data, pos + 56)[0])
            else:
                elem = self.type_at(key_or_elem)
        bare = string.rsplit(".", 1)[-1] if tflag & _TFLAG_UNCOMMON else ""
        t = GoType(string, kname, pkg_path, bare, elem, key)
        self.types[addr] = t
        return t


def read_structs(binary: bytes, pkg_prefixes: tuple[str, ...]) -> dict[tuple[str, str], GoStruct]:
    """Every named struct type whose package path starts with one of `pkg_prefixes`."""
    img = _Image(binary)
    rd = _Reader(img)
    data = binary
    out: dict[tuple[str, str], GoStruct] = {}
    end = img.ro_off + img.ro_size - 96
    for pos in range(img.ro_off, end, 8):
        if data[pos + 23] & 0x1F != 25 or not data[pos + 20] & _TFLAG_UNCOMMON:
            continue
        fptr, flen, fcap = struct.unpack_from("<QQQ", data, pos + 56)
        if flen != fcap or not 0 < flen < 400 or not img.in_rodata(fptr):
            continue
        try:
            pkg_off, = struct.unpack_from("<i", data, pos + 80)
            pkg = rd.name(img.ro_addr + pkg_off)[1]
            if not pkg.startswith(pkg_prefixes):
                continue
            t = rd.type_at(pos - img.ro_off + img.ro_addr)
            fields = []
            base = img.off(fptr)
            for i in range(flen):
                name_p, typ_p, _ = struct.unpack_from("<QQQ", data, base + i * 24)
                flags, fname, tag = rd.name(name_p)
                fields.append(GoField(fname, tag, bool(flags & _NAME_EMBEDDED), rd.type_at(typ_p)))
        except (ValueError, IndexError, UnicodeDecodeError):
            continue  # a false positive of the scan: bytes that only looked like a struct type
        out[(pkg, t.name)] = GoStruct(pkg, t.name, tuple(fields))
    return out
