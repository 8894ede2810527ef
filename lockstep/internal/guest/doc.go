// Package guest is one QEMU guest as the engine sees it (Guest) and the two
// of a run (Pair). A Guest speaks to its gdbstub through the narrow Target
// interface and to its QEMU process through Machine; real QEMU (Launcher)
// and the fake target of package fake both implement them, so every engine
// behaviour can be tested without QEMU. The package also holds what works
// on one guest's code and stack: backtraces, disassembly, argument
// liveness, checkpoints, and the diagnosis that tells a guest that ended
// from a QEMU that died.
package guest
