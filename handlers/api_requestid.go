package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds a caller-supplied request id; longer ones are replaced.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestIDFromContext returns the id of the request ctx belongs to, or "" outside the API.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDPrefix makes ids of different processes distinct; the counter makes them distinct
// within a process without a random read per request.
var (
	requestIDPrefix  = newRequestIDPrefix()
	requestIDCounter atomic.Uint64
)

func newRequestIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:]) + "-"
}

func newRequestID() string {
	return requestIDPrefix + strconv.FormatUint(requestIDCounter.Add(1), 36)
}

// validRequestID accepts a caller's id when it is short visible ASCII, so it is safe in logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// RequestID is HTTP middleware that gives every request an id: the caller's X-Request-Id when it
// is sane, otherwise a new one. The id is echoed in the response header and available to inner
// handlers through RequestIDFromContext.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header()[HeaderRequestID] = []string{id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}
