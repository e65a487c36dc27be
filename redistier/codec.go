package redistier

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec turns a function's results into bytes and back. The results'
// static types are known on both sides, so the bytes need not name them.
// A Codec must be safe for concurrent use.
type Codec interface {
	// ID names the codec in each value's header; values written by another
	// codec are misses. Ids below 16 are redistier's.
	ID() byte
	// Check returns an error when values of type t cannot make the round
	// trip exactly. It is called at decoration time for every result type;
	// memo then panics with the error.
	Check(t reflect.Type) error
	// Encode appends the encoding of vals (one per result) to dst.
	Encode(dst []byte, vals []any) ([]byte, error)
	// Decode decodes data into one value of each of types.
	Decode(data []byte, types []reflect.Type) ([]any, error)
}

// JSON is the default codec: encoding/json, into the results' static
// types. It was chosen after measuring JSON, msgpack and gob on the result
// types users return (codec_test.go, TestCodecExactness): for the types
// the check accepts, what JSON encodes comes back exactly (time.Time in
// UTC stays UTC, []T{} and nil stay apart, int64 and uint64 beyond 2^53,
// nested maps, pointers to zero values), and what it cannot represent
// (NaN, ±Inf) fails loudly at encode time: such a result is not shared (a
// counted EncodeError), never changed. msgpack silently returns every
// time.Time in time.Local; gob silently turns []T{}, empty inner slices
// and pointers to zero into nil. A time.Time in a zone other than UTC
// keeps its instant and offset but not the zone's name (every codec loses
// it). Results holding interfaces, funcs, channels, complex numbers,
// unexported or skipped ("-") fields, omitempty slices or maps, or
// recursive types are refused at decoration time.
var JSON Codec = jsonCodec{}

// Msgpack is MessagePack (vmihailenco/msgpack/v5): smaller and faster
// than JSON, keeps NaN and infinities, but brings every time.Time back in
// time.Local (the same instant: compare with Equal).
var Msgpack Codec = msgpackCodec{}

// Gob is encoding/gob. It turns empty slices and maps and pointers to zero
// values into nil: use it only for results where that does not matter.
var Gob Codec = gobCodec{}

type msgpackCodec struct{}

func (msgpackCodec) ID() byte { return 1 }

func (msgpackCodec) Check(t reflect.Type) error { return checkFields(t, "msgpack") }

