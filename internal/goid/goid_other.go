//go:build !amd64 && !arm64 && !loong64 && !ppc64 && !ppc64le && !riscv64 && !s390x

package goid

import "runtime"

// Current returns the id of the calling goroutine, read from the header of
// its stack trace ("goroutine 18 [running]:"). It is slower (microseconds)
// than the register read used on the 64-bit platforms Go runs servers on
// (amd64, arm64, loong64, ppc64, riscv64, s390x), and serves the other
// ones; see goid.go.
func Current() uintptr {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = len("goroutine ")
	var id uintptr
	for _, c := range buf[prefix:n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uintptr(c-'0')
	}
	return id
}
