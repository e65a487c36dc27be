package memo_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type namedT struct{ n int }

func (t *namedT) Get(k int) int { return t.n + k }

func symbolTarget(k int) int { return k }

func TestCachesNames(t *testing.T) {
	named := memo.MustNew(memo.WithMaxSize(2), memo.WithName("caches-test/named"))
	byNew, err := memo.New(memo.WithMaxSize(2))
	require.NoError(t, err)
	byMustNew := memo.MustNew(memo.WithMaxSize(2))
	plain := memo.Decorate(symbolTarget)
	typed := memo.Func(symbolTarget)
	method := memo.Decorate((*namedT).Get)
	value := memo.Decorate((&namedT{}).Get)
	closure := memo.Decorate(func(k int) int { return k })

	assert.Equal(t, "caches-test/named", named.Name(), "WithName names a cache made by New")
	assert.Equal(t, "memo_test.TestCachesNames", strings.Split(byNew.Name(), "#")[0], "New without a name: its caller")
	assert.Equal(t, "memo_test.TestCachesNames", strings.Split(byMustNew.Name(), "#")[0], "MustNew without a name: its caller")
	assert.NotEqual(t, byNew.Name(), byMustNew.Name(), "names are unique")
	assert.Equal(t, "memo_test.symbolTarget", strings.Split(memo.CacheOf(plain).Name(), "#")[0])
	assert.Equal(t, "memo_test.symbolTarget", strings.Split(memo.CacheOf(typed).Name(), "#")[0])
	assert.NotEqual(t, memo.CacheOf(plain).Name(), memo.CacheOf(typed).Name())
	assert.Equal(t, "memo_test.(*namedT).Get", strings.Split(memo.CacheOf(method).Name(), "#")[0])
	assert.Equal(t, "memo_test.(*namedT).Get", strings.Split(memo.CacheOf(value).Name(), "#")[0], "a method value loses its -fm")
	assert.Equal(t, "memo_test.TestCachesNames.func1", memo.CacheOf(closure).Name())

	// Every one is listed under its name, and is the cache behind it.
	all := map[string]*memo.Cache{}
	for name, c := range memo.Caches() {
		_, dup := all[name]
		require.False(t, dup, "name %q listed twice", name)
		all[name] = c
	}
	for _, c := range []*memo.Cache{named, byNew, byMustNew, memo.CacheOf(plain), memo.CacheOf(typed),
		memo.CacheOf(method), memo.CacheOf(value), memo.CacheOf(closure)} {
		assert.Same(t, c, all[c.Name()], c.Name())
	}
	assert.Equal(t, 1, symbolTarget(1)+plain(0)+typed(0)+method(&namedT{}, 1)+value(1)+closure(0)-2)
}

func TestCachesStopEarly(t *testing.T) {
	memo.MustNew(memo.WithMaxSize(1), memo.WithName("caches-test/stop-a"))
	memo.MustNew(memo.WithMaxSize(1), memo.WithName("caches-test/stop-b"))
	n := 0
	for range memo.Caches() {
		n++
		break
	}
	assert.Equal(t, 1, n)
}

// TestCachesConcurrent is for -race: caches are made, listed and dropped
// from several goroutines at once, and every listed name is unique.
func TestCachesConcurrent(t *testing.T) {
	const name = "caches-test/concurrent"
	done := make(chan struct{})
	makers := make(chan []*memo.Cache, 4)
	for range 4 {
		go func() {
			var keep []*memo.Cache
			for range 100 {
				keep = append(keep, memo.MustNew(memo.WithMaxSize(1), memo.WithName(name)))
				memo.Decorate(func(int) int { return 0 }, memo.WithName(name))
			}
			makers <- keep
		}()
	}
	go func() {
		defer close(done)
		for range 20 {
			seen := map[string]bool{}
			for n := range memo.Caches() {
				assert.False(t, seen[n], "%q listed twice", n)
				seen[n] = true
			}
			runtime.GC()
		}
	}()
	var kept []*memo.Cache
	for range 4 {
		kept = append(kept, <-makers...)
	}
	<-done
	names := map[string]bool{}
	for _, c := range kept {
		require.False(t, names[c.Name()], "%q given twice", c.Name())
		names[c.Name()] = true
		require.True(t, strings.HasPrefix(c.Name(), name))
	}
	assert.Len(t, names, 400)
}
