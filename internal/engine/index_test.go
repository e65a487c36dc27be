package engine

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

// hashSeeded's unrolled 16-byte case gives the loop's hash: W-TinyLFU's
// decisions, pinned by the replay tests, depend on it.
func TestHashSeeded16(t *testing.T) {
	loop := func(seed uint64, k []byte) uint64 {
		h := seed ^ uint64(len(k))*0x9e3779b97f4a7c15
		for len(k) >= 8 {
			h = mix(h^binary.LittleEndian.Uint64(k), 0xbf58476d1ce4e5b9)
			k = k[8:]
		}
		if len(k) > 0 {
			var t uint64
			for i, b := range k {
				t |= uint64(b) << (8 * i)
			}
			h = mix(h^t, 0x94d049bb133111eb)
		}
		return mix(h, 0x2545f4914f6cdd1d)
	}
	for kl := 1; kl <= 40; kl++ {
		for _, seed := range []uint64{0, 0x9e3779b97f4a7c15, 12345} {
			k := makeKey(kl)
			assert.Equal(t, loop(seed, k), hashSeeded(seed, k), "%d bytes, seed %d", kl, seed)
		}
	}
}
