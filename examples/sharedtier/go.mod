module github.com/memokit/memo/examples/sharedtier

go 1.26.0

replace (
	github.com/memokit/memo => ../../
	github.com/memokit/memo/redistier => ../../redistier
)

require (
	github.com/memokit/memo v0.0.0-00010101000000-000000000000
	github.com/memokit/memo/redistier v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/mitchellh/hashstructure/v2 v2.0.2 // indirect
	github.com/sony/gobreaker/v2 v2.4.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
