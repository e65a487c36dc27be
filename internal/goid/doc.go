// Package goid reads an identifier of the calling goroutine, so that an
// execution can tell a call made from inside itself (see the engine's
// join). It knows nothing of caches.
package goid
