//go:build amd64 || arm64 || loong64 || ppc64 || ppc64le || riscv64 || s390x

package goid

// Current returns the address of the runtime's descriptor of the calling
// goroutine (the g held in a register or thread-local storage): two
// goroutines alive at the same time never share it, and it costs about a
// nanosecond. It is only compared, never dereferenced, and only while the
// goroutine it was read on is known to be alive (running an execution), so
// that a descriptor reused by a later goroutine cannot be confused with it.
//
// It identifies the goroutine that runs an execution, so that a call made
// from inside the execution for its own key can tell that it must not wait
// on it (see miss). Implemented in goid_*.s.
func Current() uintptr
