//! Program sections as libbpf reads them, rewritten into the forms aya reads.
//!
//! libbpf users name program sections freely: `SEC("xdp")`, but also `SEC("xdp/anything")`
//! (libbpf before 1.0), `SEC("xdp.frags/anything")`, and names libbpf does not know at all
//! (`SEC("xdp_prog")`) that `bpftool prog load OBJ PIN type xdp` loads anyway. aya-obj 0.3
//! accepts only `xdp`, `xdp.frags`, `xdp/devmap`, `xdp/cpumap` (and their `.frags` twins) and
//! refuses the whole object when any one section has another name. So before aya sees an
//! object, xdplab rewrites its section names:
//!
//! - the sections of the programs it needs get the name aya reads as the same program type
//!   (`xdp/anything` becomes `xdp`, `xdp.frags/anything` becomes `xdp.frags`, and with an
//!   explicit program type any section becomes `xdp` or `xdp.frags`);
//! - the other sections aya would refuse are no longer marked executable, so aya skips them
//!   (their programs are not loaded; nothing refers to them).
//!
//! The rewrite appends to the file and never moves what is there: a new section-name string
//! table (the old one stays, since the symbol table uses it too), and when names change a new
//! copy of `.BTF` with the new names appended to its strings, so `.BTF.ext`'s per-section
//! records (function and line info, CO-RE relocations) follow their section. Relocation
//! sections point at their section by index (`sh_info`), which does not change. When two
//! needed sections end up with the same name, aya cannot tell their `.BTF.ext` records apart,
//! so the object's function and line records are all detached: its programs load without line
//! info, as an object built without it does (keeping only the callees' records would be
//! refused by the kernel: "nonzero insn_off for the first func info record"). CO-RE
//! relocations of such sections cannot be placed and make the load fail with their section
//! named.
//!
//! Only 64-bit little-endian ELF objects are read (`clang -target bpf` on x86_64 and arm64).

use std::{collections::BTreeMap, fmt, str::FromStr};

use thiserror::Error;

const SHT_SYMTAB: u32 = 2;
const SHT_PROGBITS: u32 = 1;
const SHF_EXECINSTR: u64 = 0x4;
const STT_FUNC: u8 = 2;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
const SHN_LORESERVE: usize = 0xff00;

/// An error reading or rewriting an object's ELF.
#[derive(Debug, Error)]
pub enum ElfError {
    /// The bytes are not a 64-bit little-endian ELF object, or a table runs past the end.
    #[error("error parsing ELF data: {0}")]
    Malformed(String),
}

/// How a loader should treat the programs of an object, whatever their section names say
/// (`bpftool prog load OBJ PIN type xdp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgramType {
    /// `BPF_PROG_TYPE_XDP`, attached to an interface.
    Xdp,
    /// `BPF_PROG_TYPE_XDP` with `BPF_F_XDP_HAS_FRAGS` (multi-buffer frames).
    XdpFrags,
}

impl ProgramType {
    /// The section name aya reads as this type.
    pub fn section(self) -> &'static str {
        match self {
            Self::Xdp => "xdp",
            Self::XdpFrags => "xdp.frags",
        }
    }
}

impl fmt::Display for ProgramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.section())
    }
}

impl FromStr for ProgramType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xdp" => Ok(Self::Xdp),
            "xdp.frags" => Ok(Self::XdpFrags),
            other => Err(format!(
                "unknown program type {other:?} (expected \"xdp\" or \"xdp.frags\")"
            )),
        }
    }
}

/// The section name aya reads as the XDP program libbpf would see in `section`, if libbpf
/// reads it as XDP: `None` for a name libbpf does not read as XDP.
///
/// `xdp`, `xdp.frags`, `xdp/devmap`, `xdp/cpumap`, `xdp.frags/devmap`, `xdp.frags/cpumap`
/// keep their names; `xdp/NAME` becomes `xdp` and `xdp.frags/NAME` becomes `xdp.frags`.
pub fn libbpf_xdp_section(section: &str) -> Option<String> {
    let (kind, rest) = match section.split_once('/') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (section, None),
    };
    if kind != "xdp" && kind != "xdp.frags" {
        return None;
    }
    Some(match rest {
        None => kind.to_owned(),
        Some(target @ ("devmap" | "cpumap")) => format!("{kind}/{target}"),
        Some(_) => kind.to_owned(),
    })
}

