package redistier

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reviewStamp is a small struct with an unexported field that embeds a
// time.Time: it gets time.Time's MarshalBinary and UnmarshalBinary by
// promotion, so the Binary codec may carry it through that pair.
type reviewStamp struct {
	time.Time
	seq uint32
}

// TestBinaryLocalTimeThroughPromotedMarshalOtherTZ guards a time.Time in
// time.Local carried inside a struct that the Binary codec sends through a
// MarshalBinary pair (here promoted from the embedded time.Time): read by a
// process whose Local is another zone, it must be a DecodeError, as a bare
// time.Time in Local is, never a value in another location. time.Local is
// swapped to stand for the two processes' TZ settings.
func TestBinaryLocalTimeThroughPromotedMarshalOtherTZ(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	saved := time.Local
	defer func() { time.Local = saved }()

	time.Local = paris // the writing process: TZ=Europe/Paris
	orig := reviewStamp{Time: time.Date(2026, 1, 1, 10, 0, 0, 0, time.Local), seq: 0}
	plain := orig.Time
	types := []reflect.Type{reflect.TypeFor[reviewStamp](), reflect.TypeFor[time.Time]()}
	require.NoError(t, Binary.Check(types[0]))
	stamp, err := Binary.Encode(nil, []any{orig})
	require.NoError(t, err)
	plainData, err := Binary.Encode(nil, []any{plain})
	require.NoError(t, err)

	time.Local = ny // the reading process: TZ=America/New_York
	_, err = Binary.Decode(plainData, types[1:])
	require.Error(t, err, "control: a bare time.Time in another process's Local is a DecodeError")

	got, err := Binary.Decode(stamp, types[:1])
	if err != nil {
		return // a miss: what the codec promises
	}
	back := got[0].(reviewStamp)
	zone, off := back.Zone()
	wantZone, wantOff := "CET", 3600
	require.Truef(t, zone == wantZone && off == wantOff && back.Location().String() == "Local",
		"decoded %v in location %q, zone %q %d s; the value written was in Local, zone %q %d s (Binary promises the same value or a DecodeError)",
		back.Time, back.Location(), zone, off, wantZone, wantOff)
}
