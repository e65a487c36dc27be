package memo

import "github.com/memokit/memo/internal/keys"

// Internals that the black-box tests (package memo_test) need.

// ExportMaxKeyLen is the longest key memo stores (4 MiB): a call whose key
// is longer is not cached.
const ExportMaxKeyLen = keys.MaxKeyLen