/// Whether aya-obj 0.3 accepts `section` as a program section name as it is.
pub fn aya_accepts(section: &str) -> bool {
    aya_obj::ProgramSection::from_str(section).is_ok()
}

/// Whether aya reads `section` as an XDP program section.
pub fn aya_reads_as_xdp(section: &str) -> bool {
    matches!(
        aya_obj::ProgramSection::from_str(section),
        Ok(aya_obj::ProgramSection::Xdp { .. })
    )
}

/// One program (a global function in an executable section other than `.text`) of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramEntry {
    /// The function's name, which is the program's name.
    pub name: String,
    /// Its ELF section, as written in `SEC("...")`.
    pub section: String,
    section_index: usize,
}

/// The programs of an object, with their sections, in section order.
pub fn programs(bytes: &[u8]) -> Result<Vec<ProgramEntry>, ElfError> {
    let elf = Elf::parse(bytes)?;
    elf.programs()
}

/// Where the bytes of section `name` are in the file (`None`: no such section, or it holds
/// no bytes in the file), for tools and tests that patch an object.
pub fn section_range(bytes: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
    let elf = Elf::parse(bytes).ok()?;
    let index = (0..elf.shnum).find(|&i| elf.section_name(i).ok() == Some(name))?;
    let data = elf.section_data(index).ok()?;
    let start = usize::try_from(read_u64(elf.shdr(index), 24)).ok()?;
    (!data.is_empty()).then(|| start..start + data.len())
}

/// How to rewrite an object's program sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionPlan {
    /// New names, by section index.
    renames: BTreeMap<usize, String>,
    /// Sections that stop being executable (aya skips them).
    hidden: Vec<usize>,
    /// Sections whose name aya refuses, as libbpf wrote them, with their programs.
    pub refused: Vec<ProgramEntry>,
}

impl SectionPlan {
    /// Whether the object needs no rewrite.
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.hidden.is_empty()
    }

    /// The new name of each renamed section: `(old, new)`.
    pub fn renamed(&self, programs: &[ProgramEntry]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .renames
            .iter()
            .filter_map(|(index, new)| {
                programs
                    .iter()
                    .find(|p| p.section_index == *index)
                    .map(|p| (p.section.clone(), new.clone()))
            })
            .collect();
        out.dedup();
        out
    }
}

/// Plans the rewrite that lets aya load the programs in `needed` (by name) as libbpf would:
/// with `forced`, as bpftool's `type xdp` does, every needed program becomes that type; without
/// it, a needed program keeps what its section says in libbpf's reading. Sections aya would
/// refuse and no needed program lives in are hidden. A needed program in a section neither
/// aya nor libbpf reads as XDP (with no `forced` type) is left as it is, and listed in
/// [`SectionPlan::refused`] when aya would refuse it.
pub fn plan(
    programs: &[ProgramEntry],
    needed: &[&str],
    forced: Option<ProgramType>,
) -> SectionPlan {
    let mut plan = SectionPlan::default();
    let mut sections: BTreeMap<usize, (&str, bool)> = BTreeMap::new();
    for p in programs {
        let entry = sections
            .entry(p.section_index)
            .or_insert((p.section.as_str(), false));
        entry.1 |= needed.contains(&p.name.as_str());
    }
    for (&index, &(section, is_needed)) in &sections {
        let target = if is_needed {
            match forced {
                // An XDP section keeps its libbpf reading (frags, devmap); any other is `xdp`.
                Some(ProgramType::Xdp) => {
                    Some(libbpf_xdp_section(section).unwrap_or_else(|| "xdp".to_owned()))
                }
                Some(ProgramType::XdpFrags) => Some(match libbpf_xdp_section(section) {
                    Some(s) if s.starts_with("xdp.frags") => s,
                    Some(s) => format!("xdp.frags{}", &s["xdp".len()..]),
                    None => "xdp.frags".to_owned(),
                }),
                None => libbpf_xdp_section(section),
            }
        } else {
            None
        };
        match target {
            Some(target) if target != section => {
                plan.renames.insert(index, target);
            }
            Some(_) => {}
            None if aya_accepts(section) => {}
            None if is_needed => {
                plan.refused.extend(
                    programs
                        .iter()
                        .filter(|p| p.section_index == index)
                        .cloned(),
                );
            }
            None => plan.hidden.push(index),
        }
    }
    plan
}

