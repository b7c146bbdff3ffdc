package handlers

import "net/http"

// statusWriter records what a handler answered, for the access log and the recover middleware.
// The first middleware that needs it wraps the ResponseWriter; the others find it by type
// assertion, so a request pays for one wrapper. It unwraps for http.ResponseController, which
// the SSE route uses to flush.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	// route is the ServeMux pattern that served the request ("" when none matched).
	route string
}

func wrapStatus(w http.ResponseWriter) *statusWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw
	}
	return &statusWriter{ResponseWriter: w}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// wroteHeader reports whether the status line has gone out, after which no problem can be sent.
func (w *statusWriter) wroteHeader() bool { return w.status != 0 }

// Unwrap lets http.ResponseController reach the server's writer (Flush, SetWriteDeadline).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setRoute records the matched pattern on the request's statusWriter, if there is one.
func setRoute(w http.ResponseWriter, route string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.route = route
	}
}
