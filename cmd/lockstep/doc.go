// Command lockstep is the command-line interface of lockstep: run a
// scenario, validate scenarios, re-render a saved result, print the
// version. The commands are thin: flags become options for the library
// packages, which hold the behaviour.
//
// Exit statuses (DESIGN.md): 0 the run matched the scenario's expect,
// 1 it did not, 2 usage or scenario error, 3 infrastructure failure
// (125 with --bisect, so git bisect run skips the commit).
package main
