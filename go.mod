module github.com/memokit/memo

go 1.26

require (
	github.com/mitchellh/hashstructure/v2 v2.0.2 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
