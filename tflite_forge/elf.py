"""ELF reading (pyelftools), in one place: what a shared library says about itself. The build reads a
library's SONAME to make its links; verify reads the rest (machine, NEEDED, RUNPATH, symbol versions,
exports, build-id, .gnu_debuglink) to judge a tarball.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import NoteSection, SymbolTableSection
from elftools.elf.segments import InterpSegment

from .errors import PackageError


def version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


@dataclass
class ElfFacts:
    machine: str
    elf_class: int
    soname: str | None
    needed: list[str]
    version_needs: dict[str, list[str]]        # "GLIBC_2.17" -> symbols needing it
    exported: list[str]
    debuglink: str | None = None
    runpath: list[str] = field(default_factory=list)       # DT_RUNPATH / DT_RPATH entries

    def highest(self, prefix: str) -> str | None:
        names = [v for v in self.version_needs if v.startswith(prefix) and re.match(rf"^{prefix}\d", v)]
        return max(names, key=version_key) if names else None


def _tag_text(tag: object, name: str) -> str:
    """A dynamic tag's string value (pyelftools sets soname, needed, runpath, rpath on the tag it reads)."""
    return str(getattr(tag, name))


def elf_facts(data: bytes) -> ElfFacts:
    try:
        elf = ELFFile(io.BytesIO(data))
        machine, elf_class = elf["e_machine"], elf.elfclass
    except ELFError as err:
        raise PackageError(f"not an ELF file ({err}); the build output is damaged, rebuild") from None
    soname, needed, runpath = None, [], []
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_SONAME":
                    soname = _tag_text(tag, "soname")
                elif tag.entry.d_tag == "DT_NEEDED":
                    needed.append(_tag_text(tag, "needed"))
                elif tag.entry.d_tag == "DT_RUNPATH":
                    runpath += [p for p in _tag_text(tag, "runpath").split(":") if p]
                elif tag.entry.d_tag == "DT_RPATH":
                    runpath += [p for p in _tag_text(tag, "rpath").split(":") if p]
    # Version index -> version name, from .gnu.version_r (what this file needs from others).
    index_name: dict[int, str] = {}
    verneed = next((s for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection)), None)
    if verneed is not None:
        for _, auxes in verneed.iter_versions():
            for aux in auxes:
                index_name[aux["vna_other"]] = aux.name
    versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
    dynsym = elf.get_section_by_name(".dynsym")
    needs: dict[str, list[str]] = {name: [] for name in index_name.values()}
    exported: list[str] = []
    if isinstance(dynsym, SymbolTableSection):
        for i, sym in enumerate(dynsym.iter_symbols()):
            if not sym.name:
                continue
            shndx = sym["st_shndx"]
            if shndx == "SHN_UNDEF":
                if versym is not None:
                    ndx = versym.get_symbol(i)["ndx"]
                    ndx = ndx if isinstance(ndx, int) else 0
                    name = index_name.get(ndx & 0x7FFF)
                    if name:
                        needs[name].append(sym.name)
                continue
            if shndx == "SHN_ABS" and sym["st_info"]["type"] == "STT_OBJECT" and sym["st_size"] == 0:
                continue  # version definition markers (e.g. VERS_1.0)
            if sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE") and \
                    sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED"):
                exported.append(sym.name)
    debuglink = None
    link = elf.get_section_by_name(".gnu_debuglink")
    if link is not None:
        debuglink = link.data().split(b"\0", 1)[0].decode(errors="replace")
    return ElfFacts(machine=machine, elf_class=elf_class, soname=soname, needed=needed,
                    version_needs={k: sorted(v) for k, v in needs.items()}, exported=sorted(set(exported)),
                    debuglink=debuglink, runpath=runpath)


def build_id(data: bytes) -> str | None:
    """The NT_GNU_BUILD_ID note (hex), from the section headers (kept by objcopy in both halves)."""
    elf = ELFFile(io.BytesIO(data))
    for section in elf.iter_sections():
        if isinstance(section, NoteSection):
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    return None


def debuglink(data: bytes) -> tuple[str, int] | None:
    """(file name, CRC32) of the .gnu_debuglink section: name, NUL, padding to 4, CRC in ELF byte order."""
    elf = ELFFile(io.BytesIO(data))
    section = elf.get_section_by_name(".gnu_debuglink")
    if section is None:
        return None
    raw = section.data()
    name, _, _ = raw.partition(b"\0")
    offset = (len(name) + 1 + 3) // 4 * 4
    if len(raw) < offset + 4:
        return None
    (crc,) = struct.unpack_from("<I" if elf.little_endian else ">I", raw, offset)
    return name.decode(errors="replace"), crc


def interpreter(data: bytes) -> str | None:
    """The program interpreter (PT_INTERP: the dynamic loader an executable names), if any."""
    for segment in ELFFile(io.BytesIO(data)).iter_segments():
        if isinstance(segment, InterpSegment):
            return str(segment.get_interp_name())
    return None


def soname(path: Path) -> str | None:
    """The DT_SONAME of the ELF file at `path`, if it has one."""
    with open(path, "rb") as fh:
        for section in ELFFile(fh).iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        return _tag_text(tag, "soname")
    return None
