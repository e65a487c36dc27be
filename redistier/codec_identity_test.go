package redistier

import (
	"net/netip"
	"reflect"
	"testing"
	"unique"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBinaryKeepsIdentityInvariants: netip.Addr holds a unique.Handle (a
// pointer compared by identity); carried field by field it came back with
// another pointer, so got == want and got.Is4() were false for the same
// address. Types with MarshalBinary and UnmarshalBinary and hidden fields
// go through that pair when it brings the value back exactly.
func TestBinaryKeepsIdentityInvariants(t *testing.T) {
	type hosts struct {
		Addrs  []netip.Addr
		Prefix netip.Prefix
		Port   netip.AddrPort
	}
	want := hosts{
		Addrs:  []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fe80::1%eth0"), {}},
		Prefix: netip.MustParsePrefix("192.168.0.0/16"),
		Port:   netip.MustParseAddrPort("[::1]:80"),
	}
	b, err := Binary.Encode(nil, []any{want})
	require.NoError(t, err)
	out, err := Binary.Decode(b, []reflect.Type{reflect.TypeFor[hosts]()})
	require.NoError(t, err)
	got := out[0].(hosts)
	for i := range want.Addrs {
		assert.True(t, got.Addrs[i] == want.Addrs[i], "%v came back as %v", want.Addrs[i], got.Addrs[i])
	}
	assert.True(t, got.Addrs[0].Is4())
	assert.True(t, got.Prefix == want.Prefix)
	assert.True(t, got.Port == want.Port)
	assert.True(t, sameValue(want, got))

	// unique.Handle itself has no such pair: refused.
	err = Binary.Check(reflect.TypeFor[struct{ H uniqueHandle }]())
	assert.ErrorContains(t, err, "unique.Handle")
}

type uniqueHandle = unique.Handle[string]
