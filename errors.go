package memo

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned by [Cache.Get] for a key that is absent or
// expired. Test for it with errors.Is.
var ErrNotFound = errors.New("memo: key not found")

// PanicError is what callers that shared an execution see when the function
// panicked: they panic with a *PanicError holding the original value and the
// stack of the goroutine that panicked. The caller that ran the execution
// (or, for functions with a context, started it) sees the original panic
// value instead. A function memoized by [Batch] (and its [Single] form)
// panics with neither: every caller gets a *PanicError as the failed keys'
// error (in a [KeyErrors]).
type PanicError struct {
	Value any
	Stack []byte
}

// Error returns the panic value and the stack of the goroutine that
// panicked.
func (e *PanicError) Error() string {
	return fmt.Sprintf("memo: the memoized function panicked: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// errGoexit is the Value of the PanicError that waiters see when the
// function called runtime.Goexit.
var errGoexit = errors.New("memo: the memoized function called runtime.Goexit")
