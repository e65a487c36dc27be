module github.com/memokit/memo/bench

go 1.26

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/maypok86/otter/v2 v2.4.0
	github.com/memokit/memo v0.0.0
	github.com/mitchellh/hashstructure/v2 v2.0.2
)

replace github.com/memokit/memo => ../
