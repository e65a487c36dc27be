package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/traces"
)

func TestRun(t *testing.T) {
	dir := traces.Require(t)
	var out bytes.Buffer
	require.NoError(t, run(&out, dir, "1000", false))
	assert.Contains(t, out.String(), "| lirs/gli.trace | 6015 | 1000 | 11.21 | 31.34 |\n")
	assert.Contains(t, out.String(), "| arc/OLTP.lis | 914145 | 1000 | 32.83 | 13.83 |\n")
	assert.True(t, strings.HasPrefix(out.String(), "| trace | requests | size | LRU hit % | LFU hit % |\n"))
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes(" 10, 20 ,30")
	require.NoError(t, err)
	assert.Equal(t, []int{10, 20, 30}, got)
	got, err = parseSizes("")
	require.NoError(t, err)
	assert.Nil(t, got)
	for _, bad := range []string{"0", "-1", "a", "10,,20"} {
		_, err := parseSizes(bad)
		assert.Error(t, err, bad)
	}
}
