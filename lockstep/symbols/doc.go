// Package symbols loads an ELF symbol table for fast address and name
// lookup: Load reads only .symtab/.strtab and the section headers (never
// DWARF), so a 500 MB vmlinux loads in well under a second. It resolves
// break expressions ("sym+0x10"), symbolises addresses as symbol+offset,
// matches function globs and reads code bytes from the file. Source turns
// a code address into a source line and its inlined calls from the DWARF,
// indexed lazily on first use. ORC and CFI return the unwind tables (the
// Linux kernel's ORC tables; DWARF call-frame information from .debug_frame
// and .eh_frame, decoded by delve's pkg/dwarf/frame), also read on first
// use.
package symbols
