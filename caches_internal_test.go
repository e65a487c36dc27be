package memo

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listed returns the caches that Caches lists under names with prefix.
func listed(prefix string) map[string]*Cache {
	m := map[string]*Cache{}
	for name, c := range Caches() {
		if strings.HasPrefix(name, prefix) {
			m[name] = c
		}
	}
	return m
}

func TestCachesDuplicateNames(t *testing.T) {
	a := MustNew(WithMaxSize(1), WithName("caches-test/dup"))
	b := MustNew(WithMaxSize(1), WithName("caches-test/dup"))
	c := Decorate(func(int) int { return 0 }, WithName("caches-test/dup"))
	assert.Equal(t, "caches-test/dup", a.Name())
	assert.Equal(t, "caches-test/dup#2", b.Name())
	assert.Equal(t, "caches-test/dup#3", CacheOf(c).Name())
	got := listed("caches-test/dup")
	assert.Equal(t, map[string]*Cache{
		"caches-test/dup": a, "caches-test/dup#2": b, "caches-test/dup#3": CacheOf(c),
	}, got)
}

func TestCachesShared(t *testing.T) {
	shared := MustNew(WithMaxSize(8), WithName("caches-test/shared"))
	f := Decorate(func(k int) int { return k }, WithCache(shared))
	g := Decorate(func(k int) int { return -k }, WithCache(shared), WithName("caches-test/shared-g"))
	assert.Equal(t, 3, f(3))
	assert.Equal(t, -3, g(3))
	assert.Equal(t, map[string]*Cache{"caches-test/shared": shared}, listed("caches-test/shared"),
		"a shared cache is listed once, under its own name")
	assert.Equal(t, shared.Name(), CacheOf(f).Name())
}

// inRegistry reports whether the registry still has an entry with base name.
func inRegistry(name string) bool {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	_, ok := caches.bases[name]
	return ok
}

// collect runs the collector until done reports true (dtGCUntil);
// cleanups run on their own goroutine after a cycle, so one may not do.
func collect(done func() bool) bool { return dtGCUntil(done) }

// TestCachesForgetsCollected: caches that become unreachable leave Caches,
// their registry entries go, and their memory is returned: the registry
// holds them weakly.
func TestCachesForgetsCollected(t *testing.T) {
	const name, n = "caches-test/gc", 200
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	func() {
		keep := make([]*Cache, n)
		for i := range keep {
			keep[i] = MustNew(WithMaxSize(1), WithName(name))
			keep[i].Set(i, make([]byte, 64<<10)) // 64 KiB each, 12.5 MiB in all
		}
		f := Decorate(func(k int) []byte { return make([]byte, 64<<10) }, WithName(name+"/decorated"))
		f(1)
		runtime.GC()
		require.Len(t, listed(name), n+1, "live caches are listed")
		runtime.KeepAlive(keep)
		runtime.KeepAlive(f)
	}()

	require.True(t, collect(func() bool { return len(listed(name)) == 0 }),
		"collected caches are still listed: %d", len(listed(name)))
	require.True(t, collect(func() bool { return !inRegistry(name) && !inRegistry(name+"/decorated") }),
		"the registry kept entries of collected caches")
	runtime.GC()
	runtime.ReadMemStats(&ms)
	assert.Less(t, int64(ms.HeapAlloc)-int64(before), int64(4<<20),
		"heap after GC grew by %d bytes: the registry kept the caches alive", int64(ms.HeapAlloc)-int64(before))

	// A new cache of the same name gets the plain name again.
	c := MustNew(WithMaxSize(1), WithName(name))
	assert.Equal(t, name, c.Name())
}

// nameTaken reports whether the registry holds an entry under name.
func nameTaken(name string) bool {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	_, ok := caches.byName[name]
	return ok
}

// TestCachesReuseNumbers: the number of a collected cache is given again,
// so that caches made one per instance, while another of the same name
// lives, keep to as many names as are live at once. They were numbered
// #2, #3, ... for ever: one metric series per instance ever made (the
// OpenTelemetry SDK kept a histogram for each, up to its cardinality
// limit).
func TestCachesReuseNumbers(t *testing.T) {
	const name = "caches-test/reuse"
	keeper := MustNew(WithMaxSize(1), WithName(name))
	require.Equal(t, name, keeper.Name())
	seen := map[string]bool{}
	for range 30 {
		func() {
			c := MustNew(WithMaxSize(1), WithName(name))
			seen[c.Name()] = true
			runtime.KeepAlive(c)
		}()
		// Until its cleanup has run, a collected cache's name is not
		// listed but still taken.
		require.True(t, collect(func() bool { return !nameTaken(name + "#2") }), "the dropped cache's name is still taken")
	}
	assert.Equal(t, map[string]bool{name + "#2": true}, seen, "one instance at a time takes one name")

	// Two live at once take #2 and #3; the smallest freed number goes first.
	var b *Cache
	aName := func() string {
		a := MustNew(WithMaxSize(1), WithName(name))
		b = MustNew(WithMaxSize(1), WithName(name))
		require.Equal(t, []string{name + "#2", name + "#3"}, []string{a.Name(), b.Name()})
		return a.Name()
	}()
	require.True(t, collect(func() bool { return !nameTaken(aName) }))
	c := MustNew(WithMaxSize(1), WithName(name))
	assert.Equal(t, name+"#2", c.Name())
	d := MustNew(WithMaxSize(1), WithName(name))
	assert.Equal(t, name+"#4", d.Name(), "no number is given twice while its cache lives")
	runtime.KeepAlive(keeper)
	runtime.KeepAlive(b)
}

func TestShortSymbol(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"main.main":                         "main.main",
		"main.main.func1":                   "main.main.func1",
		"github.com/a/b.Get":                "b.Get",
		"github.com/a/b.(*T).Get":           "b.(*T).Get",
		"github.com/a/b.(*T).Get-fm":        "b.(*T).Get",
		"github.com/a/b.F[...]":             "b.F[...]",
		"example.com/x.v2/pkg.T.M.func2.1":  "pkg.T.M.func2.1",
		"github.com/memokit/memo_test.Test": "memo_test.Test",
	} {
		assert.Equal(t, want, shortSymbol(in), in)
	}
}
