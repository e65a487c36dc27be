package memo

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicText runs f and returns what it panicked with, as text ("" if it
// did not panic).
func panicText(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// tierNameCount returns how many functions hold name in the registry.
func tierNameCount(name string) int {
	n := 0
	tierNames.Range(func(k, _ any) bool {
		if k.(tierName).name == name {
			n++
		}
		return true
	})
	return n
}

// TestTierNameClashIsCaught: two different functions with one name and
// one signature, bound to one tier, used to share their tier entries: the
// second returned the first one's results. The second decoration panics.
func TestTierNameClashIsCaught(t *testing.T) {
	ctx := context.Background()
	ft := newFakeTier()
	eur := FuncCtx(func(ctx context.Context, sku string) (int, error) { return 100, nil }, WithName("price"), WithTier(ft))
	v, err := eur(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 100, v)

	var usd func(context.Context, string) (int, error)
	msg := panicText(func() {
		usd = FuncCtx(func(ctx context.Context, sku string) (int, error) { return 109, nil }, WithName("price"), WithTier(ft))
	})
	if usd != nil {
		v, err := usd(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, 109, v, "a second function under the same name returned the first one's result")
	}
	assert.Contains(t, msg, `memo: WithName("price") is already used by a live function`)
	assert.Contains(t, msg, "give each tiered function a name of its own")

	// Decorate and the typed paths share one registry.
	msg = panicText(func() {
		Decorate(func(ctx context.Context, sku string) (int, error) { return 109, nil }, WithName("price"), WithTier(ft))
	})
	assert.Contains(t, msg, `memo: WithName("price") is already used`)

	// Another tier (another replica's, or another store) may use the name.
	other := FuncCtx(func(ctx context.Context, sku string) (int, error) { return 100, nil }, WithName("price"), WithTier(ft.replica()))
	v, err = other(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, 100, v)
	// A name without a tier is not a tier name.
	local := FuncCtx(func(ctx context.Context, sku string) (int, error) { return 109, nil }, WithName("price"))
	v, err = local(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, 109, v)
	runtime.KeepAlive(eur)
}

// TestTierNameFreedByCollection: the registry holds functions weakly; a
// dropped function frees its name, and its registry entry goes.
func TestTierNameFreedByCollection(t *testing.T) {
	ft := newFakeTier()
	func() {
		f := Decorate(func(k int) int { return k }, WithName("gc-name"), WithTier(ft))
		require.Equal(t, 1, f(1))
	}()
	// Many dropped functions leave nothing in the registry.
	func() {
		for i := range 200 {
			f := FuncErr(func(k int) (int, error) { return k, nil }, WithName(fmt.Sprintf("gc-many/%d", i)), WithTier(ft))
			_, _ = f(i)
		}
	}()
	many := func() int {
		n := 0
		for i := range 200 {
			n += tierNameCount(fmt.Sprintf("gc-many/%d", i))
		}
		return n
	}
	require.True(t, collect(func() bool { return tierNameCount("gc-name") == 0 && many() == 0 }),
		"dropped functions' names stay registered: %d of 200", many())
	var g func(int) int
	assert.Empty(t, panicText(func() { g = Decorate(func(k int) int { return k + 1 }, WithName("gc-name"), WithTier(ft)) }))
	assert.Equal(t, 3, g(2))
	assert.Equal(t, 1, tierNameCount("gc-name"))

	// A decoration that the tier refuses does not keep the name.
	ft.bindErr = fmt.Errorf("memo: refused")
	assert.NotEmpty(t, panicText(func() { Decorate(func(k int) int { return k }, WithName("gc-refused"), WithTier(ft)) }))
	assert.Equal(t, 0, tierNameCount("gc-refused"))
	runtime.KeepAlive(g)
}

type tierShop struct{ rate int }

func (s *tierShop) price(sku string) int { return len(sku) * s.rate }

// TestTierNameMethodValues: a method value decorated per instance under
// one name is the same clash (two receivers, one set of tier entries).
// A method expression is one function; its pointer receiver is keyed by
// identity, so its calls stay in the local cache and never reach the tier.
func TestTierNameMethodValues(t *testing.T) {
	ft := newFakeTier()
	s1, s2 := &tierShop{rate: 1}, &tierShop{rate: 2}
	p1 := Decorate(s1.price, WithName("shop.price"), WithTier(ft))
	assert.Equal(t, 3, p1("abc"))
	var p2 func(string) int
	msg := panicText(func() { p2 = Decorate(s2.price, WithName("shop.price"), WithTier(ft)) })
	if p2 != nil {
		assert.Equal(t, 6, p2("abc"), "the second instance returned the first one's result")
	}
	assert.Contains(t, msg, `memo: WithName("shop.price") is already used`)
	assert.Contains(t, msg, "a name per instance")
	// A name per instance shares nothing between the instances.
	p2 = Decorate(s2.price, WithName("shop.price/2"), WithTier(ft))
	assert.Equal(t, 6, p2("abc"))

	byRecv := Decorate((*tierShop).price, WithName("shop.price.expr"), WithTier(ft))
	loads := ft.loadCount()
	assert.Equal(t, 3, byRecv(s1, "abc"))
	assert.Equal(t, 6, byRecv(s2, "abc"))
	assert.Equal(t, loads, ft.loadCount(), "a pointer receiver's calls stay local")
	assert.Equal(t, 2, CacheOf(byRecv).Len())
	runtime.KeepAlive(p1)
}