/// Applies `plan` to the object: the bytes aya should parse.
pub fn rewrite(bytes: &[u8], plan: &SectionPlan) -> Result<Vec<u8>, ElfError> {
    let elf = Elf::parse(bytes)?;
    if plan.is_empty() {
        return Ok(bytes.to_vec());
    }
    let mut out = bytes.to_vec();
    let mut headers: Vec<Vec<u8>> = (0..elf.shnum)
        .map(|i| elf.shdr(i).to_vec())
        .collect::<Vec<_>>();
    for &index in &plan.hidden {
        let flags = read_u64(&headers[index], 8) & !SHF_EXECINSTR;
        headers[index][8..16].copy_from_slice(&flags.to_le_bytes());
    }
    let mut names: Vec<String> = (0..elf.shnum)
        .map(|i| elf.section_name(i).map(str::to_owned))
        .collect::<Result<_, _>>()?;
    let old_names = names.clone();
    for (&index, name) in &plan.renames {
        names[index] = name.clone();
    }

    // .BTF.ext records follow the new names. When a name is now shared by several sections,
    // aya (which looks records up by section name) cannot tell their records apart: then the
    // object's function and line records are all detached (pointed at BTF's empty string,
    // which names no section), as for an object built without them, since a program with
    // records for its callees but none for itself is refused by the kernel.
    let btf = (0..elf.shnum).find(|&i| old_names[i] == ".BTF");
    let btf_ext = (0..elf.shnum).find(|&i| old_names[i] == ".BTF.ext");
    if let (Some(btf), Some(btf_ext)) = (btf, btf_ext) {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            if elf.is_exec(i) && !plan.hidden.contains(&i) {
                *count.entry(name.as_str()).or_default() += 1;
            }
        }
        let mut moves: BTreeMap<String, String> = BTreeMap::new();
        let mut shared: Vec<String> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if !elf.is_exec(i) || plan.hidden.contains(&i) {
                continue;
            }
            if count.get(name.as_str()).copied().unwrap_or(0) > 1 {
                shared.push(old_names[i].clone());
            } else if old_names[i] != *name {
                moves.insert(old_names[i].clone(), name.clone());
            }
        }
        if !moves.is_empty() || !shared.is_empty() {
            let ext = elf.section_data(btf_ext)?;
            let mut offsets = Vec::new();
            retarget_btf_ext(ext, &mut |_, off| {
                offsets.push(off);
                None
            })?;
            let extended = if moves.is_empty() {
                None
            } else {
                // BTF whose strings are not last cannot take new names: detach instead.
                elf.btf_with_strings(btf, &offsets, &moves).ok()
            };
            let detach_all = !shared.is_empty() || extended.is_none() && !moves.is_empty();
            let strings = elf.btf_strings(btf)?;
            let is_shared = |off: u32| {
                c_str(strings, off as usize).is_some_and(|n| {
                    shared.iter().any(|s| s == n) || extended.is_none() && moves.contains_key(n)
                })
            };
            let remap = extended.as_ref().map(|(_, r)| r);
            let new_ext = retarget_btf_ext(ext, &mut |kind, off| match kind {
                BtfExtKind::FuncOrLine if detach_all => Some(0),
                // CO-RE relocations of a shared section cannot be placed: aya then reports
                // the section as not found rather than relocating the wrong code.
                _ if is_shared(off) => Some(0),
                _ => remap.and_then(|r| r.get(&off).copied()),
            })?;
            let ext_offset = usize::try_from(read_u64(&headers[btf_ext], 24))
                .map_err(|_| ElfError::Malformed(".BTF.ext offset".into()))?;
            out[ext_offset..ext_offset + new_ext.len()].copy_from_slice(&new_ext);
            if let Some((new_btf, _)) = extended {
                align(&mut out, 8);
                let offset = out.len() as u64;
                out.extend_from_slice(&new_btf);
                headers[btf][24..32].copy_from_slice(&offset.to_le_bytes());
                headers[btf][32..40].copy_from_slice(&(new_btf.len() as u64).to_le_bytes());
            }
        }
    }

    // A new section-name table, in a new section at the end of the header table.
    let mut strtab = vec![0u8];
    let mut name_offsets = Vec::with_capacity(names.len() + 1);
    for name in names.iter().map(String::as_str).chain([".xdplab.shstrtab"]) {
        name_offsets.push(strtab.len() as u32);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    }
    for (i, header) in headers.iter_mut().enumerate() {
        header[0..4].copy_from_slice(&name_offsets[i].to_le_bytes());
    }
    let strtab_offset = out.len() as u64;
    out.extend_from_slice(&strtab);
    let mut shstrtab = vec![0u8; SHDR_SIZE];
    shstrtab[0..4].copy_from_slice(&name_offsets[names.len()].to_le_bytes());
    shstrtab[4..8].copy_from_slice(&3u32.to_le_bytes()); // SHT_STRTAB
    shstrtab[24..32].copy_from_slice(&strtab_offset.to_le_bytes());
    shstrtab[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
    shstrtab[48..56].copy_from_slice(&1u64.to_le_bytes());
    headers.push(shstrtab);
    if headers.len() >= SHN_LORESERVE {
        return Err(ElfError::Malformed("too many sections to add one".into()));
    }
    align(&mut out, 8);
    let shoff = out.len() as u64;
    for header in &headers {
        out.extend_from_slice(header);
    }
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x3C..0x3E].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    out[0x3E..0x40].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
    Ok(out)
}