func (msgpackCodec) Encode(dst []byte, vals []any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := msgpack.NewEncoder(buf)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func (msgpackCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	out := make([]any, len(types))
	for i, t := range types {
		p := reflect.New(t)
		if err := dec.DecodeValue(p.Elem()); err != nil {
			return nil, err
		}
		out[i] = p.Elem().Interface()
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

type jsonCodec struct{}

func (jsonCodec) ID() byte { return 2 }

func (jsonCodec) Check(t reflect.Type) error { return checkFields(t, "json") }

func (jsonCodec) Encode(dst []byte, vals []any) ([]byte, error) {
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

func (jsonCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if len(raw) != len(types) {
		return nil, fmt.Errorf("%d values for %d results", len(raw), len(types))
	}
	out := make([]any, len(types))
	for i, t := range types {
		p := reflect.New(t)
		if err := json.Unmarshal(raw[i], p.Interface()); err != nil {
			return nil, err
		}
		out[i] = p.Elem().Interface()
	}
	return out, nil
}

type gobCodec struct{}

func (gobCodec) ID() byte { return 3 }

func (gobCodec) Check(t reflect.Type) error { return checkFields(t, "gob") }

func (gobCodec) Encode(dst []byte, vals []any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := gob.NewEncoder(buf)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func (gobCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	dec := gob.NewDecoder(bytes.NewReader(data))
	out := make([]any, len(types))
	for i, t := range types {
		p := reflect.New(t)
		if err := dec.DecodeValue(p); err != nil {
			return nil, err
		}
		out[i] = p.Elem().Interface()
	}
	return out, nil
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// checkFields refuses types whose values a reflective codec cannot bring
// back exactly: interfaces (the dynamic type is lost), funcs, channels,
// unsafe pointers, complex numbers, unexported or tag-skipped struct
// fields, and recursive types (a cyclic value would not encode). A type
// with its own binary marshalling, and time.Time, are trusted.
func checkFields(root reflect.Type, tag string) error {
	var walk func(t reflect.Type, path []reflect.Type) error
	walk = func(t reflect.Type, path []reflect.Type) error {
		for _, p := range path {
			if p == t {
				return fmt.Errorf("memo: redistier: result type %v is recursive (through %v): a cyclic value would not encode; return a non-recursive type or leave WithTier out", root, t)
			}
		}
		if t == timeType || (t.Kind() != reflect.Pointer && t.Implements(binaryMarshalerType) && reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.BinaryUnmarshaler]())) {
			return nil
		}
		path = append(path, t)
		switch t.Kind() {
		case reflect.Interface:
			return fmt.Errorf("memo: redistier: result type %v holds the interface type %v: the codec cannot restore a dynamic type; return a concrete type or leave WithTier out", root, t)
		case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
			return fmt.Errorf("memo: redistier: result type %v holds %v, which the codec cannot store; leave WithTier out for this function", root, t)
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(t.Elem(), path)
		case reflect.Map:
			if err := walk(t.Key(), path); err != nil {
				return err
			}
			return walk(t.Elem(), path)
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					return fmt.Errorf("memo: redistier: result type %v has the unexported field %v.%s, which the codec would drop; export it or leave WithTier out", root, t, f.Name)
				}
				if f.Tag.Get(tag) == "-" {
					return fmt.Errorf("memo: redistier: result type %v has the field %v.%s tagged %s:\"-\", which the codec would drop", root, t, f.Name, tag)
				}
				if k := f.Type.Kind(); (k == reflect.Slice || k == reflect.Map) && slices.Contains(strings.Split(f.Tag.Get(tag), ",")[1:], "omitempty") {
					return fmt.Errorf("memo: redistier: result type %v has the field %v.%s tagged omitempty, which turns an empty %v into nil", root, t, f.Name, k)
				}
				if err := walk(f.Type, path); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, nil)
}

// checkType checks t with the codec and makes a zero value's round trip.
func checkType(c Codec, t reflect.Type) error {
	if err := c.Check(t); err != nil {
		return err
	}
	b, err := c.Encode(nil, []any{reflect.Zero(t).Interface()})
	if err == nil {
		_, err = c.Decode(b, []reflect.Type{t})
	}
	if err != nil {
		return fmt.Errorf("memo: redistier: result type %v does not make a round trip through the codec: %v", t, err)
	}
	return nil
}

// The envelope: every value starts with a header.
//
//	0  2  magic "mT"
//	2  1  format version (1)
//	3  1  codec id
//	4  8  schema fingerprint (first 8 bytes of TierFunc.Schema)
//	12 8  created at, Unix nanoseconds, big-endian
//	20    the codec's payload
const (
	headerLen     = 20
	formatVersion = 1
)

var magic = [2]byte{'m', 'T'}

func appendHeader(dst []byte, codec byte, schema [32]byte, created time.Time) []byte {
	dst = append(dst, magic[0], magic[1], formatVersion, codec)
	dst = append(dst, schema[:8]...)
	return binary.BigEndian.AppendUint64(dst, uint64(created.UnixNano()))
}

// errUndecodable wraps every reason a stored value is not used.
var errUndecodable = errors.New("memo: redistier: undecodable value")

// openEnvelope checks the header and returns the payload.
func openEnvelope(b []byte, codec byte, schema [32]byte) ([]byte, error) {
	switch {
	case len(b) < headerLen:
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", errUndecodable, len(b))
	case b[0] != magic[0] || b[1] != magic[1]:
		return nil, fmt.Errorf("%w: no memo header", errUndecodable)
	case b[2] != formatVersion:
		return nil, fmt.Errorf("%w: format version %d", errUndecodable, b[2])
	case b[3] != codec:
		return nil, fmt.Errorf("%w: written by codec %d, this tier's is %d", errUndecodable, b[3], codec)
	case !bytes.Equal(b[4:12], schema[:8]):
		return nil, fmt.Errorf("%w: written for another schema", errUndecodable)
	}
	return b[headerLen:], nil
}
