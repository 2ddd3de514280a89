#!/usr/bin/env python3
"""Lists the GPU code a shared library carries (its .nv_fatbin section) and checks it.

    scripts/check_fatbin.py build/libpyramidion_ops.so --sass 80,90 --ptx 90

Each fatbin entry is SASS (kind 2, machine code for one architecture) or PTX (kind 1, compiled at
load time for that architecture and any newer one). Without PTX a GPU newer than every SASS entry
fails each kernel with "no kernel image is available for execution on the device". Exits 1 naming
what is missing, 0 when every asked-for entry is there. Pure Python (reads the ELF itself): it runs
where binutils' objcopy or CUDA's cuobjdump are absent.
"""
import argparse
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50
KINDS = {1: "ptx", 2: "sass"}


def section(data, name):
    """The bytes of ELF64 little-endian section `name`, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    for h in headers:
        start = names[4] + h[0]
        title = data[start:data.index(b"\0", start)].decode()
        if title == name:
            return data[h[4]:h[4] + h[5]]
    return None


def entries(fatbin):
    """(kind, arch) of every entry of every fatbin in the section."""
    out, off = [], 0
    while off + 16 <= len(fatbin):
        magic, _, header_size, size = struct.unpack_from("<IHHQ", fatbin, off)
        if magic != FATBIN_MAGIC:
            break
        at, end = off + header_size, off + header_size + size
        while at < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", fatbin, at)
            arch, = struct.unpack_from("<I", fatbin, at + 28)
            out.append((KINDS.get(kind, str(kind)), arch))
            at += entry_header + payload
        off = (end + 7) // 8 * 8
    return out


def archs(text):
    return sorted({int(a) for a in text.split(",") if a.strip()}) if text else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library")
    parser.add_argument("--sass", default="", help="architectures that must have SASS, e.g. 80,90")
    parser.add_argument("--ptx", default="", help="architectures that must have PTX, e.g. 90")
    args = parser.parse_args()
    with open(args.library, "rb") as f:
        data = f.read()
    fatbin = section(data, ".nv_fatbin")
    if fatbin is None:
        print(f"{args.library}: no .nv_fatbin section (built without CUDA kernels)", file=sys.stderr)
        return 1
    found = sorted(set(entries(fatbin)))
    print(f"{args.library}: " + ", ".join(f"{kind} sm_{arch}" for kind, arch in found))
    missing = [f"{kind} sm_{a}" for kind, want in (("sass", archs(args.sass)), ("ptx", archs(args.ptx)))
               for a in want if (kind, a) not in found]
    if missing:
        print(f"{args.library}: missing " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