fn align(out: &mut Vec<u8>, to: usize) {
    while !out.len().is_multiple_of(to) {
        out.push(0);
    }
}

/// Which `.BTF.ext` subsection a per-section record group is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BtfExtKind {
    /// Function or line info.
    FuncOrLine,
    /// CO-RE relocations.
    CoRe,
}

/// `.BTF.ext` with each per-section record header's name offset mapped through `remap`
/// (`None` keeps it).
fn retarget_btf_ext(
    ext: &[u8],
    remap: &mut dyn FnMut(BtfExtKind, u32) -> Option<u32>,
) -> Result<Vec<u8>, ElfError> {
    let bad = |what: &str| ElfError::Malformed(format!(".BTF.ext {what}"));
    if ext.len() < 8 || read_u16(ext, 0) != 0xeb9f {
        return Err(bad("header"));
    }
    let mut out = ext.to_vec();
    let hdr_len = read_u32(ext, 4) as usize;
    // func_info, line_info, then (when the header is long enough) CO-RE relocations.
    for (field, kind) in [
        (8usize, BtfExtKind::FuncOrLine),
        (16, BtfExtKind::FuncOrLine),
        (24, BtfExtKind::CoRe),
    ] {
        if field + 8 > hdr_len || field + 8 > ext.len() {
            continue;
        }
        let start = hdr_len + read_u32(ext, field) as usize;
        let len = read_u32(ext, field + 4) as usize;
        if len == 0 {
            continue;
        }
        let end = start
            .checked_add(len)
            .filter(|&e| e <= ext.len())
            .ok_or_else(|| bad("subsection"))?;
        let rec_size = read_u32(ext, start) as usize;
        if rec_size == 0 {
            return Err(bad("record size"));
        }
        let mut at = start + 4;
        while at + 8 <= end {
            let name = read_u32(ext, at);
            let num = read_u32(ext, at + 4) as usize;
            if let Some(new) = remap(kind, name) {
                out[at..at + 4].copy_from_slice(&new.to_le_bytes());
            }
            at = num
                .checked_mul(rec_size)
                .and_then(|n| n.checked_add(at + 8))
                .filter(|&a| a <= end)
                .ok_or_else(|| bad("records"))?;
        }
    }
    Ok(out)
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The parts of an ELF64 little-endian object this module reads.
struct Elf<'a> {
    bytes: &'a [u8],
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let bad = |what: &str| ElfError::Malformed(what.to_owned());
        if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" {
            return Err(bad("not an ELF file"));
        }
        if bytes[4] != 2 || bytes[5] != 1 {
            return Err(bad("not a 64-bit little-endian ELF object"));
        }
        let shoff = usize::try_from(read_u64(bytes, 0x28)).map_err(|_| bad("e_shoff"))?;
        let shentsize = read_u16(bytes, 0x3A) as usize;
        let shnum = read_u16(bytes, 0x3C) as usize;
        let shstrndx = read_u16(bytes, 0x3E) as usize;
        if shentsize != SHDR_SIZE || shnum == 0 || shstrndx >= shnum {
            return Err(bad("section header table"));
        }
        if shoff
            .checked_add(shnum * SHDR_SIZE)
            .is_none_or(|end| end > bytes.len())
        {
            return Err(bad("section header table runs past the end"));
        }
        let elf = Self {
            bytes,
            shoff,
            shnum,
            shstrndx,
        };
        for i in 0..shnum {
            elf.section_data(i)?;
        }
        Ok(elf)
    }

    fn shdr(&self, i: usize) -> &'a [u8] {
        let start = self.shoff + i * SHDR_SIZE;
        &self.bytes[start..start + SHDR_SIZE]
    }

    fn section_data(&self, i: usize) -> Result<&'a [u8], ElfError> {
        let h = self.shdr(i);
        let kind = read_u32(h, 4);
        if kind == 8 || kind == 0 {
            // SHT_NOBITS (.bss) and SHT_NULL hold no bytes in the file.
            return Ok(&[]);
        }
        let offset = usize::try_from(read_u64(h, 24)).ok();
        let size = usize::try_from(read_u64(h, 32)).ok();
        offset
            .zip(size)
            .and_then(|(o, s)| Some(o..o.checked_add(s)?))
            .and_then(|r| self.bytes.get(r))
            .ok_or_else(|| ElfError::Malformed(format!("section {i} runs past the end")))
    }

    fn section_name(&self, i: usize) -> Result<&'a str, ElfError> {
        let strtab = self.section_data(self.shstrndx)?;
        c_str(strtab, read_u32(self.shdr(i), 0) as usize)
            .ok_or_else(|| ElfError::Malformed(format!("name of section {i}")))
    }

    fn is_exec(&self, i: usize) -> bool {
        let h = self.shdr(i);
        read_u32(h, 4) == SHT_PROGBITS && read_u64(h, 8) & SHF_EXECINSTR != 0
    }

    /// Sections aya treats as program sections: executable, not empty, not `.text`.
    fn is_program_section(&self, i: usize) -> Result<bool, ElfError> {
        Ok(self.is_exec(i)
            && read_u64(self.shdr(i), 32) > 0
            && !self.section_name(i)?.starts_with(".text"))
    }

    fn programs(&self) -> Result<Vec<ProgramEntry>, ElfError> {
        let mut out = Vec::new();
        for i in 0..self.shnum {
            if read_u32(self.shdr(i), 4) != SHT_SYMTAB {
                continue;
            }
            let symbols = self.section_data(i)?;
            let link = read_u32(self.shdr(i), 40) as usize;
            if link >= self.shnum {
                return Err(ElfError::Malformed("symbol table's string table".into()));
            }
            let names = self.section_data(link)?;
            for sym in symbols.chunks_exact(SYM_SIZE) {
                let shndx = read_u16(sym, 6) as usize;
                if sym[4] & 0xf != STT_FUNC
                    || shndx == 0
                    || shndx >= self.shnum
                    || !self.is_program_section(shndx)?
                {
                    continue;
                }
                let name = c_str(names, read_u32(sym, 0) as usize)
                    .ok_or_else(|| ElfError::Malformed("symbol name".into()))?;
                if name.is_empty() {
                    continue;
                }
                out.push(ProgramEntry {
                    name: name.to_owned(),
                    section: self.section_name(shndx)?.to_owned(),
                    section_index: shndx,
                });
            }
        }
        out.sort_by(|a, b| (a.section_index, &a.name).cmp(&(b.section_index, &b.name)));
        Ok(out)
    }

    /// The string section of `.BTF`.
    fn btf_strings(&self, btf: usize) -> Result<&'a [u8], ElfError> {
        let bad = |what: &str| ElfError::Malformed(format!(".BTF {what}"));
        let data = self.section_data(btf)?;
        if data.len() < 24 || read_u16(data, 0) != 0xeb9f {
            return Err(bad("header"));
        }
        let start = read_u32(data, 4) as usize + read_u32(data, 16) as usize;
        let len = read_u32(data, 20) as usize;
        data.get(start..start.saturating_add(len))
            .ok_or_else(|| bad("string section"))
    }

    /// `.BTF` with the new names of `moves` appended to its strings, and each of `offsets`
    /// (the names `.BTF.ext` uses) whose string is an old name mapped to its new name.
    fn btf_with_strings(
        &self,
        btf: usize,
        offsets: &[u32],
        moves: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, BTreeMap<u32, u32>), ElfError> {
        let bad = |what: &str| ElfError::Malformed(format!(".BTF {what}"));
        let data = self.section_data(btf)?;
        if data.len() < 24 || read_u16(data, 0) != 0xeb9f {
            return Err(bad("header"));
        }
        let hdr_len = read_u32(data, 4) as usize;
        let str_off = read_u32(data, 16) as usize;
        let str_len = read_u32(data, 20) as usize;
        let start = hdr_len + str_off;
        if start + str_len != data.len() {
            // The strings are not last: appending to them would move what follows.
            return Err(bad("layout (strings are not at the end)"));
        }
        let strings = &data[start..];
        let mut out = data.to_vec();
        let mut remap = BTreeMap::new();
        let mut added: BTreeMap<&str, u32> = BTreeMap::new();
        for &offset in offsets {
            let s = c_str(strings, offset as usize).ok_or_else(|| bad("section name"))?;
            if let Some(new) = moves.get(s) {
                let new_off = *added.entry(new.as_str()).or_insert_with(|| {
                    let off = (out.len() - start) as u32;
                    out.extend_from_slice(new.as_bytes());
                    out.push(0);
                    off
                });
                remap.insert(offset, new_off);
            }
        }
        let new_len = u32::try_from(out.len() - start).map_err(|_| bad("string size"))?;
        out[20..24].copy_from_slice(&new_len.to_le_bytes());
        Ok((out, remap))
    }
}

