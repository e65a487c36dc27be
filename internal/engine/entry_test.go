package engine

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every key length a node keeps (inline, 8 to 48 bytes whose 8th byte is 0,
// with that byte holding the length; any other in a string of its own)
// reads back whole, matches itself, and matches no key that differs in one
// byte or in length: keyEqual's word compares, the length byte masked and
// an overlapping last word, must never turn a miss into a wrong hit. Each
// length is tried with its 8th byte 0 (inline where the length allows) and
// not (kept outside).
func TestNodeKeys(t *testing.T) {
	for _, zero7 := range []bool{true, false} {
		for kl := 1; kl <= 80; kl++ {
			mk := func() []byte {
				k := makeKey(kl)
				if zero7 && kl > lenByte {
					k[lenByte] = 0
				}
				return k
			}
			key := mk()
			n := NewNode(string(key), kl)
			clear(key) // the node holds its own copy
			runtime.GC()
			inline := zero7 && kl >= 8 && kl <= maxInline
			assert.Equal(t, inline, keyLen(n) == kl, "%d bytes (8th zero: %v): inline", kl, zero7)
			require.Equal(t, string(mk()), KeyOf(n), "keyOf, %d bytes", kl)
			assert.Equal(t, kl, n.Value.Value(), "value, %d bytes", kl)
			assert.True(t, keyEqual(n, mk()), "%d bytes: equal", kl)
			for i := range kl {
				for _, flip := range []byte{1, 0x80, byte(kl)} {
					k := mk()
					k[i] ^= flip
					if flip == byte(kl) && i == lenByte {
						// the 8th byte made the length byte itself
						require.Equal(t, byte(kl), k[i]^mk()[i])
					}
					if flip == 0 {
						continue
					}
					assert.False(t, keyEqual(n, k), "%d bytes, byte %d ^ %#x", kl, i, flip)
				}
			}
			assert.False(t, keyEqual(n, mk()[:kl-1]), "%d bytes: a prefix", kl)
			assert.False(t, keyEqual(n, append(mk(), 0)), "%d bytes: longer by a zero byte", kl)
			assert.False(t, keyEqual(tombstone, mk()), "the tombstone")
			if kl >= 9 && kl < 9+128 {
				// keyEqualFidString on a key of its shape.
				k := mk()
				k[8] = byte(kl - 9)
				m := NewNode(string(k), nil)
				fid := binary.LittleEndian.Uint64(k)
				assert.True(t, keyEqualFidString(m, fid, string(k[9:])), "%d bytes: fid string", kl)
				assert.False(t, keyEqualFidString(m, fid^1, string(k[9:])), "%d bytes: another fid", kl)
				assert.False(t, keyEqualFidString(m, fid|lenMask, string(k[9:])), "%d bytes: fid's top byte", kl)
				if kl > 9 {
					s := []byte(string(k[9:]))
					s[len(s)-1] ^= 1
					assert.False(t, keyEqualFidString(m, fid, string(s)), "%d bytes: another string", kl)
				}
			}
		}
	}
	assert.Equal(t, "", KeyOf(tombstone))
}

func makeKey(kl int) []byte {
	k := make([]byte, kl)
	for i := range k {
		k[i] = byte(i*7 + kl)
	}
	return k
}

// A node and its key are one allocation, and an entry with a TTL keeps its
// value in its extra.
func TestNodeLayout(t *testing.T) {
	assert.Equal(t, uintptr(40), unsafe.Sizeof(Node{}))
	for _, kl := range []int{8, 16, 17, 32, 33, 48, 49} {
		t.Run(fmt.Sprint(kl), func(t *testing.T) {
			k := makeKey(kl)
			k[lenByte] = 0 // shaped as memo's keys: inline up to 48 bytes
			key := string(k)
			got := testing.AllocsPerRun(10, func() { _ = NewNode(key, nil) })
			assert.Equal(t, 1.0, got, "one allocation")
		})
	}
	// A short key kept outside is copied (see ownKey): two allocations.
	short := string(makeKey(20))
	assert.Equal(t, 2.0, testing.AllocsPerRun(10, func() { _ = NewNode(short, nil) }))
	n := NewNode("0123456789abcdef", "v")
	assert.Nil(t, n.Value.X())
	assert.Equal(t, int64(0), n.Value.Expires())
	ext(n).Expires = 41
	assert.Equal(t, "v", n.Value.Value())
	assert.Equal(t, int64(41), n.Value.Expires())
	fx := &FreshX{}
	m := NewNode("0123456789abcdef", "w")
	setExt(m, &fx.Extra)
	assert.Equal(t, "w", m.Value.Value())
	assert.Same(t, fx, FreshOf(m))
}

// The hashes of a key read where it lies in its node (its first word's
// length byte masked, see lenByte) are the hashes of the key itself: the
// index's (indexHash, which find and rebuild probe by) and W-TinyLFU's
// (nodeHash). One that differed would lose entries in the index (a removed
// entry left behind, found by no probe) or count them under another key.
func TestNodeHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zero7 := range []bool{true, false} {
		for kl := 1; kl <= 140; kl++ {
			for range 20 {
				k := make([]byte, kl)
				for i := range k {
					k[i] = byte(rng.Uint32())
				}
				if zero7 && kl > lenByte {
					k[lenByte] = 0
				}
				if kl >= 9 && rng.IntN(2) == 0 {
					k[8] = byte(kl - 9) // the shape of a typed string argument's key
				}
				n := NewNode(string(k), nil)
				require.Equal(t, HashKey(k), indexHash(n), "%d bytes %x", kl, k)
				require.Equal(t, hashSeeded(0, k), nodeHash(n), "%d bytes %x", kl, k)
			}
		}
	}
}

