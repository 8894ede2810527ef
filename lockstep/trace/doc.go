// Package trace compares two TCG guests instruction by instruction at full
// TCG speed. QEMU logs the CPU state before every instruction
// ("-singlestep -d cpu,nochain", see Args); a Parser decodes that x86 log
// incrementally, and Compare reads two logs in lockstep and reports the
// first instruction where the selected state differs, with the hit count a
// gdbstub needs to stop exactly there. OpenFIFO lets the logs stream
// through named pipes, so nothing large is written to disk and a guest
// freezes as soon as its reader stops.
package trace