fn c_str(table: &[u8], at: usize) -> Option<&str> {
    let rest = table.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// A global variable of an object: a symbol in `.rodata`, `.data` or `.bss` (or one of their
/// `.rodata.NAME`-style siblings), which a loader may set before load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalSymbol {
    /// The variable's name.
    pub name: String,
    /// Its section (`.rodata` for `const volatile` configuration).
    pub section: String,
    /// Its size in bytes.
    pub size: usize,
}

/// The global variables of an object, sorted by name.
pub fn globals(bytes: &[u8]) -> Result<Vec<GlobalSymbol>, ElfError> {
    const STT_OBJECT: u8 = 1;
    let elf = Elf::parse(bytes)?;
    let mut out = Vec::new();
    for i in 0..elf.shnum {
        if read_u32(elf.shdr(i), 4) != SHT_SYMTAB {
            continue;
        }
        let symbols = elf.section_data(i)?;
        let link = read_u32(elf.shdr(i), 40) as usize;
        if link >= elf.shnum {
            return Err(ElfError::Malformed("symbol table's string table".into()));
        }
        let names = elf.section_data(link)?;
        for sym in symbols.chunks_exact(SYM_SIZE) {
            let shndx = read_u16(sym, 6) as usize;
            let size = usize::try_from(read_u64(sym, 16)).unwrap_or(0);
            if sym[4] & 0xf != STT_OBJECT || shndx == 0 || shndx >= elf.shnum || size == 0 {
                continue;
            }
            let section = elf.section_name(shndx)?;
            if ![".rodata", ".data", ".bss"]
                .iter()
                .any(|p| section.starts_with(p))
            {
                continue;
            }
            let name = c_str(names, read_u32(sym, 0) as usize)
                .ok_or_else(|| ElfError::Malformed("symbol name".into()))?;
            if name.is_empty() {
                continue;
            }
            out.push(GlobalSymbol {
                name: name.to_owned(),
                section: section.to_owned(),
                size,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    static GUARD: &[u8] = crate::kernel::program::bundled_bytes("xdp_port_guard");
    static TAIL: &[u8] = crate::kernel::program::bundled_bytes("xdp_tail_call");

    fn parse(bytes: &[u8]) -> aya_obj::Object {
        aya_obj::Object::parse(bytes).expect("aya parses the rewritten object")
    }

    fn func_info(obj: &aya_obj::Object, name: &str) -> u32 {
        obj.functions
            .values()
            .find(|f| f.name == name)
            .map_or_else(|| panic!("function {name}"), |f| f.func_info.num_info)
    }

    #[test]
    fn libbpf_xdp_sections_map_to_what_aya_reads() {
        for (libbpf, aya) in [
            ("xdp", Some("xdp")),
            ("xdp.frags", Some("xdp.frags")),
            ("xdp/devmap", Some("xdp/devmap")),
            ("xdp/cpumap", Some("xdp/cpumap")),
            ("xdp.frags/devmap", Some("xdp.frags/devmap")),
            ("xdp.frags/cpumap", Some("xdp.frags/cpumap")),
            ("xdp/anything", Some("xdp")),
            ("xdp.frags/anything", Some("xdp.frags")),
            ("xdp_prog", None),
            ("xdpfoo", None),
            ("classifier", None),
        ] {
            assert_eq!(libbpf_xdp_section(libbpf).as_deref(), aya, "{libbpf}");
            if let Some(aya) = aya {
                assert!(aya_reads_as_xdp(aya), "aya reads {aya} as XDP");
            }
        }
        assert!(!aya_accepts("xdp/anything"), "aya-obj 0.3 refuses xdp/NAME");
    }

    #[test]
    fn lists_programs_with_their_sections() {
        let programs = programs(GUARD).expect("programs");
        let listed: Vec<(&str, &str)> = programs
            .iter()
            .map(|p| (p.name.as_str(), p.section.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("xdp_port_guard", "xdp_guard_ports"),
                ("xdp_port_guard_off", "xdp/off")
            ]
        );
        assert!(
            aya_obj::Object::parse(GUARD).is_err(),
            "aya refuses the object as it is"
        );
    }

    #[test]
    fn a_free_section_needs_a_type_and_others_are_hidden() {
        let programs = programs(GUARD).expect("programs");
        let plan_untyped = plan(&programs, &["xdp_port_guard"], None);
        assert_eq!(
            plan_untyped
                .refused
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["xdp_port_guard"]
        );
        // The other program's section (xdp/off) is an XDP section to libbpf: it loads as
        // `xdp` when it is the entry, with no type given.
        let off = plan(&programs, &["xdp_port_guard_off"], None);
        assert!(off.refused.is_empty());
        let obj = parse(&rewrite(GUARD, &off).expect("rewrite"));
        assert_eq!(obj.programs.len(), 1, "the unneeded free section is hidden");
        assert!(matches!(
            obj.programs["xdp_port_guard_off"].section,
            aya_obj::ProgramSection::Xdp {
                frags: false,
                attach_type: aya_obj::programs::XdpAttachType::Interface
            }
        ));
        assert_eq!(
            func_info(&obj, "xdp_port_guard_off"),
            1,
            "BTF func info kept"
        );
    }

    #[test]
    fn a_type_makes_a_free_section_xdp_and_keeps_its_btf_records() {
        let programs = programs(GUARD).expect("programs");
        let typed = plan(&programs, &["xdp_port_guard"], Some(ProgramType::Xdp));
        assert!(typed.refused.is_empty());
        assert_eq!(
            typed.renamed(&programs),
            [("xdp_guard_ports".to_owned(), "xdp".to_owned())]
        );
        let bytes = rewrite(GUARD, &typed).expect("rewrite");
        // Append-only: what was there stays (but for the header's table fields and the
        // name offsets in .BTF.ext).
        assert!(bytes.len() > GUARD.len());
        assert_eq!(bytes[..0x28], GUARD[..0x28]);
        let obj = parse(&bytes);
        assert!(obj.programs.contains_key("xdp_port_guard"));
        assert!(!obj.programs.contains_key("xdp_port_guard_off"));
        assert_eq!(func_info(&obj, "xdp_port_guard"), 1, "BTF func info kept");
        let lines = obj
            .functions
            .values()
            .find(|f| f.name == "xdp_port_guard")
            .map(|f| f.line_info.num_info)
            .expect("function");
        assert!(lines > 5, "line info kept ({lines} records)");
        // Its maps and globals are untouched.
        for map in ["port_stats", "port_seen", ".rodata", ".data", ".bss"] {
            assert!(obj.maps.contains_key(map), "{map}");
        }
        let frags = plan(&programs, &["xdp_port_guard"], Some(ProgramType::XdpFrags));
        let obj = parse(&rewrite(GUARD, &frags).expect("rewrite"));
        assert!(matches!(
            obj.programs["xdp_port_guard"].section,
            aya_obj::ProgramSection::Xdp { frags: true, .. }
        ));
    }

    #[test]
    fn sections_sharing_a_name_load_without_btf_records() {
        let programs = programs(TAIL).expect("programs");
        let all = ["xdp_dispatch", "xdp_stage_udp", "xdp_stage_tcp"];
        let shared = plan(&programs, &all, None);
        assert!(shared.refused.is_empty());
        let obj = parse(&rewrite(TAIL, &shared).expect("rewrite"));
        for name in all {
            assert!(obj.programs.contains_key(name), "{name}");
            assert_eq!(func_info(&obj, name), 0, "{name}: records detached");
        }
        // The stages' callee in .text too: a program whose callee has records and which has
        // none itself is refused by the kernel.
        assert_eq!(func_info(&obj, "hit"), 0, "hit: records detached");
        // Only the dispatcher: it keeps its records, the stages are hidden.
        let one = plan(&programs, &["xdp_dispatch"], None);
        let obj = parse(&rewrite(TAIL, &one).expect("rewrite"));
        assert_eq!(obj.programs.len(), 1);
        assert_eq!(func_info(&obj, "xdp_dispatch"), 1);
        assert_eq!(func_info(&obj, "hit"), 1);
    }

    #[test]
    fn globals_are_listed_with_sizes() {
        let globals = globals(GUARD).expect("globals");
        let listed: Vec<(&str, &str, usize)> = globals
            .iter()
            .map(|g| (g.name.as_str(), g.section.as_str(), g.size))
            .collect();
        assert_eq!(
            listed,
            [
                ("blocked_action", ".data", 4),
                ("blocked_port", ".rodata", 2),
                ("count_only", ".rodata", 1),
                ("frames_seen", ".bss", 8),
            ]
        );
    }

    #[test]
    fn malformed_objects_are_errors_not_panics() {
        for bytes in [&b""[..], b"\x7fELF", &GUARD[..100], &[0u8; 200][..]] {
            assert!(programs(bytes).is_err());
        }
        let mut bad = GUARD.to_vec();
        bad[0x3C] = 0xff; // e_shnum past the end
        assert!(programs(&bad).is_err());
    }
}
