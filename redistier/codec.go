package redistier

import (
	"bytes"
	"crypto/sha256"
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
	// Check returns an error, naming the field, when values of type t
	// cannot make the round trip exactly. It is called at decoration time
	// for every result type; memo then panics with the error.
	Check(t reflect.Type) error
	// Encode appends the encoding of vals (one per result) to dst. A value
	// the codec would not bring back exactly must be refused with an
	// error (the result is then not stored, and counts as an
	// EncodeError), never altered.
	Encode(dst []byte, vals []any) ([]byte, error)
	// Decode decodes data into one value of each of types. data was read
	// from Redis and may be anything: Decode must return an error, not
	// panic, and allocate no more than len(data) justifies.
	Decode(data []byte, types []reflect.Type) ([]any, error)
}

// JSON is encoding/json, into the results' static types: for
// interoperability with readers outside memo. Every value it stores is
// checked to come back exactly (decoded again at once and compared with
// the Binary codec's canonical encoding): a value that would not (a
// string or map key that is not valid UTF-8, NaN or ±Inf, a time.Time
// whose zone has a name or is time.Local) is not stored, and counts as an
// EncodeError; it is never changed. At decoration it refuses result types
// it could not carry at all, naming the field: what Binary refuses,
// unexported or json:"-" fields, fields whose JSON names collide (through
// embedded structs or duplicate tags: encoding/json drops them), a struct
// embedding a type with MarshalJSON or MarshalText (time.Time among them:
// that method would encode the whole struct), omitempty slices and maps,
// complex numbers, map keys JSON cannot name, pointers to pointers, slices
// or maps (a pointer to nil comes back nil), and json.RawMessage (its
// bytes are compacted). Types with their own MarshalJSON/UnmarshalJSON or
// MarshalText/UnmarshalText are trusted at decoration and checked per
// value like the rest.
var JSON Codec = jsonCodec{}

// Msgpack is MessagePack (vmihailenco/msgpack/v5), checked per value as
// [JSON] is. It refuses at decoration what Binary refuses, unexported,
// skipped or colliding fields, omitempty slices and maps, complex
// numbers, pointers to pointers, slices or maps, and time.Time (it comes
// back in time.Local). Before decoding, every length in the
// bytes is bounded by the bytes left, so a crafted value cannot make it
// allocate more than the bytes justify (vmihailenco/msgpack#401: 25 bytes
// made v5.4.1, the latest release, allocate 137 GB).
var Msgpack Codec = msgpackCodec{}

// Gob is encoding/gob, checked per value as [JSON] is: gob turns empty
// slices and maps, and pointers to zero values, into nil, so such values
// are not stored (EncodeErrors). It refuses at decoration what Binary
// refuses, unexported fields, a struct embedding a type with GobEncode or
// MarshalBinary, and pointer and map result types (gob cannot encode a
// nil pointer, nor keep a nil map, at the top).
var Gob Codec = gobCodec{}

type msgpackCodec struct{}

func (msgpackCodec) ID() byte { return 1 }

func (msgpackCodec) Check(t reflect.Type) error {
	return checkReflective(t, reflective{name: "Msgpack", tag: "msgpack", flattens: true, noTime: true, noComplex: true})
}

func (c msgpackCodec) Encode(dst []byte, vals []any) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memo: redistier: the Msgpack codec cannot encode the value: %v", r)
		}
	}()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return appendVerified(c, "Msgpack", dst, buf.Bytes(), vals)
}

