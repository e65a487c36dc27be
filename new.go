package memo

import (
	"cmp"

	"github.com/memokit/memo/internal/engine"
)

// New returns a cache configured by opts. [WithMaxSize] is required;
// [WithPolicy] and [WithTTL] are optional. Options that only make sense
// for [Decorate] are an error here. Every error starts "memo:" and says
// what to fix. The cache starts no goroutine; with a TTL it arms one timer
// for its earliest expiry.
func New(opts ...Option) (*Cache, error) {
	return newFor(opts, 1)
}

// MustNew is like [New] but panics on an invalid option.
func MustNew(opts ...Option) *Cache {
	c, err := newFor(opts, 1)
	if err != nil {
		panic(err)
	}
	return c
}

// newFor is New for the function skip frames above newFor's caller, whose
// symbol names the cache when opts do not (see [Caches]).
func newFor(opts []Option, skip int) (*Cache, error) {
	cfg, err := newConfig(opts, false)
	if err != nil {
		return nil, err
	}
	if cfg.name == "" {
		cfg.symbol = callerSymbol(skip + 1)
	}
	return newCache(cfg), nil
}

func newCache(cfg config) *Cache {
	c := &Cache{}
	c.e.Init(cfg.maxSize, cfg.ttl, cfg.policy, cfg.name, cfg.logger, engine.NewFreshState(cfg.fresh.jitter))
	c.listed = listCache(c, cmp.Or(cfg.name, cfg.symbol))
	return c
}