// hashSeeded is fixed: the same in every process and every version that
// keeps W-TinyLFU's replays (the matrix) as they are.
func TestHashSeededFixed(t *testing.T) {
	k := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	var got []uint64
	for _, kl := range []int{0, 1, 7, 8, 9, 15, 16, 17, 24, 33} {
		got = append(got, hashSeeded(0, k[:kl]))
	}
	assert.Equal(t, hashSeededGolden, got)
}

// hashSeededGolden was printed by the hashSeeded of commit 945c71e.
var hashSeededGolden = []uint64{0x0, 0x6a0b15741574e889, 0xc97150fee65da69e, 0xbc71ce04271b7fac, 0xd4a0f5acac5460f2, 0x7a33eb289d5b2ab6, 0x8c8414d35656b6d9, 0x3ad6a6dabf567bf8, 0x1f30164eca586fc9, 0xdf673dcb97b543b8}

// A key kept outside whose length is the outside tag's value (outKey, 255
// bytes) matches itself and only itself: keyEqual must tell a key kept
// outside by its tag, not by a length that happens to equal the tag. Taken
// for an inline key of 255 bytes, such a node matched no lookup (a
// Cache.Set of a 244-byte string was never found again and was stored once
// more by every Set), and the compare read past the node's allocation.
func TestOutsideKeyOfTagLength(t *testing.T) {
	for _, kl := range []int{outKey - 1, outKey, outKey + 1} {
		for _, fid0 := range []bool{true, false} {
			mk := func() []byte {
				k := makeKey(kl)
				if fid0 { // Cache's own keys: function number 0
					clear(k[:8])
				}
				return k
			}
			n := NewNode(string(mk()), kl)
			require.Equal(t, outKey, keyLen(n), "%d bytes: kept outside", kl)
			assert.True(t, keyEqual(n, mk()), "%d bytes (fid 0: %v): equal", kl, fid0)
			other := mk()
			other[kl-1] ^= 1
			assert.False(t, keyEqual(n, other), "%d bytes (fid 0: %v): another key", kl, fid0)
			var x index
			x.init()
			x.insert(n, HashKey(mk()))
			assert.Same(t, n, x.Get(mk(), HashKey(mk())), "%d bytes (fid 0: %v): found", kl, fid0)
			assert.Same(t, n, x.insertNew(NewNode(string(mk()), nil), HashKey(mk())), "%d bytes (fid 0: %v): not added twice", kl, fid0)
		}
	}
}

// Any key round-trips through its node, matches itself and no other key
// (keyEqual, keyEqualFidString), and hashes, read where it lies, as the
// key itself does: b is compared as given, and as a with one byte changed,
// cut short and made longer.
func FuzzNodeKeys(f *testing.F) {
	for _, kl := range []int{0, 1, 7, 8, 9, 15, 16, 17, 24, 25, 32, 33, 47, 48, 49, 136, 137, outKey, outKey + 1} {
		k := makeKey(kl)
		if kl > lenByte {
			k[lenByte] = 0
		}
		f.Add(k, k, uint16(0), byte(0))
		f.Add(k, makeKey(kl), uint16(lenByte), byte(kl))
		if kl > 8 {
			z := append([]byte(nil), k...)
			clear(z[:8])
			z[8] = byte(kl - 9)
			f.Add(z, z, uint16(kl-1), byte(1))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte, i uint16, x byte) {
		n := NewNode(string(a), nil)
		require.Equal(t, string(a), KeyOf(n))
		require.Equal(t, HashKey(a), indexHash(n), "index hash of %d bytes %.24x", len(a), a)
		require.Equal(t, hashSeeded(0, a), nodeHash(n), "policy hash of %d bytes %.24x", len(a), a)
		check := func(k []byte) {
			t.Helper()
			require.Equal(t, string(a) == string(k), keyEqual(n, k), "node of %d bytes %.24x, key of %d bytes %.24x", len(a), a, len(k), k)
			if len(k) >= 9 && len(k) < 9+128 && int(k[8]) == len(k)-9 {
				fid := binary.LittleEndian.Uint64(k)
				require.Equal(t, string(a) == string(k), keyEqualFidString(n, fid, string(k[9:])), "node of %d bytes %.24x, fid-string key of %d bytes %.24x", len(a), a, len(k), k)
			}
		}
		check(a)
		check(b)
		if len(a) > 0 {
			c := append([]byte(nil), a...)
			c[int(i)%len(c)] ^= x
			check(c)
			check(a[:len(a)-1])
		}
		check(append(append([]byte(nil), a...), x))
	})
}