func (msgpackCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	if err := msgpackBounded(data, len(types)); err != nil {
		return nil, err
	}
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

// msgpackBounded walks the MessagePack objects in b, n at the top, and
// refuses b unless every length in it (of a string, binary, extension,
// array or map) fits in the bytes left after it: msgpack preallocates by
// the lengths it reads.
func msgpackBounded(b []byte, n int) error {
	pending := uint64(n)
	for pending > 0 {
		if len(b) == 0 {
			return errors.New("msgpack: truncated")
		}
		c := b[0]
		b = b[1:]
		pending--
		var skip, items uint64
		var lenBytes int
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			lenBytes = 1
		case c == 0xc5 || c == 0xda:
			lenBytes = 2
		case c == 0xc6 || c == 0xdb:
			lenBytes = 4
		case c == 0xc7:
			lenBytes, skip = 1, 1
		case c == 0xc8:
			lenBytes, skip = 2, 1
		case c == 0xc9:
			lenBytes, skip = 4, 1
		case c == 0xca, c == 0xce, c == 0xd2:
			skip = 4
		case c == 0xcb, c == 0xcf, c == 0xd3:
			skip = 8
		case c == 0xcc, c == 0xd0:
			skip = 1
		case c == 0xcd, c == 0xd1:
			skip = 2
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde:
			lenBytes = 2
		case c == 0xdd || c == 0xdf:
			lenBytes = 4
		default:
			return fmt.Errorf("msgpack: bad code 0x%x", c)
		}
		if lenBytes > 0 {
			if len(b) < lenBytes {
				return errors.New("msgpack: truncated")
			}
			var l uint64
			for _, x := range b[:lenBytes] {
				l = l<<8 | uint64(x)
			}
			b = b[lenBytes:]
			switch c {
			case 0xdc, 0xdd:
				items = l
			case 0xde, 0xdf:
				items = 2 * l
			default:
				skip += l
			}
		}
		if skip > uint64(len(b)) {
			return fmt.Errorf("msgpack: a length of %d with %d bytes left", skip, len(b))
		}
		b = b[skip:]
		pending += items
		if pending > uint64(len(b)) {
			return fmt.Errorf("msgpack: %d objects claimed with %d bytes left", pending, len(b))
		}
	}
	return nil
}

type jsonCodec struct{}

func (jsonCodec) ID() byte { return 2 }

func (jsonCodec) Check(t reflect.Type) error {
	return checkReflective(t, reflective{name: "JSON", tag: "json", flattens: true, json: true, noComplex: true})
}

func (c jsonCodec) Encode(dst []byte, vals []any) ([]byte, error) {
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	return appendVerified(c, "JSON", dst, b, vals)
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

func (gobCodec) Check(t reflect.Type) error {
	return checkReflective(t, reflective{name: "Gob", tag: "gob"})
}

func (c gobCodec) Encode(dst []byte, vals []any) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil { // gob panics on a nil pointer
			err = fmt.Errorf("memo: redistier: the Gob codec cannot encode the value: %v", r)
		}
	}()
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return appendVerified(c, "Gob", dst, buf.Bytes(), vals)
}

func (gobCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	r := bytes.NewReader(data) // an io.ByteReader: gob reads no further than it decodes
	dec := gob.NewDecoder(r)
	out := make([]any, len(types))
	for i, t := range types {
		p := reflect.New(t)
		if err := dec.DecodeValue(p); err != nil {
			return nil, err
		}
		out[i] = p.Elem().Interface()
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the results", r.Len())
	}
	return out, nil
}

// appendVerified decodes b, the encoding of vals by c, and appends it to
// dst only if every value comes back exactly (exactEqual, with time.Local
// refused: another machine's Local may differ).
func appendVerified(c Codec, name string, dst, b []byte, vals []any) ([]byte, error) {
	types := make([]reflect.Type, len(vals))
	for i, v := range vals {
		types[i] = reflect.TypeOf(v)
		if types[i] == nil {
			return nil, errors.New("memo: redistier: a nil interface result cannot be encoded")
		}
	}
	out, err := func() (out []any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("the codec panicked: %v", r)
			}
		}()
		return c.Decode(b, types)
	}()
	if err != nil {
		return nil, fmt.Errorf("memo: redistier: the %s codec cannot decode what it encoded: %v", name, err)
	}
	for i := range vals {
		eq, err := exactEqual(vals[i], out[i], true)
		if err != nil {
			return nil, err
		}
		if !eq {
			return nil, fmt.Errorf("memo: redistier: result %d (%v) would not come back exactly through the %s codec (a string that is not valid UTF-8, an empty slice, a zone name...): not stored", i, types[i], name)
		}
	}
	return append(dst, b...), nil
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler   = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler   = reflect.TypeFor[encoding.TextUnmarshaler]()
	binaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	gobDecoderType    = reflect.TypeFor[gob.GobDecoder]()
	msgpackCustomEnc  = reflect.TypeFor[msgpack.CustomEncoder]()
	msgpackCustomDec  = reflect.TypeFor[msgpack.CustomDecoder]()
	msgpackMarshaler  = reflect.TypeFor[msgpack.Marshaler]()
	msgpackUnmarsh    = reflect.TypeFor[msgpack.Unmarshaler]()
)

