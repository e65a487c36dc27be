// Package traces reads cache access traces: gzip-compressed request
// streams replayed to measure eviction policies. The small ones ship in the
// repository ([Shipped], see data/README.md); larger ones are read from an
// optional folder ([Dir]).
package traces

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Format is the layout of a trace file once decompressed.
type Format int

const (
	// ARC is the ARC traces' text: lines "start count ignored reqno", each
	// count requests for keys start..start+count-1.
	ARC Format = iota + 1
	// LIRS is one decimal key per line; "*" lines and blank lines are skipped.
	LIRS
	// Int64 is big-endian int64 keys.
	Int64
	// Int32 is big-endian int32 keys.
	Int32
	// Uint32 is big-endian uint32 keys.
	Uint32
)

func (f Format) String() string {
	switch f {
	case ARC:
		return "arc"
	case LIRS:
		return "lirs"
	case Int64:
		return "int64"
	case Int32:
		return "int32"
	case Uint32:
		return "uint32"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// FormatOf guesses a trace's format from its path, following the layout of
// shared/traces: *.lis[.gz] is ARC, files under lirs/ are LIRS, files under
// cache2k/ are Int32, cloudphysics-* is Uint32, scarab-* and corda-* are Int64.
func FormatOf(path string) (Format, error) {
	base := filepath.Base(path)
	dir := filepath.Base(filepath.Dir(path))
	switch {
	case strings.HasSuffix(strings.TrimSuffix(base, ".gz"), ".lis"):
		return ARC, nil
	case dir == "lirs":
		return LIRS, nil
	case dir == "cache2k":
		return Int32, nil
	case strings.HasPrefix(base, "cloudphysics"):
		return Uint32, nil
	case strings.HasPrefix(base, "scarab"), strings.HasPrefix(base, "corda"):
		return Int64, nil
	}
	return 0, fmt.Errorf("traces: cannot tell the format of %s", path)
}

// Each decompresses the gzip trace at path and calls fn with every requested
// key, in order. Signed keys are sign-extended, so distinct keys stay distinct.
func Each(path string, format Format, fn func(key uint64)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return each(f, path, format, fn)
}

// each is Each for the gzip trace read from r; path names it in errors.
func each(r io.Reader, path string, format Format, fn func(key uint64)) (err error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<16))
	if err != nil {
		return fmt.Errorf("traces: %s: %w", path, err)
	}
	defer zr.Close()
	switch format {
	case ARC:
		err = eachLine(zr, func(line []byte) error { return arcLine(line, fn) })
	case LIRS:
		err = eachLine(zr, func(line []byte) error { return lirsLine(line, fn) })
	case Int64:
		err = eachWord(zr, 8, func(b []byte) { fn(binary.BigEndian.Uint64(b)) })
	case Int32:
		err = eachWord(zr, 4, func(b []byte) { fn(uint64(int64(int32(binary.BigEndian.Uint32(b))))) })
	case Uint32:
		err = eachWord(zr, 4, func(b []byte) { fn(uint64(binary.BigEndian.Uint32(b))) })
	default:
		return fmt.Errorf("traces: unknown format %v", format)
	}
	if err != nil {
		return fmt.Errorf("traces: %s: %w", path, err)
	}
	return nil
}

// Load returns every key of the trace at path, in order.
func Load(path string, format Format) ([]uint64, error) {
	var keys []uint64
	err := Each(path, format, func(k uint64) { keys = append(keys, k) })
	return keys, err
}

func eachLine(r io.Reader, fn func(line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func eachWord(r io.Reader, size int, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 1<<16)
	buf := make([]byte, size)
	for {
		_, err := io.ReadFull(br, buf)
		switch {
		case err == nil:
			fn(buf)
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("trailing %d-byte fragment of a key", size)
		default:
			return err
		}
	}
}

func lirsLine(line []byte, fn func(uint64)) error {
	s := strings.TrimSpace(string(line))
	if s == "" || s == "*" {
		return nil
	}
	k, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	fn(k)
	return nil
}

func arcLine(line []byte, fn func(uint64)) error {
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return nil
	}
	if len(f) < 2 {
		return fmt.Errorf("want \"start count ...\", got %q", line)
	}
	start, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return err
	}
	count, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return err
	}
	for i := range count {
		fn(start + i)
	}
	return nil
}

// LoadFile loads the trace at path in the format its name tells (FormatOf).
func LoadFile(path string) ([]uint64, error) {
	format, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	return Load(path, format)
}