// reflective describes a codec of another library for checkReflective.
type reflective struct {
	name, tag string
	// flattens: the fields of embedded structs are promoted, so that
	// names may collide (encoding/json and msgpack drop such fields).
	flattens bool
	json     bool // encoding/json's own rules (map keys, RawMessage, complex)
	noTime   bool // time.Time does not come back exactly (msgpack: Local)
	// noComplex: the library cannot encode complex numbers.
	noComplex bool
}

// pair reports whether values of t are handed to a pair of methods the
// library calls, marshal on T or *T and unmarshal on *T: the type then
// says what its encoding holds, and appendVerified checks each value.
func pair(t reflect.Type, m, u reflect.Type) bool {
	return (t.Implements(m) || reflect.PointerTo(t).Implements(m)) && reflect.PointerTo(t).Implements(u)
}

// trusted reports whether the codec hands t to t's own methods.
func (r reflective) trusted(t reflect.Type) bool {
	switch r.tag {
	case "json":
		return pair(t, jsonMarshalerType, jsonUnmarshaler) || pair(t, textMarshalerType, textUnmarshaler)
	case "msgpack":
		return pair(t, msgpackCustomEnc, msgpackCustomDec) || pair(t, msgpackMarshaler, msgpackUnmarsh) || pair(t, binaryMarshaler, binaryUnmarshaler)
	default:
		return pair(t, gobEncoderType, gobDecoderType) || pair(t, binaryMarshaler, binaryUnmarshaler)
	}
}

// marshals reports whether t has a method the codec would call to encode
// it, which an embedding struct would inherit.
func (r reflective) marshals(t reflect.Type) bool {
	has := func(m reflect.Type) bool { return t.Implements(m) || reflect.PointerTo(t).Implements(m) }
	switch r.tag {
	case "json":
		return has(jsonMarshalerType) || has(textMarshalerType)
	case "msgpack":
		return has(msgpackCustomEnc) || has(msgpackMarshaler) || has(binaryMarshaler)
	default:
		return has(gobEncoderType) || has(binaryMarshaler)
	}
}

// checkReflective refuses, naming the field, the types whose values the
// codec r cannot carry exactly whatever they hold. Values of the types it
// accepts are still checked one by one (appendVerified).
func checkReflective(root reflect.Type, r reflective) error {
	if _, err := planOf(root); err != nil {
		return fmt.Errorf("memo: redistier: result type %v cannot be stored exactly by the %s codec: %w; return a type without it or leave WithTier out", root, r.name, err)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("memo: redistier: result type %v cannot be stored exactly by the %s codec: %s; use the Binary codec (the default) or change the type", root, r.name, fmt.Sprintf(format, args...))
	}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string) error
	walk = func(t reflect.Type, path string) error {
		if seen[t] {
			return nil
		}
		seen[t] = true
		if r.json && t == rawMessageType {
			return refuse("%s is a json.RawMessage, which encoding/json compacts", path)
		}
		if t == timeType {
			if r.noTime {
				return refuse("%s is a time.Time, which comes back in time.Local", path)
			}
			return nil
		}
		if t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Anonymous && r.marshals(f.Type) && r.marshals(t) {
					return refuse("%s.%s embeds %v, whose marshalling method then encodes all of %v", path, f.Name, f.Type, t)
				}
			}
		}
		if r.trusted(t) {
			return nil
		}
		switch t.Kind() {
		case reflect.Complex64, reflect.Complex128:
			if r.noComplex {
				return refuse("%s is a complex number", path)
			}
		case reflect.Pointer:
			if k := t.Elem().Kind(); r.flattens && (k == reflect.Pointer || k == reflect.Slice || k == reflect.Map) && !r.trusted(t.Elem()) {
				return refuse("%s is a pointer to a %v, and a pointer to a nil %v comes back nil", path, k, k)
			}
			return walk(t.Elem(), path)
		case reflect.Slice, reflect.Array:
			return walk(t.Elem(), path+"[i]")
		case reflect.Map:
			if k := t.Key(); r.json && !pair(k, textMarshalerType, textUnmarshaler) {
				switch k.Kind() {
				case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
					reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				default:
					return refuse("%s is a map with %v keys, which JSON cannot name", path, k)
				}
			}
			if err := walk(t.Key(), path+"[key]"); err != nil {
				return err
			}
			return walk(t.Elem(), path+"[k]")
		case reflect.Struct:
			return r.walkStruct(t, path, walk, refuse)
		}
		return nil
	}
	return walk(root, root.String())
}

// walkStruct checks t's fields: each must be carried (exported, not
// skipped), and for codecs that promote the fields of embedded structs no
// two may share a name.
func (r reflective) walkStruct(t reflect.Type, path string, walk func(reflect.Type, string) error, refuse func(string, ...any) error) error {
	names := map[string]string{} // encoded name → field path
	var fields func(t reflect.Type, path string, depth int) error
	fields = func(t reflect.Type, path string, depth int) error {
		if depth > 32 {
			return refuse("%s embeds structs more than 32 deep", path)
		}
		for i := range t.NumField() {
			f := t.Field(i)
			fp := path + "." + f.Name
			tag := f.Tag.Get(r.tag)
			name, opts, _ := strings.Cut(tag, ",")
			if tag == "-" {
				return refuse("%s is tagged %s:\"-\", so it is dropped", fp, r.tag)
			}
			ft := f.Type
			if r.flattens && f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct && !r.marshals(ft) {
					if ft.Kind() == reflect.Pointer {
						return refuse("%s embeds the pointer %v, whose fields are dropped when it is nil", fp, ft)
					}
					if err := fields(et, fp, depth+1); err != nil {
						return err
					}
					continue
				}
			}
			if !f.IsExported() {
				return refuse("%s is unexported, so it is dropped", fp)
			}
			if k := ft.Kind(); (k == reflect.Slice || k == reflect.Map) && slices.Contains(strings.Split(opts, ","), "omitempty") {
				return refuse("%s is tagged omitempty, which turns an empty %v into nil", fp, k)
			}
			if name == "" {
				name = f.Name
			}
			if prev, ok := names[name]; ok && r.flattens {
				return refuse("%s and %s share the name %q, so both are dropped or one hides the other", prev, fp, name)
			}
			names[name] = fp
			if err := walk(ft, fp); err != nil {
				return err
			}
		}
		return nil
	}
	return fields(t, path, 0)
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
//	2  1  format version (2)
//	3  1  codec id
//	4  8  schema fingerprint (first 8 bytes of TierFunc.Schema)
//	12 8  created at, Unix nanoseconds, big-endian
//	20 8  key tag: the first 8 bytes of the SHA-256 of the Redis key the
//	      value was written at
//	28    the codec's payload
//
// The key tag binds a value to its key: a value found at any other key
// (copied or renamed there, or written by a replica for another function,
// generation or argument) is refused, as a miss, rather than served as
// that key's result. Format 1 had no key tag; its values are misses.
const (
	headerLen     = 28
	formatVersion = 2
)

var magic = [2]byte{'m', 'T'}

// keyTag returns the envelope's key tag for the Redis key key.
func keyTag(key string) [8]byte {
	sum := sha256.Sum256([]byte(key))
	return [8]byte(sum[:8])
}

func appendHeader(dst []byte, codec byte, schema [32]byte, key string, created time.Time) []byte {
	dst = append(dst, magic[0], magic[1], formatVersion, codec)
	dst = append(dst, schema[:8]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(created.UnixNano()))
	tag := keyTag(key)
	return append(dst, tag[:]...)
}

// errUndecodable wraps every reason a stored value is not used.
var errUndecodable = errors.New("memo: redistier: undecodable value")

// openEnvelope checks the header of b, read at the Redis key key, and
// returns the payload.
func openEnvelope(b []byte, codec byte, schema [32]byte, key string) ([]byte, error) {
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
	if tag := keyTag(key); !bytes.Equal(b[20:28], tag[:]) {
		return nil, fmt.Errorf("%w: written at another key", errUndecodable)
	}
	return b[headerLen:], nil
}
